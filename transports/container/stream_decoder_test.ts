import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { TransportError } from "../../plugins/mod.ts";
import { StreamDecoder } from "./stream_decoder.ts";

function frame(stream: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, payload.length);
  out.set(payload, 8);
  return out;
}

function collect(decoder: StreamDecoder, stream: Uint8Array, size: number): { stdout: number[]; stderr: number[] } {
  const got = { stdout: [] as number[], stderr: [] as number[] };
  for (let at = 0; at < stream.length; at += size) {
    for (const p of decoder.push(stream.subarray(at, at + size))) {
      if (p.stream === "system") throw new Error("unexpected system frame");
      got[p.stream].push(...p.bytes);
    }
  }
  decoder.finish();
  return got;
}

Deno.test("StreamDecoder splits stdout and stderr frames, recorded from Docker 20.10, in any chunking", () => {
  const enc = new TextEncoder();
  const big = new Uint8Array(300).map((_, i) => i % 256);
  // 01 00 00 00 00 00 00 05 "out1\n", 02 … 05 "err1\n", 01 … 01 2c + 300 bytes (containers reference, §1.4)
  const stream = new Uint8Array([
    ...frame(1, enc.encode("out1\n")),
    ...frame(2, enc.encode("err1\n")),
    ...frame(1, big),
  ]);
  assertEquals([...stream.subarray(0, 8)], [1, 0, 0, 0, 0, 0, 0, 5]);
  assertEquals([...stream.subarray(26, 34)], [1, 0, 0, 0, 0, 0, 1, 0x2c]);
  for (const size of [1, 3, 8, 9, 100, stream.length]) {
    const got = collect(new StreamDecoder(), stream, size);
    assertEquals(got.stdout, [...enc.encode("out1\n"), ...big], `chunks of ${size}`);
    assertEquals(got.stderr, [...enc.encode("err1\n")], `chunks of ${size}`);
  }
});

Deno.test("StreamDecoder passes a payload on before its frame is complete", () => {
  const decoder = new StreamDecoder();
  const header = new Uint8Array([1, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]); // announces 2 GiB
  assertEquals(decoder.push(header), []);
  const pieces = decoder.push(new Uint8Array([1, 2, 3]));
  assertEquals(pieces.map((p) => [p.stream, [...p.bytes]]), [["stdout", [1, 2, 3]]]);
  throws(() => decoder.finish(), (e) => e instanceof TransportError && /middle of a frame/.test(e.message));
});

Deno.test("StreamDecoder accepts empty frames and stream 0 as stdout, and reports stream 3 as system", () => {
  const pieces = new StreamDecoder().push(
    new Uint8Array([
      ...frame(2, new Uint8Array(0)),
      ...frame(0, new Uint8Array([7])),
      ...frame(3, new Uint8Array([33])),
    ]),
  );
  assertEquals(pieces.map((p) => [p.stream, [...p.bytes]]), [["stdout", [7]], ["system", [33]]]);
});

Deno.test("StreamDecoder rejects unframed bytes as a protocol error", () => {
  const tty = new TextEncoder().encode("hello world\r\n");
  throws(
    () => new StreamDecoder().push(tty),
    (e) => e instanceof TransportError && e.layer === "protocol" && e.exitCode === 244,
  );
});

Deno.test("StreamDecoder.finish() rejects a stream cut inside a header", () => {
  const decoder = new StreamDecoder();
  decoder.push(new Uint8Array([1, 0, 0]));
  throws(() => decoder.finish(), /middle of a frame/);
});
