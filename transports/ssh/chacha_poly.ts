/**
 * ChaCha20, Poly1305 and the parts of the chacha20-poly1305@openssh.com packet construction that
 * node:crypto lacks (the tag, the length mask), run by a small WebAssembly module compiled from
 * chacha_poly.c (see scripts/build_wasm.ts) and carried as bytes.
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
  ssh_length_mask(key: number, seqno: number): number;
  ssh_tag(polyKey: number, pkt: number, len: number): void;
  ssh_tag_ok(polyKey: number, pkt: number, len: number): number;
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
 * The mask of packet `seqno`'s length field under K_1 (`lengthKey`, 32 bytes; OpenSSH's
 * PROTOCOL.chacha20poly1305): the sealed field, read as a big-endian u32, is the length XOR the mask.
 *
 * @example Usage
 * ```ts
 * const sealed = (35 ^ sshLengthMask(new Uint8Array(32), 7)) >>> 0;
 * ```
 */
export function sshLengthMask(lengthKey: Uint8Array, seqno: number): number {
  if (lengthKey.length !== 32) throw new RangeError("sshLengthMask: K_1 must be 32 bytes");
  const wasm = module();
  heap.set(lengthKey, keyAt);
  return wasm.ssh_length_mask(keyAt, seqno >>> 0) >>> 0;
}

/**
 * Writes the tag of a sealed SSH packet: Poly1305 under `polyKey` (the first 32 bytes of K_2's
 * keystream block 0 for the packet) over `packet[0 .. 4 + length]`, into the 16 bytes after them.
 *
 * @example Usage
 * ```ts
 * const packet = new Uint8Array(4 + 8 + 16);
 * tagSshPacket(new Uint8Array(32), packet, 8);
 * ```
 */
export function tagSshPacket(polyKey: Uint8Array, packet: Uint8Array, length: number): void {
  const total = 4 + length + 16;
  if (packet.length < total) throw new RangeError("tagSshPacket: no room for the tag");
  const wasm = withRoom(total);
  heap.set(polyKey.subarray(0, 32), keyAt);
  heap.set(packet.subarray(0, 4 + length), workAt);
  wasm.ssh_tag(keyAt, workAt, length);
  packet.set(heap.subarray(workAt + 4 + length, workAt + total), 4 + length);
}

/**
 * True when the 16 bytes after `sealed[0 .. 4 + length]` are their tag under `polyKey`, compared in
 * constant time.
 *
 * @example Usage
 * ```ts
 * const ok = sshPacketTagMatches(new Uint8Array(32), new Uint8Array(4 + 8 + 16), 8);
 * ```
 */
export function sshPacketTagMatches(polyKey: Uint8Array, sealed: Uint8Array, length: number): boolean {
  const total = 4 + length + 16;
  if (sealed.length < total) return false;
  const wasm = withRoom(total);
  heap.set(polyKey.subarray(0, 32), keyAt);
  heap.set(sealed.subarray(0, total), workAt);
  return wasm.ssh_tag_ok(keyAt, workAt, length) === 1;
}

/**
 * True when sealed SSH packet `seqno` carries its tag: {@linkcode sshPacketTagMatches} with the Poly1305 key
 * made here, from K_2 (`mainKey`, 32 bytes) and `seqno` (keystream block 0, the original 64-bit layout), so
 * the opener needs no cipher call of its own for that one block.
 *
 * @example Usage
 * ```ts
 * const ok = sshPacketOpens(new Uint8Array(32), 0, new Uint8Array(4 + 8 + 16), 8);
 * ```
 */
export function sshPacketOpens(mainKey: Uint8Array, seqno: number, sealed: Uint8Array, length: number): boolean {
  if (mainKey.length !== 32) throw new RangeError("sshPacketOpens: K_2 must be 32 bytes");
  const total = 4 + length + 16;
  if (sealed.length < total) return false;
  const wasm = withRoom(total);
  const polyAt = keyAt + 64;
  heap.set(mainKey, keyAt);
  heap.fill(0, polyAt, polyAt + 32);
  const s = seqno >>> 0;
  const nonce = ((s << 24) | ((s & 0xff00) << 8) | ((s >>> 8) & 0xff00) | (s >>> 24)) >>> 0; // big-endian seqno
  wasm.chacha20(keyAt, 0, 0, 0, nonce, polyAt, 32);
  heap.set(sealed.subarray(0, total), workAt);
  return wasm.ssh_tag_ok(polyAt, workAt, length) === 1;
}
