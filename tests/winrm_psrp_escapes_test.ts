/**
 * The `~` escapes of docs/escapes.md in PowerShell sessions over WinRM, typed in a real terminal (tests/pty.ts):
 * after Enter, `~&` disconnects at once (even while a command runs, which goes on on the host), `~?` lists the
 * escapes, `~~` types one `~`, `~.` ends the session. The peer is tests/winrm_server.ts.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { startWinrmServer } from "./winrm_server.ts";
import { runRemote, type TempHome, tempHome } from "./run_remote.ts";
import { spawnInPty } from "./pty.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const PASSWORD = "Secr3t-pässword";
const envOf = (home: TempHome) => ({ ...home.env, REMOTE_WINRM_PASSWORD: PASSWORD });
const PROMPT = "[127.0.0.1]: PS C:\\Users\\alice\\Documents> ";

function remoteInPty(args: string[], home: TempHome) {
  return spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, ...args], {
    cols: 100,
    rows: 30,
    env: envOf(home),
  });
}

Deno.test("~? ~~ and ~& in a connected PowerShell session: ~& disconnects at once while a command runs, which goes on", async () => {
  await using server = await startWinrmServer({});
  await using home = await tempHome();
  const base = ["--computer-name", "127.0.0.1", "--port", String(server.port), "--credential", "WIN01\\alice"];
  assertEquals((await runRemote(["new", ...base, "--name", "K"], { env: envOf(home) })).code, 0);
  await using pty = await remoteInPty(["connect", "--name", "K"], home);
  await pty.waitFor(PROMPT, 30_000);
  // ~? lists the escapes, ~& among them (the session is kept on the host), and the prompt comes back
  pty.write("~?");
  await pty.waitFor(/~\?\r\nsupported escape sequences:\r\n ~\. {3}end the session\r\n ~& {3}disconnect/);
  await pty.waitFor(PROMPT);
  // ~~ types one ~: the line PowerShell gets starts with it
  pty.write("~~x\r");
  await pty.waitFor("The term '~x' is not recognized", 30_000);
  await pty.waitFor(PROMPT);
  // a command runs; ~& right after its Enter disconnects without waiting for it
  pty.write('1..100 | % { "tick $_"; Start-Sleep -Milliseconds 50 }\r');
  await pty.waitFor(/^tick 2\r$/m, 30_000);
  pty.write("~&");
  await pty.waitFor("remote: disconnected from K; it keeps running on 127.0.0.1", 30_000);
  assertEquals((await pty.exited).code, 0);
  const [shell] = server.psShells.values();
  assertEquals(shell.state, "Disconnected");
  assert([...shell.commands.values()].some((c) => !c.done), "the command was left running on the host");
  const listed = await runRemote(["get", "--json"], { env: envOf(home) });
  assertEquals(JSON.parse(listed.stdout.trim()).state, "Disconnected");
  // remote connect takes it back: first what the command printed while away, once, to its end, then the prompt
  const seen = Math.max(...[...pty.output().matchAll(/^tick (\d+)\r$/gm)].map((m) => Number(m[1])));
  const back = await runRemote(["connect", "--name", "K"], { env: envOf(home), stdin: "'second visit'\nexit 0\n" });
  assertEquals(back.code, 0, back.stderr);
  const since = Array.from({ length: 100 - seen }, (_, i) => `tick ${seen + 1 + i}\n`).join("");
  assertEquals(back.stdout, `${since}${PROMPT}second visit\n${PROMPT}`);
  assertEquals(server.shells(), []);
});

Deno.test("~. ends a PowerShell session over WinRM at once, even while a command runs (exit 250)", async () => {
  await using server = await startWinrmServer({});
  await using home = await tempHome();
  await using pty = await remoteInPty(
    ["enter", "--computer-name", "127.0.0.1", "--port", String(server.port), "--credential", "WIN01\\alice"],
    home,
  );
  await pty.waitFor(PROMPT, 30_000);
  // ~& in a session not made with remote new says so, and the session goes on
  pty.write("~&");
  await pty.waitFor("remote: this session was not created with `remote new`, so it cannot be left running; ~. ends it");
  await pty.waitFor(PROMPT);
  pty.write("'still here'\r");
  await pty.waitFor(/^still here\r$/m, 30_000);
  await pty.waitFor(PROMPT);
  pty.write("Start-Sleep 100\r~.");
  await pty.waitFor("remote: session ended with ~.", 30_000);
  assertEquals((await pty.exited).code, 250);
  match(pty.output(), /~\.\r\n/);
  assertEquals(server.shells(), [], "the shell was deleted on the host");
});

Deno.test("a line ~& from a pipe is no escape: it goes to PowerShell as typed", async () => {
  await using server = await startWinrmServer({});
  await using home = await tempHome();
  const base = ["--computer-name", "127.0.0.1", "--port", String(server.port), "--credential", "WIN01\\alice"];
  assertEquals((await runRemote(["new", ...base, "--name", "P"], { env: envOf(home) })).code, 0);
  const r = await runRemote(["connect", "--name", "P"], { env: envOf(home), stdin: "~&\nexit 3\n" });
  assertEquals(r.code, 3, r.stderr);
  match(r.stderr, /The term '~&' is not recognized/);
});
