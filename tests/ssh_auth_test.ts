/**
 * ssh authentication against a real sshd and a real ssh-agent: keys, encrypted keys, the agent,
 * password and keyboard-interactive (through PAM), and the errors a user sees when they fail.
 */
import { deepStrictEqual as assertEquals, match, ok as assert, rejects } from "node:assert/strict";
import { run } from "./harness/process.ts";
import { startSshAgent } from "./harness/ssh_agent.ts";
import { type IsolatedHome, isolatedHome, readText, ScriptedPrompter, sshContext } from "./harness/ssh_context.ts";
import { type SshdServer, startSshd, withLogOnFailure } from "./harness/sshd.ts";
import { connectSsh } from "../transports/ssh/connection.ts";
import { open } from "../transports/ssh/mod.ts";
import { type Prompter, RemoteError } from "../plugins/mod.ts";

async function whoami(
  server: SshdServer,
  home: IsolatedHome,
  parameters: Record<string, unknown>,
  prompt?: Prompter,
): Promise<string> {
  await Deno.writeTextFile(home.knownHosts, server.knownHostsLine() + "\n");
  const ctx = sshContext({ host: server.host, port: server.port, user: server.user }, home, parameters, { prompt });
  await using ch = await open(ctx, { kind: "exec", command: "echo ok" });
  await ch.stdin.close();
  const out = await readText(ch.stdout);
  assertEquals(await ch.exit, { kind: "exited", code: 0 });
  return out;
}

function isCode(code: number, pattern?: RegExp) {
  return (err: unknown) => {
    assert(err instanceof RemoteError, `not a RemoteError: ${err}`);
    assertEquals(err.exitCode, code, err.message);
    if (pattern) match(err.message, pattern);
    return true;
  };
}

async function encryptedKey(dir: string, passphrase: string): Promise<{ path: string; publicLine: string }> {
  const path = `${dir}/id_encrypted`;
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-f", path]);
  return { path, publicLine: (await Deno.readTextFile(`${path}.pub`)).trim() };
}

Deno.test("connectSsh() unlocks an encrypted key with the passphrase typed at the prompt", async () => {
  await using home = await isolatedHome();
  const key = await encryptedKey(home.dir, "correct horse");
  await using sshd = await startSshd({ authorizedKeys: [key.publicLine] });
  await withLogOnFailure(sshd, async () => {
    const prompt = new ScriptedPrompter(true, ["wrong", "correct horse"]);
    assertEquals(await whoami(sshd, home, { KeyFilePath: [key.path] }, prompt), "ok\n");
    assertEquals(prompt.questions.map((q) => q.question), [
      `Enter passphrase for key '${key.path}': `,
      `Enter passphrase for key '${key.path}': `,
    ]);
    assert(prompt.questions.every((q) => q.secret));
  });
});

Deno.test("connectSsh() gives up after three wrong passphrases with code 248", async () => {
  await using home = await isolatedHome();
  const key = await encryptedKey(home.dir, "correct horse");
  await using sshd = await startSshd({ authorizedKeys: [key.publicLine] });
  const prompt = new ScriptedPrompter(true, ["a", "b", "c"]);
  await rejects(whoami(sshd, home, { KeyFilePath: [key.path] }, prompt), isCode(248, /wrong passphrase for key/));
  assertEquals(prompt.questions.length, 3);
});

Deno.test("connectSsh() without a terminal skips an encrypted key and says so (code 245)", async () => {
  await using home = await isolatedHome();
  const key = await encryptedKey(home.dir, "pw");
  await using sshd = await startSshd({ authorizedKeys: [key.publicLine] });
  await rejects(
    whoami(sshd, home, { KeyFilePath: [key.path] }),
    isCode(245, /is encrypted and no terminal can ask its passphrase/),
  );
});

Deno.test("connectSsh() authenticates with a key held by a real ssh-agent", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  await using agent = await startSshAgent();
  await agent.add(sshd.userKey);
  await withLogOnFailure(sshd, async () => {
    assertEquals(await whoami(sshd, home, { Options: { IdentityAgent: agent.socket } }), "ok\n");
    // the agent was used: no key file was given and none is in the isolated ~/.ssh
    match(await sshd.log(), /Accepted publickey/);
  });
});

Deno.test("connectSsh() refuses an IdentityAgent that is not a socket with code 249", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  await rejects(
    whoami(sshd, home, { Options: { IdentityAgent: `${home.dir}/no-agent.sock` } }),
    isCode(249, /is not an agent socket/),
  );
});

Deno.test("connectSsh() lists the methods it tried when every key is rejected (code 245)", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  const stranger = `${home.dir}/id_stranger`;
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger]);
  await rejects(
    whoami(sshd, home, { KeyFilePath: [stranger] }),
    isCode(245, new RegExp(`permission denied for .*tried: publickey \\(${stranger}\\); server accepts: publickey`)),
  );
});

Deno.test("connectSsh() reports a key file it cannot read with code 247", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  await rejects(
    whoami(sshd, home, { KeyFilePath: [`${home.dir}/missing_key`] }),
    isCode(247, /cannot read key file .*missing_key: no such file/),
  );
  const garbage = `${home.dir}/garbage_key`;
  await Deno.writeTextFile(garbage, "not a key\n");
  await rejects(whoami(sshd, home, { KeyFilePath: [garbage] }), isCode(247, /cannot use key file/));
});

Deno.test("connectSsh() logs in with a password typed at the prompt (PAM)", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd({ password: "s3cret pw", config: "KbdInteractiveAuthentication no" });
  await withLogOnFailure(sshd, async () => {
    const prompt = new ScriptedPrompter(true, ["wrong", "s3cret pw"]);
    assertEquals(await whoami(sshd, home, {}, prompt), "ok\n");
    assertEquals(prompt.questions.map((q) => q.question), [
      `${sshd.user}@127.0.0.1:${sshd.port}'s password: `,
      `${sshd.user}@127.0.0.1:${sshd.port}'s password: `,
    ]);
    assert(prompt.questions.every((q) => q.secret));
  });
});

Deno.test("connectSsh() answers keyboard-interactive prompts (PAM)", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd({ password: "kbd pw", config: "PasswordAuthentication no" });
  await withLogOnFailure(sshd, async () => {
    const prompt = new ScriptedPrompter(true, ["kbd pw"]);
    assertEquals(await whoami(sshd, home, {}, prompt), "ok\n");
    assertEquals(prompt.questions.length, 1);
    match(prompt.questions[0].question, /Password/i);
    assert(prompt.questions[0].secret);
    match(await sshd.log(), /Accepted keyboard-interactive/);
  });
});

Deno.test("connectSsh() without a terminal refuses password logins and says why (code 245)", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd({ password: "pw" });
  await rejects(
    whoami(sshd, home, {}),
    isCode(245, /tried: nothing; server accepts: .*password/),
  );
});

Deno.test("connectSsh() run() collects output and the exit code", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  await Deno.writeTextFile(home.knownHosts, sshd.knownHostsLine() + "\n");
  const ctx = sshContext({ host: sshd.host, port: sshd.port, user: sshd.user }, home, { KeyFilePath: [sshd.userKey] });
  await using conn = await connectSsh(ctx);
  const r = await conn.run("cat; echo e >&2; exit 4", { stdin: new TextEncoder().encode("in\n") });
  assertEquals(new TextDecoder().decode(r.stdout), "in\n");
  assertEquals(new TextDecoder().decode(r.stderr), "e\n");
  assertEquals(r.code, 4);
  // the connection stays usable for more channels
  assertEquals(new TextDecoder().decode((await conn.run("echo again")).stdout), "again\n");
});
