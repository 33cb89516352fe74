import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { nonInteractivePrompter } from "./prompt.ts";
import { UsageError } from "./errors.ts";
import { spawnInPty } from "../tests/pty.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FIXTURE = new URL("../tests/fixtures/bridge_prompt.ts", import.meta.url).pathname;
const FIXTURE_CMD = `${Deno.execPath()} run --quiet --allow-all ${FIXTURE}`;
// deno start-up on a busy machine is slow; this is a bound, not a measurement
const WAIT = 60_000;

function inPty(script: string) {
  return spawnInPty("/bin/sh", ["-c", script], { cwd: ROOT, env: { NO_COLOR: "1" } });
}

Deno.test("terminalPrompter() reads a secret without echo, with Backspace and Ctrl-U editing", async () => {
  await using pty = await inPty(`stty -g; ${FIXTURE_CMD} secret; stty -g`);
  const before = await pty.waitFor(/[0-9a-f]+(:[0-9a-f]+){10,}/, WAIT);
  await pty.waitFor("token: ", WAIT);
  pty.write("wrong\x15hunX\x7fter2\r");
  await pty.waitFor('interactive=true answer="hunter2"', WAIT);
  const after = await pty.waitFor(/[0-9a-f]+(:[0-9a-f]+){10,}/, WAIT);
  assertEquals(after, before);
  assertEquals((await pty.exited).code, 0);
  assert(!pty.output().includes("hunX"), "the secret was echoed");
});

Deno.test("terminalPrompter() reads a plain answer with echo", async () => {
  await using pty = await inPty(FIXTURE_CMD);
  await pty.waitFor("token: ", WAIT);
  pty.write("abc\r");
  await pty.waitFor("abc\r\n", WAIT);
  await pty.waitFor('interactive=true answer="abc"', WAIT);
  assertEquals((await pty.exited).code, 0);
});

Deno.test("terminalPrompter() turns Ctrl-C at a secret prompt into interrupted (130) and restores echo", async () => {
  await using pty = await inPty(`stty -g; ${FIXTURE_CMD} secret; echo "rc=$?"; stty -g`);
  const before = await pty.waitFor(/[0-9a-f]+(:[0-9a-f]+){10,}/, WAIT);
  await pty.waitFor("token: ", WAIT);
  pty.write("abc\x03");
  await pty.waitFor("remote: interrupted\r\n", WAIT);
  await pty.waitFor("rc=130\r\n", WAIT);
  const after = await pty.waitFor(/[0-9a-f]+(:[0-9a-f]+){10,}/, WAIT);
  assertEquals(after, before);
});

Deno.test("terminalPrompter() without a terminal on stdin refuses to ask, naming what was needed", async () => {
  await using pty = await inPty(`echo answer | ${FIXTURE_CMD}; echo "rc=$?"`);
  await pty.waitFor("remote: cannot ask for token: stdin is not a terminal\r\n", WAIT);
  await pty.waitFor("hint: ", WAIT);
  await pty.waitFor("rc=230\r\n", WAIT);
  assert(!/(^|\n)token: /.test(pty.output()), "asked anyway");
});

Deno.test("nonInteractivePrompter() rejects with a usage error naming what", async () => {
  const prompter = nonInteractivePrompter();
  assertEquals(prompter.interactive, false);
  await rejects(prompter.ask("password: ", { secret: true, what: "password for alice@db1" }), (e: unknown) => {
    assert(e instanceof UsageError);
    assertEquals(e.message, "cannot ask for password for alice@db1: stdin is not a terminal");
    assertEquals(e.exitCode, 230);
    return true;
  });
});
