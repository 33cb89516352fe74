/**
 * End-to-end tests of the ssm transport's port forwarding: local listener → smux over the SSM data
 * channel → tests/ssm_emulator.ts's agent → a real TCP server on loopback.
 *
 * @module
 */
import { deepStrictEqual as assertEquals, rejects, strictEqual } from "node:assert/strict";
import { createHash } from "node:crypto";
import { forward } from "../transports/ssm/mod.ts";
import { blobBytes, emulatorContext, startSsmEmulator, useEmulatorCredentials } from "./ssm_emulator.ts";

useEmulatorCredentials();
const MB = 1024 * 1024;

function hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function pattern(size: number, seed: number): Uint8Array {
  const out = blobBytes(size);
  for (let i = 0; i < out.length; i += 4096) out[i] = seed;
  return out;
}

async function readExactly(conn: Deno.Conn, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let at = 0;
  while (at < size) {
    const n = await conn.read(out.subarray(at));
    if (n === null) throw new Error(`connection ended after ${at} of ${size} bytes`);
    at += n;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
}

/** A TCP server that sends `reply` to each client while reading `expect` bytes, and records their hash. */
function startServer(expect: number, reply: Uint8Array) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received: string[] = [];
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    const handlers: Promise<void>[] = [];
    for await (const conn of listener) {
      conns.add(conn);
      handlers.push(
        (async () => {
          try {
            const [got] = await Promise.all([readExactly(conn, expect), writeAll(conn, reply)]);
            received.push(hex(got));
          } finally {
            conns.delete(conn);
            conn.close();
          }
        })().catch(() => {}),
      );
    }
    await Promise.all(handlers);
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    received,
    async close() {
      listener.close();
      for (const c of conns) c.close();
      await serving;
    },
  };
}

Deno.test("forward() carries 10 MB each way on 3 concurrent connections, SHA-256 equal", async () => {
  const size = Number(Deno.env.get("SSM_FWD_MB") ?? 10) * MB;
  const reply = pattern(size, 0xee);
  const server = startServer(size, reply);
  await using emu = await startSsmEmulator();
  const ctx = emulatorContext(emu);
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const forwarding = forward(ctx, { localPort: 0, remotePort: server.port, onListening: resolve });
  forwarding.catch(() => {}); // an early failure is rethrown by the await in `finally`, not left unhandled
  try {
    const localPort = await listening;
    const sent = [1, 2, 3].map((seed) => pattern(size, seed));
    const results = await Promise.all(sent.map(async (data) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: localPort });
      try {
        const [got] = await Promise.all([readExactly(conn, size), writeAll(conn, data)]);
        return hex(got);
      } finally {
        conn.close();
      }
    }));
    assertEquals(results, [hex(reply), hex(reply), hex(reply)]);
    // the upload may still be in flight after the download finished; bounded wait for the server to see it all
    for (let i = 0; i < 2400 && server.received.length < 3; i++) await new Promise((r) => setTimeout(r, 50));
    assertEquals([...server.received].sort(), sent.map(hex).sort());
  } finally {
    ctx.abort.abort();
    await forwarding;
    await server.close();
  }
  strictEqual(emu.stats.calls.TerminateSession, 1);
  strictEqual(emu.stats.smuxProtocolErrors, 0);
  strictEqual(emu.stats.badClientDigests, 0, "the digests of remote's input and acknowledgements are right");
});

Deno.test("forward() to a remote host uses the ToRemoteHost document and reports a refused port", async () => {
  const server = startServer(5, new TextEncoder().encode("world"));
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  await using emu = await startSsmEmulator();
  for (const [port, works] of [[server.port, true], [closedPort, false]] as const) {
    const ctx = emulatorContext(emu);
    const { promise: listening, resolve } = Promise.withResolvers<number>();
    const forwarding = forward(ctx, { localPort: 0, remotePort: port, remoteHost: "localhost", onListening: resolve });
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: await listening });
      try {
        await writeAll(conn, new TextEncoder().encode("hello"));
        const buf = new Uint8Array(16);
        const n = await conn.read(buf);
        if (works) strictEqual(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "world");
        else strictEqual(n, null);
      } finally {
        conn.close();
      }
      if (!works) {
        for (let i = 0; i < 100 && ctx.notices.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
        assertEquals(ctx.notices, [`warning: the target could not connect to localhost ${closedPort}`]);
      }
    } finally {
      ctx.abort.abort();
      await forwarding;
    }
  }
  await server.close();
});

Deno.test("forward() refuses a local port that is taken", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await using emu = await startSsmEmulator();
    const port = (taken.addr as Deno.NetAddr).port;
    await rejects(() => forward(emulatorContext(emu), { localPort: port, remotePort: 80 }), (e: Error) => {
      strictEqual(e.message, `local port ${port} is already in use`);
      return true;
    });
    strictEqual(emu.stats.calls.StartSession, undefined);
  } finally {
    taken.close();
  }
});
