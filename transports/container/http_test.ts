import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { streamConn } from "./http.ts";

Deno.test("streamConn() reads a dialled stream in the reader's sizes, half-closes and closes once", async () => {
  const written: Uint8Array[] = [];
  let writableClosed = false;
  let disposed = 0;
  const conn = streamConn({
    readable: ReadableStream.from([new Uint8Array([1, 2, 3, 4, 5]), new Uint8Array([6])]),
    writable: new WritableStream({ write: (c) => void written.push(c), close: () => void (writableClosed = true) }),
    [Symbol.asyncDispose]() {
      disposed++;
      return Promise.resolve();
    },
  });
  const buf = new Uint8Array(2);
  const got: number[] = [];
  for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) got.push(...buf.subarray(0, n));
  assertEquals(got, [1, 2, 3, 4, 5, 6]);
  const out = new Uint8Array([9, 9]);
  assertEquals(await conn.write(out), 2);
  out[0] = 0; // the caller's buffer is its own again once write resolves
  await conn.closeWrite();
  assertEquals([written, writableClosed], [[new Uint8Array([9, 9])], true]);
  conn.close();
  conn.close();
  assertEquals(disposed, 1);
});
