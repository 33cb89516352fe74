/**
 * GUIDs as PSRP carries them: lower-case `D` text in packets and CLIXML, and .NET `Guid.ToByteArray()`
 * order in message headers (MS-PSRP §2.2.1: the first three groups little-endian, the last eight bytes as
 * written).
 *
 * @module
 */
import { PsrpError } from "./errors.ts";

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A new random GUID in lower-case `D` format.
 *
 * @example
 * ```ts
 * import { newGuid } from "./guid.ts";
 * console.assert(/^[0-9a-f-]{36}$/.test(newGuid()));
 * ```
 */
export function newGuid(): string {
  return crypto.randomUUID();
}

/** Whether `text` is a GUID in `D` format. */
export function isGuid(text: string): boolean {
  return GUID_RE.test(text);
}

/**
 * The 16 bytes of a GUID in .NET order.
 *
 * @throws {PsrpError} when `guid` is not in `D` format
 * @example
 * ```ts
 * import { guidToBytes } from "./guid.ts";
 * const b = guidToBytes("8d1e6f2a-4c3b-4a5d-9e7f-0123456789ab");
 * console.assert(b[0] === 0x2a && b[3] === 0x8d && b[8] === 0x9e);
 * ```
 */
export function guidToBytes(guid: string): Uint8Array {
  if (!GUID_RE.test(guid)) throw new PsrpError(`not a guid: ${guid.slice(0, 40)}`);
  const hex = guid.replaceAll("-", "");
  const rfc = new Uint8Array(16);
  for (let i = 0; i < 16; i++) rfc[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  const out = rfc.slice();
  out.set([rfc[3], rfc[2], rfc[1], rfc[0], rfc[5], rfc[4], rfc[7], rfc[6]], 0);
  return out;
}

/**
 * The GUID text of 16 bytes in .NET order.
 *
 * @example
 * ```ts
 * import { guidFromBytes, guidToBytes } from "./guid.ts";
 * const g = "8d1e6f2a-4c3b-4a5d-9e7f-0123456789ab";
 * console.assert(guidFromBytes(guidToBytes(g)) === g);
 * ```
 */
export function guidFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new PsrpError(`a guid needs 16 bytes, got ${bytes.length}`);
  const b = [bytes[3], bytes[2], bytes[1], bytes[0], bytes[5], bytes[4], bytes[7], bytes[6], ...bytes.subarray(8)];
  const hex = b.map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
