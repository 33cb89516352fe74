/**
 * The ssm transport through the real command line: `remote enter --target i-…`, `remote enter ssm://i-…`
 * and `remote forward --target …`, against tests/ssm_emulator.ts (AWS cannot run here; the emulator's
 * header names the documents it follows). Interactive runs use a real PTY.
 *
 * @module
 */
import { deepStrictEqual as assertEquals, match, ok } from "node:assert/strict";
import { blobBytes, emulatorEnv, startSsmEmulator, TEST_CREDENTIALS } from "./ssm_emulator.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const TARGET = "i-0123456789abcdef0";

/** The environment of a user with static keys in the environment and nothing in ~/.aws. */
const awsEnv = (home: { env: Record<string, string>; dir: string }, keyId: string = TEST_CREDENTIALS.accessKeyId) =>
  emulatorEnv(home, { AWS_ACCESS_KEY_ID: keyId, SSH_AUTH_SOCK: "" });

const quote = (args: string[]) => args.map((a) => `'${a}'`).join(" ");

Deno.test("remote enter --target gives an SSM shell in a PTY: echo, size, resize, ~. and the terminal restored", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const command = quote([
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    MAIN,
    "enter",
    "--target",
    TARGET,
    "--endpoint-url",
    emu.endpoint,
    "--region",
    emu.region,
  ]);
  await using pty = await spawnInPty("/bin/sh", ["-c", `stty -g; ${command}; echo "code=$?"; stty -g`], {
    cols: 100,
    rows: 30,
    env: awsEnv(home),
  });
  const before = (await pty.waitFor(/^[0-9a-f:]{20,}\r?$/m)).trim();
  await pty.waitFor("$ ", 30_000);
  pty.write("echo hello-ssm\r");
  await pty.waitFor(/^hello-ssm\r$/m);
  pty.write("stty size\r");
  await pty.waitFor(/^30 100\r$/m);
  pty.resize(120, 40);
  // the bridge sends a Size message on SIGWINCH; poll until the agent's pty has it
  let resized = false;
  for (let i = 0; i < 20 && !resized; i++) {
    await new Promise((r) => setTimeout(r, 200));
    resized = emu.stats.lastSize?.cols === 120 && emu.stats.lastSize?.rows === 40;
  }
  pty.write("stty size\r");
  await pty.waitFor(/^40 120\r$/m);
  pty.write("\r~.");
  await pty.waitFor(/code=\d+/, 20_000);
  const after = (await pty.waitFor(/^[0-9a-f:]{20,}\r?$/m)).trim();
  assertEquals(after, before);
  match(pty.output(), /code=250/);
  await pty.exited;
  assertEquals(emu.stats.calls.StartSession, 1);
  // ~. leaves nothing running on the service
  for (let i = 0; i < 50 && emu.stats.calls.TerminateSession === undefined; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assertEquals(emu.stats.calls.TerminateSession, 1);
});

Deno.test("remote enter ssm://i-… opens the same shell and exits 0 when the shell exits", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  await using pty = await spawnInPty(
    Deno.execPath(),
    ["run", "-A", "--quiet", MAIN, "enter", `ssm://${TARGET}`, "--endpoint-url", emu.endpoint, "--region", emu.region],
    { cols: 90, rows: 20, env: awsEnv(home) },
  );
  await pty.waitFor("$ ", 30_000);
  pty.write("echo via-scheme\r");
  await pty.waitFor(/^via-scheme\r$/m);
  pty.write("stty size\r");
  await pty.waitFor(/^20 90\r$/m);
  pty.write("exit\r");
  assertEquals((await pty.exited).code, 0);
});

/** A TCP server on loopback that answers each read with "echo:" and the bytes. */
function startEchoServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(4096);
        try {
          for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
            await conn.write(new Uint8Array([...new TextEncoder().encode("echo:"), ...buf.subarray(0, n)]));
          }
        } catch { /* closed */ }
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      })();
    }
  })();
  return {
    port: listener.addr.port,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await serving.catch(() => {});
    },
  };
}

Deno.test("remote forward --target listens, round-trips bytes, and exits 0 on SIGINT leaving nothing listening", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const server = startEchoServer();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      MAIN,
      "forward",
      "--target",
      TARGET,
      "--local-port",
      "0",
      "--remote-port",
      String(server.port),
      "--endpoint-url",
      emu.endpoint,
      "--region",
      emu.region,
    ],
    env: awsEnv(home),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const stdout = new Response(child.stdout).text();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  try {
    let announced: RegExpExecArray | null = null;
    while (!announced) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`remote forward ended early: ${stderr}`);
      stderr += value;
      announced = /^remote: forwarding 127\.0\.0\.1:(\d+) to (.*)$/m.exec(stderr);
    }
    const port = Number(announced[1]);
    ok(port > 0);
    match(announced[2], new RegExp(`:${server.port} via `));
    for (const word of ["first", "second"]) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(new TextEncoder().encode(word));
        const buf = new Uint8Array(64);
        let got = "";
        while (got.length < `echo:${word}`.length) {
          const n = await conn.read(buf);
          if (n === null) break;
          got += new TextDecoder().decode(buf.subarray(0, n));
        }
        assertEquals(got, `echo:${word}`);
      } finally {
        conn.close();
      }
    }
    child.kill("SIGINT");
    const status = await child.status;
    for (let r = await reader.read(); !r.done; r = await reader.read()) stderr += r.value;
    assertEquals(status.code, 0, stderr);
    assertEquals(await stdout, "");
    await Deno.connect({ hostname: "127.0.0.1", port }).then(
      (conn) => {
        conn.close();
        throw new Error(`port ${port} still accepts connections after SIGINT`);
      },
      (error) => ok(error instanceof Deno.errors.ConnectionRefused, String(error)),
    );
    assertEquals(emu.stats.calls.TerminateSession, 1);
  } finally {
    clearTimeout(killer);
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await reader.cancel().catch(() => {});
    await stdout.catch(() => {});
    await server.close();
  }
});

Deno.test("remote enter --target with a key the service rejects exits 245 with one line and a hint", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const run = await runRemote(
    ["enter", "--target", TARGET, "--endpoint-url", emu.endpoint, "--region", emu.region],
    { env: awsEnv(home, "AKIDNOTKNOWNTOAWS000"), timeoutMs: 30_000 },
  );
  assertEquals(run.code, 245, run.stderr);
  match(run.stderr, /^remote: [^\n]+\nhint: [^\n]+\n$/);
  assertEquals(run.stderr.includes(TEST_CREDENTIALS.secretAccessKey), false, "the secret never appears");
  assertEquals(run.stdout, "");
  assertEquals(emu.stats.calls.StartSession, undefined, "a rejected signature is no session");
});

Deno.test("remote enter shows a CustomerMessage with control sequences escaped, one line per line", async () => {
  // a hostile or careless banner: set the window title, clear the screen, ring the bell, a C1 CSI
  const message = "\x1b]0;owned\x07\x1b[2J\x1b[Hwelcome\r\nsecond\x9b31m line\n";
  await using emu = await startSsmEmulator({ customerMessage: message });
  await using home = await tempHome();
  const run = await runRemote(
    ["enter", "--target", TARGET, "--endpoint-url", emu.endpoint, "--region", emu.region],
    { env: awsEnv(home), stdin: "exit\n", timeoutMs: 30_000 },
  );
  assertEquals(run.code, 0, run.stderr);
  assertEquals(run.stderr, "\\x1b]0;owned\\x07\\x1b[2J\\x1b[Hwelcome\nsecond\\x9b31m line\n");
  match(run.stdout, /^\$ exit\r\n$/);
});

Deno.test("remote enter under a flood of out-of-order frames, stdout not read, holds a bounded number of bytes and then delivers all of them", async () => {
  const size = 24 * 1024 * 1024; // 384 frames of 64 KiB, the first held back until the others are sent
  await using emu = await startSsmEmulator({ floodFrameBytes: 64 * 1024 });
  await using home = await tempHome();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      MAIN,
      "enter",
      "--target",
      TARGET,
      "--endpoint-url",
      emu.endpoint,
      "--region",
      emu.region,
    ],
    env: awsEnv(home),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const stderr = new Response(child.stderr).text();
  const stdin = child.stdin.getWriter();
  try {
    await stdin.write(new TextEncoder().encode(`flood ${size}\n`));
    // nobody reads remote's stdout: wait until the agent is stuck resending what remote does not take,
    // or (the defect) until remote has taken everything
    while (emu.stats.outputBytesAcked < size && emu.stats.maxResendAttempts < 3) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const limit = 8 * 1024 * 1024; // 4 MiB out of order, 1 MiB queued for stdout, a pipe, frames in flight
    ok(emu.stats.floodEarlyAckedBytes <= 4 * 1024 * 1024, `buffered out of order: ${emu.stats.floodEarlyAckedBytes}`);
    ok(emu.stats.outputBytesAcked <= limit, `taken while stdout was not read: ${emu.stats.outputBytesAcked}`);

    const expected = new Uint8Array([
      ...new TextEncoder().encode(`$ flood ${size}\r\n`),
      ...blobBytes(size),
      ...new TextEncoder().encode("$ exit\r\n"),
    ]);
    const got = new Uint8Array(expected.length + 64);
    let length = 0;
    let exitSent = false;
    for await (const chunk of child.stdout) {
      got.set(chunk.subarray(0, got.length - length), length);
      length += chunk.length;
      if (!exitSent && length >= expected.length - "exit\r\n".length) {
        exitSent = true;
        await stdin.write(new TextEncoder().encode("exit\n"));
        await stdin.close();
      }
    }
    assertEquals((await child.status).code, 0, await stderr);
    assertEquals(length, expected.length);
    ok(got.subarray(0, length).every((b, i) => b === expected[i]), "the output differs from what the agent sent");
  } finally {
    clearTimeout(killer);
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await stderr.catch(() => {});
  }
});

/** A TCP server that, on each connection, sends `reply` at once and reads `expect` bytes, then closes it. */
function startTalkingServer(expect: number, reply: Uint8Array) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received: Uint8Array[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      (async () => {
        const got = new Uint8Array(expect);
        let at = 0;
        const writing = (async () => {
          for (let off = 0; off < reply.length;) off += await conn.write(reply.subarray(off));
        })();
        while (at < expect) {
          const n = await conn.read(got.subarray(at));
          if (n === null) break;
          at += n;
        }
        await writing;
        received.push(got.subarray(0, at));
      })().catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  })();
  return {
    port: listener.addr.port,
    received,
    async close() {
      listener.close();
      await serving.catch(() => {});
    },
  };
}

Deno.test("remote forward to an agent without smux (3.0.196.0) carries raw bytes both ways, byte for byte, connection after connection", async () => {
  // and the socket drops once before the agent could acknowledge the 5th data message, which it then
  // discards when it comes again (agents before 3.2.1041.0 do not ack processed input again)
  await using emu = await startSsmEmulator({ agentVersion: "3.0.196.0", faults: { loseInputAck: 5 } });
  await using home = await tempHome();
  const up = blobBytes(300_000).map((b, i) => b ^ (i & 0x1f));
  const down = blobBytes(200_000);
  const server = startTalkingServer(up.length, down);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      MAIN,
      "forward",
      "--target",
      TARGET,
      "--local-port",
      "0",
      "--remote-port",
      String(server.port),
      "--endpoint-url",
      emu.endpoint,
      "--region",
      emu.region,
    ],
    env: awsEnv(home),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const stdout = new Response(child.stdout).text();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  try {
    let announced: RegExpExecArray | null = null;
    while (!announced) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`remote forward ended early: ${stderr}`);
      stderr += value;
      announced = /^remote: forwarding 127\.0\.0\.1:(\d+) to /m.exec(stderr);
    }
    const port = Number(announced[1]);
    for (let round = 1; round <= 2; round++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        const got = new Uint8Array(down.length);
        const reading = (async () => {
          let at = 0;
          while (at < got.length) {
            const n = await conn.read(got.subarray(at));
            if (n === null) throw new Error(`round ${round}: the connection ended after ${at} bytes`);
            at += n;
          }
        })();
        for (let off = 0; off < up.length;) off += await conn.write(up.subarray(off));
        await reading;
        ok(got.every((b, i) => b === down[i]), `round ${round}: the bytes from the server differ`);
      } finally {
        conn.close();
      }
      // the server has what it read once its connection is done
      for (let i = 0; i < 200 && server.received.length < round; i++) await new Promise((r) => setTimeout(r, 50));
      assertEquals(server.received[round - 1]?.length, up.length, `round ${round}: bytes the server read`);
      ok(server.received[round - 1].every((b, i) => b === up[i]), `round ${round}: the bytes to the server differ`);
    }
    assertEquals(emu.stats.portMode, "basic");
    assertEquals(emu.stats.smuxProtocolErrors, 0);
    assertEquals(emu.stats.basicDials, 2, "one destination connection per local connection");
    assertEquals(emu.stats.resumes, 1);
    ok(emu.stats.inputDiscarded >= 1, "the agent discarded the message whose ack was lost");
    child.kill("SIGINT");
    const status = await child.status;
    for (let r = await reader.read(); !r.done; r = await reader.read()) stderr += r.value;
    assertEquals(status.code, 0, stderr);
    assertEquals(await stdout, "");
  } finally {
    clearTimeout(killer);
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await reader.cancel().catch(() => {});
    await stdout.catch(() => {});
    await server.close();
  }
});

Deno.test("remote forward holds a bounded number of bytes for a local client that does not read, then delivers all of them", async () => {
  await using emu = await startSsmEmulator();
  await using home = await tempHome();
  const down = blobBytes(32 * 1024 * 1024);
  const server = startTalkingServer(0, down);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      MAIN,
      "forward",
      "--target",
      TARGET,
      "--local-port",
      "0",
      "--remote-port",
      String(server.port),
      "--endpoint-url",
      emu.endpoint,
      "--region",
      emu.region,
    ],
    env: awsEnv(home),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  try {
    let announced: RegExpExecArray | null = null;
    while (!announced) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`remote forward ended early: ${stderr}`);
      stderr += value;
      announced = /^remote: forwarding 127\.0\.0\.1:(\d+) to /m.exec(stderr);
    }
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(announced[1]) });
    try {
      // the client does not read: wait until the agent is stuck resending, or (the defect) remote took it all
      while (emu.stats.outputBytesAcked < down.length && emu.stats.maxResendAttempts < 3) {
        await new Promise((r) => setTimeout(r, 100));
      }
      // 1 MiB queued in remote, the rest in the loopback socket's kernel buffers
      ok(emu.stats.outputBytesAcked <= 16 * 1024 * 1024, `taken while nobody read: ${emu.stats.outputBytesAcked}`);
      const got = new Uint8Array(down.length);
      for (let at = 0; at < got.length;) {
        const n = await conn.read(got.subarray(at));
        if (n === null) throw new Error(`the connection ended after ${at} bytes`);
        at += n;
      }
      ok(got.every((b, i) => b === down[i]), "the bytes from the server differ");
    } finally {
      conn.close();
    }
    child.kill("SIGINT");
    const status = await child.status;
    for (let r = await reader.read(); !r.done; r = await reader.read()) stderr += r.value;
    assertEquals(status.code, 0, stderr);
  } finally {
    clearTimeout(killer);
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await reader.cancel().catch(() => {});
    await server.close();
  }
});
