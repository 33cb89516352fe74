import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { OUTPUT_CHUNK_BYTES, OutputQueue } from "./output_queue.ts";

Deno.test("OutputQueue hands a waiting reader each payload at once, and what waits as one chunk", async () => {
  let pulls = 0;
  const q = new OutputQueue(() => pulls++);
  const reader = q.readable.getReader();
  const first = reader.read();
  q.push(new Uint8Array([1]));
  assertEquals((await first).value, new Uint8Array([1]));
  q.push(new Uint8Array([2]));
  q.push(new Uint8Array([3, 4]));
  assertEquals(q.bytes, 3);
  assertEquals((await reader.read()).value, new Uint8Array([2, 3, 4]));
  assertEquals(q.bytes, 0);
  q.push(new Uint8Array([5]));
  q.close();
  assertEquals((await reader.read()).value, new Uint8Array([5]));
  assertEquals((await reader.read()).done, true);
  assertEquals(pulls >= 2, true);
});

Deno.test("OutputQueue keeps chunks within OUTPUT_CHUNK_BYTES and in order; cancel drops what waits", async () => {
  const q = new OutputQueue();
  const payload = (n: number) => new Uint8Array(1024).fill(n);
  const count = OUTPUT_CHUNK_BYTES / 1024 + 3;
  for (let i = 0; i < count; i++) q.push(payload(i));
  const reader = q.readable.getReader();
  const a = (await reader.read()).value!;
  const b = (await reader.read()).value!;
  assertEquals([a.length, b.length], [OUTPUT_CHUNK_BYTES, 3 * 1024]);
  assertEquals([a[0], a[a.length - 1], b[0], b[b.length - 1]], [0, count - 4, count - 3, count - 1]);
  q.push(payload(9));
  await reader.cancel();
  assertEquals([q.cancelled, q.bytes], [true, 0]);
  q.push(payload(9));
  assertEquals(q.bytes, 0);
});

Deno.test("OutputQueue.error fails the reader", async () => {
  const q = new OutputQueue();
  const reader = q.readable.getReader();
  const pending = reader.read();
  q.error(new Error("lost"));
  const failed = await pending.then(() => "", (e: Error) => e.message);
  assertEquals(failed, "lost");
});
