/**
 * GUIDs as PSRP carries them: lower-case `D` text in packets and CLIXML, and .NET `Guid.ToByteArray()`
 * order in message headers (MS-PSRP §2.2.1: the first three groups little-endian, the last eight bytes as
 * written).
 *
 * @module
 */
import { PsrpError } from "./errors.ts";

// where the i-th byte of the RFC text lands in .NET's order
const ORDER = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];

function nibble(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
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
  const out = new Uint8Array(16);
  let j = 0;
  for (let i = 0; i < 16; i++) {
    if (guid.charCodeAt(j) === 0x2d) j++;
    out[ORDER[i]] = (nibble(guid.charCodeAt(j)) << 4) | nibble(guid.charCodeAt(j + 1));
    j += 2;
  }
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
  const h = (i: number) => HEX[bytes[i]];
  return h(3) + h(2) + h(1) + h(0) + "-" + h(5) + h(4) + "-" + h(7) + h(6) + "-" + h(8) + h(9) + "-" + h(10) + h(11) +
    h(12) + h(13) + h(14) + h(15);
}
