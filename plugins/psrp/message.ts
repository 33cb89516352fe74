/**
 * The message layer (MS-PSRP §2.2.1): a 40-byte header of little-endian destination and type and two GUIDs
 * in .NET byte order, then UTF-8 CLIXML (PowerShell's own messages start with a BOM).
 *
 * @module
 */
import { type DestinationValue, messageTypeName } from "./constants.ts";
import { PsrpError } from "./errors.ts";
import { guidFromBytes, guidToBytes } from "./guid.ts";

/** Size of a message header. */
export const MESSAGE_HEADER_SIZE = 40;

/** One PSRP message. */
export interface Message {
  destination: DestinationValue;
  /** a {@linkcode MessageType} value */
  type: number;
  /** runspace pool id */
  rpid: string;
  /** pipeline id, or the nil GUID for pool messages */
  pid: string;
  /** the CLIXML text (BOM removed); empty for END_OF_PIPELINE_INPUT */
  data: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * The bytes of a message (no BOM: PowerShell accepts messages without one).
 *
 * @example
 * ```ts
 * import { encodeMessage } from "./message.ts";
 * const nil = "00000000-0000-0000-0000-000000000000";
 * const b = encodeMessage({ destination: 2, type: 0x00041003, rpid: nil, pid: nil, data: "" });
 * console.assert(b.length === 40 && b[0] === 2 && b[4] === 3);
 * ```
 */
export function encodeMessage(m: Message): Uint8Array {
  const body = encoder.encode(m.data);
  const out = new Uint8Array(MESSAGE_HEADER_SIZE + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, m.destination, true);
  v.setUint32(4, m.type, true);
  out.set(guidToBytes(m.rpid), 8);
  out.set(guidToBytes(m.pid), 24);
  out.set(body, MESSAGE_HEADER_SIZE);
  return out;
}

/**
 * A message from its bytes.
 *
 * @throws {PsrpError} on a short header, an unknown destination or type, or invalid UTF-8
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "./message.ts";
 * const nil = "00000000-0000-0000-0000-000000000000";
 * const m = decodeMessage(encodeMessage({ destination: 1, type: 0x00041004, rpid: nil, pid: nil, data: "<S>x</S>" }));
 * console.assert(m.data === "<S>x</S>");
 * ```
 */
export function decodeMessage(bytes: Uint8Array): Message {
  if (bytes.length < MESSAGE_HEADER_SIZE) throw new PsrpError(`a message of ${bytes.length} bytes has no full header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const destination = v.getUint32(0, true);
  if (destination !== 1 && destination !== 2) throw new PsrpError(`a message has unknown destination ${destination}`);
  const type = v.getUint32(4, true);
  if (!messageTypeName(type)) throw new PsrpError(`a message has unknown type 0x${type.toString(16).padStart(8, "0")}`);
  let data: string;
  try {
    data = decoder.decode(bytes.subarray(MESSAGE_HEADER_SIZE));
  } catch (cause) {
    throw new PsrpError("a message's data is not valid UTF-8", { cause });
  }
  return {
    destination,
    type,
    rpid: guidFromBytes(bytes.subarray(8, 24)),
    pid: guidFromBytes(bytes.subarray(24, 40)),
    data,
  };
}
