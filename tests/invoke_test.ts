/**
 * `remote invoke` end to end, through the real CLI against a real OpenSSH sshd on loopback: fan-out to
 * 50 ssh_config aliases (two unreachable), the throttle counted on the server, JSON lines, host files
 * on stdin, Ctrl-C, and connection reuse (handshakes counted in sshd's log, the master's idle exit).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type SshdServer, startSshd, withLogOnFailure } from "./harness/sshd.ts";
import { runRemote, type TempHome, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Writes known_hosts and an ssh_config with `count` aliases h01… of the sshd; returns the config path. */
async function aliases(
  sshd: SshdServer,
  home: TempHome,
  count: number,
  extra = "",
): Promise<string> {
  await Deno.mkdir(`${home.dir}/.ssh`, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(`${home.dir}/.ssh/known_hosts`, sshd.knownHostsLine() + "\n");
  const lines: string[] = [extra];
  for (let i = 1; i <= count; i++) {
    lines.push(`Host h${String(i).padStart(2, "0")}`, "  HostName 127.0.0.1", `  Port ${sshd.port}`);
  }
  lines.push("Host *", `  User ${sshd.user}`, `  IdentityFile ${sshd.userKey}`, "  IdentitiesOnly yes", "");
  const file = `${home.dir}/ssh_config`;
  await Deno.writeTextFile(file, lines.join("\n"));
  return file;
}

function handshakes(log: string): number {
  return (log.match(/Accepted publickey/g) ?? []).length;
}

/** A command that records how many copies of itself run at once (on the server), then prints its host alias. */
function countingCommand(dir: string): string {
  return `flock ${dir}/lock sh -c 'n=$(($(cat ${dir}/n 2>/dev/null || echo 0)+1)); echo $n > ${dir}/n; echo $n >> ${dir}/peaks'; ` +
    `sleep 0.2; flock ${dir}/lock sh -c 'echo $(($(cat ${dir}/n)-1)) > ${dir}/n'; echo ran`;
}

Deno.test("remote invoke runs on 48 of 50 aliases, reports the 2 unreachable, keeps to the throttle", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const refusedPort = (() => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      return port;
    })();
    const config = await aliases(sshd, home, 48, `Host down1\n  HostName 127.0.0.1\n  Port ${refusedPort}\n`);
    const counter = await Deno.makeTempDir({ prefix: "remote-throttle-" });
    try {
      const hosts = Array.from({ length: 48 }, (_, i) => `h${String(i + 1).padStart(2, "0")}`);
      hosts.splice(10, 0, "down1");
      hosts.splice(30, 0, "nowhere.invalid");
      assertEquals(hosts.length, 50);
      const r = await runRemote(
        ["invoke", ...hosts, "-F", config, "--throttle-limit", "4", "--", countingCommand(counter)],
        { env: home.env, timeoutMs: 120_000 },
      );
      const ran = r.stdout.split("\n").filter((l) => / ran$/.test(l)).map((l) => l.replace(/ ran$/, ""));
      assertEquals(ran.sort(), hosts.filter((h) => h.startsWith("h")).map((h) => `[${h}]`).sort(), r.stderr);
      assert(/^\[down1\] remote: connection refused/m.test(r.stderr), r.stderr);
      assert(/^\[nowhere\.invalid\] remote: /m.test(r.stderr), r.stderr);
      assert(/^remote: 2 of 50 hosts failed: /m.test(r.stderr), r.stderr);
      assert(r.code !== 0);
      const peaks = (await Deno.readTextFile(`${counter}/peaks`)).trim().split("\n").map(Number);
      assertEquals(peaks.length, 48);
      const peak = Math.max(...peaks);
      assert(peak <= 4, `at most 4 at once, the server saw ${peak}`);
      assert(peak >= 2, `the fan-out ran hosts in parallel (peak ${peak})`);
      // every alias is its own connection, each authenticated once
      assertEquals(handshakes(await sshd.log()), 48);
    } finally {
      await Deno.remove(counter, { recursive: true });
    }
  });
});

Deno.test("remote invoke --json prints one object per line and exits with the failing host's code", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const config = await aliases(sshd, home, 2);
    const r = await runRemote(
      ["invoke", "h01", "h02", "-F", config, "--json", "--no-reuse", "--", 'echo "out $0"; echo oops >&2; exit 3'],
      { env: home.env },
    );
    assertEquals(r.code, 3);
    assertEquals(r.stderr, "");
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    for (const host of ["h01", "h02"]) {
      const mine = lines.filter((l) => l.host === host);
      assertEquals(mine.filter((l) => l.stream === "stderr"), [{ host, stream: "stderr", data: "oops\n" }]);
      assertEquals(mine.filter((l) => l.stream === "stdout").length, 1);
      assertEquals(mine.at(-1), { host, stream: "exit", data: null, exitCode: 3 });
    }
  });
});

Deno.test("remote invoke reads targets from --host-file - and prefixes plain text without NO_COLOR", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const config = await aliases(sshd, home, 3);
    const env: Record<string, string> = { ...home.env };
    delete env.NO_COLOR; // stdout is a pipe: no colour either way
    const r = await runRemote(["invoke", "--host-file", "-", "-F", config, "--no-reuse", "--", "echo hi"], {
      env,
      stdin: "h01\n# a comment\nh03\n\n",
    });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stdout.split("\n").filter((l) => l).sort(), ["[h01] hi", "[h03] hi"]);
  });
});

Deno.test("remote invoke: Ctrl-C sends INT to every remote command and exits 130", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const config = await aliases(sshd, home, 2);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--quiet",
        MAIN,
        "invoke",
        "h01",
        "h02",
        "-F",
        config,
        "--",
        "trap 'echo got-int; exit 7' INT; echo started; sleep 60 & wait",
      ],
      env: { ...home.env, SSH_AUTH_SOCK: "" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    try {
      const decoder = new TextDecoder();
      let out = "";
      const reader = child.stdout.getReader();
      while ((out.match(/started/g) ?? []).length < 2) {
        const { value, done } = await reader.read();
        if (done) break;
        out += decoder.decode(value);
      }
      child.kill("SIGINT");
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        out += decoder.decode(value);
      }
      const status = await child.status;
      const stderr = decoder.decode(await new Response(child.stderr).arrayBuffer());
      assertEquals(status.code, 130, stderr);
      assert(/remote: interrupted/.test(stderr), stderr);
      // Each remote command was sent INT (RFC 4254 6.9). OpenSSH acts on it only with privilege
      // separation for a non-root login; where it does, the trap's output shows it.
      const log = await sshd.log();
      // (the master adds a TERM when its client leaves before the command ended)
      assert((log.match(/req signal/g) ?? []).length >= 2, "a signal request per host");
      if (!/signalling requires privilege separation/.test(log)) {
        assert(/^\[h01\] got-int$/m.test(out) && /^\[h02\] got-int$/m.test(out), out);
      }
    } finally {
      clearTimeout(killer);
    }
  });
});

Deno.test("remote invoke reuses one authenticated connection, and the master exits after its idle time", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const config = await aliases(sshd, home, 1);
    const args = ["invoke", "h01", "-F", config, "-o", "ControlPersist=2s", "--", "echo reused"];
    const first = await runRemote(args, { env: home.env });
    assertEquals([first.code, first.stdout, first.stderr], [0, "reused\n", ""]);
    assertEquals(handshakes(await sshd.log()), 1);
    const second = await runRemote(args, { env: home.env });
    assertEquals([second.code, second.stdout, second.stderr], [0, "reused\n", ""]);
    assertEquals(handshakes(await sshd.log()), 1, "the second call made no new handshake");

    const dir = `${home.env.XDG_RUNTIME_DIR}/remote`;
    const sockets = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".sock"));
    assertEquals(sockets.length, 1);
    const socket = `${dir}/${sockets[0].name}`;
    assertEquals((Deno.statSync(socket).mode ?? 0) & 0o777, 0o600);
    assertEquals((Deno.statSync(dir).mode ?? 0) & 0o777, 0o700);
    assert(masterPids(socket).length === 1, "one master runs");

    // idle 2 s: the master leaves, removes its socket, and closes its connection
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && (exists(socket) || masterPids(socket).length > 0)) {
      await new Promise((r) => setTimeout(r, 200));
    }
    assert(!exists(socket), "the socket is removed");
    assertEquals(masterPids(socket), []);

    const third = await runRemote([...args.slice(0, 4), "--no-reuse", ...args.slice(4)], { env: home.env });
    assertEquals(third.stdout, "reused\n");
    assertEquals(handshakes(await sshd.log()), 2, "--no-reuse connects afresh");
    assert(!exists(socket), "--no-reuse starts no master");
  });
});

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line names `socket` (the master's argv carries its socket path). */
function masterPids(socket: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (cmdline.includes("__transport-background") && cmdline.includes(socket)) pids.push(Number(e.name));
    } catch { /* the process ended meanwhile */ }
  }
  return pids;
}

/** Resident set now (VmRSS) and at its peak (VmHWM) of process `pid`, in MB. */
function residentMb(pid: number): { now: number; peak: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { now: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

/** SHA-256 of `head` (if given) and then everything `readable` yields, as hex. */
async function sha256Of(readable: ReadableStream<Uint8Array>, head?: Uint8Array): Promise<string> {
  const child = new Deno.Command("sha256sum", { stdin: "piped", stdout: "piped" }).spawn();
  if (head) {
    const writer = child.stdin.getWriter();
    await writer.write(head);
    writer.releaseLock();
  }
  await readable.pipeTo(child.stdin);
  return new TextDecoder().decode((await child.output()).stdout).split(" ")[0];
}

for (const reuse of [false, true]) {
  Deno.test(
    `remote invoke${reuse ? " through a reuse master" : ""} holds a paused reader's output back: ` +
      "the remote command waits, memory stays bounded, and all 190 MB arrive byte for byte",
    async () => {
      await using sshd = await startSshd();
      await using home = await tempHome();
      await withLogOnFailure(sshd, async () => {
        const config = await aliases(sshd, home, 1);
        const done = `${home.dir}/producer-done`;
        // ~190 MB of distinct lines: order and loss show in the checksum; the file marks the producer's end
        const command = `seq 1 25000000 && touch ${done}`;
        const expected = await sha256Of(
          new Deno.Command("seq", { args: ["1", "25000000"], stdout: "piped" }).spawn().stdout,
        );
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-all",
            "--quiet",
            MAIN,
            "invoke",
            "h01",
            "-F",
            config,
            ...(reuse ? ["-o", "ControlPersist=5s"] : ["--no-reuse"]),
            "--",
            command,
          ],
          env: { ...home.env, SSH_AUTH_SOCK: "" },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const killer = setTimeout(() => child.kill("SIGKILL"), 120_000);
        try {
          const reader = child.stdout.getReader();
          const first = await reader.read();
          assert(!first.done);
          // nobody reads for a while: everything the command writes must wait in bounded buffers
          await new Promise((r) => setTimeout(r, 3000));
          const paused = residentMb(child.pid);
          const masters = reuse ? masterPids(`${home.env.XDG_RUNTIME_DIR}/remote`) : [];
          const masterPaused = masters.map((pid) => residentMb(pid).now);
          assert(!exists(done), "the remote command is held back while its output is not read");
          assert(paused.now < 150, `remote holds ${paused.now.toFixed(0)} MB while its reader is paused`);
          for (const mb of masterPaused) assert(mb < 150, `the master holds ${mb.toFixed(0)} MB`);
          reader.releaseLock();
          const got = await sha256Of(child.stdout, first.value);
          const status = await child.status;
          const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
          assertEquals([status.code, stderr], [0, ""]);
          assertEquals(got, expected, "the output arrived whole and in order");
          assert(exists(done));
        } finally {
          clearTimeout(killer);
        }
      });
    },
  );
}

Deno.test("remote invoke's quick road for `host -- cmd` binds what the general road binds: both share one master connection", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const config = await aliases(sshd, home, 1);
    const given = ["h01", "-F", config, "-o", "ControlPersist=5s", "-o", `Port=${sshd.port}`];
    // the quick road takes `invoke HOST [-F FILE] [-o K=V]... -- CMD`; --throttle-limit sends it the general way
    const quick = await runRemote(["invoke", ...given, "--", "echo", "quick"], { env: home.env });
    const general = await runRemote(["invoke", ...given, "--throttle-limit", "32", "--", "echo general"], {
      env: home.env,
    });
    assertEquals([quick.code, quick.stdout, quick.stderr], [0, "quick\n", ""]);
    assertEquals([general.code, general.stdout, general.stderr], [0, "general\n", ""]);
    assertEquals(handshakes(await sshd.log()), 1, "the same request, so the same pooled connection");
  });
});

Deno.test("remote invoke host -- cmd still follows a config file that maps the host to another transport", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    await aliases(sshd, home, 1);
    await Deno.mkdir(`${home.env.XDG_CONFIG_HOME}/remote`, { recursive: true });
    await Deno.writeTextFile(`${home.env.XDG_CONFIG_HOME}/remote/config.toml`, '[hosts."h01"]\ntransport = "local"\n');
    const r = await runRemote(["invoke", "h01", "--", "echo", "ran:${SSH_CONNECTION:-here}"], {
      env: home.env,
    });
    assertEquals([r.code, r.stdout], [0, "ran:here\n"], r.stderr);
    assertEquals(handshakes(await sshd.log()), 0, "ssh was not used");
  });
});
