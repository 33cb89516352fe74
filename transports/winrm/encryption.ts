/**
 * WinRM message encryption over HTTP (MS-WSMV 2.2.9.1): the SOAP body sealed with the connection's
 * NTLM session and framed as `multipart/encrypted` with protocol
 * `application/HTTP-SPNEGO-session-encrypted`. Pure framing, no I/O.
 *
 * Negotiate (NTLM) and Kerberos seal a message of any size as one part (MS-WSMV 2.2.9.1.1.1 and
 * 2.2.9.1.2.1: the Content-Type MUST be `multipart/encrypted`). Splitting into 16 KiB parts under
 * `multipart/x-multi-encrypted` is CredSSP's framing (MS-WSMV 2.2.9.1.3.2), because a TLS record
 * holds at most 16 KiB; {@linkcode encryptMultipart} builds it and {@linkcode decryptMessage} reads
 * both forms, part by part, as pywinrm and pypsrp do.
 *
 * @module
 */
import { concat, type NtlmSession } from "./ntlm.ts";

const BOUNDARY = "Encrypted Boundary";
const PROTOCOL = "application/HTTP-SPNEGO-session-encrypted";

/** The Content-Type of an encrypted request or reply. */
export const ENCRYPTED_CONTENT_TYPE = `multipart/encrypted;protocol="${PROTOCOL}";boundary="${BOUNDARY}"`;
/**
 * The Content-Type of a message sealed in several parts (MS-WSMV 2.2.9.1.3.2.1, where the protocol
 * is CredSSP's; here the NTLM one, as pywinrm's chunking produces when it seals with NTLM).
 */
export const MULTI_ENCRYPTED_CONTENT_TYPE = `multipart/x-multi-encrypted;protocol="${PROTOCOL}";boundary="${BOUNDARY}"`;
/** The part size of `multipart/x-multi-encrypted` (MS-WSMV 2.2.9.1.3.2: 16 KiB). */
export const MULTI_PART_SIZE = 16 * 1024;

/** A reply that cannot be unwrapped. */
export class EncryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EncryptionError";
  }
}

const enc = new TextEncoder();

/** One part: its two headers, the signature length, the signature, the sealed bytes. */
function part(session: NtlmSession, soap: Uint8Array): Uint8Array {
  const { sealed, signature } = session.seal(soap);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, signature.length, true);
  return concat(
    enc.encode(
      `--${BOUNDARY}\r\n\tContent-Type: ${PROTOCOL}\r\n` +
        `\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=${soap.length}\r\n` +
        `--${BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n`,
    ),
    len,
    signature,
    sealed,
  );
}

/** Seals `soap` as one part (MS-WSMV 2.2.9.1.1.2.2; a tab precedes each part header). */
export function encryptMessage(session: NtlmSession, soap: Uint8Array): Uint8Array {
  return concat(part(session, soap), enc.encode(`--${BOUNDARY}--\r\n`));
}

/**
 * Seals `soap` in parts of `partSize` plaintext bytes, each sealed in turn, for
 * {@linkcode MULTI_ENCRYPTED_CONTENT_TYPE} (MS-WSMV 2.2.9.1.3.2.2).
 */
export function encryptMultipart(session: NtlmSession, soap: Uint8Array, partSize = MULTI_PART_SIZE): Uint8Array {
  const parts = [part(session, soap.subarray(0, partSize))];
  for (let off = partSize; off < soap.length; off += partSize) {
    parts.push(part(session, soap.subarray(off, off + partSize)));
  }
  return concat(...parts, enc.encode(`--${BOUNDARY}--\r\n`));
}

/** True when a Content-Type header announces an encrypted body. */
export function isEncrypted(contentType: string | undefined): boolean {
  return !!contentType && /multipart\/(x-multi-)?encrypted/i.test(contentType) && contentType.includes(PROTOCOL);
}

/** Reads a CR LF-terminated line at `at`: its text and where the next line starts; undefined if there is none. */
function line(body: Uint8Array, at: number): { text: string; next: number } | undefined {
  const end = body.subarray(at, Math.min(body.length, at + 1024)).indexOf(10);
  if (end < 1 || body[at + end - 1] !== 13) return undefined;
  return { text: new TextDecoder("latin1").decode(body.subarray(at, at + end - 1)), next: at + end + 1 };
}

function isBoundary(text: string, final: boolean): boolean {
  // Exchange writes "-- Encrypted Boundary" (pypsrp tolerates it): spaces after the dashes are allowed
  return text.replace(/^--\s*/, "--") === `--${BOUNDARY}${final ? "--" : ""}`;
}

/**
 * Unframes and unseals an encrypted body of one part or several, in order; each part's plaintext
 * must have the length its `Length=` states.
 *
 * @throws {EncryptionError} on framing that does not follow MS-WSMV 2.2.9.1, naming the part
 * @throws {NtlmError} when a signature does not verify
 */
export function decryptMessage(session: NtlmSession, body: Uint8Array): Uint8Array {
  const out: Uint8Array[] = [];
  let at = 0;
  for (let n = 1;; n++) {
    const fail = (what: string) => new EncryptionError(`encrypted reply ${what}${n > 1 ? ` (part ${n})` : ""}`);
    const need = (l: ReturnType<typeof line>, what: string) => {
      if (l) return l;
      throw at >= body.length || !body.subarray(at).includes(10) ? fail("is truncated") : fail(what);
    };
    const rest = new TextDecoder("latin1").decode(body.subarray(at, at + 64));
    if (n > 1 && body.length - at < 64 && isBoundary(rest.trimEnd(), true)) break; // the last CR LF is missing
    const first = need(line(body, at), "is malformed: no boundary");
    if (isBoundary(first.text, true)) {
      if (n === 1) throw fail("has no parts");
      break;
    }
    if (!isBoundary(first.text, false)) throw fail("is malformed: no boundary");
    // the metadata part: Content-Type and OriginalContent, up to the next boundary
    let next = first.next;
    let length: number | undefined;
    let protocol = false;
    for (let i = 0;; i++) {
      if (i > 8) throw fail("is malformed: too many part headers");
      const h = need(line(body, next), "is malformed: a part header does not end");
      next = h.next;
      if (isBoundary(h.text, false)) break;
      const t = h.text.trim();
      if (/^Content-Type:/i.test(t)) protocol = t.slice(13).trim() === PROTOCOL;
      const m = /^OriginalContent:.*;\s*Length=(\d{1,9})\s*$/i.exec(t);
      if (m) length = Number(m[1]);
    }
    if (!protocol) throw fail(`is malformed: a part is not ${PROTOCOL}`);
    if (length === undefined) throw fail("does not state its length");
    const octet = need(line(body, next), "has no octet-stream part");
    if (!/^\s*Content-Type:\s*application\/octet-stream$/i.test(octet.text)) throw fail("has no octet-stream part");
    const start = octet.next;
    // the sealed bytes may contain anything, a boundary included: cut by the stated length
    if (body.length < start + 4) throw fail("is truncated");
    const sigLen = new DataView(body.buffer, body.byteOffset + start, 4).getUint32(0, true);
    if (sigLen !== 16) throw fail("has a bad signature length");
    const dataAt = start + 4 + sigLen;
    if (body.length < dataAt + length) throw fail("is truncated");
    out.push(session.unseal(body.slice(dataAt, dataAt + length), body.slice(start + 4, dataAt)));
    at = dataAt + length;
  }
  return concat(...out);
}
