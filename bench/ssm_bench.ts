/**
 * Throughput of the ssm transport through tests/ssm_emulator.ts, in MB/s: shell output (`blob N`,
 * agent → client) and port forwarding to a local TCP server, each direction on one connection.
 * The emulator runs in the same process, so its cost is included: these are lower bounds.
 *
 * Run: deno run --allow-all bench/ssm_bench.ts [MB]
 *
 * @module
 */
import { forward, open } from "../transports/ssm/mod.ts";
import {
  blobBytes,
  emulatorContext,
  OutputReader,
  startSsmEmulator,
  type,
  useEmulatorCredentials,
} from "../tests/ssm_emulator.ts";

const MB = 1024 * 1024;

/** One measurement. */
export interface SsmBenchResult {
  name: string;
  value: number;
  unit: string;
}

async function shellOutput(size: number): Promise<number> {
  await using emu = await startSsmEmulator();
  await using ch = await open(emulatorContext(emu), { kind: "shell", pty: { term: "xterm", columns: 80, rows: 24 } });
  const out = new OutputReader(ch.stdout);
  await out.waitFor("$ ");
  const start = performance.now();
  await type(ch, `blob ${size}\r`);
  await out.waitFor(`blob ${size}\r\n`);
  await out.waitFor("$ ", 120_000);
  const seconds = (performance.now() - start) / 1000;
  await type(ch, "exit\r");
  await ch.exit;
  await out.done;
  return size / MB / seconds;
}

async function drain(conn: Deno.Conn, size: number): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  for (let got = 0; got < size;) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`connection ended after ${got} of ${size} bytes`);
    got += n;
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
}

/** One forwarded connection carrying `size` bytes one way; the TCP server is the far end. */
async function forwarded(size: number, direction: "upload" | "download"): Promise<number> {
  const data = blobBytes(size);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    try {
      if (direction === "upload") await drain(conn, size);
      else await writeAll(conn, data);
    } finally {
      conn.close();
    }
  })();
  await using emu = await startSsmEmulator();
  const ctx = emulatorContext(emu);
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const forwarding = forward(ctx, { localPort: 0, remotePort: listener.addr.port, onListening: resolve });
  forwarding.catch(() => {});
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: await listening });
    const start = performance.now();
    try {
      if (direction === "upload") await Promise.all([writeAll(conn, data), served]);
      else await drain(conn, size);
    } finally {
      conn.close();
    }
    const rate = size / MB / ((performance.now() - start) / 1000);
    if (Deno.env.get("SSM_BENCH_STATS")) console.error(direction, JSON.stringify(emu.stats));
    return rate;
  } finally {
    ctx.abort.abort();
    await forwarding;
    await served.catch(() => {});
    listener.close();
  }
}

/** Measures MB/s of shell output and of forwarding each way through the emulator. */
export async function benchSsm(megabytes = 16): Promise<SsmBenchResult[]> {
  useEmulatorCredentials();
  const size = megabytes * MB;
  return [
    { name: "ssm emulator shell output", value: await shellOutput(size), unit: "MB/s" },
    { name: "ssm emulator forward upload", value: await forwarded(size, "upload"), unit: "MB/s" },
    { name: "ssm emulator forward download", value: await forwarded(size, "download"), unit: "MB/s" },
  ];
}

if (import.meta.main) {
  for (const r of await benchSsm(Number(Deno.args[0] ?? 16))) console.log(`${r.name}: ${r.value.toFixed(2)} ${r.unit}`);
}
