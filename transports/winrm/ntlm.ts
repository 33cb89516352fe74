/**
 * NTLMv2 as WinRM's Negotiate scheme uses it, as pure functions over bytes (no I/O): the three
 * messages, NTOWFv2 and the session keys (MS-NLMP 2.2.1, 3.3.2, 3.4.5), and session security —
 * sealing and signing with one RC4 handle per direction continued across messages and a sequence
 * number per direction (MS-NLMP 3.4.4.2, 3.4.6). MS-NLMP section 4.2.4 is the test vector.
 *
 * @module
 */
import { createHash, createHmac, randomBytes } from "node:crypto";
import { Rc4 } from "./rc4.ts";

/** NegotiateFlags bits used here (MS-NLMP 2.2.2.5). */
export const NtlmFlag = {
  unicode: 0x00000001,
  requestTarget: 0x00000004,
  sign: 0x00000010,
  seal: 0x00000020,
  ntlm: 0x00000200,
  alwaysSign: 0x00008000,
  extendedSessionSecurity: 0x00080000,
  targetInfo: 0x00800000,
  version: 0x02000000,
  n128: 0x20000000,
  keyExch: 0x40000000,
  n56: 0x80000000,
} as const;

/** The flags this client asks for: NTLMv2 with 128-bit key exchange, signing and sealing. */
export const CLIENT_FLAGS = (NtlmFlag.unicode | NtlmFlag.requestTarget | NtlmFlag.sign | NtlmFlag.seal |
  NtlmFlag.ntlm | NtlmFlag.alwaysSign | NtlmFlag.extendedSessionSecurity | NtlmFlag.version | NtlmFlag.n128 |
  NtlmFlag.keyExch | NtlmFlag.n56) >>> 0;

/** AV pair IDs (MS-NLMP 2.2.2.1). */
export const AvId = {
  eol: 0,
  nbComputerName: 1,
  nbDomainName: 2,
  dnsComputerName: 3,
  dnsDomainName: 4,
  flags: 6,
  timestamp: 7,
  targetName: 9,
  channelBindings: 10,
} as const;

const SIGNATURE = new Uint8Array([0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00]); // "NTLMSSP\0"
/** Windows 10 2004 (build 19041), NTLM revision 15 (MS-NLMP 2.2.2.10) */
const OUR_VERSION = new Uint8Array([0x0a, 0x00, 0x61, 0x4a, 0x00, 0x00, 0x00, 0x0f]);

/** A malformed or unacceptable NTLM message. */
export class NtlmError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NtlmError";
  }
}

/** UTF-16LE bytes of `s`, the NTLM "unicode" encoding. */
export function utf16le(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[2 * i] = c & 0xff;
    out[2 * i + 1] = c >> 8;
  }
  return out;
}

/** Decodes UTF-16LE bytes. */
export function fromUtf16le(b: Uint8Array): string {
  return new TextDecoder("utf-16le").decode(b);
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** HMAC-MD5(key, data…). */
export function hmacMd5(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
  const h = createHmac("md5", key);
  for (const d of data) h.update(d);
  return new Uint8Array(h.digest());
}

function md5(...data: Uint8Array[]): Uint8Array {
  const h = createHash("md5");
  for (const d of data) h.update(d);
  return new Uint8Array(h.digest());
}

/** NTOWFv2 (MS-NLMP 3.3.2): HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(UPPER(user) + domain)). */
export function ntowfv2(password: string, user: string, domain: string): Uint8Array {
  const ntHash = new Uint8Array(createHash("md4").update(utf16le(password)).digest());
  return hmacMd5(ntHash, utf16le(user.toUpperCase() + domain));
}

function le16(n: number): Uint8Array {
  return new Uint8Array([n & 0xff, (n >> 8) & 0xff]);
}

function le32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

/** One AV pair (MS-NLMP 2.2.2.1). */
export interface AvPair {
  id: number;
  value: Uint8Array;
}

/** Parses an AV pair list up to MsvAvEOL. */
export function decodeAvPairs(b: Uint8Array): AvPair[] {
  const pairs: AvPair[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 0;
  while (o + 4 <= b.length) {
    const id = dv.getUint16(o, true);
    const len = dv.getUint16(o + 2, true);
    if (id === AvId.eol) return pairs;
    if (o + 4 + len > b.length) break;
    pairs.push({ id, value: b.slice(o + 4, o + 4 + len) });
    o += 4 + len;
  }
  throw new NtlmError("target info is not terminated");
}

/** Serialises AV pairs and the closing MsvAvEOL. */
export function encodeAvPairs(pairs: readonly AvPair[]): Uint8Array {
  return concat(...pairs.flatMap((p) => [le16(p.id), le16(p.value.length), p.value]), new Uint8Array(4));
}

function field(b: Uint8Array, at: number): Uint8Array {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (at + 8 > b.length) throw new NtlmError("message too short");
  const len = dv.getUint16(at, true);
  const off = dv.getUint32(at + 4, true);
  if (len === 0) return new Uint8Array(0);
  if (off + len > b.length) throw new NtlmError("field points past the end of the message");
  return b.slice(off, off + len);
}

function checkHeader(b: Uint8Array, type: number): DataView {
  if (b.length < 12 || !SIGNATURE.every((x, i) => b[i] === x)) throw new NtlmError("not an NTLMSSP message");
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const got = dv.getUint32(8, true);
  if (got !== type) throw new NtlmError(`expected NTLM message type ${type}, got ${got}`);
  return dv;
}

/** NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1) with no domain or workstation supplied. */
export function encodeNegotiate(flags: number = CLIENT_FLAGS): Uint8Array {
  return concat(SIGNATURE, le32(1), le32(flags), new Uint8Array(16), OUR_VERSION);
}

/** Reads the flags of a NEGOTIATE_MESSAGE. */
export function decodeNegotiate(b: Uint8Array): { flags: number } {
  const dv = checkHeader(b, 1);
  if (b.length < 16) throw new NtlmError("message too short");
  return { flags: dv.getUint32(12, true) };
}

/** A parsed CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2). */
export interface NtlmChallenge {
  flags: number;
  serverChallenge: Uint8Array;
  targetName: string;
  /** the raw AV pair list */
  targetInfo: Uint8Array;
  version?: Uint8Array;
}

/** Parses a CHALLENGE_MESSAGE. */
export function decodeChallenge(b: Uint8Array): NtlmChallenge {
  const dv = checkHeader(b, 2);
  if (b.length < 48) throw new NtlmError("challenge message too short");
  const flags = dv.getUint32(20, true);
  const targetInfo = field(b, 40);
  decodeAvPairs(targetInfo);
  return {
    flags,
    serverChallenge: b.slice(24, 32),
    targetName: fromUtf16le(field(b, 12)),
    targetInfo,
    version: flags & NtlmFlag.version && b.length >= 56 ? b.slice(48, 56) : undefined,
  };
}

/** Everything that goes into an AUTHENTICATE_MESSAGE, explicit so the MS-NLMP 4.2.4 vector can drive it. */
export interface AuthenticateInput {
  user: string;
  domain: string;
  password: string;
  workstation: string;
  flags: number;
  serverChallenge: Uint8Array;
  clientChallenge: Uint8Array;
  /** FILETIME, 8 bytes little-endian */
  time: Uint8Array;
  /** the AV pairs to put in the NTLMv2 response (the server's, plus any the client adds) */
  targetInfo: Uint8Array;
  /** the random session key (MS-NLMP's ExportedSessionKey with NEGOTIATE_KEY_EXCH) */
  exportedSessionKey: Uint8Array;
  /** LMv2 response is zero and a MIC is filled in (the server sent MsvAvTimestamp, MS-NLMP 3.1.5.1.2) */
  mic?: { negotiate: Uint8Array; challenge: Uint8Array };
  version?: Uint8Array;
}

/** An AUTHENTICATE_MESSAGE and the key material it commits to. */
export interface AuthenticateResult {
  message: Uint8Array;
  ntProofStr: Uint8Array;
  sessionBaseKey: Uint8Array;
  exportedSessionKey: Uint8Array;
}

/** NTLMv2 `temp` (MS-NLMP 3.3.2). */
export function ntlmv2Temp(time: Uint8Array, clientChallenge: Uint8Array, targetInfo: Uint8Array): Uint8Array {
  return concat(
    new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0]),
    time,
    clientChallenge,
    new Uint8Array(4),
    targetInfo,
    new Uint8Array(4),
  );
}

/** Builds AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3, 3.1.5.1.2) with NTLMv2 responses. */
export function encodeAuthenticate(input: AuthenticateInput): AuthenticateResult {
  const key = ntowfv2(input.password, input.user, input.domain);
  const temp = ntlmv2Temp(input.time, input.clientChallenge, input.targetInfo);
  const ntProofStr = hmacMd5(key, input.serverChallenge, temp);
  const nt = concat(ntProofStr, temp);
  const lm = input.mic
    ? new Uint8Array(24)
    : concat(hmacMd5(key, input.serverChallenge, input.clientChallenge), input.clientChallenge);
  const sessionBaseKey = hmacMd5(key, ntProofStr);
  // MS-NLMP 3.4.5.1: with NTLMv2 the KeyExchangeKey is the SessionBaseKey
  const encryptedKey = input.flags & NtlmFlag.keyExch
    ? new Rc4(sessionBaseKey).update(input.exportedSessionKey)
    : new Uint8Array(0);
  const exportedSessionKey = input.flags & NtlmFlag.keyExch ? input.exportedSessionKey : sessionBaseKey;
  const domain = utf16le(input.domain);
  const user = utf16le(input.user);
  const ws = utf16le(input.workstation);
  const payloads = [domain, user, ws, lm, nt, encryptedKey];
  const headerLen = input.mic ? 88 : 72;
  let off = headerLen;
  const fields: Uint8Array[] = [];
  const offsets: number[] = [];
  for (const p of payloads) {
    offsets.push(off);
    off += p.length;
  }
  // header field order is Lm, Nt, Domain, User, Workstation, Key; payload order as in the 4.2.4 example
  for (const i of [3, 4, 0, 1, 2, 5]) fields.push(le16(payloads[i].length), le16(payloads[i].length), le32(offsets[i]));
  const header = concat(
    SIGNATURE,
    le32(3),
    ...fields,
    le32(input.flags),
    input.version ?? OUR_VERSION,
    input.mic ? new Uint8Array(16) : new Uint8Array(0),
  );
  const message = concat(header, ...payloads);
  if (input.mic) {
    const mic = hmacMd5(exportedSessionKey, input.mic.negotiate, input.mic.challenge, message);
    message.set(mic, 72);
  }
  return { message, ntProofStr, sessionBaseKey, exportedSessionKey };
}

/** The current time as a FILETIME (100 ns since 1601), little-endian. */
export function fileTimeNow(): Uint8Array {
  const t = (BigInt(Date.now()) + 11644473600000n) * 10000n;
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, t, true);
  return b;
}

/** A user name split into what NTLM sends: `DOMAIN\user`, or a UPN `user@domain` with an empty domain. */
export function splitUser(name: string): { user: string; domain: string } {
  const slash = name.indexOf("\\");
  if (slash >= 0) return { domain: name.slice(0, slash), user: name.slice(slash + 1) };
  return { user: name, domain: "" };
}

/** Options of {@linkcode NtlmClient}. */
export interface NtlmClientOptions {
  /** `DOMAIN\user`, `user@domain` or `user` */
  username: string;
  password: string;
  /** service principal name for MsvAvTargetName, e.g. `HTTP/win01` */
  spn?: string;
  /** MD5 of the gss_channel_bindings_struct (MS-NLMP 2.2.2.1 MsvAvChannelBindings); zeros if absent */
  channelBindings?: Uint8Array;
}

/**
 * The client side of one NTLM handshake: `negotiate()`, then `authenticate(challenge)`, which
 * returns the AUTHENTICATE message and the session for sealing.
 *
 * @example The first leg
 * ```ts
 * import { NtlmClient } from "./ntlm.ts";
 * const c = new NtlmClient({ username: "DOMAIN\\user", password: "secret" });
 * console.assert(c.negotiate().length === 40);
 * ```
 */
export class NtlmClient {
  #opts: NtlmClientOptions;
  #negotiate?: Uint8Array;

  constructor(opts: NtlmClientOptions) {
    this.#opts = opts;
  }

  /** the NEGOTIATE_MESSAGE */
  negotiate(): Uint8Array {
    this.#negotiate = encodeNegotiate();
    return this.#negotiate;
  }

  /** answers a CHALLENGE_MESSAGE; throws {@linkcode NtlmError} when the server offers no NTLMv2 sealing */
  authenticate(challengeBytes: Uint8Array): { message: Uint8Array; session: NtlmSession } {
    if (!this.#negotiate) throw new NtlmError("negotiate() was not called");
    const challenge = decodeChallenge(challengeBytes);
    const need = NtlmFlag.extendedSessionSecurity | NtlmFlag.keyExch | NtlmFlag.n128 | NtlmFlag.seal |
      NtlmFlag.sign;
    if ((challenge.flags & need) >>> 0 !== need >>> 0) {
      throw new NtlmError("the server does not offer NTLMv2 with 128-bit sealing");
    }
    const pairs = decodeAvPairs(challenge.targetInfo);
    const ts = pairs.find((p) => p.id === AvId.timestamp)?.value;
    const extra: AvPair[] = [];
    if (ts) extra.push({ id: AvId.flags, value: le32(0x2) }); // a MIC is present
    if (this.#opts.spn) extra.push({ id: AvId.targetName, value: utf16le(this.#opts.spn) });
    extra.push({ id: AvId.channelBindings, value: this.#opts.channelBindings ?? new Uint8Array(16) });
    const kept = pairs.filter((p) => !extra.some((e) => e.id === p.id));
    const { user, domain } = splitUser(this.#opts.username);
    const flags = (CLIENT_FLAGS & challenge.flags) >>> 0;
    const result = encodeAuthenticate({
      user,
      domain,
      password: this.#opts.password,
      workstation: "",
      flags,
      serverChallenge: challenge.serverChallenge,
      clientChallenge: new Uint8Array(randomBytes(8)),
      time: ts ?? fileTimeNow(),
      targetInfo: encodeAvPairs([...kept, ...extra]),
      exportedSessionKey: new Uint8Array(randomBytes(16)),
      mic: ts ? { negotiate: this.#negotiate, challenge: challengeBytes } : undefined,
    });
    return { message: result.message, session: new NtlmSession(result.exportedSessionKey, "client") };
  }
}

const C2S_SIGN = "session key to client-to-server signing key magic constant\0";
const S2C_SIGN = "session key to server-to-client signing key magic constant\0";
const C2S_SEAL = "session key to client-to-server sealing key magic constant\0";
const S2C_SEAL = "session key to server-to-client sealing key magic constant\0";

/** SIGNKEY and SEALKEY (MS-NLMP 3.4.5.2, 3.4.5.3) for 128-bit extended session security. */
export function sessionKeys(exportedSessionKey: Uint8Array, direction: "client-to-server" | "server-to-client") {
  const ascii = (s: string) => new TextEncoder().encode(s);
  const c2s = direction === "client-to-server";
  return {
    signKey: md5(exportedSessionKey, ascii(c2s ? C2S_SIGN : S2C_SIGN)),
    sealKey: md5(exportedSessionKey, ascii(c2s ? C2S_SEAL : S2C_SEAL)),
  };
}

/** A sealed message: the 16-byte NTLMSSP_MESSAGE_SIGNATURE and the encrypted bytes. */
export interface Sealed {
  signature: Uint8Array;
  sealed: Uint8Array;
}

/**
 * NTLM session security for one authenticated connection: outgoing and incoming each have their own
 * keys, RC4 handle (continued across messages) and sequence number (MS-NLMP 3.4.4.2, 3.4.6).
 *
 * @example Client and server talk
 * ```ts
 * import { NtlmSession } from "./ntlm.ts";
 * const key = new Uint8Array(16).fill(0x55);
 * const client = new NtlmSession(key, "client");
 * const server = new NtlmSession(key, "server");
 * const { sealed, signature } = client.seal(new TextEncoder().encode("hi"));
 * console.assert(new TextDecoder().decode(server.unseal(sealed, signature)) === "hi");
 * ```
 */
export class NtlmSession {
  #out: { signKey: Uint8Array; rc4: Rc4; seq: number };
  #in: { signKey: Uint8Array; rc4: Rc4; seq: number };

  constructor(exportedSessionKey: Uint8Array, role: "client" | "server") {
    const c2s = sessionKeys(exportedSessionKey, "client-to-server");
    const s2c = sessionKeys(exportedSessionKey, "server-to-client");
    const [out, inn] = role === "client" ? [c2s, s2c] : [s2c, c2s];
    this.#out = { signKey: out.signKey, rc4: new Rc4(out.sealKey), seq: 0 };
    this.#in = { signKey: inn.signKey, rc4: new Rc4(inn.sealKey), seq: 0 };
  }

  /** encrypts `message`, then signs it with the same handle (MS-NLMP 3.4.3 SEAL) */
  seal(message: Uint8Array): Sealed {
    const d = this.#out;
    const sealed = d.rc4.update(message);
    const signature = this.#signature(d, message);
    return { sealed, signature };
  }

  /** decrypts and verifies; throws {@linkcode NtlmError} on a bad signature or sequence number */
  unseal(sealed: Uint8Array, signature: Uint8Array): Uint8Array {
    const d = this.#in;
    if (signature.length !== 16) throw new NtlmError("bad message signature length");
    const message = d.rc4.update(sealed);
    const expected = this.#signature(d, message);
    if (!expected.every((b, i) => b === signature[i])) {
      throw new NtlmError("message signature does not verify (tampered, or out of sequence)");
    }
    return message;
  }

  #signature(d: { signKey: Uint8Array; rc4: Rc4; seq: number }, message: Uint8Array): Uint8Array {
    const seq = le32(d.seq);
    const checksum = d.rc4.update(hmacMd5(d.signKey, seq, message).slice(0, 8));
    d.seq++;
    return concat(le32(1), checksum, seq);
  }
}
