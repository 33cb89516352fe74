/**
 * RC4, the stream cipher of NTLM session security (MS-NLMP 3.4.3, 3.4.4.2). Deno's node:crypto has
 * no rc4 cipher, so it is written here; NTLM needs one handle per direction whose key stream
 * continues across messages, which a one-shot cipher call could not give anyway.
 *
 * @module
 */

/**
 * An RC4 handle: each call to {@linkcode Rc4.update} continues the key stream where the last ended.
 *
 * @example Encrypting twice with one handle
 * ```ts
 * import { Rc4 } from "./rc4.ts";
 * const rc4 = new Rc4(new TextEncoder().encode("Key"));
 * const out = rc4.update(new TextEncoder().encode("Plaintext"));
 * console.assert(out[0] === 0xbb);
 * ```
 */
export class Rc4 {
  #s = new Uint8Array(256);
  #i = 0;
  #j = 0;

  constructor(key: Uint8Array) {
    if (key.length === 0) throw new RangeError("rc4 key is empty");
    const s = this.#s;
    for (let i = 0; i < 256; i++) s[i] = i;
    let j = 0;
    for (let i = 0; i < 256; i++) {
      j = (j + s[i] + key[i % key.length]) & 0xff;
      const t = s[i];
      s[i] = s[j];
      s[j] = t;
    }
  }

  /** XORs `data` with the next bytes of the key stream and returns the result (a new array) */
  update(data: Uint8Array): Uint8Array {
    const s = this.#s;
    const out = new Uint8Array(data.length);
    let i = this.#i;
    let j = this.#j;
    for (let k = 0; k < data.length; k++) {
      i = (i + 1) & 0xff;
      j = (j + s[i]) & 0xff;
      const t = s[i];
      s[i] = s[j];
      s[j] = t;
      out[k] = data[k] ^ s[(s[i] + s[j]) & 0xff];
    }
    this.#i = i;
    this.#j = j;
    return out;
  }
}
