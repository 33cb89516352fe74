import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { decryptMessage, ENCRYPTED_CONTENT_TYPE, encryptMessage, isEncrypted } from "./encryption.ts";
import { NtlmSession } from "./ntlm.ts";

const key = new Uint8Array(16).fill(0x55);
const soap = new TextEncoder().encode("<s:Envelope>--Encrypted Boundary--\r\n</s:Envelope>");

Deno.test("encryptMessage() frames as MS-WSMV 2.2.9.1.1.2.2 and decryptMessage() reverses it", () => {
  const body = encryptMessage(new NtlmSession(key, "client"), soap);
  const text = new TextDecoder("latin1").decode(body);
  assertEquals(
    text.startsWith("--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"),
    true,
  );
  assertEquals(
    text.includes(`\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=${soap.length}\r\n`),
    true,
  );
  assertEquals(text.endsWith("--Encrypted Boundary--\r\n"), true);
  assertEquals(decryptMessage(new NtlmSession(key, "server"), body), soap);
  assertEquals(isEncrypted(ENCRYPTED_CONTENT_TYPE), true);
  assertEquals(isEncrypted("application/soap+xml;charset=UTF-8"), false);
});

Deno.test("decryptMessage() rejects truncated and tampered bodies", () => {
  const body = encryptMessage(new NtlmSession(key, "client"), soap);
  throws(() => decryptMessage(new NtlmSession(key, "server"), body.slice(0, body.length - 40)), /truncated/);
  const bad = body.slice();
  bad[bad.length - 30] ^= 1;
  throws(() => decryptMessage(new NtlmSession(key, "server"), bad), /signature does not verify/);
});
