import { deepStrictEqual as assertEquals, rejects } from "node:assert/strict";
import { aesSessionKey, KeyExchange } from "./session_key.ts";
import { base64Decode } from "./packet.ts";
import { serverEncrypt } from "./_test_helpers.ts";
import { PsrpError } from "./errors.ts";

Deno.test("KeyExchange sends a PUBLICKEYBLOB and opens the server's SIMPLEBLOB to the AES key", async () => {
  const kx = await KeyExchange.create();
  const blob = base64Decode(kx.publicKey);
  assertEquals([blob.length, ...blob.slice(0, 20)], [
    276,
    ...[0x06, 0x02, 0, 0, 0, 0xa4, 0, 0, 0x52, 0x53, 0x41, 0x31, 0, 8, 0, 0, 1, 0, 1, 0],
  ]);
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const key = await kx.sessionKey(serverEncrypt(kx.publicKey, raw));
  const expected = await aesSessionKey(raw);
  const plain = new TextEncoder().encode("secret text");
  assertEquals(await key.encrypt(plain), await expected.encrypt(plain));
  assertEquals(await key.decrypt(await expected.encrypt(plain)), plain);
  await rejects(kx.sessionKey(serverEncrypt(kx.publicKey, raw, true)), /bad padding/);
  await rejects(kx.sessionKey("AAAA"), PsrpError);
});

Deno.test("aesSessionKey() is AES-256-CBC, zero IV, PKCS#7, and refuses a wrong key", async () => {
  const key = await aesSessionKey(new Uint8Array(32).fill(7));
  const cipher = await key.encrypt(new Uint8Array(16));
  assertEquals(cipher.length, 32, "a full block of padding follows 16 bytes");
  const other = await aesSessionKey(new Uint8Array(32).fill(8));
  await rejects(async () => await other.decrypt(cipher), /does not decrypt/);
  await rejects(aesSessionKey(new Uint8Array(16)), /16 bytes, not 32/);
});
