/**
 * ChaCha20, Poly1305 and the chacha20-poly1305@openssh.com packet construction, run by a small
 * WebAssembly module compiled from chacha_poly.c (see scripts/build_wasm.ts) and carried as bytes.
 *
 * The module has one working area: each call copies its inputs in and its outputs out, so callers keep
 * their own state between packets and several connections can share the module.
 *
 * @module
 */

import { CHACHA_POLY_WASM_BASE64 } from "./chacha_poly_wasm.ts";

interface ChaChaPolyExports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  chacha20(key: number, counter: number, w13: number, w14: number, w15: number, data: number, len: number): void;
  poly1305(key: number, msg: number, len: number, out: number): void;
  ssh_seal(key64: number, seqno: number, pkt: number, len: number): void;
  ssh_length(key64: number, seqno: number, enc: number): number;
  ssh_open(key64: number, seqno: number, pkt: number, len: number): number;
}

let exports: ChaChaPolyExports | undefined;
let heap: Uint8Array = new Uint8Array(0);
let keyAt = 0; // 64 bytes of key
let workAt = 0; // the packet or message

function module(): ChaChaPolyExports {
  if (exports) return exports;
  const bytes = Uint8Array.from(atob(CHACHA_POLY_WASM_BASE64), (c) => c.charCodeAt(0));
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
  exports = instance.exports as unknown as ChaChaPolyExports;
  keyAt = (Number(exports.__heap_base.value) + 63) & ~63;
  workAt = keyAt + 128;
  heap = new Uint8Array(exports.memory.buffer);
  return exports;
}

/** The module, with room for `workBytes` at `workAt`. */
function withRoom(workBytes: number): ChaChaPolyExports {
  const wasm = module();
  const needed = workAt + workBytes;
  if (needed > heap.length) {
    wasm.memory.grow(Math.ceil((needed - heap.length) / 65536));
    heap = new Uint8Array(wasm.memory.buffer);
  }
  return wasm;
}

function nonceWords(nonce: Uint8Array): [number, number, number] {
  const view = new DataView(nonce.buffer, nonce.byteOffset, nonce.byteLength);
  if (nonce.length === 12) return [view.getUint32(0, true), view.getUint32(4, true), view.getUint32(8, true)];
  if (nonce.length === 8) return [0, view.getUint32(0, true), view.getUint32(4, true)];
  throw new RangeError("chacha20 nonce must be 12 bytes (RFC 8439) or 8 bytes (original layout)");
}

/**
 * `data` XORed with ChaCha20's keystream for `key` from block `counter`: RFC 8439 §2.4 with a 12-byte
 * nonce, or the original 64-bit counter and nonce layout (as OpenSSH uses) with an 8-byte one.
 *
 * @example Usage
 * ```ts
 * const out = chacha20Xor(new Uint8Array(32), 1, new Uint8Array(12), new TextEncoder().encode("hi"));
 * ```
 */
export function chacha20Xor(key: Uint8Array, counter: number, nonce: Uint8Array, data: Uint8Array): Uint8Array {
  if (key.length !== 32) throw new RangeError("chacha20 key must be 32 bytes");
  const [w13, w14, w15] = nonceWords(nonce);
  const wasm = withRoom(data.length);
  heap.set(key, keyAt);
  heap.set(data, workAt);
  wasm.chacha20(keyAt, counter >>> 0, w13, w14, w15, workAt, data.length);
  return heap.slice(workAt, workAt + data.length);
}

/**
 * The Poly1305 tag of `message` under the one-time `key` (32 bytes, r then s; RFC 8439 §2.5).
 *
 * @example Usage
 * ```ts
 * const tag = poly1305(new Uint8Array(32), new Uint8Array(64));
 * ```
 */
export function poly1305(key: Uint8Array, message: Uint8Array): Uint8Array {
  if (key.length !== 32) throw new RangeError("poly1305 key must be 32 bytes");
  const wasm = withRoom(message.length + 16);
  heap.set(key, keyAt);
  heap.set(message, workAt);
  const out = workAt + message.length;
  wasm.poly1305(keyAt, workAt, message.length, out);
  return heap.slice(out, out + 16);
}

/**
 * Seals one SSH packet in place (OpenSSH's PROTOCOL.chacha20poly1305): `packet` holds the 4-byte
 * length, `length` bytes of padding length, payload and padding, then 16 bytes that receive the tag.
 * `key` is the 64 bytes of the direction's key (K_2 then K_1).
 *
 * @example Usage
 * ```ts
 * const packet = new Uint8Array(4 + 16 + 16);
 * new DataView(packet.buffer).setUint32(0, 16);
 * sealSshPacket(new Uint8Array(64), 3, packet, 16);
 * ```
 */
export function sealSshPacket(key: Uint8Array, seqno: number, packet: Uint8Array, length: number): void {
  const total = 4 + length + 16;
  if (key.length !== 64 || packet.length < total) throw new RangeError("sealSshPacket: bad key or packet size");
  const wasm = withRoom(total);
  heap.set(key, keyAt);
  heap.set(packet.subarray(0, 4 + length), workAt);
  wasm.ssh_seal(keyAt, seqno >>> 0, workAt, length);
  packet.set(heap.subarray(workAt, workAt + total));
}

/**
 * The packet length sealed in `head` (its first 4 bytes) for packet `seqno`.
 *
 * @example Usage
 * ```ts
 * const length = sshPacketLength(new Uint8Array(64), 0, new Uint8Array(4));
 * ```
 */
export function sshPacketLength(key: Uint8Array, seqno: number, head: Uint8Array): number {
  const wasm = withRoom(4);
  heap.set(key, keyAt);
  heap.set(head.subarray(0, 4), workAt);
  return wasm.ssh_length(keyAt, seqno >>> 0, workAt) >>> 0;
}

/**
 * Checks and decrypts one sealed SSH packet (`4 + length + 16` bytes of `sealed`, the length field
 * still encrypted). Returns the decrypted `length` bytes (padding length, payload, padding) as a view
 * that the next call of this module overwrites, or `undefined` when the tag does not match.
 *
 * @example Usage
 * ```ts
 * const body = openSshPacket(new Uint8Array(64), 0, new Uint8Array(36), 16);
 * ```
 */
export function openSshPacket(
  key: Uint8Array,
  seqno: number,
  sealed: Uint8Array,
  length: number,
): Uint8Array | undefined {
  const total = 4 + length + 16;
  const wasm = withRoom(total);
  heap.set(key, keyAt);
  heap.set(sealed.subarray(0, total), workAt);
  if (wasm.ssh_open(keyAt, seqno >>> 0, workAt, length) !== 1) return undefined;
  return heap.subarray(workAt + 4, workAt + 4 + length);
}
