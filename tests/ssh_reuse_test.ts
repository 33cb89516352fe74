/**
 * The SSH connection-reuse master under load and misuse, through the real CLI against a real OpenSSH
 * sshd on loopback: many reused invokes at once (every exit code and byte kept), a server limiting
 * sessions per connection, an unusable socket directory or a master that cannot start (direct
 * connection at once), what environment the master holds and the client sends, and a host key revoked
 * while the master holds a connection.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  encodeFrame,
  Frame,
  FrameDecoder,
  framePayloadJson,
  masterSocketPath,
} from "../transports/ssh/reuse_protocol.ts";
import { reusedRuns } from "./harness/reuse_load.ts";
import { type SshdServer, startSshd, withLogOnFailure } from "./harness/sshd.ts";
import { runRemote, type TempHome, tempHome } from "./run_remote.ts";

/** Writes known_hosts and an ssh_config with aliases h01…h`count` of the sshd; returns the config path. */
async function aliases(sshd: SshdServer, home: TempHome, count: number): Promise<string> {
  await Deno.mkdir(`${home.dir}/.ssh`, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(`${home.dir}/.ssh/known_hosts`, sshd.knownHostsLine() + "\n");
  const lines: string[] = [];
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

/** Processes whose command line names `text` (a master's argv carries its socket path). */
function masterPids(text: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (cmdline.includes("__transport-background") && cmdline.includes(text)) pids.push(Number(e.name));
    } catch { /* the process ended meanwhile */ }
  }
  return pids;
}

/** Stops the masters started under `dir` (their socket paths name it). */
function stopMasters(dir: string): void {
  for (const pid of masterPids(dir)) {
    try {
      Deno.kill(pid, "SIGTERM");
    } catch { /* gone already */ }
  }
}

Deno.test("200 reused invokes of one host, 50 at a time from no master, keep every exit code and every byte", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const config = await aliases(sshd, home, 1);
    try {
      let runs = 0;
      const wrong = { wrongExits: 0, lostBytes: 0 };
      const samples: string[] = [];
      for (let round = 0; round < 4; round++) {
        // each round begins without a master (killed, its socket left behind): 50 clients start one at once
        for (const pid of masterPids(home.dir)) Deno.kill(pid, "SIGKILL");
        for (let i = 0; i < 100 && masterPids(home.dir).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
        const r = await reusedRuns(["h01", "-F", config, "-o", "ControlPersist=30s"], home.env, 50, 50);
        runs += r.runs;
        wrong.wrongExits += r.wrongExits;
        wrong.lostBytes += r.lostBytes;
        samples.push(...r.samples);
      }
      assertEquals(runs, 200);
      assertEquals(wrong, { wrongExits: 0, lostBytes: 0 }, samples.join("\n"));
      // the runs shared connections
      const logins = handshakes(await sshd.log());
      assert(logins <= 100, `${logins} logins for 200 runs`);
    } finally {
      stopMasters(home.dir);
    }
  });
});

Deno.test("a reused invoke keeps its output and exit status when the master hung up before stdin ended", async () => {
  await using home = await tempHome();
  const env = { ...home.env, SSH_AUTH_SOCK: "" };
  const socketPath = await masterSocketPath({
    get: (n) => ({ ...Deno.env.toObject(), ...env } as Record<string, string>)[n],
  });
  await Deno.mkdir(socketPath.slice(0, socketPath.lastIndexOf("/")), { recursive: true, mode: 0o700 });
  const listener = Deno.listen({ transport: "unix", path: socketPath });
  // A stand-in master: the command's output, its exit status, then it hangs up, as a real master does after a
  // quick command. The client's stdout is not read yet, so most of the output still waits in the socket; it is
  // small enough (96 KiB) to fit the socket's buffer, so the stand-in never waits on a client that waits on stdout.
  const frames = Array.from({ length: 6 }, (_, i) => new Uint8Array(16 << 10).fill(97 + i));
  const served = (async () => {
    const conn = await listener.accept();
    const decoder = new FrameDecoder();
    const buf = new Uint8Array(65536);
    while (!decoder.push(buf.subarray(0, (await conn.read(buf)) ?? 0)).some((f) => f.type === Frame.C_REQUEST));
    const write = async (bytes: Uint8Array) => {
      for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
    };
    await write(encodeFrame(Frame.M_OPENED));
    for (const f of frames) await write(encodeFrame(Frame.M_STDOUT, f));
    await write(encodeFrame(Frame.M_EXIT, { kind: "exited", code: 7 }));
    conn.close();
  })();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--quiet",
      new URL("../main.ts", import.meta.url).pathname,
      "invoke",
      "x",
      "--",
      "true",
    ],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    await served;
    // stdin ends only now: the client writes its end to a master that is gone
    await child.stdin.close();
    await new Promise((r) => setTimeout(r, 500));
    const out = await child.output();
    assertEquals(out.code, 7, new TextDecoder().decode(out.stderr));
    const want = new Uint8Array(frames.length * (16 << 10));
    frames.forEach((f, i) => want.set(f, i * f.length));
    assertEquals(out.stdout.length, want.length);
    assert(out.stdout.every((b, i) => b === want[i]), "stdout is the command's, byte for byte");
    assertEquals(new TextDecoder().decode(out.stderr), "");
  } finally {
    clearTimeout(killer);
    listener.close();
  }
});

Deno.test("a server allowing 2 sessions per connection: 12 reused invokes at once all run (more connections)", async () => {
  await using sshd = await startSshd({ config: "MaxSessions 2" });
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const config = await aliases(sshd, home, 1);
    try {
      // a first run starts the master, so the 12 then meet one master and its one connection
      const first = await runRemote(["invoke", "h01", "-F", config, "--", "echo up"], { env: home.env });
      assertEquals([first.code, first.stdout, first.stderr], [0, "up\n", ""]);
      // each command waits until all 12 run (bounded): 12 sessions open at once, whatever the machine's load
      const barrier = await Deno.makeTempDir({ prefix: "remote-barrier-" });
      try {
        const command = (i: number) =>
          `touch ${barrier}/${i}; n=0; while [ $(ls ${barrier} | wc -l) -lt 12 ] && [ $n -lt 600 ]; do ` +
          `sleep 0.1; n=$((n+1)); done; echo run-${i}; exit ${i % 5}`;
        const runs = await Promise.all(
          Array.from(
            { length: 12 },
            (_, i) =>
              runRemote(["invoke", "h01", "-F", config, "--", command(i)], { env: home.env, timeoutMs: 120_000 }),
          ),
        );
        for (const [i, r] of runs.entries()) {
          assertEquals([r.code, r.stdout], [i % 5, `run-${i}\n`], r.stderr);
          assert(!/open failed/.test(r.stderr), r.stderr);
        }
        const count = handshakes(await sshd.log());
        assert(count >= 6, `12 sessions at once need at least 6 connections of 2 sessions; ${count} logins`);
      } finally {
        await Deno.remove(barrier, { recursive: true });
      }
    } finally {
      stopMasters(home.dir);
    }
  });
});

Deno.test("a server taking one session per connection and one login at a time: 8 reused invokes at once all run", async () => {
  // MaxStartups 1 drops a second connection while one is still logging in: the master queues for a session then
  await using sshd = await startSshd({ config: "MaxSessions 1\nMaxStartups 1" });
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const config = await aliases(sshd, home, 1);
    try {
      const first = await runRemote(["invoke", "h01", "-F", config, "--", "echo up"], { env: home.env });
      assertEquals([first.code, first.stdout, first.stderr], [0, "up\n", ""]);
      const runs = await Promise.all(
        Array.from(
          { length: 8 },
          (_, i) =>
            runRemote(["invoke", "h01", "-F", config, "--", `sleep 0.5; echo run-${i}; exit ${i % 5}`], {
              env: home.env,
              timeoutMs: 120_000,
            }),
        ),
      );
      for (const [i, r] of runs.entries()) assertEquals([r.code, r.stdout], [i % 5, `run-${i}\n`], r.stderr);
    } finally {
      stopMasters(home.dir);
    }
  });
});

Deno.test("a socket directory of another user: invoke connects directly at once and says why, once", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const config = await aliases(sshd, home, 2);
    const tmp = `${home.dir}/tmp`;
    await Deno.mkdir(tmp);
    const uid = Deno.uid() ?? 0;
    const dir = `${tmp}/remote-${uid}`;
    // created first by another user (nobody), open to everyone, as /tmp allows
    await Deno.mkdir(dir);
    await Deno.chmod(dir, 0o777);
    await Deno.chown(dir, 65534, 65534);
    const env = { ...home.env, XDG_RUNTIME_DIR: "", TMPDIR: tmp };
    const one = await runRemote(["invoke", "h01", "-F", config, "--", "echo direct; exit 4"], {
      env,
      timeoutMs: 60_000,
    });
    assertEquals([one.code, one.stdout], [4, "direct\n"], one.stderr);
    assertEquals(
      one.stderr,
      `warning: connecting directly, without the connection-reuse master: ${dir} belongs to another user (uid 65534); ` +
        "remove it, or set XDG_RUNTIME_DIR to a private directory\n",
    );
    // two hosts: still said once
    const two = await runRemote(["invoke", "h01", "h02", "-F", config, "--", "echo ran"], { env, timeoutMs: 60_000 });
    assertEquals(two.code, 0, two.stderr);
    assertEquals(two.stdout.split("\n").filter((l) => l).sort(), ["[h01] ran", "[h02] ran"]);
    assertEquals((two.stderr.match(/connecting directly/g) ?? []).length, 1, two.stderr);
    assertEquals([...Deno.readDirSync(dir)], [], "nothing was put in the other user's directory");
    assertEquals(masterPids(tmp), [], "no master runs");
  });
});

Deno.test("a master that cannot listen (socket path too long): invoke connects directly and says why", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const config = await aliases(sshd, home, 1);
    // a unix socket path holds at most 107 bytes: this directory is private and fine, the path is not
    const runtime = `${home.dir}/${"r".repeat(110 - home.dir.length)}`;
    await Deno.mkdir(runtime, { mode: 0o700 });
    const env = { ...home.env, XDG_RUNTIME_DIR: runtime };
    const r = await runRemote(["invoke", "h01", "-F", config, "--", "echo direct"], { env, timeoutMs: 60_000 });
    assertEquals([r.code, r.stdout], [0, "direct\n"], r.stderr);
    assert(
      /^warning: connecting directly, without the connection-reuse master: the connection-reuse master exited \(code \d+\) without listening on /
        .test(r.stderr),
      r.stderr,
    );
    assertEquals(r.stderr.split("\n").length, 2, r.stderr);
  });
});

Deno.test("the reuse master holds only the environment ssh needs, never the first client's secrets", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const config = await aliases(sshd, home, 1);
    const env = {
      ...home.env,
      REMOTE_WINRM_PASSWORD: "winrm-sekrit",
      AWS_SECRET_ACCESS_KEY: "aws-sekrit",
      LC_ALL: "C.UTF-8",
    };
    try {
      const r = await runRemote(["invoke", "h01", "-F", config, "-o", "ControlPersist=30s", "--", "echo ok"], { env });
      assertEquals([r.code, r.stdout], [0, "ok\n"], r.stderr);
      const pids = masterPids(home.dir);
      assertEquals(pids.length, 1, "one master runs");
      const environ = Deno.readTextFileSync(`/proc/${pids[0]}/environ`).split("\0");
      assert(!environ.some((v) => v.includes("sekrit")), environ.join("\n"));
      assert(environ.includes(`HOME=${home.dir}`), environ.join("\n"));
      assert(environ.includes("LC_ALL=C.UTF-8"), environ.join("\n"));
    } finally {
      stopMasters(home.dir);
    }
  });
});

Deno.test("-o ControlPersist=1m30s keeps the reuse master for 90 s, as ssh reads the time", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const config = await aliases(sshd, home, 1);
    try {
      const args = ["invoke", "h01", "-F", config, "-o", "ControlPersist=1m30s", "--", "echo ok"];
      const r = await runRemote(args, { env: home.env });
      assertEquals([r.code, r.stdout], [0, "ok\n"], r.stderr);
      const pids = masterPids(home.dir);
      assertEquals(pids.length, 1, "one master runs");
      // the master's argv: ... __transport-background ssh master <socket> <idle ms>
      const argv = Deno.readTextFileSync(`/proc/${pids[0]}/cmdline`).split("\0").filter((a) => a !== "");
      assertEquals(argv.at(-1), "90000", argv.join(" "));
    } finally {
      stopMasters(home.dir);
    }
  });
});

Deno.test("a reuse client sends the master only the variables SendEnv names", async () => {
  await using home = await tempHome();
  const env = { ...home.env, LC_TEST: "one", AWS_SECRET_ACCESS_KEY: "aws-sekrit", SSH_AUTH_SOCK: "" };
  // a stand-in master on the socket the client will use, recording what the client sends
  const socketPath = await masterSocketPath({
    get: (n) => ({ ...Deno.env.toObject(), ...env } as Record<string, string>)[n],
  });
  await Deno.mkdir(socketPath.slice(0, socketPath.lastIndexOf("/")), { recursive: true, mode: 0o700 });
  const listener = Deno.listen({ transport: "unix", path: socketPath });
  const received: Uint8Array[] = [];
  const served = (async () => {
    const conn = await listener.accept();
    const decoder = new FrameDecoder();
    const reply = (type: number, payload?: unknown) => conn.write(encodeFrame(type, payload));
    const sent: Record<string, unknown> = {};
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      received.push(buf.slice(0, n));
      for (const frame of decoder.push(buf.subarray(0, n))) {
        if (frame.type === Frame.C_REQUEST) await reply(Frame.M_SENDENV, { patterns: ["LC_*"] });
        if (frame.type === Frame.C_SENDENV) {
          Object.assign(sent, framePayloadJson(frame.payload));
          await reply(Frame.M_OPENED);
          await reply(Frame.M_STDOUT, new TextEncoder().encode("ok\n"));
          await reply(Frame.M_EXIT, { kind: "exited", code: 0 });
        }
      }
    }
    conn.close();
    return sent;
  })();
  try {
    const r = await runRemote(["invoke", "somewhere", "--", "true"], { env, timeoutMs: 30_000 });
    assertEquals([r.code, r.stdout], [0, "ok\n"], r.stderr);
    assertEquals(await served, { env: { LC_TEST: "one" } });
    const all = new TextDecoder().decode(new Uint8Array(received.flatMap((b) => [...b])));
    assert(!all.includes("sekrit"), "no other variable crossed the socket");
  } finally {
    listener.close();
  }
});

Deno.test("a host key revoked in known_hosts stops a reuse master's held connection from serving", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    const config = await aliases(sshd, home, 1);
    const args = ["invoke", "h01", "-F", config, "-o", "ControlPersist=30s", "--", "echo ok"];
    try {
      const first = await runRemote(args, { env: home.env });
      assertEquals([first.code, first.stdout], [0, "ok\n"], first.stderr);
      const revoked = sshd.hostKeys.map((k) => `@revoked [127.0.0.1]:${sshd.port} ${k.publicLine}`).join("\n");
      await Deno.writeTextFile(`${home.dir}/.ssh/known_hosts`, revoked + "\n", { append: true });
      const second = await runRemote(args, { env: home.env });
      assertEquals([second.code, second.stdout], [246, ""], second.stderr);
      assert(/is revoked in /.test(second.stderr), second.stderr);
      assertEquals(handshakes(await sshd.log()), 1, "no login after the revocation");
    } finally {
      stopMasters(home.dir);
    }
  });
});
