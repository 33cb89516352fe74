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
    const m0 = POOL[poolAt], m1 = POOL[poolAt + 1], m2 = POOL[poolAt + 2], m3 = POOL[poolAt + 3];
    poolAt += 4;
    out[at++] = m0;
    out[at++] = m1;
    out[at++] = m2;
    out[at++] = m3;
    let i = 0;
    for (; i + 4 <= n; i += 4, at += 4) {
      out[at] = p[i] ^ m0;
      out[at + 1] = p[i + 1] ^ m1;
      out[at + 2] = p[i + 2] ^ m2;
      out[at + 3] = p[i + 3] ^ m3;
    }
    const mask = [m0, m1, m2, m3];
    for (; i < n; i++) out[at++] = p[i] ^ mask[i & 3];
  }
  return out;
}

/** The header's length before the masking key: 2 bytes, plus the 16- or 64-bit extended length. */
function headerLength(n: number): number {
  return n < 126 ? 2 : n < 65536 ? 4 : 10;
}
