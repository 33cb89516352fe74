import { deepStrictEqual as assertEquals, strictEqual } from "node:assert/strict";
import { maskedBinaryFrames } from "./ws_frames.ts";

/** Parses client frames as RFC 6455 §5.2 lays them out, unmasking each. */
function parse(
  bytes: Uint8Array,
): { fin: boolean; opcode: number; masked: boolean; key: number[]; payload: number[] }[] {
  const frames = [];
  for (let at = 0; at < bytes.length;) {
    const fin = (bytes[at] & 0x80) !== 0;
    const opcode = bytes[at] & 0x0f;
    const masked = (bytes[at + 1] & 0x80) !== 0;
    let n = bytes[at + 1] & 0x7f;
    at += 2;
    if (n === 126) {
      n = (bytes[at] << 8) | bytes[at + 1];
      at += 2;
    } else if (n === 127) {
      n = 0;
      for (let i = 0; i < 8; i++) n = n * 256 + bytes[at + i];
      at += 8;
    }
    const key = [...bytes.subarray(at, at + 4)];
    at += 4;
    const payload = Array.from(bytes.subarray(at, at + n), (b, i) => b ^ key[i & 3]);
    at += n;
    frames.push({ fin, opcode, masked, key, payload });
  }
  return frames;
}

Deno.test("maskedBinaryFrames() lays out final masked binary frames of every length class, each with its own key", () => {
  // lengths that start the next payload at every offset modulo 4
  const lengths = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 125, 126, 300, 301, 302, 303, 65535, 65536, 70000];
  const payloads = lengths.map((n) => Uint8Array.from({ length: n }, () => Math.random() * 256));
  const frames = parse(maskedBinaryFrames(payloads));
  strictEqual(frames.length, lengths.length);
  frames.forEach((f, i) => {
    strictEqual(f.fin, true);
    strictEqual(f.opcode, 2);
    strictEqual(f.masked, true);
    assertEquals(f.payload, [...payloads[i]]);
  });
  strictEqual(new Set(frames.map((f) => f.key.join())).size, frames.length);
});
