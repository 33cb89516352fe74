/**
 * Credentials and region as the AWS CLI v2 resolves them, through AWS's own SDK for JavaScript v3:
 * the node provider chain of `@aws-sdk/credential-providers` (environment, shared `config` and
 * `credentials` files, `sso_session` and the SSO token cache, `credential_process`, `role_arn` with
 * `source_profile`/`credential_source` and an MFA prompt, web identity, ECS and EC2 instance
 * metadata) and the shared-file loader for the profile's region.
 *
 * The SDK is loaded here with literal dynamic imports, on the first SSM call only: no other verb or
 * transport pays for it (`deno bundle` still embeds it).
 *
 * @module
 */
import { type Prompter, RemoteError, TransportError } from "../../plugins/mod.ts";
import { loadAwsSdk } from "./sdk_loader.ts";

/** A source of credentials, refreshed by the SDK when temporary ones are about to expire. */
export type CredentialProvider = () => Promise<{
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}>;

/** What the user chose: `--profile-name`, `--region`, `--endpoint-url` (each optional). */
export interface AwsSettings {
  profile?: string;
  region?: string;
  endpointUrl?: string;
}

/** Region and credentials for one connection. */
export interface ResolvedAws {
  region: string;
  /** the profile in use, for hints (`aws sso login --profile …`) */
  profile?: string;
  credentials: CredentialProvider;
}

// the SDK's warnings go to console.warn unless a logger is given; remote reports failures itself
const SILENT = { debug() {}, info() {}, warn() {}, error() {} };

function env(name: string): string | undefined {
  try {
    const value = Deno.env.get(name);
    return value === "" ? undefined : value;
  } catch {
    return undefined;
  }
}

/**
 * The profile name as the AWS CLI v2 picks it (its botocore's `configprovider.py`): `--profile-name`,
 * then `AWS_PROFILE`, then `AWS_DEFAULT_PROFILE`, then `default` (stock botocore, the CLI v1's, reads the
 * two variables the other way round).
 */
export function profileName(settings: AwsSettings): string | undefined {
  return settings.profile ?? env("AWS_PROFILE") ?? env("AWS_DEFAULT_PROFILE");
}

/**
 * Resolves region and credentials. Nothing is fetched yet: the provider runs on the first call
 * (and again when temporary credentials near their expiry).
 *
 * @throws {TransportError} `config` when no region is set
 */
export async function resolveAws(settings: AwsSettings, prompt: Prompter): Promise<ResolvedAws> {
  const profile = profileName(settings);
  const sdk = await loadAwsSdk();
  const files = await sdk.loadSharedConfigFiles({ ignoreCache: true });
  const section = (name: string) => files.configFile?.[name] ?? files.credentialsFile?.[name];
  if (profile !== undefined && !section(profile)) {
    throw new TransportError(`AWS profile ${profile} is not in the AWS config or credentials file`, {
      layer: "auth",
      hint: `check the profile name (aws configure list-profiles), or run: aws configure --profile ${profile}`,
    });
  }
  const region = settings.region ?? env("AWS_REGION") ?? env("AWS_DEFAULT_REGION") ??
    files.configFile?.[profile ?? "default"]?.region ?? files.credentialsFile?.[profile ?? "default"]?.region;
  if (!region) {
    throw new TransportError("no AWS region is set", {
      layer: "config",
      hint: "pass --region, or set AWS_REGION, or add region to the profile in ~/.aws/config",
    });
  }
  const { fromEnv, fromNodeProviderChain } = sdk;
  const mfaCodeProvider = (serial: string) => prompt.ask(`MFA code for ${serial}: `, { what: `MFA code of ${serial}` });
  // The CLI uses the environment's keys before AWS_PROFILE (botocore drops its environment provider only
  // for an explicit --profile); the SDK's chain would skip them whenever AWS_PROFILE is set.
  const inner = !settings.profile && env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")
    ? fromEnv()
    : fromNodeProviderChain({
      profile,
      mfaCodeProvider,
      // STS and SSO called by the chain use the connection's region, as the CLI does
      clientConfig: { region },
      logger: SILENT,
      // IMDS: the SDK's defaults (1 s timeout, no retry) keep a machine that is not on EC2 from waiting long
    });
  // memoised: asked once per connection, again only when temporary credentials near their expiry
  let current: Awaited<ReturnType<CredentialProvider>> | undefined;
  const credentials: CredentialProvider = async () => {
    if (current && (!current.expiration || current.expiration.getTime() - Date.now() > 5 * 60_000)) return current;
    try {
      current = await inner();
    } catch (cause) {
      throw credentialError(cause, profile);
    }
    return current;
  };
  return { region, profile, credentials };
}

/** A failure of the credential chain, as one line and a hint; never the secrets it read. */
export function credentialError(cause: unknown, profile: string | undefined): RemoteError {
  // remote's own (the MFA prompt with no terminal: a usage error), passed through the SDK unchanged
  if (cause instanceof RemoteError) return cause;
  const raw = cause instanceof Error ? cause.message : String(cause);
  const first = raw.split("\n")[0].trim();
  const name = profile ?? "default";
  if (/could not load credentials from any providers/i.test(first) && profile !== undefined) {
    return new TransportError(`AWS profile ${name} gives no credentials`, {
      layer: "auth",
      hint: "check its settings (a role_arn needs a source_profile or credential_source with credentials); " +
        `aws sts get-caller-identity --profile ${name} shows the CLI's view`,
      cause,
    });
  }
  if (/could not load credentials from any providers/i.test(first)) {
    return new TransportError("no AWS credentials found", {
      layer: "auth",
      hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pass --profile-name, or run: aws configure",
      cause,
    });
  }
  if (/sso/i.test(first) && /(expired|token|refresh)/i.test(first)) {
    return new TransportError(`the AWS SSO session of profile ${name} is not valid: ${first}`, {
      layer: "auth",
      hint: `log in again with: aws sso login --profile ${name}`,
      cause,
    });
  }
  if (/profile .* (could not be found|not found)|could not resolve credentials using profile/i.test(first)) {
    return new TransportError(`AWS profile ${name} has no usable credentials: ${first}`, {
      layer: "auth",
      hint: "check the profile name and ~/.aws/config, or run: aws configure --profile " + name,
      cause,
    });
  }
  return new TransportError(`cannot get AWS credentials for profile ${name}: ${first}`, {
    layer: "auth",
    hint: "check the profile in ~/.aws/config and ~/.aws/credentials (aws sts get-caller-identity shows the same)",
    cause,
  });
}
