import { deepStrictEqual as assertEquals, ok as assert, throws as assertThrows } from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createCipheriv } from "node:crypto";
import sshCrypto from "ssh2/lib/protocol/crypto.js";
import { poly1305 } from "./chacha_poly.ts";
import { installChaChaPoly, patchSsh2ChaChaPoly, replacedSsh2Methods } from "./ssh2_chacha_poly.ts";

interface Ssh2Cipher {
  outSeqno: number;
  allocPacket(n: number): Buffer;
  encrypt(packet: Buffer): void;
}
interface Ssh2Decipher {
  inSeqno: number;
  decrypt(data: Uint8Array, p: number, end: number): unknown;
}
interface Ssh2Crypto {
  CIPHER_INFO: Record<string, unknown>;
  init: Promise<void>;
  createCipher(config: unknown): Ssh2Cipher;
  createDecipher(config: unknown): Ssh2Decipher;
}
const ssh2 = sshCrypto as unknown as Ssh2Crypto;
const cipherInfo = ssh2.CIPHER_INFO["chacha20-poly1305@openssh.com"];

const hex = (u: Uint8Array) => Array.from(u, (b) => b.toString(16).padStart(2, "0")).join("");
const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
};
const random = (n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
};
const PAYLOADS = [0, 1, 7, 8, 100, 1024, 32768, 34000].map(random);

function cipher(key: Buffer, seqno: number, written: Uint8Array[]): Ssh2Cipher {
  return ssh2.createCipher({
    outbound: { onWrite: (d: Uint8Array) => written.push(Uint8Array.from(d)), cipherInfo, cipherKey: key, seqno },
  });
}

function decipher(key: Buffer, seqno: number, payloads: Uint8Array[], onPayload?: () => unknown): Ssh2Decipher {
  return ssh2.createDecipher({
    inbound: {
      onPayload: (p: Buffer) => (payloads.push(Uint8Array.from(p)), onPayload?.()),
      decipherInfo: cipherInfo,
      decipherKey: key,
      seqno,
    },
  });
}

/** Feeds `stream` to `decrypt` in chunks cut at `cuts` (ssh2 hands decrypt whatever the socket read). */
function feed(d: Ssh2Decipher, decrypt: Ssh2Decipher["decrypt"], stream: Uint8Array, cuts: number[]) {
  let at = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < stream.length).sort((a, b) => a - b), stream.length]) {
    const chunk = Buffer.from(stream.subarray(at, cut));
    decrypt.call(d, chunk, 0, chunk.length);
    at = cut;
  }
}

const cutsOf = (length: number) => [
  [], // all at once
  Array.from({ length: 40 }, () => Math.floor(Math.random() * length)),
  Array.from({ length: 600 }, (_, i) => i), // the first packets byte by byte
  Array.from({ length: Math.ceil(length / 4096) }, (_, i) => i * 4096),
];

Deno.test("installChaChaPoly() patches the pinned ssh2's chacha20-poly1305 classes", async () => {
  await ssh2.init;
  assert(installChaChaPoly(), "ssh2's ChaChaPolyCipherNative / ChaChaPolyDecipherNative changed shape");
  assert(installChaChaPoly(), "a second call keeps the patch");
  const replaced = replacedSsh2Methods();
  assert(replaced);
  const c = cipher(Buffer.alloc(64), 0, []);
  assert(Object.getPrototypeOf(c).encrypt !== replaced.encrypt);
});

Deno.test("the patched cipher seals as PROTOCOL.chacha20poly1305 says, and ssh2's own decipher opens it", async () => {
  await ssh2.init;
  installChaChaPoly();
  const replaced = replacedSsh2Methods()!;
  const key = Buffer.from(random(64));
  const firstSeqno = 0xfffffffd; // crosses the 32-bit wrap
  const written: Uint8Array[] = [];
  const c = cipher(key, firstSeqno, written);
  for (const [i, payload] of PAYLOADS.entries()) {
    const packet = c.allocPacket(payload.length);
    packet.set(payload, 5);
    const length = packet.readUInt32BE(0);
    assertEquals([length % 8, length - 1 - payload.length >= 4], [0, true], "padding");
    const plain = Uint8Array.from(packet.subarray(0, 4 + length));
    const before = written.length;
    c.encrypt(packet);
    assertEquals(written.length, before + 1, "one write per packet");
    // the construction written out: K_1 masks the length, K_2 from block 1 the rest, Poly1305 keyed by K_2's block 0
    const seqno = (firstSeqno + i) >>> 0;
    const iv = new Uint8Array(16);
    new DataView(iv.buffer).setUint32(12, seqno);
    const sealedLength = createCipheriv("chacha20", key.subarray(32), iv).update(plain.subarray(0, 4));
    const polyKey = createCipheriv("chacha20", key.subarray(0, 32), iv).update(new Uint8Array(32));
    iv[0] = 1;
    const sealedBody = createCipheriv("chacha20", key.subarray(0, 32), iv).update(plain.subarray(4));
    const sealed = concat([sealedLength, sealedBody]);
    assertEquals(hex(written.at(-1)!), hex(concat([sealed, poly1305(polyKey, sealed)])), `seqno ${seqno}`);
  }
  assertEquals(c.outSeqno, (firstSeqno + PAYLOADS.length) >>> 0);
  const stream = concat(written);
  for (const cuts of cutsOf(stream.length)) {
    const got: Uint8Array[] = [];
    const d = decipher(key, firstSeqno, got);
    feed(d, replaced.decrypt as Ssh2Decipher["decrypt"], stream, cuts);
    assertEquals(got.map(hex), PAYLOADS.map(hex));
    assertEquals(d.inSeqno, (firstSeqno + PAYLOADS.length) >>> 0);
  }
});

Deno.test("the patched decipher opens ssh2's own packets however the socket cuts them", async () => {
  await ssh2.init;
  installChaChaPoly();
  const replaced = replacedSsh2Methods()!;
  const key = Buffer.from(random(64));
  const written: Uint8Array[] = [];
  const c = cipher(key, 0xfffffffe, written);
  for (const payload of PAYLOADS) {
    const packet = replaced.allocPacket.call(c, payload.length);
    packet.set(payload, 5);
    replaced.encrypt.call(c, packet);
  }
  const stream = concat(written);
  for (const cuts of cutsOf(stream.length)) {
    const got: Uint8Array[] = [];
    const d = decipher(key, 0xfffffffe, got);
    feed(d, d.decrypt, stream, cuts);
    assertEquals(got.map(hex), PAYLOADS.map(hex));
    assertEquals(d.inSeqno, (0xfffffffe + PAYLOADS.length) >>> 0);
  }
});

Deno.test("packets sealed out of turn, or allocated elsewhere, still open with ssh2's own decipher", async () => {
  // the patched allocPacket lends one reused buffer: a second packet allocated before the first is sealed,
  // and a packet from outside (no room for the tag), must neither overwrite nor be overwritten
  await ssh2.init;
  installChaChaPoly();
  const replaced = replacedSsh2Methods()!;
  const key = Buffer.from(random(64));
  const written: Uint8Array[] = [];
  const c = cipher(key, 9, written);
  const [a, b, d, e] = [random(32768), random(500), random(1000), random(40)];
  const packetA = c.allocPacket(a.length);
  packetA.set(a, 5);
  const packetB = c.allocPacket(b.length);
  packetB.set(b, 5);
  c.encrypt(packetB);
  c.encrypt(packetA);
  const foreign = Buffer.alloc(4 + 1 + d.length + 7); // ssh2's plain layout, sealed without tag room
  foreign.writeUInt32BE(1 + d.length + 7, 0);
  foreign[4] = 7;
  foreign.set(d, 5);
  const packetE = c.allocPacket(e.length); // lent while the foreign packet is sealed
  packetE.set(e, 5);
  c.encrypt(foreign);
  c.encrypt(packetE);
  const got: Uint8Array[] = [];
  const opened = decipher(key, 9, got);
  const stream = Buffer.from(concat(written));
  (replaced.decrypt as Ssh2Decipher["decrypt"]).call(opened, stream, 0, stream.length);
  assertEquals(got.map(hex), [b, a, d, e].map(hex));
});

function sealedStream(key: Buffer, seqno: number, payloads: Uint8Array[]): Uint8Array {
  const written: Uint8Array[] = [];
  const c = cipher(key, seqno, written);
  for (const payload of payloads) {
    const packet = c.allocPacket(payload.length);
    packet.set(payload, 5);
    c.encrypt(packet);
  }
  return concat(written);
}

Deno.test("the patched decipher rejects a changed byte with ssh2's errors", () => {
  installChaChaPoly();
  const key = Buffer.from(random(64));
  const stream = sealedStream(key, 5, [random(300)]);
  for (const at of [4, 100, stream.length - 17, stream.length - 1]) {
    const tampered = Buffer.from(stream);
    tampered[at] ^= 0x80;
    const d = decipher(key, 5, []);
    assertThrows(() => d.decrypt(tampered, 0, tampered.length), { message: "Invalid MAC" });
  }
  const badLength = Buffer.from(stream);
  badLength[0] ^= 0x01; // the length field decrypts to a length that is not a multiple of 8, or too big
  assertThrows(() => decipher(key, 5, []).decrypt(badLength, 0, badLength.length), { message: "Bad packet length" });
  const wrongSeqno = Buffer.from(stream);
  assertThrows(() => decipher(key, 6, []).decrypt(wrongSeqno, 0, wrongSeqno.length));
});

Deno.test("the patched decipher stops after a packet whose handler returns false, and resumes there", () => {
  installChaChaPoly();
  const key = Buffer.from(random(64));
  const payloads = [random(10), random(20), random(30)];
  const stream = Buffer.from(sealedStream(key, 0, payloads));
  const got: Uint8Array[] = [];
  const d = decipher(key, 0, got, () => got.length === 2 ? false : undefined);
  const stoppedAt = d.decrypt(stream, 0, stream.length);
  assertEquals(got.length, 2);
  assert(typeof stoppedAt === "number" && stoppedAt > 0 && stoppedAt < stream.length);
  assertEquals(d.inSeqno, 2);
  d.decrypt(stream, stoppedAt, stream.length);
  assertEquals(got.map(hex), payloads.map(hex));
});

Deno.test("patchSsh2ChaChaPoly() changes nothing in an ssh2 whose classes have another shape", () => {
  const methods = () => ({ allocPacket() {}, encrypt() {}, decrypt() {} });
  class ChaChaPolyCipherNative {
    outSeqno = 0;
    _onWrite() {}
    _key = new Uint8Array(64); // renamed: the patch would read _encKeyMain
    _dead = false;
  }
  class ChaChaPolyDecipherNative {
    inSeqno = 0;
    _onPayload() {}
    _decKeyMain = new Uint8Array(32);
    _decKeyPktLen = new Uint8Array(32);
  }
  const cipherProto = Object.assign(ChaChaPolyCipherNative.prototype, methods());
  const decipherProto = Object.assign(ChaChaPolyDecipherNative.prototype, methods());
  const before = [cipherProto.encrypt, cipherProto.allocPacket, decipherProto.decrypt];
  const fake = {
    CIPHER_INFO: { "chacha20-poly1305@openssh.com": {} },
    createCipher: () => new ChaChaPolyCipherNative(),
    createDecipher: () => new ChaChaPolyDecipherNative(),
  };
  assertEquals(patchSsh2ChaChaPoly(fake), false);
  assertEquals([cipherProto.encrypt, cipherProto.allocPacket, decipherProto.decrypt], before);
  assertEquals(patchSsh2ChaChaPoly({ ...fake, CIPHER_INFO: {} }), false, "no chacha20-poly1305 in CIPHER_INFO");
});
