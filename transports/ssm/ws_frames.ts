/**
 * Client-to-server WebSocket binary frames (RFC 6455 §5.2), several laid out in one buffer, with no I/O: the
 * acknowledgements of all the messages one read of the data channel brought leave in one socket write this way,
 * where `ws` frames each in a call of its own (header, masking key, a masked copy, a write to the socket's buffer).
 *
 * @module
 */

// masking keys, drawn 4 at a time: RFC 6455 §5.3 asks a fresh unpredictable key for every frame
const POOL = new Uint8Array(4096);
let poolAt = POOL.length;

/**
 * One buffer holding each of `payloads` as its own final, masked binary frame, in order.
 *
 * @example Two frames in one write
 * ```ts
 * import { maskedBinaryFrames } from "./ws_frames.ts";
 * const bytes = maskedBinaryFrames([new Uint8Array(3), new Uint8Array(200)]);
 * console.assert(bytes.length === 6 + 3 + 8 + 200);
 * ```
 */
export function maskedBinaryFrames(payloads: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of payloads) total += p.length + headerLength(p.length) + 4;
  const out = new Uint8Array(total);
  const words = new Uint32Array(out.buffer, 0, total >>> 2);
  let at = 0;
  for (const p of payloads) {
    const n = p.length;
    out[at++] = 0x82; // FIN, opcode 2 (binary)
    if (n < 126) out[at++] = 0x80 | n;
    else if (n < 65536) {
      out[at++] = 0x80 | 126;
      out[at++] = n >>> 8;
      out[at++] = n;
    } else {
      out[at++] = 0x80 | 127;
      const high = Math.floor(n / 2 ** 32);
      for (let s = 24; s >= 0; s -= 8) out[at++] = high >>> s;
      for (let s = 24; s >= 0; s -= 8) out[at++] = n >>> s;
    }
    if (poolAt === POOL.length) {
      crypto.getRandomValues(POOL);
      poolAt = 0;
    }
    const key = POOL.subarray(poolAt, poolAt + 4);
    poolAt += 4;
    out.set(key, at);
    at += 4;
    out.set(p, at);
    // masked in place: byte by byte up to a 4-byte boundary of the buffer, then a word at a time with the key
    // turned to match, then the last bytes
    let i = 0;
    for (; i < n && ((at + i) & 3) !== 0; i++) out[at + i] ^= key[i & 3];
    if (n - i >= 4) {
      for (let j = 0; j < 4; j++) WORD_BYTES[j] = key[(i + j) & 3];
      const word = WORD[0];
      for (; i + 4 <= n; i += 4) words[(at + i) >>> 2] ^= word;
    }
    for (; i < n; i++) out[at + i] ^= key[i & 3];
    at += n;
  }
  return out;
}

// the key as one word in the machine's byte order, for the aligned middle of a payload
const WORD = new Uint32Array(1);
const WORD_BYTES = new Uint8Array(WORD.buffer);

/** The header's length before the masking key: 2 bytes, plus the 16- or 64-bit extended length. */
function headerLength(n: number): number {
  return n < 126 ? 2 : n < 65536 ? 4 : 10;
}
