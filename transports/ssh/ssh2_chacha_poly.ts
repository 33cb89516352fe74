/**
 * Runs ssh2's chacha20-poly1305@openssh.com packets through chacha_poly.ts instead of its JavaScript
 * fallback.
 *
 * Under Deno ssh2's native addon does not load, so ssh2 (pinned at 1.17.0) seals each packet with its
 * `ChaChaPolyCipherNative` and opens each with `ChaChaPolyDecipherNative` (lib/protocol/crypto.js):
 * three node:crypto cipher objects per packet, Poly1305 in an Emscripten module through `cwrap` (copying
 * its inputs through `cwrap`'s stack), and three socket writes per packet. This replaces the methods
 * that do the work, `allocPacket`/`encrypt` and `decrypt`, on those two classes' prototypes: one
 * node:crypto ChaCha20 per packet (K_2: sealing, block 0 giving the Poly1305 key and the payload from
 * block 1 in one call; opening, the payload from block 1, the Poly1305 key's one block made in the
 * WebAssembly), Poly1305 and K_1's length mask in chacha_poly.ts's WebAssembly, one write per packet, and a
 * whole packet opened where it lies in the socket's chunk.
 * The replacements keep ssh2's contract, the one its native-addon classes keep: the packet buffer has
 * room for the tag and is written once, sequence numbers and `_onPayload` are read from the instance on
 * every packet (ssh2's key exchange resets and rebinds them), errors are ssh2's ("Bad packet length",
 * "Invalid MAC"), and `_onPayload`'s return value stops the loop as ssh2's does.
 *
 * The prototypes are reached through an instance made by ssh2's own exported `createCipher` and
 * `createDecipher`; before patching, {@linkcode installChaChaPoly} checks the instance's shape (the
 * fields it reads) and leaves ssh2 alone when it differs, so an ssh2 update cannot make it misread
 * state; ssh2_chacha_poly_test.ts fails then, so the change is seen.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import sshCrypto from "ssh2/lib/protocol/crypto.js";
import { createCipheriv, createDecipheriv } from "node:crypto";
import { sshLengthMask, sshPacketOpens, tagSshPacket } from "./chacha_poly.ts";

const CHACHA = "chacha20-poly1305@openssh.com";
/** ssh2's bound on a received packet's length field (MAX_PACKET_SIZE in lib/protocol/crypto.js). */
const MAX_PACKET = 35000;
const TAG = 16;

interface CipherInstance {
  outSeqno: number;
  _onWrite: (data: Uint8Array) => void;
  _encKeyMain: Uint8Array;
  _encKeyPktLen: Uint8Array;
  _dead: boolean;
}

interface DecipherInstance {
  inSeqno: number;
  _onPayload: (payload: Buffer) => unknown;
  _decKeyMain: Uint8Array;
  _decKeyPktLen: Uint8Array;
  [READ]?: ReadState;
}

interface ReadState {
  head: Uint8Array; // the sealed 4-byte length
  headBytes: number;
  length: number; // decrypted length field, once headBytes is 4
  packet: Uint8Array | undefined; // head, body and tag of a packet that arrives in pieces
  packetBytes: number;
}

const READ = Symbol("remote.chachaPolyRead");

/** What is used of ssh2's lib/protocol/crypto.js. */
export interface Ssh2Crypto {
  CIPHER_INFO: Record<string, unknown>;
  createCipher(config: unknown): object;
  createDecipher(config: unknown): object;
}

let installed: boolean | undefined;

/** ssh2's own methods that {@linkcode installChaChaPoly} replaced. */
export interface Ssh2ChaChaPolyMethods {
  allocPacket(this: object, payloadLength: number): Buffer;
  encrypt(this: object, packet: Buffer): void;
  decrypt(this: object, data: Uint8Array, p: number, end: number): unknown;
}

let replaced: Ssh2ChaChaPolyMethods | undefined;

/**
 * ssh2's own chacha20-poly1305 methods, once {@linkcode installChaChaPoly} replaced them: tests check
 * that each side's packets open with the other's.
 *
 * @example Usage
 * ```ts
 * installChaChaPoly();
 * const ssh2Encrypt = replacedSsh2Methods()?.encrypt;
 * ```
 */
export function replacedSsh2Methods(): Ssh2ChaChaPolyMethods | undefined {
  return replaced;
}

/**
 * Patches ssh2's chacha20-poly1305 classes once per process; true when they now use chacha_poly.ts,
 * false when ssh2's classes did not have the expected shape (they are then left as they were).
 *
 * @example Usage
 * ```ts
 * installChaChaPoly();
 * ```
 */
export function installChaChaPoly(): boolean {
  installed ??= patchSsh2ChaChaPoly(sshCrypto as unknown as Ssh2Crypto);
  return installed;
}

/**
 * Patches the chacha20-poly1305 classes behind `ssh2` (ssh2's lib/protocol/crypto.js exports) when they
 * have the shape this module was written against; false, changing nothing, otherwise.
 *
 * @example Usage
 * ```ts
 * import sshCrypto from "ssh2/lib/protocol/crypto.js";
 * patchSsh2ChaChaPoly(sshCrypto);
 * ```
 */
export function patchSsh2ChaChaPoly(ssh2: Ssh2Crypto): boolean {
  const cipherInfo = ssh2.CIPHER_INFO?.[CHACHA];
  if (!cipherInfo || typeof ssh2.createCipher !== "function" || typeof ssh2.createDecipher !== "function") {
    return false;
  }
  const key = Buffer.alloc(64);
  const cipher = ssh2.createCipher({ outbound: { onWrite() {}, cipherInfo, cipherKey: key, seqno: 0 } });
  const decipher = ssh2.createDecipher({
    inbound: { onPayload() {}, decipherInfo: cipherInfo, decipherKey: key, seqno: 0 },
  });
  const cipherProto = Object.getPrototypeOf(cipher);
  const decipherProto = Object.getPrototypeOf(decipher);
  const has = (o: object, fields: string[]) => fields.every((f) => Object.hasOwn(o, f));
  const shaped = cipherProto?.constructor?.name === "ChaChaPolyCipherNative" &&
    decipherProto?.constructor?.name === "ChaChaPolyDecipherNative" &&
    has(cipher, ["outSeqno", "_onWrite", "_encKeyMain", "_encKeyPktLen", "_dead"]) &&
    has(decipher, ["inSeqno", "_onPayload", "_decKeyMain", "_decKeyPktLen"]) &&
    typeof cipherProto.allocPacket === "function" && typeof cipherProto.encrypt === "function" &&
    typeof decipherProto.decrypt === "function";
  if (!shaped) return false;
  if (cipherProto.encrypt === encrypt) return true; // patched before
  replaced = { allocPacket: cipherProto.allocPacket, encrypt: cipherProto.encrypt, decrypt: decipherProto.decrypt };
  cipherProto.allocPacket = allocPacket;
  cipherProto.encrypt = encrypt;
  decipherProto.decrypt = decrypt;
  return true;
}

/** ChaCha20's 16-byte IV in node:crypto (counter, then nonce) for block 0 of packet `seqno`. */
const iv = new Uint8Array(16);
const ivView = new DataView(iv.buffer);

/** ChaCha20's 16-byte IV in node:crypto (counter, then nonce) for block 1 of a packet: where its body starts. */
const bodyIv = new Uint8Array(16);
const bodyIvView = new DataView(bodyIv.buffer);
bodyIv[0] = 1;

// Padding bytes come from a pool refilled 4 KiB at a time: one getRandomValues per ~500 packets.
const pool = new Uint8Array(4096);
let poolAt = pool.length;

function randomPadding(packet: Uint8Array, at: number, n: number): void {
  if (poolAt + n > pool.length) {
    crypto.getRandomValues(pool);
    poolAt = 0;
  }
  packet.set(pool.subarray(poolAt, poolAt + n), at);
  poolAt += n;
}

/**
 * Where a packet starts in {@linkcode sealing}: its body (from offset 4) then lies at byte 64, where ChaCha20's
 * block 1 starts, so one `update` over `sealing` gives block 0 (the Poly1305 key, from the zeros before the
 * packet) and the sealed body, in the one Buffer that is written out.
 */
const LEAD = 60;

/**
 * The plaintext packet ssh2 fills between `allocPacket` and `encrypt` (synchronous in ssh2: it allocates,
 * writes the payload, and encrypts or drops the packet in the same call), reused for every packet; bytes
 * 0-59 are never written and stay zero. `lent` while a packet in it is not yet sealed: a second
 * `allocPacket` then gets a Buffer of its own, so no packet can be overwritten whatever the calling order.
 */
let sealing = Buffer.alloc(LEAD + 4 + MAX_PACKET + TAG);
let lent = false;

/**
 * A packet for `payloadLength` bytes at offset 5, with room for the tag: padding to a multiple of 8
 * over everything after the length field, at least 4 bytes (PROTOCOL.chacha20poly1305, RFC 4253 §6).
 */
function allocPacket(this: CipherInstance, payloadLength: number): Buffer {
  const unpadded = 1 + payloadLength;
  let padding = 8 - (unpadded & 7);
  if (padding < 4) padding += 8;
  const length = unpadded + padding;
  const size = 4 + length + TAG;
  let packet: Buffer;
  if (lent) packet = Buffer.allocUnsafe(size);
  else {
    if (LEAD + size > sealing.length) sealing = Buffer.alloc(LEAD + size);
    packet = sealing.subarray(LEAD, LEAD + size);
    lent = true;
  }
  packet.writeUInt32BE(length, 0);
  packet[4] = padding;
  randomPadding(packet, 5 + payloadLength, padding);
  return packet;
}

/**
 * Seals `packet` with one node:crypto ChaCha20 from block 0 over {@linkcode sealing}: its output holds the
 * Poly1305 key (block 0) and the sealed body at the packet's place, and the packet is written from there,
 * once the length field and the tag are in. One Buffer per packet, the one that goes out.
 */
function encrypt(this: CipherInstance, packet: Buffer): void {
  // the length field says how much to seal: a packet allocated by another cipher has no tag room
  const length = packet.readUInt32BE(0);
  const inSealing = packet.buffer === sealing.buffer && packet.byteOffset === sealing.byteOffset + LEAD;
  if (inSealing) lent = false;
  if (this._dead) return;
  const end = LEAD + 4 + length + TAG;
  let input = sealing;
  if (!inSealing) {
    // a packet from elsewhere (another cipher's allocPacket, a test): its body is copied to block 1
    if (lent || end > sealing.length) input = Buffer.alloc(Math.max(end, sealing.length));
    input.fill(0, 0, 64);
    input.set(packet.subarray(4, 4 + length), 64);
  }
  const seqno = this.outSeqno;
  ivView.setUint32(12, seqno); // the 64-bit big-endian sequence number; the high half stays 0
  const sealed = createCipheriv("chacha20", this._encKeyMain, iv).update(input.subarray(0, end));
  const out = sealed.subarray(LEAD, end);
  out.writeUInt32BE((length ^ sshLengthMask(this._encKeyPktLen, seqno)) >>> 0, 0);
  tagSshPacket(sealed.subarray(0, 32), out, length);
  this._onWrite(out);
  this.outSeqno = (seqno + 1) >>> 0;
}

function decrypt(this: DecipherInstance, data: Uint8Array, p: number, end: number): unknown {
  const st = this[READ] ??= { head: new Uint8Array(4), headBytes: 0, length: 0, packet: undefined, packetBytes: 0 };
  while (p < end) {
    let headAt = -1; // where the head lies in `data`, when all of it is there
    if (st.headBytes < 4) {
      if (st.headBytes === 0 && end - p >= 4) headAt = p;
      while (st.headBytes < 4 && p < end) st.head[st.headBytes++] = data[p++];
      if (st.headBytes < 4) return;
      const sealed = ((st.head[0] << 24) | (st.head[1] << 16) | (st.head[2] << 8) | st.head[3]) >>> 0;
      const length = (sealed ^ sshLengthMask(this._decKeyPktLen, this.inSeqno)) >>> 0;
      if (length > MAX_PACKET || length < 8 || (length & 7) !== 0) throw new Error("Bad packet length");
      st.length = length;
      st.packetBytes = 4;
    }
    const total = 4 + st.length + TAG;
    let sealed: Uint8Array;
    if (headAt >= 0 && end - headAt >= total) {
      // the whole packet is in this chunk: open it from there, without gathering it first
      sealed = data.subarray(headAt, headAt + total);
      p = headAt + total;
    } else {
      st.packet ??= new Uint8Array(4 + MAX_PACKET + TAG);
      if (st.packetBytes === 4) st.packet.set(st.head, 0);
      const n = Math.min(total - st.packetBytes, end - p);
      st.packet.set(data.subarray(p, p + n), st.packetBytes);
      st.packetBytes += n;
      p += n;
      if (st.packetBytes < total) return;
      sealed = st.packet;
    }
    if (!sshPacketOpens(this._decKeyMain, this.inSeqno, sealed, st.length)) throw new Error("Invalid MAC");
    bodyIvView.setUint32(12, this.inSeqno); // the 64-bit big-endian sequence number; the high half stays 0
    const body = createDecipheriv("chacha20", this._decKeyMain, bodyIv).update(sealed.subarray(4, 4 + st.length));
    const padding = body[0];
    if (padding + 1 > body.length) throw new Error("Bad packet length");
    const payload = body.subarray(1, body.length - padding);
    this.inSeqno = (this.inSeqno + 1) >>> 0;
    st.headBytes = 0;
    st.packetBytes = 0;
    const ret = this._onPayload(payload);
    if (ret !== undefined) return ret === false ? p : ret;
  }
}
