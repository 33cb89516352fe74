/**
 * ssh_config end to end through the real `remote` CLI: an alias in ~/.ssh/config (HostName, Port,
 * User, IdentityFile, ProxyJump to a second alias) reaches a real sshd through a real jump sshd, each
 * hop with its own key and each host key checked against known_hosts.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { run } from "./harness/process.ts";
import { type SshdServer, startSshd, withLogOnFailure } from "./harness/sshd.ts";
import { escapeRegExp, runRemote, tempHome } from "./run_remote.ts";

async function fingerprintOf(publicKeyFile: string): Promise<string> {
  return (await run("ssh-keygen", ["-l", "-E", "sha256", "-f", publicKeyFile])).split(" ")[1];
}

/** Prints both servers' logs when `fn` fails. */
function withLogsOnFailure(a: SshdServer, b: SshdServer, fn: () => Promise<void>): Promise<void> {
  return withLogOnFailure(a, () => withLogOnFailure(b, fn));
}

Deno.test("remote invoke reaches an ssh_config alias through its ProxyJump alias, checking both host keys", async () => {
  await using jump = await startSshd();
  await using target = await startSshd();
  await using home = await tempHome();
  await Deno.mkdir(`${home.dir}/.ssh`, { mode: 0o700 });
  const knownHosts = `${home.dir}/.ssh/known_hosts`;
  // ~/.ssh/config of the isolated HOME: found without -F, as ssh finds it
  await Deno.writeTextFile(
    `${home.dir}/.ssh/config`,
    [
      "Host target",
      "  HostName 127.0.0.1",
      `  Port ${target.port}`,
      `  User ${target.user}`,
      `  IdentityFile ${target.userKey}`,
      "  ProxyJump jumphost",
      "",
      "Host jumphost",
      "  HostName 127.0.0.1",
      `  Port ${jump.port}`,
      `  User ${jump.user}`,
      `  IdentityFile ${jump.userKey}`,
      "",
      "Host *",
      `  UserKnownHostsFile ${knownHosts}`,
      "  GlobalKnownHostsFile none",
      "  IdentitiesOnly yes",
      "",
    ].join("\n"),
  );
  const invoke = () =>
    runRemote(["invoke", "target", "--", 'echo "via-$((1+1))"; echo "$SSH_CONNECTION"'], {
      env: home.env,
      timeoutMs: 60_000,
    });

  await withLogsOnFailure(jump, target, async () => {
    // the jump host's key is unknown: refused before the target is reached, naming the jump host
    await Deno.writeTextFile(knownHosts, target.knownHostsLine() + "\n");
    const noJumpKey = await invoke();
    assertEquals(noJumpKey.code, 246, noJumpKey.stderr);
    match(noJumpKey.stderr, new RegExp(`host key of ${escapeRegExp(`[127.0.0.1]:${jump.port}`)} is not known`));
    assertEquals(noJumpKey.stdout, "");
    assert(!(await jump.log()).includes("direct-tcpip"), "the jump host forwarded before its key was trusted");

    // the target's key is checked too, under its own name, after the hop through the jump host
    await Deno.writeTextFile(knownHosts, jump.knownHostsLine() + "\n");
    const noTargetKey = await invoke();
    assertEquals(noTargetKey.code, 246, noTargetKey.stderr);
    match(noTargetKey.stderr, new RegExp(`host key of ${escapeRegExp(`[127.0.0.1]:${target.port}`)} is not known`));

    await Deno.writeTextFile(knownHosts, target.knownHostsLine() + "\n", { append: true });
    const through = await invoke();
    assertEquals(through.code, 0, through.stderr);
    const [greeting, sshConnection] = through.stdout.trimEnd().split("\n");
    assertEquals(greeting, "via-2");
    // SSH_CONNECTION: client address, client port, server address, server port (the target's)
    assertEquals(sshConnection.split(" ")[3], String(target.port));
    assertEquals(through.stderr, "");

    // each hop authenticated with the IdentityFile of its own Host block
    const jumpLog = await jump.log();
    match(jumpLog, new RegExp(`Accepted publickey .* ${escapeRegExp(await fingerprintOf(`${jump.userKey}.pub`))}`));
    match(
      jumpLog,
      new RegExp(`server_request_direct_tcpip: .*target 127\\.0\\.0\\.1 port ${target.port}\\b`),
    );
    match(
      await target.log(),
      new RegExp(`Accepted publickey .* ${escapeRegExp(await fingerprintOf(`${target.userKey}.pub`))}`),
    );
  });
});

Deno.test("remote invoke -F file reads only that file, and -J none drops the alias's ProxyJump", async () => {
  await using target = await startSshd();
  await using home = await tempHome();
  const config = `${home.dir}/alt_config`;
  const knownHosts = `${home.dir}/kh`;
  await Deno.writeTextFile(knownHosts, target.knownHostsLine() + "\n");
  await Deno.writeTextFile(
    config,
    [
      "Host alt-*",
      "  HostName 127.0.0.1",
      `  Port ${target.port}`,
      `  IdentityFile ${target.userKey}`,
      `  UserKnownHostsFile ${knownHosts}`,
      "  GlobalKnownHostsFile none",
      // a jump host that does not exist: the run below only works when -J none wins over it
      "  ProxyJump nobody@127.0.0.1:1",
      "",
    ].join("\n"),
  );
  await withLogOnFailure(target, async () => {
    const viaJump = await runRemote(["invoke", "-F", config, "alt-db", "--", "echo direct"], { env: home.env });
    assertEquals(viaJump.code, 241, viaJump.stderr);
    match(viaJump.stderr, /connection refused by 127\.0\.0\.1:1\b/);

    const direct = await runRemote(["invoke", "-F", config, "-J", "none", "alt-db", "--", "echo direct"], {
      env: home.env,
    });
    assertEquals(direct.code, 0, direct.stderr);
    assertEquals(direct.stdout, "direct\n");
  });
});
