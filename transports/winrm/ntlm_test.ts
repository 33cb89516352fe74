// Vectors: MS-NLMP section 4.2.1 (common values) and 4.2.4 (NTLMv2), bytes as published there.
import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import {
  CLIENT_FLAGS,
  decodeAvPairs,
  decodeChallenge,
  encodeAuthenticate,
  NtlmClient,
  NtlmError,
  NtlmSession,
  ntlmv2Temp,
  ntowfv2,
  sessionKeys,
  splitUser,
  utf16le,
} from "./ntlm.ts";
import { Rc4 } from "./rc4.ts";

const hex = (s: string) => new Uint8Array(s.replace(/\s+/g, "").match(/../g)!.map((h) => parseInt(h, 16)));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

const SERVER_CHALLENGE = hex("0123456789abcdef");
const CLIENT_CHALLENGE = new Uint8Array(8).fill(0xaa);
const RANDOM_SESSION_KEY = new Uint8Array(16).fill(0x55);
const TIME = new Uint8Array(8);
const CHALLENGE_424 = hex(
  "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef00000000000000002400240044000000" +
    "060070170000000f53006500720076006500720002000c0044006f006d00610069006e0001000c005300650072007600" +
    "6500720000000000",
);
const AUTHENTICATE_424 = hex(
  "4e544c4d5353500003000000180018006c00000054005400840000000c000c0048000000080008005400000010001000" +
    "5c00000010001000d8000000358288e20501280a0000000f44006f006d00610069006e00550073006500720043004f00" +
    "4d005000550054004500520086c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa68cd0ab851e51c96aabc927b" +
    "ebef6a1c01010000000000000000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e00" +
    "01000c005300650072007600650072000000000000000000c5dad2544fc9799094ce1ce90bc9d03e",
);

Deno.test("rc4 matches the classic Key/Plaintext vector", () => {
  assertEquals(
    toHex(new Rc4(new TextEncoder().encode("Key")).update(new TextEncoder().encode("Plaintext"))),
    "bbf316e8d940af0ad3",
  );
});

Deno.test("ntowfv2() matches MS-NLMP 4.2.4.1.1", () => {
  assertEquals(toHex(ntowfv2("Password", "User", "Domain")), "0c868a403bfd7a93a3001ef22ef02e3f");
  assertEquals(toHex(ntowfv2("Password", "user", "Domain")), "0c868a403bfd7a93a3001ef22ef02e3f");
});

Deno.test("decodeChallenge() reads the MS-NLMP 4.2.4.3 challenge", () => {
  const c = decodeChallenge(CHALLENGE_424);
  assertEquals(c.flags, 0xe28a8233);
  assertEquals(toHex(c.serverChallenge), "0123456789abcdef");
  assertEquals(c.targetName, "Server");
  assertEquals(decodeAvPairs(c.targetInfo).map((p) => p.id), [2, 1]);
});

Deno.test("encodeAuthenticate() reproduces MS-NLMP 4.2.4.2 and 4.2.4.3 byte for byte", () => {
  const c = decodeChallenge(CHALLENGE_424);
  const r = encodeAuthenticate({
    user: "User",
    domain: "Domain",
    password: "Password",
    workstation: "COMPUTER",
    flags: 0xe2888235,
    serverChallenge: SERVER_CHALLENGE,
    clientChallenge: CLIENT_CHALLENGE,
    time: TIME,
    targetInfo: c.targetInfo,
    exportedSessionKey: RANDOM_SESSION_KEY,
    version: hex("0501280a0000000f"),
  });
  assertEquals(toHex(r.ntProofStr), "68cd0ab851e51c96aabc927bebef6a1c"); // 4.2.4.2.2
  assertEquals(toHex(r.sessionBaseKey), "8de40ccadbc14a82f15cb0ad0de95ca3"); // 4.2.4.1.2
  assertEquals(toHex(r.message.slice(0xd8)), "c5dad2544fc9799094ce1ce90bc9d03e"); // 4.2.4.2.3
  assertEquals(toHex(r.message), toHex(AUTHENTICATE_424));
  assertEquals(ntlmv2Temp(TIME, CLIENT_CHALLENGE, c.targetInfo).length, 28 + c.targetInfo.length + 4);
});

Deno.test("NtlmSession.seal() matches the MS-NLMP 4.2.4.4 GSS_WrapEx example", () => {
  const keys = sessionKeys(RANDOM_SESSION_KEY, "client-to-server");
  assertEquals(toHex(keys.sealKey), "59f600973cc4960a25480a7c196e4c58");
  assertEquals(toHex(keys.signKey), "4788dc861b4782f35d43fd98fe1a2d39");
  const { sealed, signature } = new NtlmSession(RANDOM_SESSION_KEY, "client").seal(utf16le("Plaintext"));
  assertEquals(toHex(sealed), "54e50165bf1936dc996020c1811b0f06fb5f");
  assertEquals(toHex(signature), "010000007fb38ec5c55d497600000000");
});

Deno.test("NtlmSession continues RC4 and sequence numbers per direction and rejects reordering", () => {
  const client = new NtlmSession(RANDOM_SESSION_KEY, "client");
  const server = new NtlmSession(RANDOM_SESSION_KEY, "server");
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  for (const m of ["one", "two", "three"]) {
    const a = client.seal(enc.encode(m));
    assertEquals(dec.decode(server.unseal(a.sealed, a.signature)), m);
    const b = server.seal(enc.encode(m.toUpperCase()));
    assertEquals(dec.decode(client.unseal(b.sealed, b.signature)), m.toUpperCase());
  }
  const first = client.seal(enc.encode("x"));
  const second = client.seal(enc.encode("y"));
  throws(() => server.unseal(second.sealed, second.signature), NtlmError);
  void first;
});

Deno.test("NtlmClient refuses a challenge without sealing", () => {
  const c = new NtlmClient({ username: "u", password: "p" });
  c.negotiate();
  const weak = CHALLENGE_424.slice();
  new DataView(weak.buffer).setUint32(20, 0x00000201, true);
  throws(() => c.authenticate(weak), /sealing/);
});

Deno.test("splitUser() splits DOMAIN\\user and keeps a UPN whole", () => {
  assertEquals(splitUser("CORP\\alice"), { domain: "CORP", user: "alice" });
  assertEquals(splitUser("alice@corp.example"), { domain: "", user: "alice@corp.example" });
  assertEquals((CLIENT_FLAGS & 0x20) !== 0, true);
});
