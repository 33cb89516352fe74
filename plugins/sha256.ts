/**
 * SHA-256 (FIPS 180-4) of short inputs, synchronously, into a caller's buffer and optionally continuing from a saved
 * state. `crypto.subtle.digest` is asynchronous and runs on Deno's blocking-I/O threads (a hop a loaded machine makes
 * cost milliseconds), node:crypto starts Deno's Node layer on first use, and its `createHash` costs ~1.5 µs per call
 * whatever the size. Used where those costs show: naming the ssh reuse master's socket on the reuse client's short
 * path, and the digest of every SSM acknowledgement (a ~180-byte JSON whose first 64 bytes are the same in all of
 * them, so the saved state of that block leaves two to hash).
 *
 * @module
 */

const K = Int32Array.from([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

const INITIAL = Int32Array.from([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);

const w = new Int32Array(64);
const tail = new Uint8Array(128);

/** One 64-byte block of `bytes` at `at` into `state`. */
function compress(state: Int32Array, bytes: Uint8Array, at: number): void {
  for (let i = 0; i < 16; i++, at += 4) {
    w[i] = (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3];
  }
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15];
    const y = w[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  let a = state[0], b = state[1], c = state[2], d = state[3];
  let e = state[4], f = state[5], g = state[6], h = state[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0] + a) | 0;
  state[1] = (state[1] + b) | 0;
  state[2] = (state[2] + c) | 0;
  state[3] = (state[3] + d) | 0;
  state[4] = (state[4] + e) | 0;
  state[5] = (state[5] + f) | 0;
  state[6] = (state[6] + g) | 0;
  state[7] = (state[7] + h) | 0;
}

/**
 * The state after the whole 64-byte blocks of `prefix` (its length rounded down to 64), to continue from with
 * {@linkcode sha256Into}.
 *
 * @example The state of a common first block
 * ```ts
 * import { sha256Midstate } from "./mod.ts";
 * const state = sha256Midstate(new TextEncoder().encode("x".repeat(70)));
 * console.assert(state.hashed === 64);
 * ```
 */
export function sha256Midstate(prefix: Uint8Array): { state: Int32Array; hashed: number } {
  const state = INITIAL.slice();
  const hashed = prefix.length - prefix.length % 64;
  for (let at = 0; at < hashed; at += 64) compress(state, prefix, at);
  return { state, hashed };
}

const scratch = new Int32Array(8);

/**
 * Writes the SHA-256 digest of `data[start..end)` to `out` at `outAt`; with `from`, of the `from.hashed` bytes its
 * state was made of followed by that range (the caller's bytes must be those that followed them).
 *
 * @example Same as a one-shot digest
 * ```ts
 * import { sha256Into } from "./mod.ts";
 * const out = new Uint8Array(32);
 * sha256Into(new TextEncoder().encode("abc"), 0, 3, out, 0);
 * console.assert(out[0] === 0xba && out[31] === 0xad);
 * ```
 */
export function sha256Into(
  data: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  outAt: number,
  from?: { state: Int32Array; hashed: number },
): void {
  const state = scratch;
  state.set(from?.state ?? INITIAL);
  let at = start;
  for (; at + 64 <= end; at += 64) compress(state, data, at);
  const rest = end - at;
  tail.fill(0);
  tail.set(data.subarray(at, end));
  tail[rest] = 0x80;
  const blocks = rest + 9 > 64 ? 2 : 1;
  const bits = ((from?.hashed ?? 0) + end - start) * 8;
  const last = blocks * 64;
  const high = Math.floor(bits / 2 ** 32);
  tail[last - 8] = high >>> 24;
  tail[last - 7] = high >>> 16;
  tail[last - 6] = high >>> 8;
  tail[last - 5] = high;
  tail[last - 4] = bits >>> 24;
  tail[last - 3] = bits >>> 16;
  tail[last - 2] = bits >>> 8;
  tail[last - 1] = bits;
  compress(state, tail, 0);
  if (blocks === 2) compress(state, tail, 64);
  for (let i = 0; i < 8; i++, outAt += 4) {
    const v = state[i];
    out[outAt] = v >>> 24;
    out[outAt + 1] = v >>> 16;
    out[outAt + 2] = v >>> 8;
    out[outAt + 3] = v;
  }
}

/**
 * The SHA-256 digest of `data`, as a new 32-byte array.
 *
 * @example FIPS 180-4's "abc"
 * ```ts
 * import { sha256 } from "./mod.ts";
 * console.assert(sha256(new TextEncoder().encode("abc"))[0] === 0xba);
 * ```
 */
export function sha256(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  sha256Into(data, 0, data.length, out, 0);
  return out;
}
