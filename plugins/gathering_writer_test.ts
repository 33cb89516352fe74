import { deepStrictEqual as assertEquals, rejects } from "node:assert/strict";
import { GatheringWriter, type GatherSink } from "./gathering_writer.ts";

/** A sink whose writes settle when the test says so; each write is recorded as the bytes it took. */
function heldSink(most = Infinity) {
  const writes: number[][] = [];
  const pending: (() => void)[] = [];
  const sink: GatherSink = {
    write(p) {
      const n = Math.min(p.length, most);
      writes.push([...p.subarray(0, n)]);
      return new Promise((resolve) => pending.push(() => resolve(n)));
    },
  };
  /** settles the oldest write in flight */
  const next = async () => {
    await settle();
    pending.shift()?.();
    await settle();
  };
  return { sink, writes, next, inFlight: () => pending.length };
}

/** lets every callback that is due run */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

const bytes = (...xs: number[]) => new Uint8Array(xs);

Deno.test("GatheringWriter writes the chunks that arrive during a write together, in order, in the next", async () => {
  const { sink, writes, next } = heldSink();
  const out = new GatheringWriter(sink);
  await out.write(bytes(1));
  await out.write(bytes(2, 3));
  await out.write(bytes(4));
  assertEquals(out.held, 3);
  await next();
  await out.write(bytes(5));
  await next();
  await next();
  await out.close();
  assertEquals(writes, [[1], [2, 3, 4], [5]]);
});

Deno.test("GatheringWriter with waitTurn writes what arrives in the same turn of the event loop in one write", async () => {
  const { sink, writes, next } = heldSink();
  const out = new GatheringWriter(sink, { waitTurn: true });
  await out.write(bytes(1));
  await out.write(bytes(2, 3)); // awaited writes: later microtasks of the same turn
  assertEquals([writes, out.held], [[], 3]);
  await settle();
  await out.write(bytes(4)); // a later turn, during the write
  await next();
  await next();
  await out.close();
  assertEquals(writes, [[1, 2, 3], [4]]);
});

Deno.test("GatheringWriter continues a partial write from where it stopped", async () => {
  const written: number[] = [];
  const sink: GatherSink = {
    write: (p) => {
      const n = Math.min(p.length, 3);
      written.push(...p.subarray(0, n));
      return Promise.resolve(n);
    },
  };
  const out = new GatheringWriter(sink);
  const all = Array.from({ length: 50 }, (_, i) => i);
  for (let i = 0; i < all.length; i += 7) await out.write(new Uint8Array(all.slice(i, i + 7)));
  await out.close();
  assertEquals(written, all);
});

Deno.test("GatheringWriter.write waits while limit bytes are held, and goes on once a write takes them", async () => {
  const { sink, next } = heldSink();
  const out = new GatheringWriter(sink, { limit: 4 });
  await out.write(new Uint8Array(10)); // taken at once into the first write
  await out.write(new Uint8Array(3));
  let done = false;
  const waiting = out.write(new Uint8Array(1)).then(() => void (done = true));
  await settle();
  assertEquals([done, out.held], [false, 4]);
  await next();
  await waiting;
  assertEquals([done, out.held], [true, 0]);
  // push never waits: a source that cannot wait watches held
  out.push(new Uint8Array(5));
  assertEquals(out.held, 5);
  await next();
  await next();
  await out.close();
});

Deno.test("GatheringWriter fails once: onFailure runs once, what waits gets the error, later calls throw it", async () => {
  const lost = new Error("broken pipe");
  const pending: ((e: Error) => void)[] = [];
  const sink: GatherSink = { write: () => new Promise((_, reject) => pending.push(reject)) };
  const failures: unknown[] = [];
  const out = new GatheringWriter(sink, { limit: 2, onFailure: (e) => failures.push(e) });
  await out.write(bytes(1));
  const blocked = [out.write(bytes(2, 3)), out.write(bytes(4))];
  await settle();
  pending[0](lost);
  for (const w of blocked) await rejects(w, (e) => e === lost);
  assertEquals(failures, [lost]);
  assertEquals([out.failed, out.held, pending.length], [true, 0, 1]);
  await rejects(out.write(bytes(5)), (e) => e === lost);
  await rejects(out.flush(), (e) => e === lost);
  await rejects(out.close(), (e) => e === lost);
  assertEquals(out.push(bytes(6)), false);
  assertEquals(failures, [lost]);
});

Deno.test("GatheringWriter.onFailure can end a reader that waits in a read", async () => {
  const source = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) }); // never gives more
  const reader = source.getReader();
  const out = new GatheringWriter({ write: () => Promise.reject(new Error("EPIPE")) }, {
    onFailure: (e) => void reader.cancel(e),
  });
  await out.write(bytes(1));
  assertEquals((await reader.read()).done, true);
  await rejects(out.flush(), /EPIPE/);
});

Deno.test("GatheringWriter.flush and close settle once everything taken is written", async () => {
  const { sink, writes, next, inFlight } = heldSink();
  const out = new GatheringWriter(sink);
  await out.write(bytes(1));
  await out.write(bytes(2));
  let flushed = false;
  const flushing = out.flush().then(() => void (flushed = true));
  await next();
  assertEquals([flushed, inFlight()], [false, 1]);
  await next();
  await flushing;
  assertEquals(flushed, true);
  await out.write(bytes(3));
  let closed = false;
  const closing = out.close().then(() => void (closed = true));
  await settle();
  assertEquals(closed, false);
  await next();
  await closing;
  await out.close();
  assertEquals(writes, [[1], [2], [3]]);
  await rejects(out.write(bytes(4)), TypeError);
  assertEquals(out.push(bytes(4)), false);
});

Deno.test("GatheringWriter ignores zero-length chunks", async () => {
  const { sink, writes, next } = heldSink();
  const out = new GatheringWriter(sink);
  await out.write(new Uint8Array(0));
  assertEquals(writes, []);
  await out.write(bytes(1));
  await out.write(new Uint8Array(0));
  await out.write(bytes(2));
  await next();
  await next();
  await out.close();
  assertEquals(writes, [[1], [2]]);
});

Deno.test("GatheringWriter gathers in one reused buffer: a sink must be done with a batch once its write settles", async () => {
  const kept: Uint8Array[] = [];
  const pending: (() => void)[] = [];
  const sink: GatherSink = {
    write: (p) => new Promise((resolve) => pending.push(() => resolve(p.length)) && kept.push(p)),
  };
  const out = new GatheringWriter(sink);
  out.push(bytes(0));
  out.push(bytes(1));
  out.push(bytes(2));
  await settle();
  pending.shift()!();
  await settle();
  out.push(bytes(3));
  out.push(bytes(4));
  pending.shift()!();
  await settle();
  pending.shift()!();
  await out.close();
  // a sink that kept `p` sees the first gathered batch overwritten by the next
  assertEquals(kept.map((p) => [...p]), [[0], [3, 4], [3, 4]]);
});

Deno.test("GatheringWriter.abort drops what is held; its writable is a pipeTo target", async () => {
  const { sink, writes, next } = heldSink();
  const out = new GatheringWriter(sink);
  out.push(bytes(1));
  out.push(bytes(2));
  out.abort();
  assertEquals(out.held, 0);
  await next();
  await out.flush();
  assertEquals(writes, [[1]]);
  assertEquals(out.push(bytes(3)), false);

  const written: number[] = [];
  const piped = new GatheringWriter({ write: (p) => Promise.resolve(written.push(...p) && p.length) });
  await ReadableStream.from([bytes(1, 2), bytes(), bytes(3)]).pipeTo(piped.writable);
  assertEquals(written, [1, 2, 3]);
});
