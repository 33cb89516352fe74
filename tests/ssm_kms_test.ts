/**
 * KMS-encrypted Session Manager sessions through the real command line, against tests/ssm_emulator.ts
 * (its agent asks for KMSEncryption in the handshake and its KMS answers GenerateDataKey and Decrypt, as
 * its header describes): an encrypted shell, an encrypted command, an encrypted kept session resumed by
 * a later run, and the errors a user sees when the key is wrong or missing.
 *
 * @module
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { emulatorEnv, startSsmEmulator } from "./ssm_emulator.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const TARGET = "i-0123456789abcdef0";

const awsEnv = (home: { env: Record<string, string>; dir: string }, kmsEndpoint: string) =>
  emulatorEnv(home, { AWS_ENDPOINT_URL_KMS: kmsEndpoint });

Deno.test("remote enter and invoke on a KMS-encrypted session: the banner, a shell round trip, a command", async () => {
  await using emu = await startSsmEmulator({ handshake: "kms" });
  await using home = await tempHome();
  const env = awsEnv(home, emu.endpoint);
  const aws = ["--endpoint-url", emu.endpoint, "--region", emu.region];
  {
    await using pty = await spawnInPty(
      Deno.execPath(),
      ["run", "-A", "--quiet", MAIN, "enter", "--target", TARGET, ...aws],
      { cols: 80, rows: 24, env },
    );
    await pty.waitFor("This session is encrypted using AWS KMS.", 30_000);
    await pty.waitFor("$ ");
    // the agent decrypts what remote typed and encrypts what it prints: a round trip needs both
    pty.write("echo through-kms\r");
    await pty.waitFor(/^through-kms\r$/m);
    pty.write("exit\r");
    assertEquals((await pty.exited).code, 0);
  }
  const command = await runRemote(["invoke", "--target", TARGET, ...aws, "--", "echo", "sealed"], { env });
  assertEquals(command, { code: 0, stdout: "sealed\n", stderr: "This session is encrypted using AWS KMS.\n" });
  assertEquals(emu.stats.calls.GenerateDataKey, 2);
  for (const context of emu.stats.kmsContexts) {
    assertEquals(context["aws:ssm:TargetId"], TARGET);
    match(context["aws:ssm:RandomChallenge"], /^[A-Za-z0-9+/]{22}==$/);
  }
});

Deno.test("an encrypted kept session is resumed by a later run with kms:Decrypt", async () => {
  await using emu = await startSsmEmulator({ handshake: "kms" });
  await using home = await tempHome();
  const env = awsEnv(home, emu.endpoint);
  const aws = ["--endpoint-url", emu.endpoint, "--region", emu.region];
  const created = await runRemote(["new", `ssm://${TARGET}`, "--name", "vault", ...aws], { env });
  assertEquals(created.code, 0, created.stderr);
  // the plaintext data key never reaches the disk: only KMS's blob is kept
  for await (const f of Deno.readDir(`${home.env.XDG_STATE_HOME}/remote/ssm`)) {
    const text = await Deno.readTextFile(`${home.env.XDG_STATE_HOME}/remote/ssm/${f.name}`);
    match(text, /"cipherTextKey":"[A-Za-z0-9+/=]+"/);
  }
  await using pty = await spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "connect", "--name", "vault"], {
    cols: 80,
    rows: 24,
    env,
  });
  pty.write("echo resumed-sealed\r");
  await pty.waitFor(/^resumed-sealed\r$/m, 30_000);
  pty.write("\r~&");
  await pty.waitFor("disconnected from vault", 20_000);
  assertEquals((await pty.exited).code, 0);
  assertEquals(emu.stats.calls.Decrypt, 1);
  assertEquals((await runRemote(["remove", "--name", "vault"], { env })).code, 0);
});

Deno.test("a KMS key that does not exist, and an agent holding another key, end with clear errors", async () => {
  await using home = await tempHome();
  {
    await using emu = await startSsmEmulator({ handshake: "kms", kmsKeyId: "alias/missing" });
    const env = awsEnv(home, emu.endpoint);
    const run = await runRemote(
      ["invoke", "--target", TARGET, "--endpoint-url", emu.endpoint, "--region", emu.region, "--", "echo", "x"],
      { env },
    );
    assertEquals(run.code, 251, run.stderr);
    assertEquals(
      run.stderr,
      "remote: AWS KMS GenerateDataKey failed (NotFoundException): Key 'alias/missing' does not exist " +
        "(the session's KMS key alias/missing)\n" +
        "hint: the Session Manager preferences name this key (kmsKeyId); check that it exists, is enabled and is in " +
        "this region\n",
    );
    assertEquals(emu.stats.calls.TerminateSession, 1);
  }
  {
    await using emu = await startSsmEmulator({ handshake: "kms", kmsChallengeWrongKey: true });
    const env = awsEnv(home, emu.endpoint);
    const run = await runRemote(
      ["invoke", "--target", TARGET, "--endpoint-url", emu.endpoint, "--region", emu.region, "--", "echo", "x"],
      { env },
    );
    assertEquals(run.code, 244, run.stderr);
    assertEquals(
      run.stderr,
      "remote: the SSM agent's data does not decrypt with the session's KMS data key\n" +
        "hint: the agent and remote hold different keys; start the session again, and check the agent's KMS access\n",
    );
    assertEquals(emu.stats.calls.TerminateSession, 1);
  }
});
