import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import {
  chacha20Xor,
  poly1305,
  sshLengthMask,
  sshPacketOpens,
  sshPacketTagMatches,
  tagSshPacket,
} from "./chacha_poly.ts";

const hex = (u: Uint8Array) => Array.from(u, (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => Uint8Array.from(s.replace(/[^0-9a-f]/gi, "").match(/../g) ?? [], (h) => parseInt(h, 16));
const bytes = (n: number, f: (i: number) => number) => Uint8Array.from({ length: n }, (_, i) => f(i));
const random = (n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
};

// RFC 8439 §2.4.2 and §2.8.2
const SUNSCREEN = new TextEncoder().encode(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);
const SUNSCREEN_CIPHERTEXT = "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f5" +
  "93dabcd62b3571639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab77937365a" +
  "f90bbf74a35be6b40b8eedf2785e42874d";

/** Poly1305 straight from RFC 8439 §2.5.1 with BigInt: the oracle for the 26-bit-limb WebAssembly one. */
function poly1305Reference(key: Uint8Array, msg: Uint8Array): Uint8Array {
  const le = (b: Uint8Array) => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);
  const r = le(key.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  const s = le(key.subarray(16, 32));
  const p = (1n << 130n) - 5n;
  let acc = 0n;
  for (let i = 0; i < msg.length; i += 16) {
    const block = msg.subarray(i, i + 16);
    acc = ((acc + le(block) + (1n << BigInt(8 * block.length))) * r) % p;
  }
  let tag = (acc + s) & ((1n << 128n) - 1n);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++, tag >>= 8n) out[i] = Number(tag & 0xffn);
  return out;
}

Deno.test("chacha20Xor() matches RFC 8439 §2.4.2's encryption and node:crypto's ChaCha20", () => {
  const key = bytes(32, (i) => i);
  const nonce = unhex("000000000000004a00000000");
  assertEquals(hex(chacha20Xor(key, 1, nonce, SUNSCREEN)), SUNSCREEN_CIPHERTEXT);
  for (const len of [0, 1, 63, 64, 65, 1000, 35000]) {
    const k = random(32);
    const data = random(len);
    const iv = new Uint8Array(16);
    iv.set([7, 0, 0, 0], 0);
    iv.set(random(12), 4);
    const expected = createCipheriv("chacha20", k, iv).update(data);
    assertEquals(hex(chacha20Xor(k, 7, iv.subarray(4), data)), hex(expected), `length ${len}`);
  }
});

Deno.test("chacha20Xor() block 0 gives RFC 8439 §2.6.2's Poly1305 key", () => {
  const key = bytes(32, (i) => 0x80 + i);
  const polyKey = chacha20Xor(key, 0, unhex("000000000001020304050607"), new Uint8Array(32));
  assertEquals(hex(polyKey), "8ad5a08b905f81cc815040274ab29471a833b637e3fd0da508dbb8e2fdd1a646");
});

Deno.test("poly1305() matches RFC 8439 §2.5.2's test vector", () => {
  const key = unhex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b");
  const tag = poly1305(key, new TextEncoder().encode("Cryptographic Forum Research Group"));
  assertEquals(hex(tag), "a8061dc1305136c6c22b8baf0c0127a9");
});

Deno.test("poly1305() gets the carries and the final reduction of RFC 8439 A.3 right", () => {
  const zeros = (n: number) => new Uint8Array(n);
  const ff = (n: number) => new Uint8Array(n).fill(0xff);
  const cat = (...parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
    return out;
  };
  const r2 = cat(unhex("02"), zeros(15));
  const r1 = cat(unhex("01"), zeros(15));
  const vectors: [Uint8Array, Uint8Array, string][] = [
    [cat(zeros(32)), zeros(64), "00000000000000000000000000000000"], // #1
    [cat(r2, zeros(16)), ff(16), "03000000000000000000000000000000"], // #5
    [cat(r2, ff(16)), cat(unhex("02"), zeros(15)), "03000000000000000000000000000000"], // #6
    [cat(r1, zeros(16)), cat(ff(16), unhex("f0"), ff(15), unhex("11"), zeros(15)), "05000000000000000000000000000000"],
    [
      cat(r1, zeros(16)),
      cat(ff(16), unhex("fb"), new Uint8Array(15).fill(0xfe), new Uint8Array(16).fill(1)),
      "0".repeat(32),
    ],
    [cat(r2, zeros(16)), cat(unhex("fd"), ff(15)), "faffffffffffffffffffffffffffffff"], // #9
  ];
  for (const [key, msg, tag] of vectors) {
    assertEquals(hex(poly1305(key, msg)), tag);
    assertEquals(hex(poly1305Reference(key, msg)), tag);
  }
});

Deno.test("poly1305() agrees with a BigInt Poly1305 on every message length up to 100 and a full packet", () => {
  for (const len of [...Array(101).keys(), 4 + 32768 + 8, 4 + 35000]) {
    const key = random(32);
    if (len % 7 === 0) key.fill(0xff); // r and s at their largest, so every carry happens
    const msg = len % 5 === 0 ? new Uint8Array(len).fill(0xff) : random(len);
    assertEquals(hex(poly1305(key, msg)), hex(poly1305Reference(key, msg)), `length ${len}`);
  }
});

Deno.test("poly1305() agrees with a BigInt Poly1305 on longer messages, with key and message at their largest", () => {
  // odd and even block counts and partial last blocks past 64 bytes; all-ones key and message make every carry happen
  const lengths = [64, 65, 79, 80, 96, 112, 127, 128, 129, 143, 144, 1000, 1024, 1040, 4 + 32768 + 8 + 11];
  for (const len of lengths) {
    for (const largest of [false, true]) {
      const key = largest ? new Uint8Array(32).fill(0xff) : random(32);
      const msg = largest ? new Uint8Array(len).fill(0xff) : random(len);
      assertEquals(hex(poly1305(key, msg)), hex(poly1305Reference(key, msg)), `length ${len}, largest ${largest}`);
    }
  }
});

Deno.test("chacha20Xor() and poly1305() build RFC 8439 §2.8.2's AEAD tag", () => {
  const key = bytes(32, (i) => 0x80 + i);
  const nonce = unhex("070000004041424344454647");
  const aad = unhex("50515253c0c1c2c3c4c5c6c7");
  const ciphertext = chacha20Xor(key, 1, nonce, SUNSCREEN);
  const polyKey = chacha20Xor(key, 0, nonce, new Uint8Array(32));
  const pad = (n: number) => new Uint8Array((16 - n % 16) % 16);
  const lengths = new Uint8Array(16);
  new DataView(lengths.buffer).setBigUint64(0, BigInt(aad.length), true);
  new DataView(lengths.buffer).setBigUint64(8, BigInt(ciphertext.length), true);
  const macData = new Uint8Array([...aad, ...pad(aad.length), ...ciphertext, ...pad(ciphertext.length), ...lengths]);
  assertEquals(hex(ciphertext.subarray(0, 16)), "d31a8d34648e60db7b86afbc53ef7ec2");
  assertEquals(hex(poly1305(polyKey, macData)), "1ae10b594f09e26a7e902ecbd0600691");
});

/** OpenSSH's PROTOCOL.chacha20poly1305, written out with node:crypto's ChaCha20 and the BigInt Poly1305. */
function sealReference(key64: Uint8Array, seqno: number, packet: Uint8Array): Uint8Array {
  const iv = new Uint8Array(16);
  new DataView(iv.buffer).setUint32(12, seqno);
  const k2 = key64.subarray(0, 32);
  const k1 = key64.subarray(32);
  const length = createCipheriv("chacha20", k1, iv).update(packet.subarray(0, 4));
  iv[0] = 1;
  const body = createCipheriv("chacha20", k2, iv).update(packet.subarray(4));
  iv[0] = 0;
  const polyKey = createCipheriv("chacha20", k2, iv).update(new Uint8Array(32));
  const sealed = new Uint8Array([...length, ...body]);
  return new Uint8Array([...sealed, ...poly1305Reference(polyKey, sealed)]);
}

Deno.test("sshLengthMask(), tagSshPacket() and sshPacketOpens() seal and open as OpenSSH's PROTOCOL.chacha20poly1305 says", () => {
  for (const [seqno, bodyLength] of [[0, 8], [1, 16], [3, 32768 + 8], [0xffffffff, 1024], [0x01020304, 35000 - 8]]) {
    const key = random(64);
    const plain = new Uint8Array(4 + bodyLength);
    new DataView(plain.buffer).setUint32(0, bodyLength);
    plain.set(random(bodyLength), 4);
    const expected = sealReference(key, seqno, plain);

    const iv = new Uint8Array(16);
    new DataView(iv.buffer).setUint32(12, seqno);
    iv[0] = 1;
    const packet = new Uint8Array(4 + bodyLength + 16);
    packet.set(createCipheriv("chacha20", key.subarray(0, 32), iv).update(plain.subarray(4)), 4);
    new DataView(packet.buffer).setUint32(0, (bodyLength ^ sshLengthMask(key.subarray(32), seqno)) >>> 0);
    iv[0] = 0;
    const polyKey = createCipheriv("chacha20", key.subarray(0, 32), iv).update(new Uint8Array(32));
    tagSshPacket(polyKey, packet, bodyLength);
    assertEquals(hex(packet), hex(expected), `seqno ${seqno}`);
    assert(sshPacketTagMatches(polyKey, packet, bodyLength));
    assert(sshPacketOpens(key.subarray(0, 32), seqno, packet, bodyLength), `seqno ${seqno}: K_2's own key`);
    assert(!sshPacketOpens(key.subarray(0, 32), (seqno + 1) >>> 0, packet, bodyLength), "another seqno opens it");
    for (const at of [0, 3, 4, 4 + bodyLength - 1, 4 + bodyLength, packet.length - 1]) {
      const tampered = packet.slice();
      tampered[at] ^= 0x01;
      assert(!sshPacketTagMatches(polyKey, tampered, bodyLength), `flipped byte ${at} still matches`);
      assert(!sshPacketOpens(key.subarray(0, 32), seqno, tampered, bodyLength), `flipped byte ${at} still opens`);
    }
  }
});
