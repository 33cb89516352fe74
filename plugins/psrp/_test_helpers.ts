/**
 * Test helpers for the PSRP unit tests: the server side of the session-key exchange.
 *
 * @module
 */
import { base64Decode, base64Encode } from "./packet.ts";

/** What a server does with a PUBLICKEYBLOB: encrypt `key` to it (RSAES-PKCS1-v1_5) in a SIMPLEBLOB. */
export function serverEncrypt(publicKeyBlob: string, key: Uint8Array, badPadding = false): string {
  const blob = base64Decode(publicKeyBlob);
  const e = BigInt(new DataView(blob.buffer).getUint32(16, true));
  let n = 0n;
  for (const b of blob.slice(20).reverse()) n = (n << 8n) | BigInt(b);
  const em = new Uint8Array(256);
  em.set([0, badPadding ? 1 : 2]);
  em.fill(0x5a, 2, 256 - key.length - 1);
  em.set(key, 256 - key.length);
  let m = 0n;
  for (const b of em) m = (m << 8n) | BigInt(b);
  let c = 1n, base = m, exp = e;
  while (exp > 0n) {
    if (exp & 1n) c = (c * base) % n;
    base = (base * base) % n;
    exp >>= 1n;
  }
  const out = new Uint8Array(12 + 256);
  out.set([0x01, 0x02, 0x00, 0x00, 0x10, 0x66, 0x00, 0x00, 0x00, 0xa4, 0x00, 0x00]);
  for (let i = 0; i < 256; i++) out[12 + i] = Number((c >> BigInt(8 * i)) & 0xffn); // little-endian
  return base64Encode(out);
}
