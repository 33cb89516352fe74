/** Odd inputs a demanding user gives the real CLI: closed pipes, control characters, empty values. */
import { deepStrictEqual as assertEquals, match, ok } from "node:assert/strict";
import { runRemote, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

Deno.test("remote help enter into a pipe closed early prints no internal error", async () => {
  await using home = await tempHome();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN, "help", "enter"],
    env: home.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // closing the read end before remote writes is what `remote help enter | true` does
  await child.stdout.cancel();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    const stderr = new TextDecoder().decode((await child.output()).stderr);
    const { code } = await child.status;
    assertEquals(stderr, "");
    assertEquals(code, 141);
  } finally {
    clearTimeout(timer);
  }
});

Deno.test("remote error lines show control characters of a target escaped, on one line", async () => {
  await using home = await tempHome();
  const run = await runRemote(["enter", "a\nb\x1b[2J"], { env: home.env });
  assertEquals(run.code, 230);
  assertEquals(run.stderr.split("\n").length, 3, run.stderr);
  match(run.stderr, /^remote: malformed target 'a\\nb\\x1b\[2J'\nhint: /);
});

Deno.test("remote get shows a session name with terminal escapes escaped", async () => {
  await using home = await tempHome();
  const dir = `${home.env.XDG_STATE_HOME}/remote`;
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const session = {
    id: 1,
    instanceId: "0b5c3f2e-8f4e-4c59-9a4e-2d8c3a1b7e10",
    name: "Sess\x1b]0;pwned\x07ion1",
    computerName: "db1",
    transport: "ssh",
    state: "Disconnected",
    availability: "None",
    createdAt: "2025-01-02T03:04:05.000Z",
    lastSeenAt: "2025-01-02T04:00:00.000Z",
    target: { host: "db1" },
    parameters: {},
  };
  await Deno.writeTextFile(`${dir}/sessions.json`, JSON.stringify({ formatVersion: 1, sessions: [session] }), {
    mode: 0o600,
  });
  const table = await runRemote(["get"], { env: home.env });
  assertEquals(table.code, 0, table.stderr);
  ok(!table.stdout.includes("\x1b"), table.stdout);
  match(table.stdout, /Sess\\x1b\]0;pwned\\x07ion1 db1/);
  const whatIf = await runRemote(["remove", "--id", "1", "--what-if"], { env: home.env });
  assertEquals(whatIf.code, 0, whatIf.stderr);
  assertEquals(whatIf.stdout, "What if: removing session Sess\\x1b]0;pwned\\x07ion1 (Id 1) on db1\n");
  // --json keeps the name exactly: JSON escapes it already
  const json = await runRemote(["get", "--json"], { env: home.env });
  assertEquals(JSON.parse(json.stdout).name, session.name);
});

Deno.test("remote get with a bare argument names the verb, not an internal set name", async () => {
  await using home = await tempHome();
  const run = await runRemote(["get", "x"], { env: home.env });
  assertEquals(run.code, 230);
  ok(!run.stderr.includes("__AllParameterSets"), run.stderr);
  match(run.stderr, /^remote: unexpected argument "x": remote get takes no bare arguments\nhint: /);
});

Deno.test("remote --plugin= with an empty value is a usage error", async () => {
  await using home = await tempHome();
  const run = await runRemote(["--plugin=", "get"], { env: home.env });
  assertEquals(run.code, 230);
  assertEquals(run.stderr, "remote: --plugin needs a value\nhint: --plugin ./my_transport.ts\n");
});

Deno.test("remote invoke with a malformed target among several shows it escaped", async () => {
  await using home = await tempHome();
  const run = await runRemote(["invoke", "local://a", "a\x1b[2J", "--", "true"], { env: home.env });
  assertEquals(run.code, 230);
  ok(!run.stderr.includes("\x1b"), run.stderr);
  match(run.stderr, /a\\x1b\[2J/);
});
