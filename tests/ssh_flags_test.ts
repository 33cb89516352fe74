/**
 * ssh's command-line habits through `remote enter` against the real OpenSSH sshd: a command after `--` on a
 * pseudo-terminal (ssh -t), -t/-T, -4/-6, -q, -E, -C, -o keys checked as ssh checks them, -o LogLevel,
 * and the hint for ssh letters remote does not take.
 *
 * @module
 */
import { deepStrictEqual as assertEquals, match, strictEqual } from "node:assert/strict";
import { type SshdServer, startSshd } from "./harness/sshd.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, sshOptions, type TempHome, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

async function target(sshd: SshdServer, home: TempHome): Promise<string[]> {
  const knownHosts = `${home.dir}/known_hosts`;
  await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
  return [...sshOptions(sshd, knownHosts), `${sshd.user}@127.0.0.1`];
}

Deno.test("remote enter host -- cmd runs the command on a pseudo-terminal, -T without one, and returns its exit code", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const t = await target(sshd, home);
  const inPty = async (...args: string[]) => {
    await using pty = await spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "enter", ...args], {
      cols: 90,
      rows: 20,
      env: { ...home.env, SSH_AUTH_SOCK: "" },
    });
    const exit = await pty.exited;
    return { code: exit.code, output: pty.output() };
  };
  const tty = await inPty(...t, "--", "tty; stty size; exit 7");
  strictEqual(tty.code, 7, tty.output);
  match(tty.output, /\/dev\/pts\/\d+\r?\n20 90/);
  const noTty = await inPty("-T", ...t, "--", "tty");
  match(noTty.output, /not a tty/);
  // ssh -t without a terminal says so and runs the command anyway
  const piped = await runRemote(["enter", "-t", ...t, "--", "echo", "piped-$((6*7))"], { env: home.env });
  strictEqual(piped.code, 0, piped.stderr);
  strictEqual(piped.stdout, "piped-42\n");
  strictEqual(piped.stderr, "Pseudo-terminal will not be allocated because stdin is not a terminal.\n");
});

Deno.test("ssh letters remote does not take get their own hint, not another option's", async () => {
  await using home = await tempHome();
  const x = await runRemote(["enter", "-X", "db1"], { env: home.env });
  strictEqual(x.code, 230);
  strictEqual(x.stderr, "remote: unknown option -X\nhint: ssh: X11 forwarding is not supported\n");
  const f = await runRemote(["invoke", "-f", "db1", "--", "true"], { env: home.env });
  match(f.stderr, /^remote: unknown option -f\nhint: ssh: run it in the background with your shell/);
  // -D, -N, -t, -4 are options now, not --document-name, --name, --target or a host name
  for (const letter of ["-D", "-N", "-t", "-4"]) {
    const help = await runRemote(["enter", "--help"], { env: home.env });
    match(help.stdout, new RegExp(`^  ${letter}, --`, "m"), letter);
  }
  const v6 = await runRemote(["enter", "-4", "[::1]"], { env: home.env });
  strictEqual(v6.code, 240, v6.stderr);
  match(v6.stderr, /^remote: ::1 is not an IPv4 address \(-4\)\n/);
});

Deno.test("-4 connects over IPv4, -6 refuses an IPv4 address, -C says plainly that it does not compress", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const t = await target(sshd, home);
  const v4 = await runRemote(["enter", "-4", "-C", ...t, "--", "head -c 300000 /dev/zero | wc -c"], {
    env: home.env,
  });
  strictEqual(v4.code, 0, v4.stderr);
  strictEqual(v4.stdout.trim(), "300000");
  strictEqual(v4.stderr, "warning: compression (-C) is not available in remote; connecting uncompressed\n");
  match(await sshd.log(), /compression: none/);
  const v6 = await runRemote(["enter", "-6", ...t, "--", "true"], { env: home.env });
  strictEqual(v6.code, 240, v6.stderr);
  match(v6.stderr, /^remote: 127\.0\.0\.1 is not an IPv6 address \(-6\)\n/);
});

Deno.test("-o keys are checked as ssh checks them; IgnoreUnknown lets one pass", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const t = await target(sshd, home);
  const bad = await runRemote(["enter", ...t, "-o", "NoSuchKey=1", "--", "true"], { env: home.env });
  strictEqual(bad.code, 230);
  strictEqual(
    bad.stderr,
    "remote: -o NoSuchKey=1: Bad configuration option: nosuchkey\n" +
      "hint: see the keywords in man ssh_config; -o IgnoreUnknown=<pattern> before it lets it pass\n",
  );
  const ignored = await runRemote(
    ["enter", ...t, "-o", "IgnoreUnknown=nosuch*", "-o", "NoSuchKey=1", "--", "echo", "ok"],
    { env: home.env },
  );
  assertEquals(ignored, { code: 0, stdout: "ok\n", stderr: "" });
  const level = await runRemote(["enter", ...t, "-o", "LogLevel=LOUD", "--", "true"], { env: home.env });
  strictEqual(level.code, 230);
  match(level.stderr, /^remote: -o LogLevel=LOUD: unsupported log level\n/);
});

Deno.test("-q and -o LogLevel=ERROR silence warnings; -E appends them to a file", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  // an empty known_hosts with accept-new: the first connection warns that it added the key
  const run = async (...extra: string[]) => {
    const knownHosts = `${home.dir}/kh-${crypto.randomUUID()}`;
    await Deno.writeTextFile(knownHosts, "");
    return await runRemote([
      "enter",
      "-p",
      String(sshd.port),
      "-i",
      sshd.userKey,
      "-o",
      `UserKnownHostsFile=${knownHosts}`,
      "-o",
      "StrictHostKeyChecking=accept-new",
      ...extra,
      `${sshd.user}@127.0.0.1`,
      "--",
      "echo",
      "ran",
    ], { env: home.env });
  };
  const loud = await run();
  strictEqual(loud.code, 0, loud.stderr);
  match(loud.stderr, /permanently added/i);
  assertEquals(await run("-q"), { code: 0, stdout: "ran\n", stderr: "" });
  assertEquals(await run("-o", "LogLevel=ERROR"), { code: 0, stdout: "ran\n", stderr: "" });
  const log = `${home.dir}/remote.log`;
  assertEquals(await run("-E", log), { code: 0, stdout: "ran\n", stderr: "" });
  match(await Deno.readTextFile(log), /permanently added/i);
});
