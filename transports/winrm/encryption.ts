/**
 * WinRM message encryption over HTTP (MS-WSMV 2.2.9.1): the SOAP body sealed with the connection's
 * NTLM session and framed as `multipart/encrypted` with protocol
 * `application/HTTP-SPNEGO-session-encrypted`. Pure framing, no I/O.
 *
 * @module
 */
import { concat, type NtlmSession } from "./ntlm.ts";

const BOUNDARY = "Encrypted Boundary";
const PROTOCOL = "application/HTTP-SPNEGO-session-encrypted";

/** The Content-Type of an encrypted request or reply. */
export const ENCRYPTED_CONTENT_TYPE = `multipart/encrypted;protocol="${PROTOCOL}";boundary="${BOUNDARY}"`;

/** A reply that cannot be unwrapped. */
export class EncryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EncryptionError";
  }
}

const enc = new TextEncoder();

/** Seals `soap` and frames it (MS-WSMV 2.2.9.1.1.2.2; a tab precedes each part header). */
export function encryptMessage(session: NtlmSession, soap: Uint8Array): Uint8Array {
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
    enc.encode(`--${BOUNDARY}--\r\n`),
  );
}

/** True when a Content-Type header announces an encrypted body. */
export function isEncrypted(contentType: string | undefined): boolean {
  return !!contentType && /multipart\/(x-multi-)?encrypted/i.test(contentType) && contentType.includes(PROTOCOL);
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= hay.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Unframes and unseals an encrypted body; checks the plaintext length against `Length=`. */
export function decryptMessage(session: NtlmSession, body: Uint8Array): Uint8Array {
  const octet = enc.encode("Content-Type: application/octet-stream\r\n");
  const at = indexOf(body, octet);
  if (at < 0) throw new EncryptionError("encrypted reply has no octet-stream part");
  const head = new TextDecoder().decode(body.subarray(0, at));
  const m = /Length=(\d+)/.exec(head);
  if (!m) throw new EncryptionError("encrypted reply does not state its length");
  const expected = Number(m[1]);
  const start = at + octet.length;
  // the sealed bytes may contain anything, the closing boundary included: cut by the stated length
  if (body.length < start + 4) throw new EncryptionError("encrypted reply is truncated");
  const sigLen = new DataView(body.buffer, body.byteOffset + start, 4).getUint32(0, true);
  if (sigLen !== 16) throw new EncryptionError("encrypted reply has a bad signature length");
  const dataAt = start + 4 + sigLen;
  if (body.length < dataAt + expected) throw new EncryptionError("encrypted reply is truncated");
  const signature = body.slice(start + 4, dataAt);
  const sealed = body.slice(dataAt, dataAt + expected);
  return session.unseal(sealed, signature);
}
