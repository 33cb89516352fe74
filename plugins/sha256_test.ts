import { strictEqual } from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256, sha256Into, sha256Midstate } from "./sha256.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("sha256Into() gives FIPS 180-4's digests", () => {
  const out = new Uint8Array(32);
  const vectors: [string, string][] = [
    ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
    [
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ],
  ];
  for (const [text, digest] of vectors) {
    const bytes = new TextEncoder().encode(text);
    sha256Into(bytes, 0, bytes.length, out, 0);
    strictEqual(hex(out), digest);
  }
});

Deno.test("sha256Into() agrees with node:crypto at every length and offset, continued from a saved state or not", () => {
  const data = crypto.getRandomValues(new Uint8Array(400));
  const out = new Uint8Array(40);
  for (let length = 0; length <= 300; length++) {
    const want = createHash("sha256").update(data.subarray(5, 5 + length)).digest("hex");
    sha256Into(data, 5, 5 + length, out, 3);
    strictEqual(hex(out.subarray(3, 35)), want, `length ${length}`);
    const saved = sha256Midstate(data.subarray(5, 5 + length));
    sha256Into(data, 5 + saved.hashed, 5 + length, out, 0, saved);
    strictEqual(hex(out.subarray(0, 32)), want, `length ${length} after ${saved.hashed} bytes`);
  }
});

Deno.test("sha256() agrees with WebCrypto for every length 0-300", async () => {
  for (let n = 0; n <= 300; n++) {
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
    strictEqual(hex(sha256(data)), hex(new Uint8Array(await crypto.subtle.digest("SHA-256", data))), `length ${n}`);
  }
});
