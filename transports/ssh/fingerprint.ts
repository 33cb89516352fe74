/**
 * SSH public key blobs (RFC 4253 §6.6 wire format): their type, their SHA256 fingerprint as
 * `ssh-keygen -lf` prints it, and the one-line text form used by `.pub` files and known_hosts.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { RemoteError } from "../../plugins/mod.ts";

/**
 * The fingerprint of a public key blob as OpenSSH shows it: "SHA256:" and the unpadded base64 of
 * its SHA-256.
 *
 * @example Fingerprinting
 * ```ts
 * import { fingerprintSha256 } from "./fingerprint.ts";
 * console.assert(fingerprintSha256(new Uint8Array([0, 0, 0, 0])).startsWith("SHA256:"));
 * ```
 */
export function fingerprintSha256(key: Uint8Array): string {
  return "SHA256:" + createHash("sha256").update(key).digest("base64").replace(/=+$/, "");
}

/** Reads the uint32-length-prefixed string at `offset` of an SSH wire buffer (RFC 4251 §5). */
export function readSshString(buf: Uint8Array, offset: number): { value: Uint8Array; next: number } | undefined {
  if (offset + 4 > buf.length) return undefined;
  const len = new DataView(buf.buffer, buf.byteOffset + offset, 4).getUint32(0);
  const start = offset + 4;
  if (start + len > buf.length) return undefined;
  return { value: buf.subarray(start, start + len), next: start + len };
}

/**
 * The key type named at the start of a public key blob, e.g. "ssh-ed25519".
 *
 * @throws {RemoteError} code "keyFile" when the blob is too short to hold a type
 * @example Reading the type
 * ```ts
 * import { keyTypeOf } from "./fingerprint.ts";
 * const blob = new Uint8Array([0, 0, 0, 3, 0x61, 0x62, 0x63]);
 * console.assert(keyTypeOf(blob) === "abc");
 * ```
 */
export function keyTypeOf(key: Uint8Array): string {
  const s = readSshString(key, 0);
  const type = s && new TextDecoder().decode(s.value);
  if (!type || !/^[\x21-\x7e]+$/.test(type)) {
    throw new RemoteError("keyFile", "malformed ssh public key: no key type", {
      hint: "the key data is damaged; copy it again",
    });
  }
  return type;
}

/**
 * Parses `type base64 [comment]`, the form of `.pub` files and of known_hosts after the host field.
 *
 * @throws {RemoteError} code "keyFile" when the base64 is bad or the blob's type differs from `type`
 * @example Parsing a .pub line
 * ```ts
 * import { parsePublicKeyLine } from "./fingerprint.ts";
 * const b64 = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
 * const k = parsePublicKeyLine(`ssh-ed25519 ${b64} me@box`);
 * console.assert(k.type === "ssh-ed25519" && k.comment === "me@box");
 * ```
 */
export function parsePublicKeyLine(line: string): { type: string; key: Uint8Array; comment?: string } {
  const m = /^[ \t]*(\S+)[ \t]+(\S+)(?:[ \t]+(.*?))?[ \t\r\n]*$/.exec(line);
  if (!m) {
    throw new RemoteError("keyFile", "malformed public key line: expected '<type> <base64> [comment]'", {
      hint: "use the one-line form from a .pub file",
    });
  }
  const [, type, b64, comment] = m;
  const key = decodeBase64Strict(b64);
  if (!key) {
    throw new RemoteError("keyFile", `malformed public key line: bad base64 in the ${type} key`, {
      hint: "the key data is damaged; copy it again",
    });
  }
  const inner = keyTypeOf(key);
  if (inner !== type) {
    throw new RemoteError("keyFile", `malformed public key line: says ${type} but the key is ${inner}`, {
      hint: "the key data is damaged; copy it again",
    });
  }
  return comment ? { type, key, comment } : { type, key };
}

/** Decodes canonical base64 (padding optional), or undefined if it is not base64. */
export function decodeBase64Strict(b64: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.replace(/=+$/, "").length % 4 === 1) return undefined;
  return new Uint8Array(Buffer.from(b64, "base64"));
}
