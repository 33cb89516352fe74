import {
  deepStrictEqual as assertEquals,
  ok as assert,
  rejects,
  strictEqual as assertStrictEquals,
} from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as net from "node:net";
import { Readable } from "node:stream";
import { isolatedHome, readText, trustedContext } from "../../tests/harness/ssh_context.ts";
import { startSshd } from "../../tests/harness/sshd.ts";
import { CHANNEL_READ_BUFFER, channelReadable } from "./channel.ts";
import { open } from "./mod.ts";

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

Deno.test("channel input: each chunk's packets leave in one socket write, byte-exact through sshd", async () => {
  await using sshd = await startSshd();
  await using home = await isolatedHome();
  const ctx = await trustedContext(sshd, home);
  const chunk = 256 * 1024;
  const input = new Uint8Array(4 * 1024 * 1024);
  for (let i = 0; i < input.length; i += 65536) crypto.getRandomValues(input.subarray(i, i + 65536));
  const expected = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", input)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  // count the socket's write operations (one per _write, one per _writev) while the upload runs
  const proto = net.Socket.prototype as unknown as Record<"_write" | "_writev", (...a: unknown[]) => unknown>;
  const saved = { _write: proto._write, _writev: proto._writev };
  let ops = 0;
  proto._write = function (this: unknown, ...a: unknown[]) {
    ops++;
    return saved._write.apply(this, a);
  };
  proto._writev = function (this: unknown, ...a: unknown[]) {
    ops++;
    return saved._writev.apply(this, a);
  };
  try {
    await using ch = await open(ctx, { kind: "exec", command: "sha256sum | cut -c1-64" });
    const before = ops;
    const parts = Array.from({ length: input.length / chunk }, (_, i) => input.subarray(i * chunk, (i + 1) * chunk));
    const [out] = await Promise.all([readText(ch.stdout), ReadableStream.from(parts).pipeTo(ch.stdin)]);
    assertEquals(out.trim(), expected);
    // 128 packets of 32 KiB were one socket write each; now one per chunk written (writeCorked) or per
    // window adjustment read from the server (batchWritesPerRead in socket.ts), plus EOF and close: ~17
    const writes = ops - before;
    assert(writes <= 32, `${writes} socket writes for ${input.length / chunk} chunks of input`);
  } finally {
    Object.assign(proto, saved);
  }
});
