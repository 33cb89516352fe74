/**
 * `-v`, `-vv`, `-vvv` (and LogLevel DEBUG…) through the CLI against the harness's OpenSSH sshd: the lines ssh users
 * read when something fails, in ssh's words, on stderr only, never a secret.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { run } from "./harness/process.ts";
import { startSshAgent } from "./harness/ssh_agent.ts";
import { type SshdServer, startSshd } from "./harness/sshd.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, type TempHome, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

async function fingerprintOf(publicKeyFile: string): Promise<string> {
  return (await run("ssh-keygen", ["-l", "-E", "sha256", "-f", publicKeyFile])).split(" ")[1];
}

/** ~/.ssh/config with a Host block naming the sshd, and known_hosts holding its keys. */
async function sshFiles(sshd: SshdServer, home: TempHome, extra = ""): Promise<{ config: string; known: string }> {
  await Deno.mkdir(`${home.dir}/.ssh`, { recursive: true, mode: 0o700 });
  const config = `${home.dir}/.ssh/config`;
  const known = `${home.dir}/.ssh/known_hosts`;
  await Deno.writeTextFile(
    config,
    [
      "Host vtest",
      "  HostName 127.0.0.1",
      `  Port ${sshd.port}`,
      `  User ${sshd.user}`,
      `  IdentityFile ${sshd.userKey}`,
      "  IdentitiesOnly yes",
      `  UserKnownHostsFile ${known}`,
      "  GlobalKnownHostsFile none",
      extra,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  await Deno.writeTextFile(known, sshd.knownHostsLine() + "\n");
  return { config, known };
}

/** `remote enter vtest <flags>` with a piped script; what it printed. */
function enterPiped(home: TempHome, flags: string[]) {
  return runRemote(["enter", "vtest", ...flags], { env: home.env, stdin: "echo out-$((40+2))\nexit 3\n" });
}

Deno.test("remote enter -v prints ssh's debug1 lines: config, address, banner, kex, host key, identity, methods", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const { config, known } = await sshFiles(sshd, home, "Match originalhost vtest\n  ServerAliveCountMax 4");
  const hostFp = await fingerprintOf(`${sshd.dir}/host_ed25519.pub`);
  const userFp = await fingerprintOf(`${sshd.userKey}.pub`);
  const r = await enterPiped(home, ["-v"]);
  assertEquals(r.code, 3, r.stderr);
  assertEquals(r.stdout, "out-42\n");
  const port = sshd.port;
  for (
    const line of [
      `debug1: Reading configuration data ${config}`,
      `debug1: ${config} line 1: Applying options for vtest`,
      `debug1: ${config} line 9: Applying options for Match originalhost vtest`,
      `debug1: Connecting to 127.0.0.1 [127.0.0.1] port ${port}.`,
      "debug1: Connection established.",
      `debug1: identity file ${sshd.userKey} type 3`,
      `debug1: Authenticating to 127.0.0.1:${port} as '${sshd.user}'`,
      "debug1: kex: algorithm: curve25519-sha256",
      "debug1: kex: host key algorithm: ssh-ed25519",
      "debug1: kex: client->server cipher: chacha20-poly1305@openssh.com MAC: <implicit> compression: none",
      "debug1: kex: server->client cipher: chacha20-poly1305@openssh.com MAC: <implicit> compression: none",
      `debug1: Server host key: ssh-ed25519 ${hostFp}`,
      `debug1: Host '[127.0.0.1]:${port}' is known and matches the ED25519 host key.`,
      `debug1: Found key in ${known}:1`,
      "debug1: Authentications that can continue: publickey",
      "debug1: Next authentication method: publickey",
      `debug1: Offering public key: ${sshd.userKey} ED25519 ${userFp} explicit`,
      `debug1: Server accepts key: ${sshd.userKey} ED25519 ${userFp} explicit`,
      `Authenticated to 127.0.0.1 ([127.0.0.1]:${port}) using "publickey".`,
    ]
  ) assert(r.stderr.split("\n").includes(line), `missing: ${line}\n--- stderr:\n${r.stderr}`);
  match(r.stderr, /^debug1: Remote protocol version 2\.0, remote software version OpenSSH_\S+/m);
  assert(!/^debug[23]: /m.test(r.stderr), "-v showed debug2/debug3 lines");
  // every line is a debug line or ssh's VERBOSE "Authenticated to": nothing else leaks into stderr
  for (const line of r.stderr.trimEnd().split("\n")) match(line, /^(debug1: |Authenticated to )/);
});

Deno.test("remote enter -vv and -vvv add debug2 and packet-level debug3 lines; without -v there are none", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await sshFiles(sshd, home);
  const quiet = await enterPiped(home, []);
  assertEquals([quiet.code, quiet.stdout, quiet.stderr], [3, "out-42\n", ""]);
  const vv = await enterPiped(home, ["-vv"]);
  assertEquals(vv.code, 3, vv.stderr);
  match(vv.stderr, /^debug2: peer server KEXINIT proposal: KEX method: .*curve25519-sha256/m);
  match(vv.stderr, new RegExp(`^debug2: resolving "127\\.0\\.0\\.1" port ${sshd.port}$`, "m"));
  assert(!/^debug3: /m.test(vv.stderr), "-vv showed debug3 lines");
  match(vv.stderr, /^debug2: reuse: not used: an interactive session has a connection of its own$/m);
  const vvv = await enterPiped(home, ["-v", "-vv"]);
  assertEquals(vvv.code, 3, vvv.stderr);
  match(vvv.stderr, /^debug3: Outbound: Sending CHANNEL_DATA/m);
  match(vvv.stderr, /^debug3: Inbound: CHANNEL_DATA/m);
  assertEquals(vvv.stdout, "out-42\n");
});

Deno.test("-o LogLevel=DEBUG and ssh_config's LogLevel DEBUG2 mean what -v and -vv mean", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await sshFiles(sshd, home);
  const o = await enterPiped(home, ["-o", "LogLevel=DEBUG"]);
  assertEquals(o.code, 3, o.stderr);
  match(o.stderr, /^debug1: kex: algorithm: /m);
  assert(!/^debug2: /m.test(o.stderr));
  await sshFiles(sshd, home, "  LogLevel DEBUG2");
  const c = await enterPiped(home, []);
  assertEquals(c.code, 3, c.stderr);
  match(c.stderr, /^debug1: kex: algorithm: /m);
  match(c.stderr, /^debug2: local client KEXINIT proposal: /m);
});

Deno.test("-v on an unknown host key names the key and why it is not trusted", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const { known } = await sshFiles(sshd, home);
  await Deno.writeTextFile(known, "");
  const hostFp = await fingerprintOf(`${sshd.dir}/host_ed25519.pub`);
  const r = await enterPiped(home, ["-v"]);
  assertEquals(r.code, 246, r.stderr);
  const lines = r.stderr.split("\n");
  assert(lines.includes(`debug1: Server host key: ssh-ed25519 ${hostFp}`), r.stderr);
  assert(lines.includes(`debug1: Host '[127.0.0.1]:${sshd.port}' is not in known_hosts (${known})`), r.stderr);
  match(r.stderr, /^remote: host key of \[127\.0\.0\.1\]:\d+ is not known/m);
});

Deno.test("-v on a refused key and a wrong password shows the offers and answers, never the secrets", async () => {
  const password = "pw-Secret-4711";
  const passphrase = "key-Phrase-0815";
  const wrong = "wrong-Guess-2024";
  await using sshd = await startSshd({ password, config: "KbdInteractiveAuthentication no" });
  await using home = await tempHome();
  const { config } = await sshFiles(sshd, home);
  // only a key the server does not know, protected by a passphrase
  const text = await Deno.readTextFile(config);
  await Deno.writeTextFile(config, text.split("\n").filter((l) => !l.includes("IdentityFile ")).join("\n"));
  const key = `${home.dir}/.ssh/id_other`;
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-f", key]);
  const keyFp = await fingerprintOf(`${key}.pub`);
  await using pty = await spawnInPty(
    Deno.execPath(),
    ["run", "-A", "--quiet", MAIN, "enter", "vtest", "-v", "-i", key],
    { env: { ...home.env, SSH_AUTH_SOCK: "" } },
  );
  await pty.waitFor(`Enter passphrase for key '${key}': `, 20_000);
  pty.write(`${passphrase}\r`);
  for (let i = 0; i < 3; i++) {
    await pty.waitFor(/password: $/, 20_000);
    pty.write(`${wrong}\r`);
  }
  assertEquals((await pty.exited).code, 245);
  const out = pty.output().replace(/\r/g, "");
  for (
    const line of [
      `debug1: Offering public key: ${key} ED25519 ${keyFp} explicit`,
      `debug1: Server refused key: ${key} ED25519 ${keyFp} explicit`,
      "debug1: Authentications that can continue: publickey,password",
      "debug1: Next authentication method: password",
      "debug1: password authentication refused by the server",
    ]
  ) assert(out.split("\n").includes(line), `missing: ${line}\n--- output:\n${out}`);
  for (const secret of [password, passphrase, wrong]) {
    assert(!out.includes(secret), `the output holds the secret ${secret}`);
  }
  // nor the private key's bytes
  const privateBody = (await Deno.readTextFile(key)).split("\n")[1];
  assert(!out.includes(privateBody));
});

Deno.test("remote invoke -v says whether the reuse master's connection was used; copy -v shows the connection", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await sshFiles(sshd, home);
  try {
    const first = await runRemote(["invoke", "vtest", "-v", "--", "echo", "one"], { env: home.env });
    assertEquals(first.code, 0, first.stderr);
    assertEquals(first.stdout, "one\n");
    match(first.stderr, /^debug1: reuse: no master listens at .*: starting one$/m);
    match(first.stderr, /^debug1: reuse master: no connection held for this route: connecting$/m);
    match(first.stderr, /^debug1: kex: algorithm: /m);
    match(first.stderr, /^debug1: reuse: the command runs on the master's connection$/m);
    const second = await runRemote(["invoke", "vtest", "-v", "--", "echo", "two"], { env: home.env });
    assertEquals(second.code, 0, second.stderr);
    match(second.stderr, /^debug1: reuse: connected to the running master at /m);
    match(second.stderr, /^debug1: reuse master: using the connection it holds for this route/m);
    assert(!second.stderr.includes("kex: algorithm"), "the second run connected again");
    const direct = await runRemote(["invoke", "vtest", "-v", "--no-reuse", "--", "echo", "three"], { env: home.env });
    assertEquals(direct.code, 0, direct.stderr);
    match(direct.stderr, /^debug1: reuse: not used: connection reuse is off here/m);
    match(direct.stderr, /^debug1: kex: algorithm: /m);
  } finally {
    stopMasters(home.dir);
  }
  const file = `${home.dir}/payload`;
  await Deno.writeTextFile(file, "x");
  const copy = await runRemote(["copy", "-v", file, `vtest:${home.dir}/copied`], { env: home.env });
  assertEquals(copy.code, 0, copy.stderr);
  match(
    copy.stderr,
    new RegExp(`^debug1: Connecting to 127\\.0\\.0\\.1 \\[127\\.0\\.0\\.1\\] port ${sshd.port}\\.$`, "m"),
  );
  match(copy.stderr, new RegExp(`^Authenticated to 127\\.0\\.0\\.1 \\(\\[127\\.0\\.0\\.1\\]:${sshd.port}\\)`, "m"));
  assertEquals(await Deno.readTextFile(`${home.dir}/copied`), "x");
  const plain = await runRemote(["copy", file, `vtest:${home.dir}/copied2`], { env: home.env });
  assertEquals([plain.code, plain.stderr], [0, ""]);
});

/** Stops the reuse masters started under `dir` (their argv names their socket, under `dir`). */
function stopMasters(dir: string): void {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (cmdline.includes("__transport-background") && cmdline.includes(dir)) Deno.kill(Number(e.name), "SIGTERM");
    } catch { /* the process ended meanwhile */ }
  }
}

Deno.test("-v belongs to SSH: other transports refuse it by name", async () => {
  await using home = await tempHome();
  const docker = await runRemote(["invoke", "docker://web1", "-v", "--", "true"], { env: home.env });
  assertEquals(docker.code, 230, docker.stderr);
  match(docker.stderr, /^remote: --verbose is an option of ssh, not of container$/m);
  const winrm = await runRemote(["enter", "--computer-name", "win01", "-v"], { env: home.env });
  assertEquals(winrm.code, 230, winrm.stderr);
  match(winrm.stderr, /^remote: --computer-name \[ComputerName\] cannot be used with -v \(--verbose\) \[SSHHost\]$/m);
});

Deno.test("remote forward -v shows the connection; -J shows each hop; -4 and -E take effect", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await sshFiles(sshd, home);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN, "forward", "vtest", "-v", "-L", `0:127.0.0.1:${sshd.port}`],
    env: { ...home.env, SSH_AUTH_SOCK: "" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  let stderr = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stderr) {
    stderr += decoder.decode(chunk, { stream: true });
    if (/forwarding localhost:\d+ to/.test(stderr)) break;
  }
  child.kill("SIGINT");
  await child.status;
  clearTimeout(killer);
  match(stderr, new RegExp(`^debug1: Connecting to 127\\.0\\.0\\.1 \\[127\\.0\\.0\\.1\\] port ${sshd.port}\\.$`, "m"));
  match(stderr, /^debug1: kex: algorithm: /m);
  match(stderr, /^Authenticated to 127\.0\.0\.1 /m);

  // the harness sshd is its own jump host: the hop is connected directly, the target through it
  const hop = `${sshd.user}@127.0.0.1:${sshd.port}`;
  const jumped = await enterPiped(home, ["-v", "-J", hop, "-o", `IdentityFile=${sshd.userKey}`]);
  assertEquals(jumped.code, 3, jumped.stderr);
  const lines = jumped.stderr.split("\n");
  assert(lines.includes(`debug1: ProxyJump: ${hop} -> ${hop}`), jumped.stderr);
  assert(lines.includes(`debug1: Connecting to 127.0.0.1:${sshd.port} through the jump host ${hop} (direct-tcpip)`));
  assert(lines.includes(`Authenticated to 127.0.0.1 (via proxy) using "publickey".`), jumped.stderr);

  const log = `${home.dir}/debug.log`;
  const four = await enterPiped(home, ["-vv", "-4", "-E", log]);
  assertEquals([four.code, four.stderr], [3, ""]);
  const written = await Deno.readTextFile(log);
  match(written, new RegExp(`^debug2: resolving "127\\.0\\.0\\.1" port ${sshd.port} \\(IPv4 only`, "m"));
  match(written, /^debug1: kex: algorithm: /m);
});

Deno.test("-v names the agent's keys by fingerprint: the one refused and the one accepted", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await using agent = await startSshAgent();
  const { config } = await sshFiles(sshd, home);
  const text = await Deno.readTextFile(config);
  await Deno.writeTextFile(config, text.split("\n").filter((l) => !/Identit(yFile|iesOnly) /.test(l)).join("\n"));
  const other = `${home.dir}/id_other`;
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "other-key", "-f", other]);
  await agent.add(other);
  await agent.add(sshd.userKey);
  const otherFp = await fingerprintOf(`${other}.pub`);
  const userFp = await fingerprintOf(`${sshd.userKey}.pub`);
  const r = await runRemote(["enter", "vtest", "-vv"], {
    env: { ...home.env, SSH_AUTH_SOCK: agent.socket },
    stdin: "exit 3\n",
  });
  assertEquals(r.code, 3, r.stderr);
  const lines = r.stderr.split("\n");
  for (
    const line of [
      `debug2: agent socket ${agent.socket}`,
      `debug1: Will attempt key: other-key ED25519 ${otherFp} agent`,
      `debug1: Will attempt key: remote-test ED25519 ${userFp} agent`,
      `debug1: Offering public key: other-key ED25519 ${otherFp} agent`,
      `debug1: Server refused key: other-key ED25519 ${otherFp} agent`,
      `debug1: Offering public key: remote-test ED25519 ${userFp} agent`,
      `debug1: Server accepts key: remote-test ED25519 ${userFp} agent`,
    ]
  ) assert(lines.includes(line), `missing: ${line}\n--- stderr:\n${r.stderr}`);
});

Deno.test("remote enter -vvv on a terminal ends its packet lines with CR LF while the terminal is raw", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await sshFiles(sshd, home);
  await using pty = await spawnInPty(
    Deno.execPath(),
    ["run", "-A", "--quiet", MAIN, "enter", "vtest", "-vvv"],
    { env: { ...home.env, SSH_AUTH_SOCK: "", PS1: "$ " } },
  );
  await pty.waitFor("Authenticated to 127.0.0.1", 20_000);
  pty.write("echo MARK-$((20+22))\r");
  await pty.waitFor("MARK-42", 20_000);
  // the packet that carried MARK-42 may have carried the prompt too: typing more brings a packet after it
  pty.write("echo AGAIN\r");
  await pty.waitFor(/debug3: Inbound: CHANNEL_DATA[^\n]*\n/, 20_000);
  pty.write("exit 4\r");
  assertEquals((await pty.exited).code, 4);
  const session = pty.output().slice(pty.output().indexOf("MARK-42"));
  match(session, /debug3: Inbound: CHANNEL_DATA \(r:\d+, \d+\)\r\n/);
  assert(!/debug3: [^\r\n]*\n/.test(session), "a debug line ends in a bare LF on the raw terminal");
});

Deno.test("remote enter -v says what ssh -v says, word for word, for the steps both take", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const { config } = await sshFiles(sshd, home);
  const ours = await runRemote(["enter", "vtest", "-v", "-F", config], { env: home.env, stdin: "exit 0\n" });
  assertEquals(ours.code, 0, ours.stderr);
  const ssh = await new Deno.Command("ssh", {
    args: ["-v", "-F", config, "vtest", "true"],
    env: { ...home.env, SSH_AUTH_SOCK: "" },
    stdin: "null",
  }).output();
  assertEquals(ssh.code, 0);
  const theirs = new TextDecoder().decode(ssh.stderr).replace(/\r/g, "").split("\n");
  const shared = [
    /^debug1: Reading configuration data /,
    /^debug1: .* line \d+: Applying options for /,
    /^debug1: Connecting to /,
    /^debug1: Connection established\.$/,
    new RegExp(`^debug1: identity file ${sshd.userKey} type `),
    /^debug1: Remote protocol version /,
    /^debug1: Authenticating to /,
    /^debug1: SSH2_MSG_KEXINIT (sent|received)$/,
    /^debug1: kex: (host key algorithm|server->client cipher|client->server cipher): /,
    /^debug1: Server host key: /,
    /^debug1: Host '.*' is known and matches /,
    /^debug1: Found key in /,
    /^debug1: Authentications that can continue: /,
    /^debug1: Next authentication method: /,
    /^debug1: (Offering public key|Server accepts key): /,
    /^Authenticated to /,
  ];
  const compared = theirs.filter((line) => shared.some((re) => re.test(line)));
  assert(compared.length >= 18, `too few of ssh's lines matched:\n${theirs.join("\n")}`);
  const mine = ours.stderr.split("\n");
  for (const line of compared) {
    assert(mine.includes(line), `ssh says, remote does not: ${line}\n--- remote:\n${ours.stderr}`);
  }
});
