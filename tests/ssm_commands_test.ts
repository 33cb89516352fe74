/**
 * Commands over Session Manager through the real command line: `remote invoke --target i-… -- cmd` runs
 * the command as `aws ssm start-session --document-name AWS-StartNonInteractiveCommand` does, against
 * tests/ssm_emulator.ts (its header names the AWS documents it follows): output, stdin, the exit status
 * where the document reports it, fan-out over several instances and with an SSH host.
 *
 * @module
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { emulatorEnv, startSsmEmulator } from "./ssm_emulator.ts";
import { startSshd } from "./harness/sshd.ts";
import { runRemote, sshOptions, tempHome } from "./run_remote.ts";

const ONE = "i-0123456789abcdef0";
const TWO = "i-0fedcba9876543210";

const awsEnv = (home: { env: Record<string, string>; dir: string }) => emulatorEnv(home);

Deno.test("remote invoke --target runs a command with AWS-StartNonInteractiveCommand: output, stdin, and no status as the plugin", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const env = awsEnv(home);
  const aws = ["--endpoint-url", emu.endpoint, "--region", emu.region];

  const hello = await runRemote(["invoke", "--target", ONE, ...aws, "--", "echo", "hello", "ssm"], { env });
  assertEquals(hello, { code: 0, stdout: "hello ssm\n", stderr: "" });
  assertEquals(emu.stats.startedDocuments, ["AWS-StartNonInteractiveCommand"]);
  assertEquals(emu.stats.handshakeResponses.length, 1);

  // this document merges stderr and reports no exit status: remote exits 0, as the plugin does
  const merged = await runRemote(["invoke", `ssm://${ONE}`, ...aws, "--", "echo out; warn err; exit 3"], { env });
  assertEquals(merged, { code: 0, stdout: "out\nerr\n", stderr: "" });

  const stdin = await runRemote(["invoke", "--target", ONE, ...aws, "--", "readline"], { env, stdin: "typed line\n" });
  assertEquals(stdin, { code: 0, stdout: "got: typed line\n", stderr: "" });
  // every session ended with its command: nothing left running on the service
  assertEquals(emu.stats.calls.TerminateSession ?? 0, 0);
});

Deno.test("remote invoke with a separateOutputStream document keeps stderr apart and exits with the command's status", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const env = awsEnv(home);
  const aws = [
    "--endpoint-url",
    emu.endpoint,
    "--region",
    emu.region,
    "--document-name",
    "Emulator-SeparateOutputCommand",
  ];
  const run = await runRemote(["invoke", "--target", ONE, ...aws, "--", "echo out; warn err; exit 3"], { env });
  assertEquals(run, { code: 3, stdout: "out\n", stderr: "err\n" });
  const missing = await runRemote(["invoke", "--target", ONE, ...aws, "--", "no-such-command"], { env });
  assertEquals(missing.code, 127);
  match(missing.stderr, /^sh: no-such-command: command not found\n$/);
});

Deno.test("remote invoke fans one command out over several instances, and over SSM and SSH together", async () => {
  await using emu = await startSsmEmulator();
  await using sshd = await startSshd();
  await using home = await tempHome();
  const env = awsEnv(home);
  const aws = ["--endpoint-url", emu.endpoint, "--region", emu.region];
  const two = await runRemote(["invoke", "--target", ONE, "--target", TWO, ...aws, "--", "echo", "fan"], { env });
  assertEquals(two.code, 0, two.stderr);
  assertEquals(two.stdout.split("\n").sort().join("\n"), `\n[${ONE}] fan\n[${TWO}] fan`);
  assertEquals(emu.stats.startedTargets.sort(), [ONE, TWO].sort());

  const failing = await runRemote([
    "invoke",
    "--target",
    ONE,
    "--target",
    TWO,
    ...aws,
    "--document-name",
    "Emulator-SeparateOutputCommand",
    "--",
    "exit 4",
  ], { env });
  assertEquals(failing.code, 4);
  match(
    failing.stderr,
    new RegExp(`^remote: 2 of 2 hosts failed: (${ONE}|${TWO}) \\(exit 4\\), (${ONE}|${TWO}) \\(exit 4\\)\n`),
  );

  const knownHosts = `${home.dir}/known_hosts`;
  await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
  const mixed = await runRemote([
    "invoke",
    ...sshOptions(sshd, knownHosts),
    "--no-reuse",
    ...aws,
    `${sshd.user}@127.0.0.1`,
    `ssm://${ONE}`,
    "--",
    "echo",
    "mixed",
  ], { env });
  assertEquals(mixed.code, 0, mixed.stderr);
  match(mixed.stdout, new RegExp(`^\\[${sshd.user}@127\\.0\\.0\\.1\\] mixed$`, "m"));
  match(mixed.stdout, new RegExp(`^\\[ssm://${ONE}\\] mixed$`, "m"));
});
