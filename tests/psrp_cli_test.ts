/**
 * `remote invoke --configuration-name powershell` through the CLI, against the real pwsh 7.6.9: as the
 * `powershell` SSH subsystem of the harness's real sshd (`Subsystem powershell … -sshs -NoLogo`, as
 * PowerShell's SSH remoting documentation configures it), and locally (`pwsh -s`, no host).
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { type SshdServer, startSshd, withLogOnFailure } from "./harness/sshd.ts";
import { findPwsh, pwshDir } from "./psrp_pwsh.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, type TempHome, tempHome } from "./run_remote.ts";

const TIMEOUT = 120_000;
const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** An sshd whose `powershell` subsystem is the real pwsh in -sshs mode. */
async function pwshSshd(): Promise<SshdServer> {
  const pwsh = await findPwsh();
  const subsystem = [
    pwsh.program === "dotnet" ? "/usr/bin/env dotnet" : pwsh.program,
    ...pwsh.prefix,
    "-sshs",
    "-NoLogo",
  ];
  return await startSshd({ config: `Subsystem powershell ${subsystem.join(" ")}` });
}

/** known_hosts and an ssh_config naming the sshd twice (h01, h02), as two hosts; returns the config path. */
async function aliases(sshd: SshdServer, home: TempHome): Promise<string> {
  await Deno.mkdir(`${home.dir}/.ssh`, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(`${home.dir}/.ssh/known_hosts`, sshd.knownHostsLine() + "\n");
  const lines = ["Host h01 h02", "  HostName 127.0.0.1", `  Port ${sshd.port}`, `  User ${sshd.user}`];
  lines.push(`  IdentityFile ${sshd.userKey}`, "  IdentitiesOnly yes", "");
  await Deno.writeTextFile(`${home.dir}/ssh_config`, lines.join("\n"));
  return `${home.dir}/ssh_config`;
}

/** invoke through the connection-reuse master (the default), which leaves 2 s after the last run */
const ps = (
  config: string,
  ...rest: string[]
) => ["invoke", "-F", config, "-o", "ControlPersist=2s", "--configuration-name", "powershell", ...rest];

Deno.test("invoke --configuration-name powershell runs a script on two SSH hosts: PowerShell's text, --json, errors, exit codes", async () => {
  await using sshd = await pwshSshd();
  await using home = await tempHome();
  const config = await aliases(sshd, home);
  await withLogOnFailure(sshd, async () => {
    // one host: PowerShell's own table formatting, unprefixed
    const one = await runRemote(ps(config, "h01", "--", "[pscustomobject]@{Name='alpha';Size=42} | Format-Table"), {
      env: home.env,
      timeoutMs: TIMEOUT,
    });
    assertEquals([one.code, one.stderr], [0, ""]);
    match(one.stdout, /^\n?Name +Size\n-+ +-+\nalpha +42\n/m);

    // two hosts: each line prefixed with its host
    const two = await runRemote(ps(config, "h01", "h02", "--", "'hi from ' + $PSVersionTable.PSVersion.Major"), {
      env: home.env,
      timeoutMs: TIMEOUT,
    });
    assertEquals(two.code, 0, two.stderr);
    assertEquals(two.stdout.split("\n").filter((l) => l !== "").sort(), ["[h01] hi from 7", "[h02] hi from 7"]);

    // --json: deserialised objects as property bags with their type names, per host
    const json = await runRemote(
      ps(
        config,
        "h01",
        "h02",
        "--json",
        "--argument-list",
        "x",
        "--argument-list",
        "y",
        "--",
        "[pscustomobject]@{A=1;B=$args}",
      ),
      { env: home.env, timeoutMs: TIMEOUT },
    );
    assertEquals(json.code, 0, json.stderr);
    const lines = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const outputs = lines.filter((l) => l.stream === "output").sort((a, b) => a.host.localeCompare(b.host));
    assertEquals(outputs.map((o) => o.host), ["h01", "h02"]);
    assertEquals(outputs[0].data, {
      PSTypeNames: ["System.Management.Automation.PSCustomObject", "System.Object"],
      A: 1,
      B: ["x", "y"],
    });
    assertEquals(lines.filter((l) => l.stream === "exit").map((l) => l.exitCode), [0, 0]);

    // errors as PowerShell shows them, on stderr; the exit code follows PowerShell's ($?, exit N, throw)
    const failed = await runRemote(ps(config, "h01", "--", "'before'; Get-Item /no/such/file"), {
      env: home.env,
      timeoutMs: TIMEOUT,
    });
    assertEquals(failed.stdout, "before\n");
    assertEquals(failed.stderr, "Get-Item: Cannot find path '/no/such/file' because it does not exist.\n");
    assertEquals(failed.code, 1);
    const recovered = await runRemote(ps(config, "h01", "--", "Write-Error boom; 'after'"), {
      env: home.env,
      timeoutMs: TIMEOUT,
    });
    assertEquals([recovered.code, recovered.stdout, recovered.stderr], [0, "after\n", "Write-Error: boom\n"]);
    const exit = await runRemote(ps(config, "h01", "--", "'x'; exit 7"), { env: home.env, timeoutMs: TIMEOUT });
    assertEquals([exit.code, exit.stdout], [7, "x\n"]);
    const native = await runRemote(ps(config, "h01", "--", "sh -c 'exit 3'; exit $LASTEXITCODE"), {
      env: home.env,
      timeoutMs: TIMEOUT,
    });
    assertEquals(native.code, 3);
    const thrown = await runRemote(ps(config, "h01", "--", "throw 'it broke'"), { env: home.env, timeoutMs: TIMEOUT });
    assertEquals([thrown.code, thrown.stderr], [1, "Exception: it broke\n"]);
    const mixed = await runRemote(ps(config, "h01", "h02", "--", "exit 5"), { env: home.env, timeoutMs: TIMEOUT });
    assertEquals(mixed.code, 5);
    match(mixed.stderr, /remote: 2 of 2 hosts failed: h01 \(exit 5\), h02 \(exit 5\)/);

    // piped stdin is the pipeline's input
    const piped = await runRemote(ps(config, "h01", "--", "$input | ForEach-Object { $_.ToUpper() }"), {
      env: home.env,
      stdin: "one\ntwo\n",
      timeoutMs: TIMEOUT,
    });
    assertEquals([piped.code, piped.stdout], [0, "ONE\nTWO\n"]);
  });
});

Deno.test("invoke --configuration-name powershell rides the connection-reuse master: runs after the first log in no more", async () => {
  await using sshd = await pwshSshd();
  await using home = await tempHome();
  const config = await aliases(sshd, home);
  await withLogOnFailure(sshd, async () => {
    const logins = async () => ((await sshd.log()).match(/Accepted publickey/g) ?? []).length;
    const args = ["invoke", "h01", "-F", config, "-o", "ControlPersist=5s", "--configuration-name", "powershell"];
    for (const n of [1, 2, 3]) {
      const r = await runRemote([...args, "--", `'run ' + ${n}`], { env: home.env, timeoutMs: TIMEOUT });
      assertEquals([r.code, r.stdout, r.stderr], [0, `run ${n}\n`, ""]);
    }
    assertEquals(await logins(), 1, "three runs, one SSH login");
    const direct = await runRemote([...args, "--no-reuse", "--", "'direct'"], { env: home.env, timeoutMs: TIMEOUT });
    assertEquals([direct.code, direct.stdout], [0, "direct\n"]);
    assertEquals(await logins(), 2, "--no-reuse connects afresh");
    // a host without the subsystem still says so through the master
    await using plain = await startSshd();
    const other = await aliases(plain, home);
    const missing = await runRemote([
      "invoke",
      "h01",
      "-F",
      other,
      "-o",
      "ControlPersist=5s",
      "--configuration-name",
      "powershell",
      "--",
      "1",
    ], {
      env: home.env,
      timeoutMs: TIMEOUT,
    });
    assertEquals(missing.code, 252);
    match(
      missing.stderr,
      /has no powershell subsystem \(the server refused it\)\nhint: add to the host's sshd_config: Subsystem powershell/,
    );
  });
});

Deno.test("pwsh+ssh://user@host is the SSH target with --configuration-name powershell: invoke, enter, the same errors as ssh://", async () => {
  await using sshd = await pwshSshd();
  await using home = await tempHome();
  const config = await aliases(sshd, home);
  await withLogOnFailure(sshd, async () => {
    const args = ["-F", config, "-o", "ControlPersist=2s"];
    // each target its own: PowerShell on the pwsh+ssh:// one, the login shell on the ssh:// one
    const mixed = await runRemote(
      ["invoke", `pwsh+ssh://${sshd.user}@h01`, "ssh://h02", ...args, "--", "echo $PSVersionTable.PSEdition"],
      { env: home.env, timeoutMs: TIMEOUT },
    );
    assertEquals(mixed.code, 0, mixed.stderr);
    assertEquals(mixed.stdout.split("\n").filter((l) => l !== "").sort(), [
      `[pwsh+ssh://${sshd.user}@h01] Core`,
      "[ssh://h02] .PSEdition",
    ]);
    // PowerShell's exit code, --json and --argument-list as with --configuration-name
    const json = await runRemote(
      ["invoke", "PWSH+SSH://h01", ...args, "--json", "--argument-list", "a", "--", "$args[0] + 1; exit 6"],
      { env: home.env, timeoutMs: TIMEOUT },
    );
    assertEquals(json.code, 6, json.stderr);
    const lines = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(lines.map((l) => [l.stream, l.data ?? l.exitCode]), [["output", "a1"], ["exit", 6]]);

    // enter: Enter-PSSession's prompt and exit code
    await using pty = await spawnInPty(
      Deno.execPath(),
      ["run", "-A", "--quiet", MAIN, "enter", `pwsh+ssh://${sshd.user}@h01`, "-F", config],
      { cols: 100, rows: 30, env: { ...home.env, SSH_AUTH_SOCK: "" } },
    );
    const prompt = new RegExp(`\\[pwsh\\+ssh://${sshd.user}@h01\\]: PS /\\S*> $`);
    await pty.waitFor(prompt, 60_000);
    pty.write("'edition ' + $PSVersionTable.PSEdition\r");
    await pty.waitFor(/^edition Core\r$/m, 30_000);
    await pty.waitFor(prompt);
    pty.write("exit 3\r");
    assertEquals((await pty.exited).code, 3);

    // the errors of an ssh:// target: a malformed target, and an unknown or non-PowerShell transport
    for (const target of ["pwsh+ssh://h01:99999", "pwsh+ssh://@h01"]) {
      const bad = await runRemote(["invoke", target, ...args, "--", "1"], { env: home.env });
      const ssh = await runRemote(["invoke", target.slice("pwsh+".length), ...args, "--", "1"], { env: home.env });
      assertEquals([bad.code, bad.stderr], [ssh.code, ssh.stderr.replace("'ssh://", "'pwsh+ssh://")]);
      assertEquals(bad.code, 230);
    }
    const unknown = await runRemote(["enter", "pwsh+docker://web1"], { env: home.env });
    assertEquals(unknown.code, 230);
    match(
      unknown.stderr,
      /^remote: no transport handles the scheme 'pwsh\+docker:\/\/'\nhint: known schemes: .*pwsh\+ssh/,
    );
  });
  // a host without the subsystem: 252 naming the sshd_config line, as with --configuration-name
  await using plain = await startSshd();
  const other = await aliases(plain, home);
  const missing = await runRemote(["invoke", "pwsh+ssh://h01", "-F", other, "--no-reuse", "--", "1"], {
    env: home.env,
    timeoutMs: TIMEOUT,
  });
  assertEquals(missing.code, 252);
  match(
    missing.stderr,
    /has no powershell subsystem \(the server refused it\)\nhint: add to the host's sshd_config: Subsystem powershell/,
  );
});

Deno.test("invoke --configuration-name powershell streams 10 MB of pipeline output whole", async () => {
  await using sshd = await pwshSshd();
  await using home = await tempHome();
  const config = await aliases(sshd, home);
  await withLogOnFailure(sshd, async () => {
    const r = await runRemote(ps(config, "h01", "--", "1..100000 | ForEach-Object { 'x' * 99 }"), {
      env: home.env,
      timeoutMs: 300_000,
    });
    assertEquals([r.code, r.stderr], [0, ""]);
    assertEquals(r.stdout.length, 100_000 * 100);
    assert(r.stdout === ("x".repeat(99) + "\n").repeat(100_000));
  });
});

/**
 * Runs `remote …args` with a JavaScript heap of at most 64 MB, reading its stdout as it comes (counting bytes and
 * checking each against `line` repeated), and returns its exit code, stderr and peak resident set size (Linux's
 * VmHWM, read from /proc while it runs).
 */
async function runMeasured(
  args: string[],
  env: Record<string, string>,
  line: string,
): Promise<{ code: number; bytes: number; intact: boolean; stderr: string; peakRssMb: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", "--v8-flags=--max-old-space-size=64", MAIN, ...args],
    env: { ...env, SSH_AUTH_SOCK: "" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 900_000);
  let peakKb = 0;
  const sample = () => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${child.pid}/status`));
      if (m) peakKb = Math.max(peakKb, Number(m[1]));
    } catch {
      // it has ended
    }
  };
  const sampler = setInterval(sample, 20);
  const expected = new TextEncoder().encode(line);
  let bytes = 0;
  let intact = true;
  const stderr = new Response(child.stderr).text();
  try {
    for await (const chunk of child.stdout) {
      for (let i = 0; i < chunk.length && intact; i++) intact = chunk[i] === expected[(bytes + i) % expected.length];
      bytes += chunk.length;
      sample();
    }
    const { code } = await child.status;
    return { code, bytes, intact, stderr: await stderr, peakRssMb: peakKb / 1024 };
  } finally {
    clearInterval(sampler);
    clearTimeout(timer);
  }
}

Deno.test("invoke --configuration-name powershell streams 100 MB of pipeline output with bounded memory", async () => {
  await using sshd = await pwshSshd();
  await using home = await tempHome();
  const config = await aliases(sshd, home);
  await withLogOnFailure(sshd, async () => {
    // --no-reuse: the whole client is one process; its JavaScript heap is capped at 64 MB, so holding the output
    // (100 MB of text) would end it, and its peak resident size stays well below the output's size plus its own
    const r = await runMeasured(
      [
        "invoke",
        "h01",
        "-F",
        config,
        "--no-reuse",
        "--configuration-name",
        "powershell",
        "--",
        "1..100000 | % { 'x' * 999 }",
      ],
      home.env,
      "x".repeat(999) + "\n",
    );
    assertEquals([r.code, r.stderr, r.bytes, r.intact], [0, "", 100_000_000, true]);
    assert(r.peakRssMb > 0 && r.peakRssMb < 250, `peak RSS ${r.peakRssMb.toFixed(1)} MB`);
  });
});

Deno.test("invoke --configuration-name powershell on a host without the subsystem names the sshd_config line (252)", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const config = await aliases(sshd, home);
  const r = await runRemote(ps(config, "h01", "--", "1"), { env: home.env, timeoutMs: TIMEOUT });
  assertEquals(r.code, 252);
  match(
    r.stderr,
    /^remote: \S+@127\.0\.0\.1:\d+ has no powershell subsystem \(the server refused it\)\nhint: add to the host's sshd_config: Subsystem powershell \/usr\/bin\/pwsh -sshs -NoLogo\n$/,
  );
});

Deno.test("invoke --configuration-name powershell with no host runs pwsh -s here; without pwsh, 252 and a hint", async () => {
  await using home = await tempHome();
  const PATH = `${await pwshDir()}:/usr/bin:/bin`;
  const r = await runRemote(["invoke", "--configuration-name", "powershell", "--", "1+1; exit 4"], {
    env: { ...home.env, PATH, POWERSHELL_TELEMETRY_OPTOUT: "1" },
    timeoutMs: TIMEOUT,
  });
  assertEquals([r.code, r.stdout, r.stderr], [4, "2\n", ""]);
  const missing = await runRemote(["invoke", "--configuration-name", "powershell", "--", "1"], {
    env: { ...home.env, PATH: "/nonexistent" },
    timeoutMs: TIMEOUT,
  });
  assertEquals(missing.code, 252);
  match(missing.stderr, /^remote: cannot start pwsh \(PowerShell 7\) on this computer\nhint: install PowerShell 7/);
});

Deno.test("enter --configuration-name powershell in a terminal: the remote prompt, a command, Read-Host, Tab, Up, Ctrl-C, exit N", async () => {
  await using sshd = await pwshSshd();
  await using home = await tempHome();
  const config = await aliases(sshd, home);
  await withLogOnFailure(sshd, async () => {
    await using pty = await spawnInPty(
      Deno.execPath(),
      ["run", "-A", "--quiet", MAIN, "enter", "h01", "-F", config, "--configuration-name", "powershell"],
      { cols: 100, rows: 30, env: { ...home.env, SSH_AUTH_SOCK: "" } },
    );
    // the prompt is the remote `prompt` function's, after Enter-PSSession's [host]: prefix
    await pty.waitFor(/\[h01\]: PS \/\S*> $/, 60_000);
    pty.write("'six times seven is ' + 6*7\r");
    await pty.waitFor(/^six times seven is 42\r$/m, 30_000);
    await pty.waitFor(/\[h01\]: PS \/\S*> $/);
    pty.write("$n = Read-Host 'Your name'; 'hello ' + $n.ToUpper()\r");
    await pty.waitFor("Your name: ", 30_000);
    pty.write("ada\r");
    await pty.waitFor(/^hello ADA\r$/m, 30_000);
    await pty.waitFor(/\[h01\]: PS \/\S*> $/);
    // a secure string is typed without echo
    pty.write(
      "$s = Read-Host 'Secret' -AsSecureString; 'length ' + [Net.NetworkCredential]::new('', $s).Password.Length\r",
    );
    await pty.waitFor("Secret: ", 30_000);
    pty.write("hunter2\r");
    await pty.waitFor(/^length 7\r$/m, 30_000);
    assert(!pty.output().includes("hunter2"));
    await pty.waitFor(/\[h01\]: PS \/\S*> $/);
    // Tab completes through TabExpansion2 in the remote runspace; Up recalls the previous line
    pty.write("Write-Outp\t");
    await pty.waitFor("Write-Output", 30_000);
    pty.write(" tabbed\r");
    await pty.waitFor(/^tabbed\r$/m, 30_000);
    await pty.waitFor(/\[h01\]: PS \/\S*> $/);
    pty.write("\x1b[A\r");
    await pty.waitFor(/^tabbed\r$/m, 30_000);
    await pty.waitFor(/\[h01\]: PS \/\S*> $/);
    // Ctrl-C stops the running pipeline, not the session
    pty.write("'sleeping'; Start-Sleep 100\r");
    await pty.waitFor(/^sleeping\r$/m, 30_000);
    pty.write("\x03");
    await pty.waitFor(/\[h01\]: PS \/\S*> $/, 30_000);
    pty.write("'still here'\r");
    await pty.waitFor(/^still here\r$/m, 30_000);
    await pty.waitFor(/\[h01\]: PS \/\S*> $/);
    pty.write("exit 9\r");
    assertEquals((await pty.exited).code, 9);
  });
});

Deno.test("enter --configuration-name powershell with no host is a local pwsh session", async () => {
  await using home = await tempHome();
  const PATH = `${await pwshDir()}:/usr/bin:/bin`;
  const r = await runRemote(["enter", "--configuration-name", "powershell"], {
    env: { ...home.env, PATH, POWERSHELL_TELEMETRY_OPTOUT: "1" },
    stdin: "'local ' + (2+3)\nexit 4\n",
    timeoutMs: TIMEOUT,
  });
  assertEquals(r.code, 4, r.stderr);
  match(r.stdout, /^\[localhost\]: PS \/\S*> local 5\n\[localhost\]: PS \/\S*> $/);
});

Deno.test("invoke --configuration-name powershell: Ctrl-C stops the remote pipeline and exits 130", async () => {
  await using sshd = await pwshSshd();
  await using home = await tempHome();
  const config = await aliases(sshd, home);
  await withLogOnFailure(sshd, async () => {
    await using pty = await spawnInPty(
      Deno.execPath(),
      [
        "run",
        "-A",
        "--quiet",
        MAIN,
        "invoke",
        "h01",
        "-F",
        config,
        "-o",
        "ControlPersist=2s",
        "--configuration-name",
        "powershell",
        "--",
        "'started'; Start-Sleep 100; 'not reached'",
      ],
      { cols: 100, rows: 30, env: { ...home.env, SSH_AUTH_SOCK: "" } },
    );
    await pty.waitFor(/^started\r$/m, 60_000);
    pty.write("\x03");
    assertEquals((await pty.exited).code, 130);
    assert(!pty.output().includes("not reached"));
  });
});
