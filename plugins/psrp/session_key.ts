/**
 * The session key below protocol 2.4 (MS-PSRP §2.2.2.3–4, §2.2.5.1.24): the client sends an RSA-2048 public
 * key as a CAPI PUBLICKEYBLOB, the server answers with a random AES-256 key encrypted to it (RSAES-PKCS1-v1_5)
 * in a SIMPLEBLOB, and secure strings are then AES-256-CBC with a zero IV and PKCS#7 padding of their UTF-16LE
 * text. WebCrypto does the key pair and AES; the one RSA decryption is done here with bigint arithmetic,
 * because WebCrypto has no PKCS#1 v1.5 encryption scheme.
 *
 * @module
 */
import type { SessionKey } from "./clixml.ts";
import { PsrpError } from "./errors.ts";
import { base64Decode, base64Encode } from "./packet.ts";

/**
 * A session key from 32 raw AES-256 key bytes.
 *
 * @example
 * ```ts
 * import { aesSessionKey } from "./session_key.ts";
 * const key = await aesSessionKey(new Uint8Array(32));
 * const cipher = await key.encrypt(new Uint8Array([1, 2]));
 * console.assert(cipher.length === 16);
 * ```
 */
export async function aesSessionKey(raw: Uint8Array): Promise<SessionKey> {
  if (raw.length !== 32) throw new PsrpError(`a session key has ${raw.length} bytes, not 32`);
  const key = await crypto.subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, "AES-CBC", false, [
    "encrypt",
    "decrypt",
  ]);
  const iv = new Uint8Array(16);
  return {
    async encrypt(plain) {
      return new Uint8Array(
        await crypto.subtle.encrypt({ name: "AES-CBC", iv }, key, plain as Uint8Array<ArrayBuffer>),
      );
    },
    async decrypt(cipher) {
      try {
        return new Uint8Array(
          await crypto.subtle.decrypt({ name: "AES-CBC", iv }, key, cipher as Uint8Array<ArrayBuffer>),
        );
      } catch (cause) {
        throw new PsrpError("a secure string does not decrypt with the session key", { cause });
      }
    },
  };
}

function b64urlToBigInt(text: string): bigint {
  const bytes = base64Decode(text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "="));
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  base %= mod;
  while (exp > 0n) {
    if (exp & 1n) result = (result * base) % mod;
    base = (base * base) % mod;
    exp >>= 1n;
  }
  return result;
}

function toBytes(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/**
 * The client half of the exchange: an RSA-2048 key pair, its PUBLICKEYBLOB for PUBLIC_KEY, and the decryption
 * of the server's ENCRYPTED_SESSION_KEY.
 *
 * @example
 * ```ts ignore
 * const kx = await KeyExchange.create();
 * send({ PublicKey: kx.publicKey });                  // PUBLIC_KEY
 * const key = await kx.sessionKey(encryptedSessionKey); // from ENCRYPTED_SESSION_KEY
 * ```
 */
export class KeyExchange {
  /** base64 of the PUBLICKEYBLOB */
  readonly publicKey: string;
  readonly #n: bigint;
  readonly #crt: { p: bigint; q: bigint; dp: bigint; dq: bigint; qi: bigint };

  private constructor(jwk: JsonWebKey) {
    const get = (k: keyof JsonWebKey) => b64urlToBigInt(String(jwk[k]));
    this.#n = get("n");
    this.#crt = { p: get("p"), q: get("q"), dp: get("dp"), dq: get("dq"), qi: get("qi") };
    const e = Number(get("e"));
    const blob = new Uint8Array(20 + 256);
    // BLOBHEADER: PUBLICKEYBLOB, version 2, CALG_RSA_KEYX; RSAPUBKEY: "RSA1", bit length, exponent (little-endian)
    blob.set([0x06, 0x02, 0x00, 0x00, 0x00, 0xa4, 0x00, 0x00, 0x52, 0x53, 0x41, 0x31, 0x00, 0x08, 0x00, 0x00]);
    new DataView(blob.buffer).setUint32(16, e, true);
    blob.set(toBytes(this.#n, 256).reverse(), 20);
    this.publicKey = base64Encode(blob);
  }

  /** A fresh RSA-2048 key pair. */
  static async create(): Promise<KeyExchange> {
    const pair = await crypto.subtle.generateKey(
      { name: "RSA-OAEP", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["encrypt", "decrypt"],
    );
    return new KeyExchange(await crypto.subtle.exportKey("jwk", pair.privateKey));
  }

  /**
   * The session key inside the server's SIMPLEBLOB (base64).
   *
   * @throws {PsrpError} when the blob or its padding is malformed
   */
  async sessionKey(encryptedSessionKey: string): Promise<SessionKey> {
    let blob: Uint8Array;
    try {
      blob = base64Decode(encryptedSessionKey);
    } catch (cause) {
      throw new PsrpError("ENCRYPTED_SESSION_KEY is not base64", { cause });
    }
    if (blob.length !== 12 + 256 || blob[0] !== 0x01) throw new PsrpError("ENCRYPTED_SESSION_KEY is not a SIMPLEBLOB");
    let c = 0n;
    for (const b of blob.slice(12).reverse()) c = (c << 8n) | BigInt(b);
    if (c >= this.#n) throw new PsrpError("ENCRYPTED_SESSION_KEY does not fit the key");
    const { p, q, dp, dq, qi } = this.#crt;
    const m1 = modPow(c % p, dp, p);
    const m2 = modPow(c % q, dq, q);
    const h = (qi * ((m1 - m2 + p) % p)) % p;
    const em = toBytes(m2 + h * q, 256);
    // RSAES-PKCS1-v1_5: 00 02 nonzero padding (8 or more) 00 message
    const sep = em.indexOf(0, 2);
    if (em[0] !== 0 || em[1] !== 2 || sep < 10) throw new PsrpError("ENCRYPTED_SESSION_KEY has bad padding");
    return await aesSessionKey(em.slice(sep + 1));
  }
}
