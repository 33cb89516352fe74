import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { sha256 } from "./sha256.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("sha256() gives FIPS 180-4's digests of 'abc' and the empty string", () => {
  assertEquals(
    hex(sha256(new TextEncoder().encode("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assertEquals(hex(sha256(new Uint8Array(0))), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
});

Deno.test("sha256() agrees with WebCrypto for every length 0-300", async () => {
  for (let n = 0; n <= 300; n++) {
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
    assertEquals(hex(sha256(data)), hex(new Uint8Array(await crypto.subtle.digest("SHA-256", data))), `length ${n}`);
  }
});
