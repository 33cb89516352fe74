import {
  deepStrictEqual as assertEquals,
  ok as assert,
  rejects,
  strictEqual as assertStrictEquals,
} from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import { CHANNEL_READ_BUFFER, channelReadable } from "./channel.ts";

/** A Node stream like ssh2's channel: bytes pushed from outside, `push` false once the buffer is full. */
function source(): Readable {
  return new Readable({ read() {}, highWaterMark: CHANNEL_READ_BUFFER });
}

Deno.test("channelReadable hands on the channel's buffers as they are, in order, and ends with the stream", async () => {
  const src = source();
  const chunks = [Buffer.from("first "), Buffer.from("second "), Buffer.from("third")];
  const web = channelReadable(src);
  for (const c of chunks) src.push(c);
  src.push(null);
  const got: Uint8Array[] = [];
  for await (const c of web) got.push(c);
  // the same objects: no copy of the data on the way (Readable.toWeb copies each chunk under Deno)
  assertEquals(got.length, 3);
  for (const [i, c] of got.entries()) assertStrictEquals(c, chunks[i]);
});

Deno.test("channelReadable pauses the channel once its buffer holds CHANNEL_READ_BUFFER bytes, and resumes on read", async () => {
  const src = source();
  const web = channelReadable(src);
  const piece = Buffer.alloc(32 * 1024, 7);
  for (let i = 0; i < CHANNEL_READ_BUFFER / piece.length - 1; i++) src.push(piece);
  await new Promise((r) => setTimeout(r, 0));
  assert(!src.isPaused(), "paused before the buffer was full");
  src.push(piece);
  await new Promise((r) => setTimeout(r, 0));
  assert(src.isPaused(), "still flowing with a full buffer: the SSH window would never close");
  const reader = web.getReader();
  await reader.read();
  await new Promise((r) => setTimeout(r, 0));
  assert(!src.isPaused(), "not resumed after a read");
  src.push(null);
  let bytes = piece.length;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.length;
  }
  assertEquals(bytes, CHANNEL_READ_BUFFER);
});

Deno.test("channelReadable errors when the channel closes without an end, or fails", async () => {
  const cut = source();
  const web = channelReadable(cut);
  cut.push(Buffer.from("x"));
  cut.destroy();
  await rejects(() => Array.fromAsync(web));

  const failed = source();
  const web2 = channelReadable(failed);
  failed.destroy(new Error("link lost"));
  await rejects(() => Array.fromAsync(web2), /link lost/);
});

Deno.test("channelReadable: cancelling the web stream destroys the channel's stream", async () => {
  const src = source();
  const web = channelReadable(src);
  src.push(Buffer.from("x"));
  await web.cancel();
  assert(src.destroyed);
});
