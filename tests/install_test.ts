/**
 * install.sh from a checkout, as a newcomer runs it: into a fresh prefix, twice (idempotent), then the
 * installed `remote` from another folder, as the README's tour uses it: `--version`, `remote enter` (a
 * local shell, on a real terminal), `remote invoke local://localhost`, and the guides of `remote help`.
 * Here `deno compile` cannot fetch its runtime, so this covers the launcher fallback (the bundle, with
 * the PTY addon beside it); where it can, the compiled binary is checked the same way.
 */
import { deepStrictEqual as assertEquals, doesNotMatch, match, ok as assert } from "node:assert/strict";
import { spawnInPty } from "./pty.ts";
import { tempHome } from "./run_remote.ts";

const root = new URL("../", import.meta.url).pathname;
const decoder = new TextDecoder();

Deno.test("install.sh installs a remote that works as the source does: --version, enter on a terminal, invoke, help topics", async () => {
  await using home = await tempHome();
  const prefix = `${home.dir}/prefix`;
  const path = `${Deno.execPath().replace(/\/[^/]+$/, "")}:/usr/bin:/bin`;
  const env = { ...home.env, PATH: path, SHELL: "/bin/sh" };
  const install = () =>
    new Deno.Command("sh", {
      args: [`${root}install.sh`, "--prefix", prefix],
      cwd: home.dir,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  for (let round = 0; round < 2; round++) {
    const out = await install();
    const stderr = decoder.decode(out.stderr);
    assertEquals(out.code, 0, stderr);
    match(stderr, new RegExp(`installed ${prefix}/bin/remote|built ${prefix}/bin/remote`));
    match(stderr, new RegExp(`${prefix}/bin is not on your PATH`));
  }
  const remote = `${prefix}/bin/remote`;
  assertEquals((await Deno.stat(remote)).mode! & 0o755, 0o755);
  const run = async (args: string[]) => {
    const out = await new Deno.Command(remote, { args, cwd: "/", env, stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
    return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
  };

  const version = await run(["--version"]);
  assertEquals(version.code, 0, version.stderr);
  match(version.stdout, /^remote \d+\.\d+\.\d+\n.*\ntransports: ssh, winrm, ssm, local, container, k8s\n$/s);

  // the README tour's second line: a shell on this machine, on a real terminal, its exit status passed through
  {
    await using pty = await spawnInPty(remote, ["enter"], { cwd: "/", env: { ...env, PS1: "$ ", ENV: "" } });
    await pty.waitFor("$ ", 30_000);
    pty.write("echo installed-$((40+2))\r");
    await pty.waitFor("installed-42");
    pty.write("exit 3\r");
    assertEquals(await pty.exited, { code: 3 }, pty.output());
  }
  {
    await using pty = await spawnInPty(remote, ["enter", "local://localhost"], {
      cwd: "/",
      env: { ...env, PS1: "$ ", ENV: "" },
    });
    await pty.waitFor("$ ", 30_000);
    pty.write("tty >/dev/null && echo on-a-tty-$((6*7))\r");
    await pty.waitFor("on-a-tty-42");
    pty.write("exit 5\r");
    assertEquals(await pty.exited, { code: 5 }, pty.output());
  }
  assertEquals(await run(["invoke", "local://localhost", "--", "echo ok; exit 4"]), {
    code: 4,
    stdout: "ok\n",
    stderr: "",
  });

  // the guides travel inside: no docs/ beside an installed remote
  const topics = await run(["help", "topics"]);
  assertEquals(topics.code, 0, topics.stderr);
  match(topics.stdout, /^guides \(remote help <topic>\):\n/);
  match(topics.stdout, /\n {2}exit-codes +Exit codes\n/);
  match(topics.stdout, /\n {2}copy\.md +Copying files\n/);
  const exitCodes = await run(["help", "exit-codes"]);
  assertEquals(exitCodes.code, 0, exitCodes.stderr);
  assertEquals(exitCodes.stdout.split("\n")[0], "# Exit codes");
  match(exitCodes.stdout, /\| +230 \| usage +\|/);
  const top = await run(["--help"]);
  doesNotMatch(top.stdout, /source tree/);
  match(top.stdout, /'remote help topics'/);

  // without the addon beside the bundle, local is not offered, and using it says why in one line
  const share = `${prefix}/share/remote`;
  let addonRemoved = false;
  try {
    await Deno.stat(`${share}/remote.js`);
    await Deno.rename(`${share}/node_modules`, `${share}/node_modules.away`);
    addonRemoved = true;
  } catch {
    // a compiled binary: the addon is inside it
  }
  if (addonRemoved) {
    const lacking = await run(["--version"]);
    assertEquals(lacking.code, 0, lacking.stderr);
    match(
      lacking.stdout,
      /\ntransports: ssh, winrm, ssm, container, k8s\nunavailable here:\n {2}the local transport cannot run here: its PTY addon @lydell\/node-pty-\w+-\w+ cannot be loaded\n$/,
    );
    {
      await using pty = await spawnInPty(remote, ["enter"], { cwd: "/", env });
      assertEquals(await pty.exited, { code: 234 }, pty.output());
      assertEquals(
        pty.output().replace(/@lydell\/node-pty-\w+-\w+/, "@lydell/node-pty-OS-CPU"),
        "remote: the local transport cannot run here: its PTY addon @lydell/node-pty-OS-CPU cannot be loaded\r\n" +
          "hint: reinstall remote (sh install.sh puts the addon beside the bundle), or run it from the source tree\r\n",
      );
    }
    // a command on pipes needs no PTY, and still runs
    assertEquals(await run(["invoke", "local://localhost", "--", "echo pipes"]), {
      code: 0,
      stdout: "pipes\n",
      stderr: "",
    });
    // install.sh puts it back
    const again = await install();
    assertEquals(again.code, 0, decoder.decode(again.stderr));
    assertEquals((await run(["invoke", "local://localhost", "--", "echo back"])).stdout, "back\n");
  }
});

const USAGE_FIRST_LINE = "usage: install.sh [--prefix DIR] [--version X.Y.Z]";

Deno.test("install.sh --help prints its usage and nothing of the script, also when piped into sh", async () => {
  const fromFile = await new Deno.Command("sh", {
    args: [`${root}install.sh`, "--help"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  // as `curl -fsSL …/install.sh | sh -s -- --help` runs it: $0 is "sh", no file to read
  const piped = new Deno.Command("sh", {
    args: ["-s", "--", "--help"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  const writer = piped.stdin.getWriter();
  await writer.write(await Deno.readFile(`${root}install.sh`));
  await writer.close();
  const fromPipe = await piped.output();
  for (const out of [fromFile, fromPipe]) {
    const stdout = decoder.decode(out.stdout);
    assertEquals({ code: out.code, stderr: decoder.decode(out.stderr) }, { code: 0, stderr: "" });
    assertEquals(stdout.split("\n")[0], USAGE_FIRST_LINE);
    match(stdout, /\n {2}--prefix DIR +install into DIR\/bin/);
    match(stdout, /\n {2}-h, --help +print this help\n/);
    // no line of the script itself: no assignments, commands, case arms or comments
    for (const line of stdout.trimEnd().split("\n")) {
      doesNotMatch(line, /^(#|set |\s*\w+=|.*;;|\s*(if|fi|case|esac|done|while|cat|sed)\b)/, line);
    }
    assert(stdout.length < 2000);
  }
  assertEquals(decoder.decode(fromFile.stdout), decoder.decode(fromPipe.stdout));
});

Deno.test("install.sh rejects an unknown option with a hint", async () => {
  const out = await new Deno.Command("sh", {
    args: [`${root}install.sh`, "--frobnicate"],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  assertEquals(out.code, 2);
  assertEquals(
    decoder.decode(out.stderr),
    "install.sh: unknown option --frobnicate\nhint: install.sh [--prefix DIR] [--version X.Y.Z]\n",
  );
});
