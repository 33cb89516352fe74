import assert from "node:assert/strict";
import { TransportError } from "../../plugins/mod.ts";
import { parseIni, resolveAws } from "./credentials.ts";

/** Sources from a fake environment and fake files under /home/u. */
function sources(env: Record<string, string>, files: Record<string, string> = {}, profile?: string) {
  return {
    profile,
    env: (name: string) => ({ HOME: "/home/u", ...env })[name],
    readFile: (path: string) => files[path],
  };
}

const CREDENTIALS = "/home/u/.aws/credentials";
const CONFIG = "/home/u/.aws/config";

function rejects(fn: () => unknown, message: string, hint: RegExp, layer: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TransportError, `not a TransportError: ${e}`);
    assert.equal(e.message, message);
    assert.match(e.hint ?? "", hint);
    assert.equal(e.layer, layer);
    return true;
  });
}

Deno.test("parseIni() reads sections, keys in any case, and skips comments and nested settings", () => {
  const ini = parseIni(
    "# top\n[default]\nAWS_Access_Key_Id = AK\n; c\ns3 =\n  max_concurrent_requests = 5\n[profile x]\nregion=eu",
  );
  assert.deepEqual([...ini.keys()], ["default", "profile x"]);
  assert.equal(ini.get("default")?.get("aws_access_key_id"), "AK");
  assert.equal(ini.get("default")?.has("max_concurrent_requests"), false);
  assert.equal(ini.get("profile x")?.get("region"), "eu");
});

Deno.test("resolveAws() takes the environment, with a session token, and AWS_REGION over AWS_DEFAULT_REGION", () => {
  const aws = resolveAws(sources({
    AWS_ACCESS_KEY_ID: "AKENV",
    AWS_SECRET_ACCESS_KEY: "s3cret",
    AWS_SESSION_TOKEN: "tok",
    AWS_REGION: "eu-west-1",
    AWS_DEFAULT_REGION: "us-east-2",
  }));
  assert.deepEqual(aws, {
    credentials: { accessKeyId: "AKENV", secretAccessKey: "s3cret", sessionToken: "tok" },
    region: "eu-west-1",
    source: "environment",
  });
});

Deno.test("resolveAws() reads the default profile from the shared files, region from config", () => {
  const aws = resolveAws(sources({}, {
    [CREDENTIALS]: "[default]\naws_access_key_id = AKFILE\naws_secret_access_key = sec\n",
    [CONFIG]: "[default]\nregion = ap-south-1\n",
  }));
  assert.equal(aws.credentials.accessKeyId, "AKFILE");
  assert.equal(aws.credentials.sessionToken, undefined);
  assert.equal(aws.region, "ap-south-1");
  assert.equal(aws.source, "profile default");
});

Deno.test("resolveAws() lets --profile beat the environment, and AWS_PROFILE picks a [profile x] section", () => {
  const files = {
    [CREDENTIALS]: "[prod]\naws_access_key_id = AKPROD\naws_secret_access_key = p\n",
    [CONFIG]: "[profile dev]\naws_access_key_id = AKDEV\naws_secret_access_key = d\nregion = us-west-2\n",
  };
  const env = { AWS_ACCESS_KEY_ID: "AKENV", AWS_SECRET_ACCESS_KEY: "e", AWS_REGION: "eu-west-1" };
  assert.equal(resolveAws(sources(env, files, "prod")).credentials.accessKeyId, "AKPROD");
  assert.equal(resolveAws(sources(env, files)).credentials.accessKeyId, "AKENV");
  const dev = resolveAws(sources({ AWS_PROFILE: "dev" }, files));
  assert.deepEqual([dev.credentials.accessKeyId, dev.region], ["AKDEV", "us-west-2"]);
  const custom = resolveAws(sources({ AWS_SHARED_CREDENTIALS_FILE: "/etc/c", AWS_REGION: "r" }, {
    "/etc/c": "[default]\naws_access_key_id = AKC\naws_secret_access_key = c\n",
  }));
  assert.equal(custom.credentials.accessKeyId, "AKC");
});

Deno.test("resolveAws() explains a missing region, missing credentials and an unknown profile", () => {
  rejects(
    () => resolveAws(sources({ AWS_ACCESS_KEY_ID: "A", AWS_SECRET_ACCESS_KEY: "s" })),
    "no AWS region is set",
    /--region/,
    "config",
  );
  rejects(() => resolveAws(sources({ AWS_REGION: "r" })), "no AWS credentials found", /AWS_ACCESS_KEY_ID/, "auth");
  rejects(
    () => resolveAws(sources({ AWS_REGION: "r" }, {}, "nope")),
    `AWS profile nope is not in ${CREDENTIALS} or ${CONFIG}`,
    /aws configure --profile nope/,
    "auth",
  );
  rejects(
    () => resolveAws(sources({ AWS_REGION: "r" }, { [CONFIG]: "[default]\nregion = r\n" })),
    "AWS profile default has no aws_access_key_id and aws_secret_access_key",
    /aws configure/,
    "auth",
  );
});

Deno.test("resolveAws() refuses SSO, credential_process and assume-role profiles with an export hint", () => {
  for (
    const [setting, what] of [
      ["sso_start_url = https://x.awsapps.com/start", "AWS IAM Identity Center (SSO)"],
      ["sso_session = corp", "AWS IAM Identity Center (SSO)"],
      ["credential_process = /bin/creds", "credential_process"],
      ["role_arn = arn:aws:iam::1:role/r\nsource_profile = default", "assume-role (role_arn)"],
      ["web_identity_token_file = /t", "web identity"],
    ]
  ) {
    rejects(
      () => resolveAws(sources({}, { [CONFIG]: `[profile p]\nregion = r\n${setting}\n` }, "p")),
      `AWS profile p uses ${what}, which remote does not support yet`,
      /aws configure export-credentials --profile p --format env/,
      "auth",
    );
  }
});

Deno.test("resolveAws() never puts the secret key in an error", () => {
  try {
    resolveAws(sources({ AWS_SECRET_ACCESS_KEY: "very-secret-value" }));
    assert.fail("expected an error");
  } catch (e) {
    assert.ok(e instanceof TransportError);
    assert.ok(!`${e.message} ${e.hint}`.includes("very-secret-value"));
  }
});
