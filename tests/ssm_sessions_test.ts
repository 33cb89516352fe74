/**
 * Sessions kept on Session Manager through the real command line: `remote new ssm://i-… --name`, `~&` and
 * `remote disconnect`, `remote connect` (ResumeSession, sequence numbers continued), `remote receive`,
 * `remote get --computer-name ssm://…` (DescribeSessions merged with the registry) and `remote remove`
 * (TerminateSession), against tests/ssm_emulator.ts (its header names the AWS documents it follows).
 *
 * @module
 */
import { deepStrictEqual as assertEquals, match, ok } from "node:assert/strict";
import { emulatorEnv, startSsmEmulator } from "./ssm_emulator.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const TARGET = "i-0123456789abcdef0";

const awsEnv = (home: { env: Record<string, string>; dir: string }) => emulatorEnv(home);

/** Counts the non-overlapping occurrences of `needle` in `text`. */
function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

Deno.test("remote new, connect, ~&, receive, connect again and remove on SSM: output made while away arrives once", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const env = awsEnv(home);
  const aws = ["--endpoint-url", emu.endpoint, "--region", emu.region];
  const remote = (...args: string[]) => runRemote(args, { env });

  const created = await remote("new", `ssm://${TARGET}`, "--name", "job", ...aws);
  assertEquals(created.code, 0, created.stderr);
  match(created.stdout, /^1 +job +i-0123456789abcdef0 +ssm +Disconnected +None$/m);
  assertEquals(emu.stats.calls.StartSession, 1);
  assertEquals(emu.stats.calls.TerminateSession, undefined);

  // DescribeSessions reports it Disconnected; `get --computer-name` merges that with the registry
  const listed = await remote("get", "--computer-name", `ssm://${TARGET}`, ...aws);
  assertEquals(listed.code, 0, listed.stderr);
  match(listed.stdout, /^1 +job +i-0123456789abcdef0 +ssm +Disconnected +None$/m);
  assertEquals(emu.stats.calls.DescribeSessions, 1);
  // `--target` asks the same way (it is never ignored); another instance has none of remote's sessions
  const byTarget = await remote("get", "--target", TARGET, ...aws);
  assertEquals(byTarget.stdout, listed.stdout);
  assertEquals((await remote("get", "--target", "i-0fedcba9876543210", ...aws)).stdout, "");

  {
    await using pty = await spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "connect", "--name", "job"], {
      cols: 100,
      rows: 30,
      env,
    });
    await pty.waitFor("$ ", 30_000); // the prompt `new` read, shown by the first client
    pty.write("echo first-attach\r");
    await pty.waitFor(/^first-attach\r$/m);
    // the job prints 2 s from now; the detach comes once its line and the next prompt are here, so what the
    // session prints after the detach is the job's line alone
    pty.write("later 2000 made-while-away\r");
    await pty.waitFor("later 2000 made-while-away\r\n$ ", 20_000);
    pty.write("\r");
    await pty.waitFor("\r\n$ ", 20_000);
    pty.write("~&");
    await pty.waitFor("disconnected from job; it keeps running on i-0123456789abcdef0", 20_000);
    assertEquals((await pty.exited).code, 0);
    ok(!/^made-while-away\r$/m.test(pty.output()), "printed after the detach");
  }
  assertEquals(emu.stats.calls.ResumeSession, 1);
  assertEquals(emu.stats.calls.TerminateSession, undefined);
  await new Promise((r) => setTimeout(r, 2200)); // the job prints while nobody is attached

  const received = await remote("receive", "--name", "job");
  assertEquals(received.code, 0, received.stderr);
  assertEquals(received.stdout, "made-while-away\r\n");
  const again = await remote("receive", "--name", "job");
  assertEquals(again.code, 0, again.stderr);
  assertEquals(count(again.stdout, "made-while-away"), 0, "received twice");

  {
    await using pty = await spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "connect", "--name", "job"], {
      cols: 100,
      rows: 30,
      env,
    });
    // the agent's sequence numbers continue: typed input is taken, and nothing comes twice
    pty.write("echo second-attach\r");
    await pty.waitFor(/^second-attach\r$/m, 30_000);
    ok(!pty.output().includes("made-while-away"), "received output came again");
    pty.write("\r~&");
    await pty.waitFor("disconnected from job", 20_000);
    assertEquals((await pty.exited).code, 0);
  }
  assertEquals(emu.stats.inputDuplicates, 0);

  const removed = await remote("remove", "--name", "job");
  assertEquals(removed.code, 0, removed.stderr);
  assertEquals(emu.stats.calls.TerminateSession, 1);
  const after = await remote("get", "--computer-name", `ssm://${TARGET}`, ...aws);
  assertEquals(after.stdout, "");
});

Deno.test("remote disconnect lets an attached SSM session go, and another run connects to it", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const env = awsEnv(home);
  const aws = ["--endpoint-url", emu.endpoint, "--region", emu.region];
  assertEquals((await runRemote(["new", `ssm://${TARGET}`, "--name", "shared", ...aws], { env })).code, 0);
  await using one = await spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "connect", "--name", "shared"], {
    cols: 80,
    rows: 24,
    env,
  });
  one.write("echo one-here\r");
  await one.waitFor(/^one-here\r$/m, 30_000);
  const busy = await runRemote(["receive", "--name", "shared"], { env });
  assertEquals(busy.code, 230);
  match(
    busy.stderr,
    /^remote: session shared is attached in another remote \(pid \d+\)\nhint: let it go with: remote disconnect --name shared\n$/,
  );

  const d = await runRemote(["disconnect", "--name", "shared"], { env });
  assertEquals(d.code, 0, d.stderr);
  match(d.stdout, /^\d+ +shared +i-0123456789abcdef0 +ssm +Disconnected +None$/m);
  await one.waitFor("disconnected from shared", 20_000);
  assertEquals((await one.exited).code, 0);

  await using two = await spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "enter", "--name", "shared"], {
    cols: 80,
    rows: 24,
    env,
  });
  two.write("echo two-here\r");
  await two.waitFor(/^two-here\r$/m, 30_000);
  two.write("exit\r");
  assertEquals((await two.exited).code, 0);
  // the shell ended on the instance: nothing is left, here or there
  const listed = await runRemote(["get", "--computer-name", `ssm://${TARGET}`, ...aws], { env });
  assertEquals(listed.stdout, "");
  assertEquals(emu.stats.calls.TerminateSession, undefined);
});

Deno.test("SSM sessions: an idle-timed-out session, a removed one, and the options SSM cannot honour", async () => {
  await using emu = await startSsmEmulator({ idleSessionTimeoutMs: 1500 });
  await using home = await tempHome();
  const env = awsEnv(home);
  const aws = ["--endpoint-url", emu.endpoint, "--region", emu.region];
  assertEquals((await runRemote(["new", `ssm://${TARGET}`, "--name", "idle", ...aws], { env })).code, 0);

  const timeout = await runRemote(["disconnect", "--name", "idle", "--idle-timeout", "15m"], { env });
  assertEquals(timeout.code, 230);
  match(timeout.stderr, /^remote: an SSM session's idle timeout is the account's Session Manager preference\n/);

  await new Promise((r) => setTimeout(r, 2000)); // past the idle timeout
  const gone = await runRemote(["receive", "--name", "idle"], { env });
  assertEquals(gone.code, 233, gone.stderr);
  match(gone.stderr, /^remote: the SSM session timed out while disconnected\n/);
  const listed = await runRemote(["get", "--computer-name", `ssm://${TARGET}`, ...aws], { env });
  match(listed.stdout, /^1 +idle +i-0123456789abcdef0 +ssm +Broken \(stale\) +None$/m);
  const forgotten = await runRemote(["remove", "--name", "idle"], { env });
  assertEquals(forgotten.code, 0, forgotten.stderr);
  assertEquals((await runRemote(["get"], { env })).stdout, "");
});

Deno.test("input the agent had not acknowledged at ~& is sent again by the next connect, once", async () => {
  const faults: { neverAck?: boolean } = {};
  await using emu = await startSsmEmulator({ faults });
  await using home = await tempHome();
  const env = awsEnv(home);
  const aws = ["--endpoint-url", emu.endpoint, "--region", emu.region];
  assertEquals((await runRemote(["new", `ssm://${TARGET}`, "--name", "lag", ...aws], { env })).code, 0);
  faults.neverAck = true; // the agent stops taking input (an instance under load)
  {
    await using pty = await spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "connect", "--name", "lag"], {
      cols: 80,
      rows: 24,
      env,
    });
    await pty.waitFor("$ ", 30_000);
    pty.write("echo typed-before-detach\r");
    await new Promise((r) => setTimeout(r, 300));
    pty.write("~&");
    await pty.waitFor("disconnected from lag", 20_000);
    assertEquals((await pty.exited).code, 0);
    ok(!/^typed-before-detach\r$/m.test(pty.output()));
  }
  faults.neverAck = false;
  await using pty = await spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "connect", "--name", "lag"], {
    cols: 80,
    rows: 24,
    env,
  });
  await pty.waitFor(/^typed-before-detach\r$/m, 30_000);
  pty.write("echo after\r");
  await pty.waitFor(/^after\r$/m);
  assertEquals(pty.output().match(/^typed-before-detach\r$/gm)?.length, 1);
  pty.write("exit\r");
  assertEquals((await pty.exited).code, 0);
});

Deno.test("remote invoke --in-disconnected-session on SSM: the command's output waits for receive, then the session is gone", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const env = awsEnv(home);
  const aws = ["--endpoint-url", emu.endpoint, "--region", emu.region];
  const started = await runRemote(
    [
      "invoke",
      "--target",
      TARGET,
      ...aws,
      "--in-disconnected-session",
      "--session-name",
      "nightly",
      "--",
      "echo one; sleep 1; echo two",
    ],
    { env },
  );
  assertEquals(started.code, 0, started.stderr);
  match(started.stdout, /^1 +nightly +i-0123456789abcdef0 +ssm +Disconnected +None$/m);
  assertEquals(emu.stats.startedDocuments, ["AWS-StartNonInteractiveCommand"]);
  const first = await runRemote(["receive", "--name", "nightly"], { env });
  assertEquals(first, { code: 0, stdout: "one\ntwo\n", stderr: "" });
  // the command ended, and its session with it: there is nothing to connect to
  const attach = await runRemote(["connect", "--name", "nightly"], { env });
  assertEquals(attach.code, 233, attach.stderr);
  assertEquals((await runRemote(["remove", "--name", "nightly"], { env })).code, 0);

  const quick = await runRemote(
    ["invoke", "--target", TARGET, ...aws, "--in-disconnected-session", "--session-name", "quick", "--", "echo fast"],
    { env },
  );
  assertEquals(quick.code, 0, quick.stderr);
  await new Promise((r) => setTimeout(r, 300));
  const fast = await runRemote(["receive", "--name", "quick"], { env });
  assertEquals(fast.code, 0, fast.stderr);
  assertEquals(fast.stdout, "fast\n");
  assertEquals(emu.stats.calls.TerminateSession, undefined);
});

Deno.test("a session made for a Name tag is remote's when its instance is asked for by ID", async () => {
  await using emu = await startSsmEmulator({ instances: [{ id: TARGET, name: "web-1" }] });
  await using home = await tempHome();
  const env = { ...awsEnv(home), AWS_ENDPOINT_URL_EC2: emu.endpoint };
  const aws = ["--endpoint-url", emu.endpoint, "--region", emu.region];
  const made = await runRemote(["new", "--target", "web-1", "--name", "named", ...aws], { env });
  assertEquals(made.code, 0, made.stderr);
  assertEquals(emu.stats.startedTargets, [TARGET]);
  const byId = await runRemote(["get", "--computer-name", `ssm://${TARGET}`, ...aws, "--json"], { env });
  assertEquals(byId.code, 0, byId.stderr);
  const rows = byId.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assertEquals(rows.map((r) => [r.name, r.foreign, r.state]), [["named", false, "Disconnected"]]);
  assertEquals((await runRemote(["remove", "--name", "named"], { env })).code, 0);
  assertEquals(emu.stats.calls.TerminateSession, 1);
});
