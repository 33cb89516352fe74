/**
 * ssh features a daily `ssh` user relies on, through the real `remote` CLI against a real sshd and a
 * real ssh-agent: agent forwarding (-A), SendEnv (--send-env and ssh_config), IdentitiesOnly,
 * known_hosts @cert-authority lines, and Ctrl-C while connecting.
 */
import { deepStrictEqual as assertEquals, doesNotMatch, match, ok as assert } from "node:assert/strict";
import * as net from "node:net";
import { run } from "./harness/process.ts";
import { startSshAgent } from "./harness/ssh_agent.ts";
import { type SshdServer, startSshd, withLogOnFailure } from "./harness/sshd.ts";
import { spawnInPty } from "./pty.ts";
import { type RemoteRun, runRemote, type TempHome, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** An isolated HOME with an empty ssh_config (so /etc/ssh/ssh_config's SendEnv stays out) and known_hosts. */
async function sshHome(sshd?: SshdServer): Promise<TempHome & { config: string; knownHosts: string }> {
  const home = await tempHome();
  await Deno.mkdir(`${home.dir}/.ssh`, { mode: 0o700 });
  const config = `${home.dir}/.ssh/config`;
  const knownHosts = `${home.dir}/.ssh/known_hosts`;
  await Deno.writeTextFile(config, "");
  if (sshd) await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
  return Object.assign(home, { config, knownHosts });
}

/** `remote invoke` options reaching `sshd` with only the isolated files (the caller adds -i or an agent). */
function target(sshd: SshdServer, home: { config: string; knownHosts: string }): string[] {
  return [
    "-F",
    home.config,
    "-o",
    `UserKnownHostsFile=${home.knownHosts}`,
    "-o",
    "GlobalKnownHostsFile=none",
    `${sshd.user}@127.0.0.1:${sshd.port}`,
  ];
}

function invoke(args: string[], env: Record<string, string>): Promise<RemoteRun> {
  return runRemote(["invoke", ...args], { env, timeoutMs: 60_000 });
}

async function fingerprintOf(publicKeyFile: string): Promise<string> {
  return (await run("ssh-keygen", ["-l", "-E", "sha256", "-f", publicKeyFile])).split(" ")[1];
}

Deno.test("remote invoke -A forwards the agent: ssh-add -l on the far side lists the local agent's key", async () => {
  await using sshd = await startSshd();
  await using home = await sshHome(sshd);
  await using agent = await startSshAgent();
  await agent.add(sshd.userKey);
  const fp = await fingerprintOf(`${sshd.userKey}.pub`);
  const env = { ...home.env, SSH_AUTH_SOCK: agent.socket };
  await withLogOnFailure(sshd, async () => {
    const forwarded = await invoke(["-A", ...target(sshd, home), "--", "ssh-add -l"], env);
    assertEquals(forwarded.code, 0, forwarded.stderr);
    assert(forwarded.stdout.includes(fp), `far side did not list ${fp}: ${forwarded.stdout}`);
    assertEquals(forwarded.stderr, "");

    // off by default: the far side has no agent, and ssh-add's own status (2) comes back
    const plain = await invoke([...target(sshd, home), "--", "ssh-add -l"], env);
    assertEquals(plain.code, 2, plain.stderr);
    match(plain.stderr, /could not open a connection to your authentication agent/i);
    assertEquals(plain.stdout, "");
  });
});

Deno.test("remote invoke -A without a local agent refuses with code 249", async () => {
  await using sshd = await startSshd();
  await using home = await sshHome(sshd);
  const r = await invoke(["-A", "-i", sshd.userKey, ...target(sshd, home), "--", "true"], home.env);
  assertEquals(r.code, 249, r.stderr);
  match(r.stderr, /agent/);
  match(r.stderr, /hint: .*leave out -A/);
});

Deno.test("remote invoke --send-env passes LC_TEST only when asked, and the server's AcceptEnv decides", async () => {
  await using sshd = await startSshd({ config: "AcceptEnv LC_*" });
  await using home = await sshHome(sshd);
  const env = { ...home.env, LC_TEST: "from-here", LC_OTHER: "other", NOT_ACCEPTED: "nope" };
  const show = 'echo "test=${LC_TEST-unset} other=${LC_OTHER-unset} na=${NOT_ACCEPTED-unset}"';
  await withLogOnFailure(sshd, async () => {
    const asked = await invoke(
      ["--send-env", "LC_TEST", "--send-env", "NOT_ACCEPTED", "-i", sshd.userKey, ...target(sshd, home), "--", show],
      env,
    );
    assertEquals(asked.code, 0, asked.stderr);
    assertEquals(asked.stdout, "test=from-here other=unset na=unset\n");

    const silent = await invoke(["-i", sshd.userKey, ...target(sshd, home), "--", show], env);
    assertEquals(silent.code, 0, silent.stderr);
    assertEquals(silent.stdout, "test=unset other=unset na=unset\n");

    // a pattern, as ssh -o SendEnv takes
    const pattern = await invoke(["-o", "SendEnv=LC_*", "-i", sshd.userKey, ...target(sshd, home), "--", show], env);
    assertEquals(pattern.stdout, "test=from-here other=other na=unset\n");
  });
});

Deno.test("remote invoke sends what ssh_config SendEnv names, with this run's values", async () => {
  await using sshd = await startSshd({ config: "AcceptEnv LC_*" });
  await using home = await sshHome(sshd);
  await Deno.writeTextFile(home.config, "Host 127.0.0.1\n  SendEnv LC_TEST\n");
  const show = 'echo "test=${LC_TEST-unset}"';
  await withLogOnFailure(sshd, async () => {
    const first = await invoke(["-i", sshd.userKey, ...target(sshd, home), "--", show], {
      ...home.env,
      LC_TEST: "one",
    });
    assertEquals(first.code, 0, first.stderr);
    assertEquals(first.stdout, "test=one\n");
    // a second run (through the same connection-reuse master) sends its own value, not the first run's
    const second = await invoke(["-i", sshd.userKey, ...target(sshd, home), "--", show], {
      ...home.env,
      LC_TEST: "two",
    });
    assertEquals(second.stdout, "test=two\n");
    const unset = await invoke(["-i", sshd.userKey, ...target(sshd, home), "--", show], home.env);
    assertEquals(unset.stdout, "test=unset\n");
  });
});

Deno.test("remote invoke with IdentitiesOnly offers the identity file, never the agent's other keys", async () => {
  await using sshd = await startSshd();
  await using home = await sshHome(sshd);
  await using agent = await startSshAgent();
  const stranger = `${home.dir}/id_stranger`;
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "stranger", "-f", stranger]);
  await agent.add(stranger);
  const strangerFp = await fingerprintOf(`${stranger}.pub`);
  const rightFp = await fingerprintOf(`${sshd.userKey}.pub`);
  const env = { ...home.env, SSH_AUTH_SOCK: agent.socket };
  await withLogOnFailure(sshd, async () => {
    // control: without IdentitiesOnly the agent's key is offered first (so the log check below can fail)
    const loose = await invoke(["-i", sshd.userKey, "--no-reuse", ...target(sshd, home), "--", "echo loose"], env);
    assertEquals(loose.code, 0, loose.stderr);
    assert((await sshd.log()).includes(strangerFp), "the agent's key was not offered without IdentitiesOnly");

    await Deno.writeTextFile(`${sshd.dir}/sshd.log`, "");
    const only = await invoke(
      ["-o", "IdentitiesOnly=yes", "-i", sshd.userKey, "--no-reuse", ...target(sshd, home), "--", "echo only"],
      env,
    );
    assertEquals(only.code, 0, only.stderr);
    assertEquals(only.stdout, "only\n");
    const log = await sshd.log();
    match(log, new RegExp(`Accepted publickey .* ED25519 ${rightFp.replaceAll("+", "\\+")}`));
    assert(!log.includes(strangerFp), "IdentitiesOnly still offered the agent's other key");
  });
});

Deno.test("remote invoke explains that a @cert-authority line cannot vouch for a host (code 246)", async () => {
  await using sshd = await startSshd();
  await using home = await sshHome();
  const ca = `${home.dir}/host_ca`;
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", ca]);
  const caKey = (await Deno.readTextFile(`${ca}.pub`)).split(" ").slice(0, 2).join(" ");
  await Deno.writeTextFile(home.knownHosts, `@cert-authority [127.0.0.1]:* ${caKey}\n`);
  const r = await invoke(["-i", sshd.userKey, ...target(sshd, home), "--", "true"], home.env);
  assertEquals(r.code, 246, r.stderr);
  match(r.stderr, /host certificates \(@cert-authority\) are not supported yet/);
  match(r.stderr, new RegExp(`${home.knownHosts}:1`));
  match(r.stderr, new RegExp(`hint: add the host key itself: ssh-keyscan -p ${sshd.port} -t ed25519 127\\.0\\.0\\.1`));
  assertEquals(r.stderr.trim().split("\n").length, 2, r.stderr);
  // nothing was recorded on the user's behalf
  assertEquals(await Deno.readTextFile(home.knownHosts), `@cert-authority [127.0.0.1]:* ${caKey}\n`);
});

Deno.test("remote enter on a terminal warns about an unusable @cert-authority line before asking", async () => {
  await using sshd = await startSshd();
  await using home = await sshHome();
  const ca = `${home.dir}/host_ca`;
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", ca]);
  const caKey = (await Deno.readTextFile(`${ca}.pub`)).split(" ").slice(0, 2).join(" ");
  await Deno.writeTextFile(home.knownHosts, `@cert-authority * ${caKey}\n`);
  await using pty = await spawnInPty(Deno.execPath(), [
    "run",
    "-A",
    "--quiet",
    MAIN,
    "enter",
    "-i",
    sshd.userKey,
    ...target(sshd, home),
  ], { env: { ...home.env, SSH_AUTH_SOCK: "" } });
  await pty.waitFor(/host certificates \(@cert-authority\) are not supported yet/, 20_000);
  await pty.waitFor(/\(yes\/no\/\[fingerprint\]\)\? ?$/);
  pty.write("no\r");
  assertEquals((await pty.exited).code, 246, pty.output());
});

/** A loopback server that accepts TCP and never speaks; `connected` settles at the first connection. */
async function silentServer() {
  const sockets = new Set<net.Socket>();
  let seen: () => void = () => {};
  const connected = new Promise<void>((r) => seen = r);
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
    seen();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connected,
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

Deno.test("Ctrl-C while remote invoke waits for a silent server ends it with 130", async () => {
  await using silent = await silentServer();
  await using home = await sshHome();
  await using pty = await spawnInPty(Deno.execPath(), [
    "run",
    "-A",
    "--quiet",
    MAIN,
    "invoke",
    "-F",
    home.config,
    `127.0.0.1:${silent.port}`,
    "--",
    "true",
  ], { env: { ...home.env, SSH_AUTH_SOCK: "" } });
  await silent.connected;
  pty.write("\x03");
  // bounded: the connect timeout (30 s) is far beyond this, so a Ctrl-C that is ignored fails here
  const timer = setTimeout(() => pty.kill("SIGKILL"), 15_000);
  const exit = await pty.exited;
  clearTimeout(timer);
  assertEquals(exit.code, 130, pty.output());
  doesNotMatch(pty.output(), /timed out/);
});

Deno.test("SIGINT to remote invoke --no-reuse while it connects ends it with 130", async () => {
  await using silent = await silentServer();
  await using home = await sshHome();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      MAIN,
      "invoke",
      "--no-reuse",
      "-F",
      home.config,
      `127.0.0.1:${silent.port}`,
      "--",
      "true",
    ],
    env: { ...home.env, SSH_AUTH_SOCK: "" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await silent.connected;
  child.kill("SIGINT");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const out = await child.output();
  clearTimeout(timer);
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 130, stderr);
  match(stderr, /interrupted/);
  doesNotMatch(stderr, /timed out/);
});
