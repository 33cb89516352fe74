import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import {
  decryptMessage,
  ENCRYPTED_CONTENT_TYPE,
  encryptMessage,
  encryptMultipart,
  isEncrypted,
  MULTI_ENCRYPTED_CONTENT_TYPE,
} from "./encryption.ts";
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

Deno.test("encryptMultipart() seals 16 KiB parts and decryptMessage() joins them in order", () => {
  const big = new Uint8Array(40_000).map((_, i) => (i * 31) & 0xff);
  const body = encryptMultipart(new NtlmSession(key, "server"), big);
  const text = new TextDecoder("latin1").decode(body);
  assertEquals(text.match(/OriginalContent: type=application\/soap\+xml;charset=UTF-8;Length=(\d+)/g), [
    "OriginalContent: type=application/soap+xml;charset=UTF-8;Length=16384",
    "OriginalContent: type=application/soap+xml;charset=UTF-8;Length=16384",
    "OriginalContent: type=application/soap+xml;charset=UTF-8;Length=7232",
  ]);
  assertEquals(text.endsWith("--Encrypted Boundary--\r\n"), true);
  assertEquals(decryptMessage(new NtlmSession(key, "client"), body), big);
  assertEquals(isEncrypted(MULTI_ENCRYPTED_CONTENT_TYPE), true);
});

Deno.test("decryptMessage() names the part that is broken and never returns part of a message", () => {
  const big = new Uint8Array(40_000).fill(0x41);
  const body = encryptMultipart(new NtlmSession(key, "server"), big);
  const text = new TextDecoder("latin1").decode(body);
  // the second part's boundary garbled
  const second = text.indexOf("--Encrypted Boundary\r\n\tContent-Type: application/HTTP", 10);
  const garbled = body.slice();
  garbled[second + 3] = 0x58;
  throws(() => decryptMessage(new NtlmSession(key, "client"), garbled), /malformed: no boundary \(part 2\)/);
  // the last part cut short
  throws(
    () => decryptMessage(new NtlmSession(key, "client"), body.slice(0, body.length - 100)),
    /truncated \(part 3\)/,
  );
  // the closing boundary missing
  throws(() => decryptMessage(new NtlmSession(key, "client"), body.slice(0, body.length - 24)), /truncated \(part 4\)/);
  // a part that lies about its length
  const lying = new TextEncoder().encode(text.replace("Length=7232", "Length=7231"));
  throws(() => decryptMessage(new NtlmSession(key, "client"), lying), /signature does not verify|malformed/);
  throws(() => decryptMessage(new NtlmSession(key, "client"), new TextEncoder().encode("garbage")), /truncated/);
  throws(
    () => decryptMessage(new NtlmSession(key, "client"), new TextEncoder().encode("--Encrypted Boundary--\r\n")),
    /no parts/,
  );
});
