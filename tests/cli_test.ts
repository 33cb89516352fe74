/** The command line as a user meets it: help, version, usage errors, exit codes, the registry. */
import { deepStrictEqual as assertEquals, match, ok } from "node:assert/strict";
import { runCli } from "../core/cli.ts";
import type { TransportEntry } from "../core/transport_catalog.ts";
import { builtinTransports } from "../transports/mod.ts";
import { runRemote, tempHome } from "./run_remote.ts";

Deno.test("remote --version prints versions and built-in transports", async () => {
  await using home = await tempHome();
  const run = await runRemote(["--version"], { env: home.env });
  assertEquals(run.code, 0, run.stderr);
  match(run.stdout, /^remote \d+\.\d+\.\d+\n/);
  match(run.stdout, new RegExp(`deno ${Deno.version.deno.replace(/\./g, "\\.")}`));
  match(run.stdout, /transports: ssh, winrm, ssm, local/);
});

Deno.test("runCli() loads no transport for --version and --help", async () => {
  const trap: TransportEntry[] = builtinTransports.map((e) => ({
    ...e,
    load: () => Promise.reject(new Error(`${e.manifest.id} was loaded`)),
  }));
  assertEquals(await runCli(["--version"], { version: "0.0.0", transports: trap }), 0);
  assertEquals(await runCli(["--help"], { version: "0.0.0", transports: trap }), 0);
  assertEquals(await runCli(["help", "enter"], { version: "0.0.0", transports: trap }), 0);
});

Deno.test("remote with an unknown verb exits 230 with a hint", async () => {
  await using home = await tempHome();
  const run = await runRemote(["entr", "db1"], { env: home.env });
  assertEquals(run.code, 230);
  assertEquals(
    run.stderr,
    "remote: 'entr' is not a remote verb\nhint: did you mean 'remote enter'? all verbs: remote --help\n",
  );
});

Deno.test("remote enter with a malformed host exits 230 naming the problem", async () => {
  await using home = await tempHome();
  const run = await runRemote(["enter", "db_1!:22"], { env: home.env });
  assertEquals(run.code, 230);
  match(run.stderr, /^remote: malformed target 'db_1!:22': 'db_1!' is not a valid host name\nhint: /);
  ok(!run.stderr.includes("    at "), "no stack trace");
});

Deno.test("remote enter with options of two transports names the clash", async () => {
  await using home = await tempHome();
  const run = await runRemote(["enter", "--computer-name", "a", "--host-name", "b"], { env: home.env });
  assertEquals(run.code, 230);
  match(run.stderr, /--computer-name/);
  match(run.stderr, /--host-name/);
});

Deno.test("remote enter --co is an ambiguous option listing its matches", async () => {
  await using home = await tempHome();
  const run = await runRemote(["enter", "--co", "x"], { env: home.env });
  assertEquals(run.code, 230);
  match(run.stderr, /--computer-name/);
  match(run.stderr, /--configuration-name/);
});

Deno.test("remote help enter prints one SYNTAX line per parameter set", async () => {
  await using home = await tempHome();
  const run = await runRemote(["help", "enter"], { env: home.env });
  assertEquals(run.code, 0, run.stderr);
  const syntax = run.stdout.split("\n").filter((l) => /^\s+remote enter /.test(l));
  ok(syntax.length >= 6, `expected a line per set, got:\n${run.stdout}`);
  const again = await runRemote(["enter", "--help"], { env: home.env });
  assertEquals(again.stdout, run.stdout);
});

Deno.test("remote plugin list shows the built-in transports", async () => {
  await using home = await tempHome();
  const run = await runRemote(["plugin", "list"], { env: home.env });
  assertEquals(run.code, 0, run.stderr);
  for (const id of ["ssh", "winrm", "ssm", "local"]) match(run.stdout, new RegExp(`^${id} +0\\.1\\.0 +built-in`, "m"));
});

Deno.test("remote completions bash prints a script that registers remote", async () => {
  await using home = await tempHome();
  const run = await runRemote(["completions", "bash"], { env: home.env });
  assertEquals(run.code, 0, run.stderr);
  match(run.stdout, /complete .*remote/);
  const bad = await runRemote(["completions", "tcsh"], { env: home.env });
  assertEquals(bad.code, 230);
});

Deno.test("remote get with a corrupt registry exits 232 and keeps the file", async () => {
  await using home = await tempHome();
  const dir = `${home.env.XDG_STATE_HOME}/remote`;
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = `${dir}/sessions.json`;
  await Deno.writeTextFile(file, "{ not json", { mode: 0o600 });
  const run = await runRemote(["get"], { env: home.env });
  assertEquals(run.code, 232);
  match(run.stderr, /sessions\.json/);
  match(run.stderr, /\nhint: /);
  assertEquals(await Deno.readTextFile(file), "{ not json");
});

Deno.test("remote get with an empty registry prints nothing and exits 0", async () => {
  await using home = await tempHome();
  const run = await runRemote(["get"], { env: home.env });
  assertEquals(run, { code: 0, stdout: "", stderr: "" });
});

Deno.test("remote with a bad config file exits 231 naming file and line", async () => {
  await using home = await tempHome();
  await Deno.mkdir(`${home.env.XDG_CONFIG_HOME}/remote`, { recursive: true });
  await Deno.writeTextFile(`${home.env.XDG_CONFIG_HOME}/remote/config.toml`, "[defaults]\ntransport = \n");
  const run = await runRemote(["get"], { env: home.env });
  assertEquals(run.code, 231);
  match(run.stderr, /config\.toml:2/);
});

Deno.test("remote enter -e rejects a bad escape character before connecting", async () => {
  await using home = await tempHome();
  const run = await runRemote(["enter", "-e", "xx", "db1.invalid"], { env: home.env });
  assertEquals(run, {
    code: 230,
    stdout: "",
    stderr: 'remote: bad escape character "xx"\nhint: use one ASCII character, ^X for a control key, or none\n',
  });
});

Deno.test("remote enter with no target opens the local shell, and -e none passes ~. through", async () => {
  await using home = await tempHome();
  const run = await runRemote(["enter", "-e", "none"], {
    env: { ...home.env, SHELL: "/bin/sh" },
    stdin: "echo '~.' local-$((4+4))\nexit 6\n",
  });
  assertEquals(run, { code: 6, stdout: "~. local-8\n", stderr: "" });
});

Deno.test("remote invoke --throttle-limit takes the range config.toml's throttle_limit takes, 1 to 10000", async () => {
  await using home = await tempHome();
  const most = await runRemote(["invoke", "local://localhost", "--throttle-limit", "10000", "--", "echo", "ok"], {
    env: home.env,
  });
  assertEquals([most.code, most.stdout], [0, "ok\n"], most.stderr);
  const over = await runRemote(["invoke", "local://localhost", "--throttle-limit", "10001", "--", "echo", "ok"], {
    env: home.env,
  });
  assertEquals(over.code, 230);
  match(over.stderr, /^remote: --throttle-limit expects an integer from 1 to 10000, got "10001"\n/);
  const dir = `${home.env.XDG_CONFIG_HOME}/remote`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/config.toml`, "[defaults]\nthrottle_limit = 10000\n");
  const configured = await runRemote(["invoke", "local://localhost", "--", "echo", "ok"], { env: home.env });
  assertEquals([configured.code, configured.stdout], [0, "ok\n"], configured.stderr);
  await Deno.writeTextFile(`${dir}/config.toml`, "[defaults]\nthrottle_limit = 10001\n");
  const refused = await runRemote(["invoke", "local://localhost", "--", "echo", "ok"], { env: home.env });
  assertEquals(refused.code, 231);
  match(refused.stderr, /defaults\.throttle_limit must be an integer from 1 to 10000, not 10001\n/);
});
