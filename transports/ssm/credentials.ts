/**
 * The standard AWS credential chain, as far as remote supports it: an explicit profile, then the
 * environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), then the profile
 * named by `AWS_PROFILE` or `default` in `~/.aws/credentials` and `~/.aws/config`. Profiles that
 * need another provider (assume-role, SSO, credential_process, web identity) are recognised and
 * refused with a hint.
 *
 * Order and file formats per the AWS CLI/SDK "configuration and credential file settings" and
 * "environment variables" documentation.
 *
 * @module
 */
import { TransportError } from "../../plugins/mod.ts";
import type { AwsCredentials } from "./sigv4.ts";

/** Where to look; every field defaults to the process environment. */
export interface CredentialSources {
  /** `--profile` */
  profile?: string;
  /** `--region` */
  region?: string;
  env?: (name: string) => string | undefined;
  readFile?: (path: string) => string | undefined;
}

/** Credentials and region resolved for one call. */
export interface ResolvedAws {
  credentials: AwsCredentials;
  region: string;
  /** where the credentials came from, for messages (never the secret) */
  source: string;
}

type IniSections = Map<string, Map<string, string>>;

/** Parses the AWS shared-file INI dialect: `[section]`, `key = value`, `#`/`;` comments. */
export function parseIni(text: string): IniSections {
  const sections: IniSections = new Map();
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (header) {
      current = sections.get(header[1]) ?? new Map();
      sections.set(header[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0 || !current || /^\s/.test(raw)) continue; // nested sub-settings (s3 = …) are not needed
    current.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return sections;
}

function defaultReadFile(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

function defaultEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

const UNSUPPORTED: readonly [string, string][] = [
  ["sso_start_url", "AWS IAM Identity Center (SSO)"],
  ["sso_session", "AWS IAM Identity Center (SSO)"],
  ["credential_process", "credential_process"],
  ["role_arn", "assume-role (role_arn)"],
  ["web_identity_token_file", "web identity"],
  ["credential_source", "credential_source"],
];

/**
 * Resolves credentials and region.
 *
 * @throws {TransportError} `auth` when no credentials are found or the profile needs an unsupported
 *   provider; `usage` when no region is set
 * @example From the environment
 * ```ts
 * import { resolveAws } from "./credentials.ts";
 * const env: Record<string, string> = { AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "s", AWS_REGION: "eu-west-1" };
 * const aws = resolveAws({ env: (n) => env[n], readFile: () => undefined });
 * console.assert(aws.region === "eu-west-1");
 * ```
 */
export function resolveAws(sources: CredentialSources = {}): ResolvedAws {
  const env = sources.env ?? defaultEnv;
  const readFile = sources.readFile ?? defaultReadFile;
  const home = env("HOME") ?? env("USERPROFILE") ?? "";
  const credentialsPath = env("AWS_SHARED_CREDENTIALS_FILE") ?? `${home}/.aws/credentials`;
  const configPath = env("AWS_CONFIG_FILE") ?? `${home}/.aws/config`;
  const credentialsFile = parseIni(readFile(credentialsPath) ?? "");
  const configFile = parseIni(readFile(configPath) ?? "");
  const profileName = sources.profile ?? env("AWS_PROFILE") ?? env("AWS_DEFAULT_PROFILE") ?? "default";
  const fromCredentials = credentialsFile.get(profileName);
  const fromConfig = configFile.get(profileName === "default" ? "default" : `profile ${profileName}`) ??
    configFile.get(profileName);
  const setting = (key: string) => fromCredentials?.get(key) ?? fromConfig?.get(key);

  const region = sources.region ?? env("AWS_REGION") ?? env("AWS_DEFAULT_REGION") ?? setting("region");
  if (!region) {
    throw new TransportError("no AWS region is set", {
      layer: "config",
      hint: "pass --region, or set AWS_REGION, or add region to the profile in ~/.aws/config",
    });
  }

  // an explicit --profile beats the environment; the environment beats AWS_PROFILE
  const envKey = env("AWS_ACCESS_KEY_ID");
  const envSecret = env("AWS_SECRET_ACCESS_KEY");
  if (!sources.profile && envKey && envSecret) {
    return {
      credentials: {
        accessKeyId: envKey,
        secretAccessKey: envSecret,
        sessionToken: env("AWS_SESSION_TOKEN") || undefined,
      },
      region,
      source: "environment",
    };
  }
  if (!fromCredentials && !fromConfig) {
    if (sources.profile || env("AWS_PROFILE")) {
      throw new TransportError(`AWS profile ${profileName} is not in ${credentialsPath} or ${configPath}`, {
        layer: "auth",
        hint: "check the profile name, or run: aws configure --profile " + profileName,
      });
    }
    throw new TransportError("no AWS credentials found", {
      layer: "auth",
      hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add a profile to ~/.aws/credentials " +
        "(instance metadata and SSO are not supported yet)",
    });
  }
  const accessKeyId = setting("aws_access_key_id");
  const secretAccessKey = setting("aws_secret_access_key");
  if (accessKeyId && secretAccessKey) {
    return {
      credentials: { accessKeyId, secretAccessKey, sessionToken: setting("aws_session_token") || undefined },
      region,
      source: `profile ${profileName}`,
    };
  }
  for (const [key, what] of UNSUPPORTED) {
    if (setting(key) !== undefined) {
      throw new TransportError(`AWS profile ${profileName} uses ${what}, which remote does not support yet`, {
        layer: "auth",
        hint: `export static credentials first: eval "$(aws configure export-credentials --profile ${profileName} ` +
          `--format env)"`,
      });
    }
  }
  throw new TransportError(`AWS profile ${profileName} has no aws_access_key_id and aws_secret_access_key`, {
    layer: "auth",
    hint: "add both keys to the profile in ~/.aws/credentials, or run: aws configure --profile " + profileName,
  });
}
