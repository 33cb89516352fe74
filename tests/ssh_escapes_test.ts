/**
 * What a plain (not `remote new`) SSH session's escapes and its host-key question show on a real terminal,
 * against the harness sshd; the question is compared with the real ssh client's on the same files.
 */
import { deepStrictEqual as assertEquals, match, ok } from "node:assert/strict";
import { startSshd } from "./harness/sshd.ts";
import { withTmuxHost } from "./harness/tmux_host.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, sshOptions, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const WAIT = 20_000;

Deno.test("remote enter over SSH: ~? lists only the escapes that work, ~& says how to keep a session, it goes on", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const knownHosts = `${home.dir}/known_hosts`;
  await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
  await using pty = await spawnInPty(
    Deno.execPath(),
    ["run", "-A", "--quiet", MAIN, "enter", ...sshOptions(sshd, knownHosts), `${sshd.user}@127.0.0.1`],
    { env: { ...home.env, SSH_AUTH_SOCK: "", PS1: "$ " } },
  );
  pty.write("echo READY-$((6*7))\r");
  await pty.waitFor("READY-42", WAIT);
  pty.write("\r~?");
  const help = await pty.waitFor(/supported escape sequences:[^]*right after a newline\)\r\n/, WAIT);
  for (const key of [".", "#", "?", "~"]) ok(help.includes(` ~${key}   `), `~${key} missing:\n${help}`);
  ok(!help.includes("~&"), `~& listed in a plain session:\n${help}`);
  pty.write("~&");
  await pty.waitFor(
    "~&\r\nremote: this session was not created with `remote new`, so it cannot be left running; ~. ends it\r\n",
    WAIT,
  );
  pty.write("echo STILL-$((2+2))\r");
  await pty.waitFor("STILL-4", WAIT);
  pty.write("exit 7\r");
  assertEquals((await pty.exited).code, 7);
});

/** The host-key question a client in a PTY prints, from "The authenticity" to its "(yes/no/[fingerprint])? ". */
async function hostKeyQuestion(command: string, args: string[], env: Record<string, string>): Promise<string> {
  await using pty = await spawnInPty(command, args, { env: { ...env, SSH_AUTH_SOCK: "" } });
  const question = await pty.waitFor(/The authenticity[^]*\(yes\/no\/\[fingerprint\]\)\? ?/, WAIT);
  pty.write("no\r");
  await pty.exited;
  return question.replace(/\r/g, "");
}

Deno.test("remote's host-key question names the other known_hosts lines with the same key, as ssh does", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await Deno.mkdir(`${home.dir}/.ssh`, { mode: 0o700 });
  const knownHosts = `${home.dir}/.ssh/known_hosts`;
  const [ed25519] = sshd.knownHostsLine().split("\n");
  const key = ed25519.split(" ").slice(1).join(" ");
  const other = `${home.dir}/other_known_hosts`;
  await Deno.writeTextFile(
    knownHosts,
    [
      "# hosts",
      `[localhost]:${sshd.port},db1 ${key}`,
      `@revoked revoked.example ${key}`,
      `|1|AAAAAAAAAAAAAAAAAAAAAAAAAAA=|AAAAAAAAAAAAAAAAAAAAAAAAAAA= ${key}`,
      "",
    ].join("\n"),
  );
  await Deno.writeTextFile(other, `elsewhere.example ${key}\n`);
  const options = [
    "-F",
    "none",
    "-p",
    String(sshd.port),
    "-i",
    sshd.userKey,
    "-o",
    `UserKnownHostsFile=${knownHosts} ${other}`,
    "-o",
    "GlobalKnownHostsFile=none",
    `${sshd.user}@127.0.0.1`,
  ];
  const ours = await hostKeyQuestion(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "enter", ...options], home.env);
  const theirs = await hostKeyQuestion("ssh", [...options, "true"], home.env);
  match(
    ours,
    new RegExp(
      `This host key is known by the following other names/addresses:\n` +
        `    ~/\\.ssh/known_hosts:2: \\[localhost\\]:${sshd.port},db1\n` +
        `    ~/\\.ssh/known_hosts:4: \\[hashed name\\]\n` +
        `    ~/other_known_hosts:1: elsewhere\\.example\n`,
    ),
  );
  assertEquals(ours.trimEnd(), theirs.trimEnd());
});

Deno.test("in a persistent session (remote new) ~? lists ~& too, and ~& leaves it running", async () => {
  await withTmuxHost(async (sshd, socket) => {
    await using home = await tempHome();
    const knownHosts = `${home.dir}/known_hosts`;
    await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
    const env = { ...home.env, REMOTE_TMUX_SOCKET: socket, SSH_AUTH_SOCK: "" };
    const created = await runRemote(["new", "127.0.0.1", ...sshOptions(sshd, knownHosts), "--name", "Kept"], { env });
    assertEquals(created.code, 0, created.stderr);
    await using pty = await spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "enter", "--name", "Kept"], {
      env,
    });
    pty.write("echo IN-$((3+4))\r");
    await pty.waitFor("IN-7", WAIT);
    pty.write("\r~?");
    const help = await pty.waitFor(/supported escape sequences:[^]*right after a newline\)\r\n/, WAIT);
    ok(help.includes(" ~&   disconnect, leaving the session running"), help);
    pty.write("~&");
    await pty.waitFor("disconnected from Kept; it keeps running on 127.0.0.1", WAIT);
    assertEquals((await pty.exited).code, 0);
    const removed = await runRemote(["remove", "--name", "Kept"], { env });
    assertEquals(removed.code, 0, removed.stderr);
  }, { prefix: "remote-esc" });
});
