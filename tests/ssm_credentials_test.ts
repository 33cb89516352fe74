/**
 * Credentials, region, endpoints and targets by name through the real command line, against
 * tests/ssm_emulator.ts: every source of the AWS CLI v2's chain (environment, SSO token cache,
 * credential_process, assume-role with source_profile and MFA, web identity, instance metadata),
 * each proved by the key that signed StartSession; Name tags with 0, 1 and 2 matches.
 *
 * @module
 */
import { deepStrictEqual as assertEquals, match, ok } from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  CONTAINER_AUTHORIZATION_TOKEN,
  CONTAINER_CREDENTIALS_PATH,
  MFA_CODE,
  PROCESS_CREDENTIALS,
  type SsmEmulator,
  SSO_ACCESS_TOKEN,
  startSsmEmulator,
  TEST_CREDENTIALS,
  WEB_IDENTITY_TOKEN,
} from "./ssm_emulator.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, type TempHome, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const TARGET = "i-0123456789abcdef0";
const ROLE = "arn:aws:iam::111122223333:role/dev";

/** A user with nothing set but HOME: no keys, no profile, no region, instance metadata off. */
function cleanEnv(home: TempHome, extra: Record<string, string> = {}): Record<string, string> {
  const blank = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SSM",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
  ];
  return {
    ...home.env,
    ...Object.fromEntries(blank.map((k) => [k, ""])),
    AWS_SHARED_CREDENTIALS_FILE: `${home.dir}/.aws/credentials`,
    AWS_CONFIG_FILE: `${home.dir}/.aws/config`,
    AWS_EC2_METADATA_DISABLED: "true",
    SSH_AUTH_SOCK: "",
    ...extra,
  };
}

async function writeAws(home: TempHome, files: { config?: string; credentials?: string }): Promise<void> {
  await Deno.mkdir(`${home.dir}/.aws`, { recursive: true });
  if (files.config) await Deno.writeTextFile(`${home.dir}/.aws/config`, files.config);
  if (files.credentials) await Deno.writeTextFile(`${home.dir}/.aws/credentials`, files.credentials, { mode: 0o600 });
}

/** `remote enter --target …` with "exit" typed: the shell opens and closes, exit 0. */
async function shell(env: Record<string, string>, args: string[] = [], target = TARGET) {
  return await runRemote(["enter", "--target", target, ...args], { env, stdin: "exit\n", timeoutMs: 60_000 });
}

function assertShell(run: { code: number; stdout: string; stderr: string }): void {
  assertEquals(run.code, 0, run.stderr);
  assertEquals(run.stdout, "$ exit\r\n");
  assertEquals(run.stderr, "");
}

/** The source that made the key that signed the only StartSession. */
function startSigner(emu: SsmEmulator): string {
  const signers = emu.stats.signers.StartSession ?? [];
  assertEquals(signers.length, 1, "one StartSession");
  return emu.stats.vended[signers[0]] ?? signers[0];
}

Deno.test("credentials from the environment, region from AWS_DEFAULT_REGION, endpoint from AWS_ENDPOINT_URL_SSM; the keys beat AWS_PROFILE as in the CLI", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  // a profile whose key AWS does not know: the environment's keys are used instead
  await writeAws(home, {
    credentials: "[other]\naws_access_key_id = AKIDNOTKNOWNTOAWS000\naws_secret_access_key = wrong\n",
  });
  const run = await shell(cleanEnv(home, {
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_DEFAULT_REGION: emu.region,
    AWS_ENDPOINT_URL_SSM: emu.endpoint,
    AWS_PROFILE: "other",
  }));
  assertShell(run);
  assertEquals(startSigner(emu), TEST_CREDENTIALS.accessKeyId);
});

Deno.test("an SSO profile (sso_session) uses the token `aws sso login` cached, and an expired cache says to log in again", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  await writeAws(home, {
    config: "[profile corp-admin]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\n" +
      `region = ${emu.region}\n\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n` +
      `sso_region = ${emu.region}\nsso_registration_scopes = sso:account:access\n`,
  });
  const cache = `${home.dir}/.aws/sso/cache`;
  await Deno.mkdir(cache, { recursive: true });
  const cacheFile = `${cache}/${createHash("sha1").update("corp").digest("hex")}.json`;
  const token = (expiresAt: Date) =>
    JSON.stringify({
      startUrl: "https://corp.awsapps.com/start",
      region: emu.region,
      accessToken: SSO_ACCESS_TOKEN,
      expiresAt: expiresAt.toISOString().replace(/\.\d{3}/, ""),
    });
  await Deno.writeTextFile(cacheFile, token(new Date(Date.now() + 3600_000)));
  const env = cleanEnv(home, { AWS_ENDPOINT_URL: emu.endpoint });
  assertShell(await shell(env, ["--profile-name", "corp-admin"]));
  assertEquals(startSigner(emu), "sso:111122223333:Admin");

  await Deno.writeTextFile(cacheFile, token(new Date(Date.now() - 3600_000)));
  const expired = await shell(env, ["--profile-name", "corp-admin"]);
  assertEquals(expired.code, 245, expired.stderr);
  match(expired.stderr, /^remote: [^\n]*SSO[^\n]*\nhint: log in again with: aws sso login --profile corp-admin\n$/);
  assertEquals(emu.stats.calls.StartSession, 1, "no second session");
});

Deno.test("a credential_process profile named by AWS_PROFILE (before AWS_DEFAULT_PROFILE) signs with what the process prints", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const script = `${home.dir}/creds.sh`;
  const output = JSON.stringify({
    Version: 1,
    AccessKeyId: PROCESS_CREDENTIALS.accessKeyId,
    SecretAccessKey: PROCESS_CREDENTIALS.secretAccessKey,
    SessionToken: PROCESS_CREDENTIALS.sessionToken,
    Expiration: new Date(Date.now() + 3600_000).toISOString(),
  });
  await Deno.writeTextFile(script, `#!/bin/sh\ncat <<'EOF'\n${output}\nEOF\n`, { mode: 0o755 });
  await writeAws(home, { config: `[profile tool]\ncredential_process = ${script}\nregion = ${emu.region}\n` });
  // AWS_PROFILE before AWS_DEFAULT_PROFILE, as in the CLI v2 (this one is in no file)
  const env = cleanEnv(home, { AWS_PROFILE: "tool", AWS_DEFAULT_PROFILE: "nosuch", AWS_ENDPOINT_URL: emu.endpoint });
  assertShell(await shell(env));
  assertEquals(startSigner(emu), PROCESS_CREDENTIALS.accessKeyId);
});

Deno.test("a role_arn profile with source_profile assumes the role with the source's keys", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  await writeAws(home, {
    credentials: `[base]\naws_access_key_id = ${TEST_CREDENTIALS.accessKeyId}\n` +
      `aws_secret_access_key = ${TEST_CREDENTIALS.secretAccessKey}\n`,
    config: `[profile dev]\nrole_arn = ${ROLE}\nsource_profile = base\nregion = ${emu.region}\n`,
  });
  assertShell(await shell(cleanEnv(home, { AWS_ENDPOINT_URL: emu.endpoint }), ["--profile", "dev"]));
  assertEquals(emu.stats.signers.AssumeRole, [TEST_CREDENTIALS.accessKeyId], "STS called with the source's key");
  assertEquals(startSigner(emu), `assume-role:${ROLE}`);
});

Deno.test("a role_arn profile with mfa_serial asks for the code on the terminal", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  await writeAws(home, {
    credentials: `[base]\naws_access_key_id = ${TEST_CREDENTIALS.accessKeyId}\n` +
      `aws_secret_access_key = ${TEST_CREDENTIALS.secretAccessKey}\n`,
    config: `[profile dev]\nrole_arn = ${ROLE}\nsource_profile = base\n` +
      `mfa_serial = arn:aws:iam::111122223333:mfa/me\nregion = ${emu.region}\n`,
  });
  await using pty = await spawnInPty(
    Deno.execPath(),
    ["run", "-A", "--quiet", MAIN, "enter", "--target", TARGET, "--profile", "dev"],
    { cols: 100, rows: 30, env: cleanEnv(home, { AWS_ENDPOINT_URL: emu.endpoint }) },
  );
  await pty.waitFor("MFA code for arn:aws:iam::111122223333:mfa/me: ", 30_000);
  pty.write(`${MFA_CODE}\r`);
  await pty.waitFor("$ ", 30_000);
  pty.write("exit\r");
  assertEquals((await pty.exited).code, 0);
  assertEquals(startSigner(emu), `assume-role:${ROLE}:mfa`);

  // with no terminal to ask on: a usage error, not a failure to reach AWS
  const noTty = await shell(cleanEnv(home, { AWS_ENDPOINT_URL: emu.endpoint }), ["--profile", "dev"]);
  assertEquals(noTty.code, 230, noTty.stderr);
  assertEquals(
    noTty.stderr,
    "remote: cannot ask for MFA code of arn:aws:iam::111122223333:mfa/me: stdin is not a terminal\n" +
      "hint: run remote in a terminal, or give the MFA code of arn:aws:iam::111122223333:mfa/me another way than a prompt\n",
  );
});

Deno.test("web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN) calls AssumeRoleWithWebIdentity", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const tokenFile = `${home.dir}/token`;
  await Deno.writeTextFile(tokenFile, WEB_IDENTITY_TOKEN);
  const env = cleanEnv(home, {
    AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
    AWS_ROLE_ARN: ROLE,
    AWS_REGION: emu.region,
    AWS_ENDPOINT_URL: emu.endpoint,
  });
  assertShell(await shell(env));
  assertEquals(emu.stats.calls.AssumeRoleWithWebIdentity, 1);
  assertEquals(startSigner(emu), `web-identity:${ROLE}`);
});

Deno.test("instance metadata (IMDSv2 at AWS_EC2_METADATA_SERVICE_ENDPOINT) when nothing else is set", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const env = cleanEnv(home, {
    AWS_EC2_METADATA_DISABLED: "",
    AWS_EC2_METADATA_SERVICE_ENDPOINT: emu.endpoint,
    AWS_REGION: emu.region,
  });
  assertShell(await shell(env, ["--endpoint-url", emu.endpoint]));
  ok((emu.stats.calls["IMDS PUT /latest/api/token"] ?? 0) >= 1, "a session token was asked for first");
  assertEquals(startSigner(emu), "imds:emulator-role");
});

// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not tested: the SDK always puts it after http://169.254.170.2
// (@aws-sdk/credential-provider-http `fromHttp`), an address a loopback test cannot serve
Deno.test("container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN); a wrong token is refused (245)", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const env = cleanEnv(home, {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: new URL(CONTAINER_CREDENTIALS_PATH, emu.endpoint).href,
    AWS_CONTAINER_AUTHORIZATION_TOKEN: CONTAINER_AUTHORIZATION_TOKEN,
    AWS_REGION: emu.region,
  });
  assertShell(await shell(env, ["--endpoint-url", emu.endpoint]));
  assertEquals(startSigner(emu), "container:emulator-task");

  const refused = await shell({ ...env, AWS_CONTAINER_AUTHORIZATION_TOKEN: "not-the-token" }, [
    "--endpoint-url",
    emu.endpoint,
  ]);
  assertEquals(refused.code, 245, refused.stderr);
  assertEquals(refused.stdout, "");
  match(refused.stderr, /^remote: .*\nhint: .*\n$/);
  assertEquals(emu.stats.signers.StartSession?.length, 1, "no second session");
});

Deno.test("no credentials anywhere: exit 245, one line and a hint; no region: exit 230; a profile in no file: exit 245", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const none = await shell(cleanEnv(home, { AWS_REGION: emu.region }), ["--endpoint-url", emu.endpoint]);
  assertEquals(none.code, 245, none.stderr);
  match(none.stderr, /^remote: no AWS credentials found\nhint: [^\n]+\n$/);
  const noRegion = await shell(cleanEnv(home, {
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
  }));
  assertEquals(noRegion.code, 230, noRegion.stderr);
  match(noRegion.stderr, /^remote: no AWS region is set\nhint: [^\n]+\n$/);
  const absent = await shell(cleanEnv(home, { AWS_REGION: emu.region }), ["--profile-name", "nosuch"]);
  assertEquals(absent.code, 245, absent.stderr);
  assertEquals(
    absent.stderr,
    "remote: AWS profile nosuch is not in the AWS config or credentials file\n" +
      "hint: check the profile name (aws configure list-profiles), or run: aws configure --profile nosuch\n",
  );
  assertEquals(emu.stats.calls.StartSession, undefined);
});

const INSTANCES = [
  { id: "i-0aaaaaaaaaaaaaaa1", name: "web-1", privateIp: "10.0.0.1" },
  { id: "i-0bbbbbbbbbbbbbbb2", name: "web-2", privateIp: "10.0.0.2" },
  { id: "i-0ccccccccccccccc3", name: "web-2", privateIp: "10.0.0.3" },
  { id: "i-0ddddddddddddddd4", name: "web-3", state: "stopped" },
];

function keysEnv(home: TempHome, emu: SsmEmulator) {
  return cleanEnv(home, {
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_REGION: emu.region,
    AWS_ENDPOINT_URL: emu.endpoint,
  });
}

Deno.test("--target by Name tag: one running match is used; a managed node (mi-…) is found by its tag too", async () => {
  await using emu = await startSsmEmulator({
    instances: INSTANCES,
    managedNodes: [{ id: "mi-0123456789abcdef0", name: "onprem-1" }],
  });
  await using home = await tempHome();
  assertShell(await shell(keysEnv(home, emu), [], "web-1"));
  assertEquals(emu.stats.lastEc2Filters, ["tag:Name=web-1", "instance-state-name=running"]);
  assertShell(await shell(keysEnv(home, emu), [], "onprem-1"));
  // an ID is used as given, with no lookup
  assertShell(await shell(keysEnv(home, emu), [], "mi-0123456789abcdef0"));
  assertEquals(emu.stats.startedTargets, ["i-0aaaaaaaaaaaaaaa1", "mi-0123456789abcdef0", "mi-0123456789abcdef0"]);
  assertEquals(emu.stats.calls.DescribeInstances, 2);
});

Deno.test("--target by Name tag: none running exits 233; two without a terminal are listed and refused (230)", async () => {
  await using emu = await startSsmEmulator({
    instances: INSTANCES,
    // the stopped instance's agent, as SSM sees it
    managedNodes: [{ id: "i-0ddddddddddddddd4", name: "web-3", pingStatus: "ConnectionLost" }],
  });
  await using home = await tempHome();
  for (const name of ["nothing-by-this-name", "web-3"]) {
    const none = await shell(keysEnv(home, emu), [], name);
    assertEquals(none.code, 233, none.stderr);
    assertEquals(
      none.stderr,
      `remote: no running instance is named ${name} in ${emu.region}\n` +
        "hint: check the Name tag and --region, or pass the instance ID (i-…, mi-…)\n",
    );
  }
  const two = await shell(keysEnv(home, emu), [], "web-2");
  assertEquals(two.code, 230, two.stderr);
  assertEquals(
    two.stderr,
    "remote: 2 running instances are named web-2: i-0bbbbbbbbbbbbbbb2 (10.0.0.2 us-east-1a t3.micro), " +
      "i-0ccccccccccccccc3 (10.0.0.3 us-east-1a t3.micro)\nhint: pass one instance ID with --target\n",
  );
  assertEquals(emu.stats.calls.StartSession, undefined);
});

Deno.test("--target by Name tag with two matches on a terminal lists them and takes the one chosen", async () => {
  await using emu = await startSsmEmulator({ instances: INSTANCES });
  await using home = await tempHome();
  await using pty = await spawnInPty(
    Deno.execPath(),
    ["run", "-A", "--quiet", MAIN, "enter", "--target", "web-2"],
    { cols: 100, rows: 30, env: keysEnv(home, emu) },
  );
  await pty.waitFor("2) i-0ccccccccccccccc3 (10.0.0.3 us-east-1a t3.micro)", 30_000);
  await pty.waitFor("Which one (1-2)? ", 30_000);
  pty.write("2\r");
  await pty.waitFor("$ ", 30_000);
  pty.write("exit\r");
  assertEquals((await pty.exited).code, 0);
  assertEquals(emu.stats.startedTargets, ["i-0ccccccccccccccc3"]);
});

Deno.test("--target by Name tag when EC2 is denied: SSM's managed nodes still match; no match shows the denial (245)", async () => {
  await using emu = await startSsmEmulator({
    instances: INSTANCES,
    denyDescribeInstances: true,
    managedNodes: [{ id: "mi-0123456789abcdef0", name: "onprem-1" }],
  });
  await using home = await tempHome();
  assertShell(await shell(keysEnv(home, emu), [], "onprem-1"));
  const denied = await shell(keysEnv(home, emu), [], "web-1");
  assertEquals(denied.code, 245, denied.stderr);
  assertEquals(
    denied.stderr,
    "remote: AWS denied DescribeInstances: You are not authorized to perform this operation.\n" +
      "hint: the IAM identity needs ec2:DescribeInstances\n",
  );
  assertEquals(emu.stats.startedTargets, ["mi-0123456789abcdef0"]);
});
