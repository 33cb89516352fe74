/**
 * `remote enter` over SSH as a person uses it: a real PTY on our side, a real sshd on the other, the
 * terminal bridge between. Also the pipe (stream) mode and the host-key question on a terminal.
 */
import { deepStrictEqual as assertEquals, match, ok } from "node:assert/strict";
import { startSshd } from "./harness/sshd.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, sshOptions, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

function sshArgs(sshd: { port: number; userKey: string; user: string }, knownHosts: string): string[] {
  return [...sshOptions(sshd, knownHosts), `${sshd.user}@127.0.0.1`];
}

Deno.test("remote enter gives a PTY shell: prompt, stty size, resize, exit 3", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const knownHosts = `${home.dir}/known_hosts`;
  await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
  await using pty = await spawnInPty(
    Deno.execPath(),
    ["run", "-A", "--quiet", MAIN, "enter", ...sshArgs(sshd, knownHosts)],
    { cols: 100, rows: 30, env: { ...home.env, SSH_AUTH_SOCK: "", PS1: "$ " } },
  );
  pty.write("echo READY-$((6*7))\r");
  await pty.waitFor("READY-42", 20_000);
  pty.write("stty size\r");
  await pty.waitFor(/^30 100\r?$/m);
  pty.resize(120, 40);
  await new Promise((r) => setTimeout(r, 300));
  pty.write("stty size\r");
  await pty.waitFor(/^40 120\r?$/m);
  pty.write("echo $TERM\r");
  await pty.waitFor(/^xterm-256color\r?$/m);
  pty.write("exit 3\r");
  assertEquals((await pty.exited).code, 3);
});

Deno.test("remote enter leaves the terminal modes as it found them, and ~. ends the session", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const knownHosts = `${home.dir}/known_hosts`;
  await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
  const command = [Deno.execPath(), "run", "-A", "--quiet", MAIN, "enter", ...sshArgs(sshd, knownHosts)]
    .map((a) => `'${a}'`).join(" ");
  await using pty = await spawnInPty("/bin/sh", ["-c", `stty -g; ${command}; echo "code=$?"; stty -g`], {
    env: { ...home.env, SSH_AUTH_SOCK: "" },
  });
  const before = (await pty.waitFor(/^[0-9a-f:]{20,}\r?$/m)).trim();
  pty.write("echo IN-$((1+1))\r");
  await pty.waitFor("IN-2", 20_000);
  pty.write("\r~.");
  await pty.waitFor(/code=\d+/);
  const after = (await pty.waitFor(/^[0-9a-f:]{20,}\r?$/m)).trim();
  assertEquals(after, before);
  match(pty.output(), /code=250/);
  await pty.exited;
});

Deno.test("remote enter without a terminal streams stdin and returns the shell's status", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const knownHosts = `${home.dir}/known_hosts`;
  await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
  const run = await runRemote(["enter", ...sshArgs(sshd, knownHosts)], {
    env: home.env,
    stdin: "echo piped-$((2+3))\necho to-err >&2\nexit 4\n",
  });
  assertEquals(run.code, 4, run.stderr);
  assertEquals(run.stdout, "piped-5\n");
  assertEquals(run.stderr, "to-err\n");
});

Deno.test("remote enter asks about an unknown host key on a terminal and remembers a yes", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const knownHosts = `${home.dir}/known_hosts`;
  await using pty = await spawnInPty(
    Deno.execPath(),
    ["run", "-A", "--quiet", MAIN, "enter", ...sshArgs(sshd, knownHosts)],
    { env: { ...home.env, SSH_AUTH_SOCK: "" } },
  );
  await pty.waitFor(/ED25519 key fingerprint is SHA256:/, 20_000);
  await pty.waitFor(/\(yes\/no\/\[fingerprint\]\)\? ?$/);
  pty.write("yes\r");
  pty.write("echo ACCEPTED-$((3*3))\r");
  await pty.waitFor("ACCEPTED-9", 20_000);
  pty.write("exit\r");
  assertEquals((await pty.exited).code, 0);
  // Debian's /etc/ssh/ssh_config says HashKnownHosts yes, so ask ssh-keygen, which reads both forms.
  const found = await new Deno.Command("ssh-keygen", { args: ["-F", `[127.0.0.1]:${sshd.port}`, "-f", knownHosts] })
    .output();
  assertEquals(found.code, 0);
  ok(new TextDecoder().decode(found.stdout).includes("ssh-ed25519 "));
  assertEquals((await Deno.stat(knownHosts)).mode! & 0o777, 0o600);
});

Deno.test("remote enter asks for a missing target on a terminal; the port in the answer wins over --port", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const knownHosts = `${home.dir}/known_hosts`;
  await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
  await using pty = await spawnInPty(
    Deno.execPath(),
    ["run", "-A", "--quiet", MAIN, "enter", "-p", "1", "-i", sshd.userKey, "-o", `UserKnownHostsFile=${knownHosts}`],
    { env: { ...home.env, SSH_AUTH_SOCK: "" } },
  );
  await pty.waitFor(/host-name \(.*\): $/, 20_000);
  pty.write(`${sshd.user}@127.0.0.1:${sshd.port}\r`);
  pty.write("echo ASKED-$((5*5))\r");
  await pty.waitFor("ASKED-25", 20_000);
  pty.write("exit 0\r");
  assertEquals((await pty.exited).code, 0);
});
