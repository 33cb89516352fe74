import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { copyToOutput } from "./output.ts";

/** A source of `count` chunks of `size` bytes (chunk i filled with i % 256); counts how many were pulled. */
function source(count: number, size: number): { readable: ReadableStream<Uint8Array>; pulled(): number } {
  let i = 0;
  const readable = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i === count) return c.close();
      c.enqueue(new Uint8Array(size).fill(i++ % 256));
    },
  }, { highWaterMark: 0 });
  return { readable, pulled: () => i };
}

/** A sink whose writes finish only when `release()` is called; records what was written, write by write. */
function gatedSink() {
  const writes: Uint8Array[] = [];
  let gate = Promise.withResolvers<void>();
  return {
    writes,
    release() {
      gate.resolve();
      gate = Promise.withResolvers();
    },
    async write(p: Uint8Array): Promise<number> {
      writes.push(p.slice());
      await gate.promise;
      return p.length;
    },
  };
}

const joined = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
};

Deno.test("copyToOutput() gathers chunks that arrive during a write into one write, bytes in order", async () => {
  const src = source(64, 1000);
  const sink = gatedSink();
  const copy = copyToOutput(src.readable, sink, { limit: 1 << 20 });
  while (src.pulled() < 64) await new Promise((r) => setTimeout(r, 1));
  while (true) {
    sink.release();
    const settled = await Promise.race([copy.then(() => true), new Promise((r) => setTimeout(() => r(false), 5))]);
    if (settled) break;
  }
  assertEquals(sink.writes.length, 2, "the first chunk, then the 63 gathered while it was written");
  const expected = joined(Array.from({ length: 64 }, (_, i) => new Uint8Array(1000).fill(i)));
  assertEquals(joined(sink.writes), expected);
});

Deno.test("copyToOutput() stops reading once `limit` bytes wait for a stalled write", async () => {
  const src = source(1000, 1000);
  const sink = gatedSink();
  const copy = copyToOutput(src.readable, sink, { limit: 10_000 });
  await new Promise((r) => setTimeout(r, 50));
  // one chunk in the stalled write, 10 queued: the source is not read further
  assert(src.pulled() <= 12, `pulled ${src.pulled()} chunks`);
  while (true) {
    sink.release();
    const settled = await Promise.race([copy.then(() => true), new Promise((r) => setTimeout(() => r(false), 1))]);
    if (settled) break;
  }
  assertEquals(joined(sink.writes).length, 1_000_000);
  assert(sink.writes.every((w) => w.length <= 11_000), "no write larger than the limit and one chunk");
});

Deno.test("copyToOutput() throws a write's error and cancels the source", async () => {
  let cancelled = false;
  const readable = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(new Uint8Array(10)),
    cancel: () => void (cancelled = true),
  });
  const sink = { write: () => Promise.reject(new Deno.errors.BrokenPipe("gone")) };
  await rejects(copyToOutput(readable, sink), Deno.errors.BrokenPipe);
  assert(cancelled);
});

Deno.test("copyToOutput() writes synchronously when asked, every byte", async () => {
  const src = source(10, 100);
  const written: Uint8Array[] = [];
  const sink = {
    write: () => Promise.reject(new Error("async write used")),
    writeSync: (p: Uint8Array) => (written.push(p.slice(0, 60)), Math.min(60, p.length)),
  };
  await copyToOutput(src.readable, sink, { sync: true });
  assertEquals(joined(written), joined(Array.from({ length: 10 }, (_, i) => new Uint8Array(100).fill(i))));
});
