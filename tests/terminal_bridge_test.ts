/**
 * End-to-end tests of the terminal bridge over the local transport, driven through a real PTY: the
 * fixture tests/fixtures/bridge_local.ts is what `remote enter` with no target does.
 */
import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { spawnInPty } from "./pty.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FIXTURE = new URL("./fixtures/bridge_local.ts", import.meta.url).pathname;
const DENO = Deno.execPath();
const FIXTURE_CMD = `${DENO} run --quiet --allow-all ${FIXTURE}`;
// a plain known shell with a known prompt, reading no rc file
const ENV = { SHELL: "/bin/sh", PS1: "inner$ ", ENV: "", NO_COLOR: "1" };
// deno start-up on a busy 2-core machine is slow; this is a bound, not a measurement
const WAIT = 60_000;

function startFixture(args: string[] = [], size = { cols: 91, rows: 27 }) {
  return spawnInPty(DENO, ["run", "--quiet", "--allow-all", FIXTURE, ...args], { ...size, env: ENV, cwd: ROOT });
}

Deno.test("runInteractive() gives a local shell the terminal's size, follows resizes and passes the exit code", async () => {
  await using pty = await startFixture();
  await pty.waitFor("inner$ ", WAIT);
  pty.write("stty size\r");
  await pty.waitFor(/\r\n27 91\r\n/, WAIT);
  await pty.waitFor("inner$ ", WAIT);
  // the shell runs traps only between commands, so a child waits for the change in a loop
  pty.write(`sh -c "trap 'stty size; exit 0' WINCH; echo armed; while :; do sleep 0.1; done"\r`);
  await pty.waitFor("\r\narmed\r\n", WAIT);
  pty.resize(100, 30);
  await pty.waitFor("30 100\r\n", WAIT);
  await pty.waitFor("inner$ ", WAIT);
  pty.write("stty size\r");
  await pty.waitFor(/\r\n30 100\r\n/, WAIT);
  pty.write("exit 3\r");
  assertEquals((await pty.exited).code, 3);
});

Deno.test("runInteractive() ends the session on ~. with remote's lost status", async () => {
  await using pty = await startFixture();
  await pty.waitFor("inner$ ", WAIT);
  pty.write("echo one\r");
  await pty.waitFor("one\r\ninner$ ", WAIT);
  pty.write("~.");
  await pty.waitFor("remote: session ended with ~.", WAIT);
  assertEquals((await pty.exited).code, 250);
});

Deno.test("runInteractive() prints the escapes on ~? and the sessions on ~#", async () => {
  await using pty = await startFixture();
  await pty.waitFor("inner$ ", WAIT);
  pty.write("~?");
  await pty.waitFor("supported escape sequences:", WAIT);
  await pty.waitFor(" ~.   end the session", WAIT);
  pty.write("~#");
  await pty.waitFor("~#\r\nlocal  Opened  Busy\r\n", WAIT);
  pty.write("exit 0\r");
  assertEquals((await pty.exited).code, 0);
});

Deno.test("runInteractive() sends ~~ as one tilde, ~x as both, and a mid-line ~. as typed", async () => {
  await using pty = await startFixture();
  await pty.waitFor("inner$ ", WAIT);
  // a backslash-newline continues the command, so the next line starts right after a newline
  pty.write("echo a\\\r");
  await pty.waitFor("> ", WAIT);
  pty.write("~~b\r");
  await pty.waitFor(/\r\na~b\r\n/, WAIT);
  pty.write("echo c\\\r");
  await pty.waitFor("> ", WAIT);
  pty.write("~xd\r");
  await pty.waitFor(/\r\nc~xd\r\n/, WAIT);
  pty.write("echo e~.f\r");
  await pty.waitFor(/\r\ne~\.f\r\n/, WAIT);
  pty.write("exit 0\r");
  assertEquals((await pty.exited).code, 0);
});

Deno.test("runInteractive() says ~& cannot keep a local session and carries on", async () => {
  await using pty = await startFixture();
  await pty.waitFor("inner$ ", WAIT);
  pty.write("~&");
  await pty.waitFor("remote: this transport cannot keep a session running; ~. ends it", WAIT);
  pty.write("echo still-here\r");
  await pty.waitFor("still-here\r\n", WAIT);
  pty.write("exit 5\r");
  assertEquals((await pty.exited).code, 5);
});

Deno.test("runInteractive() sends Ctrl-C to the far side instead of ending", async () => {
  await using pty = await startFixture();
  await pty.waitFor("inner$ ", WAIT);
  // the key must reach a running job, not the shell still starting it: wait for the job's own output
  pty.write("sh -c 'echo slee''ping; exec sleep 60'; echo not-interrupted\r");
  await pty.waitFor("\r\nsleeping\r\n", WAIT);
  pty.write("\x03");
  await pty.waitFor("inner$ ", WAIT);
  pty.write("echo after-ctrl-c\r");
  await pty.waitFor("after-ctrl-c\r\n", WAIT);
  pty.write("exit 6\r");
  assertEquals((await pty.exited).code, 6);
  assert(!pty.output().includes("\nnot-interrupted\r\n"), "sleep was not interrupted");
});

Deno.test("runInteractive() with escapes off sends ~. to the far side", async () => {
  await using pty = await startFixture(["--escape", "none"]);
  await pty.waitFor("inner$ ", WAIT);
  pty.write("echo a\\\r");
  await pty.waitFor("> ", WAIT);
  pty.write("~.\r");
  await pty.waitFor(/\r\na~\.\r\n/, WAIT);
  pty.write("exit 0\r");
  assertEquals((await pty.exited).code, 0);
});

for (
  const [how, keys, code] of [["exit", "exit 0\r", 0], ["~.", "~.", 250], [
    "SIGTERM",
    "kill -TERM $PPID\r",
    143,
  ]] as const
) {
  Deno.test(`runInteractive() leaves the terminal modes as it found them after ${how}`, async () => {
    await using pty = await spawnInPty("/bin/sh", ["-c", `stty -g; ${FIXTURE_CMD}; echo "rc=$?"; stty -g`], {
      env: ENV,
      cwd: ROOT,
    });
    const before = await pty.waitFor(/[0-9a-f]+(:[0-9a-f]+){10,}/, WAIT);
    await pty.waitFor("inner$ ", WAIT);
    pty.write(keys);
    await pty.waitFor(`rc=${code}\r\n`, WAIT);
    const after = await pty.waitFor(/[0-9a-f]+(:[0-9a-f]+){10,}/, WAIT);
    assertEquals(after, before);
    assertEquals((await pty.exited).code, 0);
  });
}

Deno.test("runInteractive() streams piped stdin without a PTY and passes the exit code", async () => {
  await using pty = await spawnInPty("/bin/sh", ["-c", `printf 'echo hi\\necho ~.\\nexit 4\\n' | ${FIXTURE_CMD}`], {
    env: ENV,
    cwd: ROOT,
  });
  const { code } = await pty.exited;
  assertEquals(code, 4);
  assertMatch(pty.output(), /(^|\n)hi\r\n~\.\r\n/);
});
