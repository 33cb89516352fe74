/**
 * The PowerShell session lifecycle on Windows through the command line (New-, Get-, Receive-, Connect-,
 * Remove-PSSession): a session made with a running job on one computer, found and received from another one
 * (a second HOME: its own registry), connected to, and removed. The peer is tests/winrm_server.ts with its
 * PowerShell part, which keeps a disconnected shell's output for the client that connects (MS-PSRP 3.1.5.3.14–16).
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { startWinrmServer } from "./winrm_server.ts";
import { runRemote, type TempHome, tempHome } from "./run_remote.ts";

const PASSWORD = "Secr3t-pässword";
const envOf = (home: TempHome) => ({ ...home.env, REMOTE_WINRM_PASSWORD: PASSWORD });

Deno.test("a job started in a disconnected PowerShell session on one computer is received and removed from another", async () => {
  await using server = await startWinrmServer({});
  await using first = await tempHome();
  await using second = await tempHome();
  const base = ["--computer-name", "127.0.0.1", "--port", String(server.port), "--credential", "WIN01\\alice"];
  const started = await runRemote(
    [
      "invoke",
      ...base,
      "--in-disconnected-session",
      "--session-name",
      "Job",
      "--",
      '1..20 | % { "tick $_"; Start-Sleep -Milliseconds 20 }',
    ],
    { env: envOf(first) },
  );
  assertEquals(started.code, 0, started.stderr);
  match(started.stdout, /^1 +Job +127\.0\.0\.1 +winrm +Disconnected +Microsoft\.PowerShell +None$/m);
  assertEquals(server.stats.disconnects, 1);
  // the job runs on with nobody connected; the second computer finds the session on the host
  const [shell] = server.psShells.values();
  for (const until = Date.now() + 20_000; [...shell.commands.values()].some((c) => !c.done) && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const listed = await runRemote(
    ["get", "--computer-name", `http://127.0.0.1:${server.port}/wsman`, "--credential", "WIN01\\alice", "--json"],
    { env: envOf(second) },
  );
  assertEquals(listed.code, 0, listed.stderr);
  const [row] = listed.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals([row.name, row.state, row.configurationName, row.foreign], [
    "Job",
    "Disconnected",
    "Microsoft.PowerShell",
    false,
  ]);
  // Receive-PSSession: everything the job printed while nobody was connected, once
  const received = await runRemote(["receive", "--name", "Job"], { env: envOf(second) });
  assertEquals(received, {
    code: 0,
    stdout: Array.from({ length: 20 }, (_, i) => `tick ${i + 1}\n`).join(""),
    stderr: "",
  });
  assertEquals(server.stats.connects, 1, "the second computer connected with connectXml");
  const again = await runRemote(["receive", "--name", "Job"], { env: envOf(second) });
  assertEquals(again, { code: 0, stdout: "", stderr: "" }, "nothing is received twice");
  assertEquals([...server.psShells.values()].map((s) => s.state), ["Disconnected"], "receive leaves it running");
  const removed = await runRemote(["remove", "--name", "Job"], { env: envOf(second) });
  assertEquals(removed.code, 0, removed.stderr);
  assertEquals(server.shells(), []);
});

Deno.test("remote new makes a named PowerShell session; remote connect enters it, and exit ends it", async () => {
  await using server = await startWinrmServer({});
  await using home = await tempHome();
  const base = ["--computer-name", "127.0.0.1", "--port", String(server.port), "--credential", "WIN01\\alice"];
  const made = await runRemote(["new", ...base, "--name", "Ops"], { env: envOf(home) });
  assertEquals(made.code, 0, made.stderr);
  match(made.stdout, /^1 +Ops +127\.0\.0\.1 +winrm +Disconnected +Microsoft\.PowerShell +None$/m);
  assertEquals([...server.psShells.values()].map((s) => [s.name, s.state]), [["Ops", "Disconnected"]]);
  const entered = await runRemote(["connect", "--name", "Ops"], {
    env: envOf(home),
    stdin: "'inside Ops'\nexit 4\n",
  });
  assertEquals(entered.code, 4, entered.stderr);
  assertEquals(
    entered.stdout,
    "[127.0.0.1]: PS C:\\Users\\alice\\Documents> inside Ops\n[127.0.0.1]: PS C:\\Users\\alice\\Documents> ",
  );
  assertEquals(server.shells(), [], "leaving the session ended it on the host");
  const gone = await runRemote(["get", "--json"], { env: envOf(home) });
  assert(!gone.stdout.includes('"Ops"'), gone.stdout);
});

Deno.test("remote connect: a host out of reach past --max-retry-connection-time leaves the named session there, with a hint", async () => {
  // the first typed line's Command never reaches the host, which then stays out of reach
  await using server = await startWinrmServer({ breakReply: { op: "Command", nth: 1, at: "unread" }, outage: 1000 });
  await using home = await tempHome();
  const base = ["--computer-name", "127.0.0.1", "--port", String(server.port), "--credential", "WIN01\\alice"];
  const made = await runRemote(["new", ...base, "--name", "Ops"], { env: envOf(home) });
  assertEquals(made.code, 0, made.stderr);
  const entered = await runRemote(["connect", ...base, "--name", "Ops", "--max-retry-connection-time", "1s"], {
    env: envOf(home),
    stdin: "'inside Ops'\nexit 4\n",
  });
  assertEquals(entered.code, 250, entered.stderr);
  const host = `127\\.0\\.0\\.1:${server.port}`;
  match(
    entered.stderr,
    new RegExp(
      `^remote: lost the connection to ${host}; reconnecting for up to 1 second \\(Ctrl-C gives up\\)\\n` +
        `remote: Command to ${host} failed: [^\\n]+\\n` +
        `hint: the session is still on ${host}: remote receive --name Ops shows what it printed, ` +
        `remote connect --name Ops takes it back\\n$`,
    ),
  );
  assert(server.stats.refusedRequests > 0, "the client kept trying");
  assertEquals([...server.psShells.values()].map((s) => s.name), ["Ops"], "the session was left on the host");
});

/** waits (bounded) until `ready()` holds */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 20_000; !ready();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("Block holds a disconnected PowerShell job at its buffer and loses nothing; Drop lets it run and keeps the newest", async () => {
  await using server = await startWinrmServer({ disconnectedBufferFragments: 5 });
  await using home = await tempHome();
  const base = ["--computer-name", "127.0.0.1", "--port", String(server.port), "--credential", "WIN01\\alice"];
  const job = '1..30 | % { "tick $_"; Start-Sleep -Milliseconds 10 }';
  const commandOf = (name: string) => {
    const shell = [...server.psShells.values()].find((s) => s.name === name)!;
    return [...shell.commands.values()][0];
  };
  const all = Array.from({ length: 30 }, (_, i) => `tick ${i + 1}\n`).join("");
  // Block (the default): the job waits with 5 fragments kept, and the receive gets every line once
  const b = await runRemote(["invoke", ...base, "--in-disconnected-session", "--session-name", "B", "--", job], {
    env: envOf(home),
  });
  assertEquals(b.code, 0, b.stderr);
  await until(() => commandOf("B")?.out.length >= 5, "B's buffer to fill");
  await new Promise((r) => setTimeout(r, 300));
  assertEquals([commandOf("B").done, commandOf("B").out.length], [false, 5], "Block suspended the job");
  assertEquals(await runRemote(["receive", "--name", "B"], { env: envOf(home) }), { code: 0, stdout: all, stderr: "" });
  // Drop (set with remote disconnect on the disconnected session): the job runs to its end, the oldest output goes
  const d = await runRemote(["invoke", ...base, "--in-disconnected-session", "--session-name", "D", "--", job], {
    env: envOf(home),
  });
  assertEquals(d.code, 0, d.stderr);
  await until(() => commandOf("D")?.out.length >= 5, "D's buffer to fill");
  const dropped = await runRemote(["disconnect", "--name", "D", "--output-buffering-mode", "drop"], {
    env: envOf(home),
  });
  assertEquals(dropped.code, 0, dropped.stderr);
  await until(() => commandOf("D").done, "D to run to its end");
  const received = await runRemote(["receive", "--name", "D"], { env: envOf(home) });
  const lines = received.stdout.trim().split("\n");
  assertEquals(lines.at(-1), "tick 30");
  assert(lines.length < 30, `nothing was dropped: ${lines.length} lines`);
  const numbers = lines.map((l) => Number(l.slice(5)));
  assertEquals([...numbers].sort((x, y) => x - y), numbers);
});

Deno.test("remote disconnect --idle-timeout: the host ends a PowerShell session left alone that long", async () => {
  await using server = await startWinrmServer({});
  await using home = await tempHome();
  const base = ["--computer-name", "127.0.0.1", "--port", String(server.port), "--credential", "WIN01\\alice"];
  assertEquals((await runRemote(["new", ...base, "--name", "T"], { env: envOf(home) })).code, 0);
  const set = await runRemote(["disconnect", "--name", "T", "--idle-timeout", "1s"], { env: envOf(home) });
  assertEquals(set.code, 0, set.stderr);
  match(set.stdout, /^1 +T +127\.0\.0\.1 +winrm +Disconnected /m);
  await until(() => server.shells().length === 0, "the idle timeout");
  const gone = await runRemote(["receive", "--name", "T"], { env: envOf(home) });
  assertEquals(gone.code, 233, gone.stderr);
  match(gone.stderr, /^remote: 127\.0\.0\.1:\d+ has no PowerShell session T\n/);
});

Deno.test("remote get --computer-name with a bare name and WinRM's options asks the host's WinRM service, as Get-PSSession", async () => {
  await using server = await startWinrmServer({});
  await using first = await tempHome();
  await using second = await tempHome();
  const base = ["--computer-name", "127.0.0.1", "--port", String(server.port), "--credential", "WIN01\\alice"];
  assertEquals((await runRemote(["new", ...base, "--name", "Far"], { env: envOf(first) })).code, 0);
  const listed = await runRemote(["get", ...base, "--json"], { env: envOf(second) });
  assertEquals(listed.code, 0, listed.stderr);
  const rows = listed.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(rows.map((r) => [r.name, r.computerName, r.transport, r.state]), [
    ["Far", "127.0.0.1", "winrm", "Disconnected"],
  ]);
  // recorded: the second computer can now receive from it by name
  const received = await runRemote(["receive", "--name", "Far"], { env: envOf(second) });
  assertEquals(received, { code: 0, stdout: "", stderr: "" });
  // connect finds it the same way, as Connect-PSSession -ComputerName does, from a third computer
  await using third = await tempHome();
  const connected = await runRemote(["connect", ...base, "--name", "Far"], {
    env: envOf(third),
    stdin: "'from the third'\nexit 4\n",
  });
  assertEquals(connected.code, 4, connected.stderr);
  match(connected.stdout, /from the third/);
});

Deno.test("remote receive --json prints a PowerShell session's output objects and errors as invoke --json does", async () => {
  await using server = await startWinrmServer({});
  await using home = await tempHome();
  const base = ["--computer-name", "127.0.0.1", "--port", String(server.port), "--credential", "WIN01\\alice"];
  const script = '1..3 | % { "tick $_" }\nWrite-Error boom';
  const started = await runRemote(
    ["invoke", ...base, "--in-disconnected-session", "--session-name", "J", "--", script],
    { env: envOf(home) },
  );
  assertEquals(started.code, 0, started.stderr);
  const [shell] = server.psShells.values();
  await until(() => [...shell.commands.values()].every((c) => c.done), "the job to end");
  const r = await runRemote(["receive", "--name", "J", "--json"], { env: envOf(home) });
  assertEquals([r.code, r.stderr], [0, ""]);
  assertEquals(r.stdout.trim().split("\n").map((l) => JSON.parse(l)), [
    { host: "127.0.0.1", stream: "output", data: "tick 1" },
    { host: "127.0.0.1", stream: "output", data: "tick 2" },
    { host: "127.0.0.1", stream: "output", data: "tick 3" },
    { host: "127.0.0.1", stream: "stderr", data: "Write-Error: boom\n" },
  ]);
  assertEquals(
    (await runRemote(["receive", "--name", "J", "--json"], { env: envOf(home) })).stdout,
    "",
    "nothing twice",
  );
});

/** `invoke --in-disconnected-session` of an 8-line script named Job on `server`, and the wait for its end there. */
async function startEndedJob(server: Awaited<ReturnType<typeof startWinrmServer>>, home: TempHome): Promise<void> {
  const base = ["--computer-name", "127.0.0.1", "--port", String(server.port), "--credential", "WIN01\\alice"];
  const started = await runRemote(
    ["invoke", ...base, "--in-disconnected-session", "--session-name", "Job", "--", '1..8 | % { "tick $_" }'],
    { env: envOf(home) },
  );
  assertEquals(started.code, 0, started.stderr);
  const [shell] = server.psShells.values();
  await until(() => [...shell.commands.values()].every((c) => c.done), "the job's end");
}

Deno.test("remote receive takes a reply the connection lost mid-way again from the host, once", async () => {
  // the first Receive with a pipeline's output is the one remote receive makes; its reply is cut half-way
  await using server = await startWinrmServer({ breakReceiveReply: { nth: 1, at: "middle" } });
  await using home = await tempHome();
  await startEndedJob(server, home);
  const received = await runRemote(["receive", "--name", "Job"], { env: envOf(home) });
  assertEquals(received, {
    code: 0,
    stdout: Array.from({ length: 8 }, (_, i) => `tick ${i + 1}\n`).join(""),
    stderr: `remote: lost the connection to 127.0.0.1:${server.port}; reconnecting for up to 4 minutes ` +
      `(Ctrl-C gives up)\nremote: reconnected to 127.0.0.1:${server.port}\n`,
  });
  assertEquals([server.stats.brokenReplies.length, server.stats.robust.replayed], [1, 1]);
  const removed = await runRemote(["remove", "--name", "Job"], { env: envOf(home) });
  assertEquals(removed.code, 0, removed.stderr);
  assertEquals(server.shells(), []);
});

Deno.test("remote receive: Ctrl-C while reconnecting to a host out of reach ends the run at once, as lost (250)", async () => {
  // the first Receive with the job's output is cut half-way; the host then stays out of reach (the window: 4 minutes)
  await using server = await startWinrmServer({ breakReceiveReply: { nth: 1, at: "middle" }, outage: 100_000 });
  await using home = await tempHome();
  await startEndedJob(server, home);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", new URL("../main.ts", import.meta.url).pathname, "receive", "--name", "Job"],
    env: envOf(home),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // without the Ctrl-C it would wait 4 minutes: a minute bounds the test (SIGKILL, not 250)
  const bound = setTimeout(() => child.kill("SIGKILL"), 60_000);
  let stderr = "";
  try {
    let sent = false;
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += chunk;
      if (!sent && stderr.includes("(Ctrl-C gives up)\n")) {
        sent = true;
        child.kill("SIGINT");
      }
    }
    assertEquals((await child.status).code, 250, stderr);
  } finally {
    clearTimeout(bound);
  }
  const host = `127\\.0\\.0\\.1:${server.port}`;
  match(
    stderr,
    new RegExp(
      `^remote: lost the connection to ${host}; reconnecting for up to 4 minutes \\(Ctrl-C gives up\\)\\n` +
        `remote: Receive to ${host} failed: [^\\n]+\\n$`,
    ),
  );
});
