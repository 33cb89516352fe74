/**
 * The Session Manager data channel's binary `ClientMessage`: encoding and decoding, with no I/O.
 *
 * Layout and quirks from aws/session-manager-plugin `src/message/clientmessage.go` and
 * `messageparser.go` (identical in aws/amazon-ssm-agent `agent/session/contracts/agentmessage.go`):
 * big-endian integers, a 116-byte header, MessageType padded with spaces, the two halves of the
 * MessageId swapped, a SHA-256 payload digest, and `channel_closed` frames from some services with a
 * 112-byte header that has no PayloadType field.
 *
 * @module
 */
import { createHash, randomUUID } from "node:crypto";
import { sha256Into, sha256Midstate } from "../../plugins/mod.ts";

/** Message types on the data channel (`clientmessage.go`). */
export const MessageType = {
  input: "input_stream_data",
  output: "output_stream_data",
  acknowledge: "acknowledge",
  channelClosed: "channel_closed",
  startPublication: "start_publication",
  pausePublication: "pause_publication",
} as const;

/** Payload types carried in stream data messages (`clientmessage.go`, agent `contracts/model.go`). */
export const PayloadType = {
  output: 1,
  error: 2,
  size: 3,
  parameter: 4,
  handshakeRequest: 5,
  handshakeResponse: 6,
  handshakeComplete: 7,
  encChallengeRequest: 8,
  encChallengeResponse: 9,
  flag: 10,
  stdErr: 11,
  exitCode: 12,
} as const;

/** Values of a `PayloadType.flag` payload (a big-endian uint32). */
export const PayloadFlag = { disconnectToPort: 1, terminateSession: 2, connectToPortError: 3 } as const;

/** The header length the serializer writes: the offset of PayloadLength. */
export const HEADER_LENGTH = 116;
/** The shorter header of `channel_closed` frames seen from some services (no PayloadType). */
export const SHORT_HEADER_LENGTH = 112;

const TYPE_OFFSET = 4;
const TYPE_LENGTH = 32;
const SCHEMA_OFFSET = 36;
const DATE_OFFSET = 40;
const SEQ_OFFSET = 48;
const FLAGS_OFFSET = 56;
const ID_OFFSET = 64;
const DIGEST_OFFSET = 80;
const PAYLOAD_TYPE_OFFSET = 112;

/** One data channel message. */
export interface ClientMessage {
  messageType: string;
  schemaVersion: number;
  /** epoch milliseconds */
  createdDate: number;
  sequenceNumber: number;
  flags: number;
  /** canonical hyphenated UUID, after undoing the wire swap */
  messageId: string;
  /** 0 where the header has no PayloadType (short header) or the sender left it unset (acks) */
  payloadType: number;
  payload: Uint8Array;
}

/** A decoded message plus what the decoder noticed but tolerated. */
export interface DecodedMessage extends ClientMessage {
  headerLength: number;
  /**
   * false when the payload's SHA-256 differs from the header; undefined when the caller did not ask (the data
   * channel does not: TLS already guards the bytes, and the digest, unkeyed, guards nothing TLS does not)
   */
  digestOk?: boolean;
}

/** A frame that cannot be a ClientMessage; the receiver drops it unacknowledged so the sender resends. */
export class MalformedMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MalformedMessageError";
  }
}

/**
 * Payloads up to this long are hashed by the transport's own SHA-256 (acks, keystrokes, control messages): node's
 * `createHash` costs ~1.5 µs per call whatever the size, four or five of these blocks.
 */
const SMALL_PAYLOAD = 256;

/** Writes the SHA-256 of `bytes` to `out` at `at`. */
function digestInto(bytes: Uint8Array, out: Uint8Array, at: number): void {
  if (bytes.length <= SMALL_PAYLOAD) sha256Into(bytes, 0, bytes.length, out, at);
  else out.set(createHash("sha256").update(bytes).digest(), at);
}

/** true when the SHA-256 of `bytes` is the 32 bytes of `frame` at `at` */
function digestMatches(bytes: Uint8Array, frame: Uint8Array, at: number): boolean {
  digestInto(bytes, DIGEST_SCRATCH, 0);
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= DIGEST_SCRATCH[i] ^ frame[at + i];
  return diff === 0;
}

const DIGEST_SCRATCH = new Uint8Array(32);

/** A fresh random message ID. */
export function newMessageId(): string {
  return randomUUID();
}

const encoder = new TextEncoder();
const TYPE_BYTES = new Map(Object.values(MessageType).map((t) => [t as string, encoder.encode(t)]));
const decoder = new TextDecoder("utf-8", { fatal: false });
// lookup tables: these conversions run twice per data message (its ID and its acknowledgement's)
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  NIBBLE[i.toString(16).charCodeAt(0)] = i;
  NIBBLE[i.toString(16).toUpperCase().charCodeAt(0)] = i;
}

function uuidToBytes(id: string): Uint8Array {
  const out = new Uint8Array(16);
  let n = 0;
  for (let i = 0; i < id.length && n <= 32; i++) {
    const c = id.charCodeAt(i);
    if (c === 0x2d) continue; // "-"
    const v = c < 128 ? NIBBLE[c] : -1;
    if (v < 0) throw new TypeError(`not a uuid: ${id}`);
    if (n < 32) out[n >> 1] |= n & 1 ? v : v << 4;
    n++;
  }
  if (n !== 32) throw new TypeError(`not a uuid: ${id}`);
  return out;
}

/** Formats 16 bytes at `at` in canonical order: `swapped` reads the wire order (low half first). */
function bytesToUuid(bytes: Uint8Array, at = 0, swapped = false): string {
  let hex = "";
  for (let i = 0; i < 16; i++) {
    const j = swapped ? (i + 8) % 16 : i;
    hex += HEX[bytes[at + j]];
    if (i === 3 || i === 5 || i === 7 || i === 9) hex += "-";
  }
  return hex;
}

/**
 * Encodes a message as the plugin does: 116-byte header, space-padded type, swapped MessageId
 * halves (`putUuid` writes bytes 8..16 first), SHA-256 digest of the payload.
 *
 * @example Encoding an input message
 * ```ts
 * import { encodeClientMessage, PayloadType } from "./client_message.ts";
 * const frame = encodeClientMessage({
 *   messageType: "input_stream_data", schemaVersion: 1, createdDate: Date.now(), sequenceNumber: 0, flags: 0,
 *   messageId: crypto.randomUUID(), payloadType: PayloadType.output, payload: new TextEncoder().encode("ls\r"),
 * });
 * console.assert(frame.length === 120 + 3);
 * ```
 */
export function encodeClientMessage(message: ClientMessage): Uint8Array {
  return encodeWithId(message, uuidToBytes(message.messageId));
}

/** A frame of `message` whose MessageId is the 16 bytes `id` in canonical order. */
function encodeWithId(message: Omit<ClientMessage, "messageId">, id: Uint8Array): Uint8Array {
  const typeBytes = TYPE_BYTES.get(message.messageType) ?? encoder.encode(message.messageType);
  if (typeBytes.length > TYPE_LENGTH) throw new TypeError(`message type too long: ${message.messageType}`);
  const out = new Uint8Array(HEADER_LENGTH + 4 + message.payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, HEADER_LENGTH);
  out.fill(0x20, TYPE_OFFSET, TYPE_OFFSET + TYPE_LENGTH);
  out.set(typeBytes, TYPE_OFFSET);
  view.setUint32(SCHEMA_OFFSET, message.schemaVersion);
  setInt64(view, DATE_OFFSET, message.createdDate);
  setInt64(view, SEQ_OFFSET, message.sequenceNumber);
  setInt64(view, FLAGS_OFFSET, message.flags);
  out.set(id.subarray(8, 16), ID_OFFSET);
  out.set(id.subarray(0, 8), ID_OFFSET + 8);
  digestInto(message.payload, out, DIGEST_OFFSET);
  view.setUint32(PAYLOAD_TYPE_OFFSET, message.payloadType);
  view.setUint32(HEADER_LENGTH, message.payload.length);
  out.set(message.payload, HEADER_LENGTH + 4);
  return out;
}

// 64-bit fields as two 32-bit halves: dates, sequence numbers and flags stay far below 2^53, and BigInt reads and
// writes (six per data message) cost more than the rest of the header
const TWO_32 = 2 ** 32;

function getUint64(view: DataView, at: number): number {
  return view.getUint32(at) * TWO_32 + view.getUint32(at + 4);
}

function getInt64(view: DataView, at: number): number {
  return view.getInt32(at) * TWO_32 + view.getUint32(at + 4);
}

function setInt64(view: DataView, at: number, value: number): void {
  const n = Math.trunc(value);
  const high = Math.floor(n / TWO_32);
  view.setInt32(at, high);
  view.setUint32(at + 4, n - high * TWO_32);
}

const KNOWN_TYPES = [...TYPE_BYTES];

/** The MessageType at its offset: one of the known types, padded, found by comparing bytes; any other decoded. */
function typeAt(frame: Uint8Array): string {
  for (const [name, bytes] of KNOWN_TYPES) {
    let i = 0;
    while (i < bytes.length && frame[TYPE_OFFSET + i] === bytes[i]) i++;
    if (i < bytes.length) continue;
    while (i < TYPE_LENGTH && isPad(frame[TYPE_OFFSET + i])) i++;
    if (i === TYPE_LENGTH) return name;
  }
  return trimType(frame.subarray(TYPE_OFFSET, TYPE_OFFSET + TYPE_LENGTH));
}

const isPad = (b: number) => b === 0 || b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

function trimType(raw: Uint8Array): string {
  // the parser trims NULs then whitespace, so NUL- and space-padded types both decode
  let start = 0;
  let end = raw.length;
  while (start < end && isPad(raw[start])) start++;
  while (end > start && isPad(raw[end - 1])) end--;
  return decoder.decode(raw.subarray(start, end));
}

/**
 * Decodes one frame robustly: reads HeaderLength, PayloadLength at that offset, the payload right
 * after it, and PayloadType only when the header is long enough to hold it. A digest mismatch is
 * reported in `digestOk`, not thrown (some agent versions send wrong digests); `checkDigest` false skips the
 * SHA-256 (~2.5 µs and a digest's garbage per message).
 *
 * @throws {MalformedMessageError} when lengths are inconsistent or mandatory fields are empty
 * @example Round trip
 * ```ts
 * import { decodeClientMessage, encodeClientMessage } from "./client_message.ts";
 * const m = { messageType: "acknowledge", schemaVersion: 1, createdDate: 1, sequenceNumber: 0, flags: 3,
 *   messageId: "00112233-4455-6677-8899-aabbccddeeff", payloadType: 0, payload: new Uint8Array() };
 * console.assert(decodeClientMessage(encodeClientMessage(m)).messageId === m.messageId);
 * ```
 */
export function decodeClientMessage(frame: Uint8Array, checkDigest = true): DecodedMessage {
  if (frame.length < SHORT_HEADER_LENGTH + 4) {
    throw new MalformedMessageError(`frame of ${frame.length} bytes is shorter than a header`);
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const headerLength = view.getUint32(0);
  if (headerLength < SHORT_HEADER_LENGTH || headerLength + 4 > frame.length) {
    throw new MalformedMessageError(`header length ${headerLength} does not fit a frame of ${frame.length} bytes`);
  }
  const payloadLength = view.getUint32(headerLength);
  const available = frame.length - headerLength - 4;
  if (payloadLength !== available) {
    throw new MalformedMessageError(`payload length ${payloadLength} but ${available} bytes follow the header`);
  }
  const messageType = typeAt(frame);
  const createdDate = getUint64(view, DATE_OFFSET);
  const publication = messageType === MessageType.startPublication || messageType === MessageType.pausePublication;
  if (!publication && (messageType === "" || createdDate === 0)) {
    throw new MalformedMessageError("message type or creation date is empty");
  }
  const payload = frame.slice(headerLength + 4);
  const digestOk = checkDigest ? payload.length === 0 || digestMatches(payload, frame, DIGEST_OFFSET) : undefined;
  return {
    headerLength,
    messageType,
    schemaVersion: view.getUint32(SCHEMA_OFFSET),
    createdDate,
    sequenceNumber: getInt64(view, SEQ_OFFSET),
    flags: getUint64(view, FLAGS_OFFSET),
    messageId: bytesToUuid(frame, ID_OFFSET, true),
    payloadType: headerLength >= HEADER_LENGTH ? view.getUint32(PAYLOAD_TYPE_OFFSET) : 0,
    payload,
    digestOk,
  };
}

/** The JSON body of an `acknowledge` message (`messageparser.go` `AcknowledgeContent`). */
export interface AcknowledgeContent {
  AcknowledgedMessageType: string;
  AcknowledgedMessageId: string;
  AcknowledgedMessageSequenceNumber: number;
  IsSequentialMessage: boolean;
}

/** Builds the acknowledgement of `acked`: SequenceNumber 0, Flags 3, PayloadType unset. */
export function encodeAcknowledge(
  acked: Pick<ClientMessage, "messageType" | "messageId" | "sequenceNumber">,
): Uint8Array {
  // one per message received, so built straight into its frame: a header made once with the fields that change
  // (CreatedDate, MessageId, digest, PayloadLength) filled in, the JSON of AcknowledgeContent in its field order
  // written as bytes, and its digest continued from the saved state of the first 64 bytes, the same in every ack
  // of one message type
  const prefix = ackPrefix(acked.messageType);
  const id = acked.messageId;
  const seq = String(acked.sequenceNumber);
  const payloadLength = prefix.bytes.length + id.length + ACK_SEQ_KEY.length + seq.length + ACK_SUFFIX.length;
  const out = new Uint8Array(HEADER_LENGTH + 4 + payloadLength);
  let at = HEADER_LENGTH + 4;
  out.set(prefix.bytes, at);
  at += prefix.bytes.length;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    // anything JSON would escape, or not ASCII: not a MessageId decoded from a frame
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return encodeAcknowledgeSlowly(acked);
    out[at++] = c;
  }
  out.set(ACK_SEQ_KEY, at);
  at += ACK_SEQ_KEY.length;
  for (let i = 0; i < seq.length; i++) out[at++] = seq.charCodeAt(i);
  out.set(ACK_SUFFIX, at);
  out.set(ACK_HEADER);
  const date = Date.now();
  const high = Math.floor(date / TWO_32);
  writeUint32(out, DATE_OFFSET, high);
  writeUint32(out, DATE_OFFSET + 4, date - high * TWO_32);
  randomIdInto(out, ID_OFFSET);
  writeUint32(out, HEADER_LENGTH, payloadLength);
  sha256Into(out, HEADER_LENGTH + 4 + prefix.state.hashed, out.length, out, DIGEST_OFFSET, prefix.state);
  return out;
}

/** The same frame through the general encoder, for a MessageId that is no canonical UUID. */
function encodeAcknowledgeSlowly(acked: Pick<ClientMessage, "messageType" | "messageId" | "sequenceNumber">) {
  const json = JSON.stringify({
    AcknowledgedMessageType: acked.messageType,
    AcknowledgedMessageId: acked.messageId,
    AcknowledgedMessageSequenceNumber: acked.sequenceNumber,
    IsSequentialMessage: true,
  });
  const id = new Uint8Array(16);
  randomIdInto(id, 0);
  // randomIdInto writes the wire order; encodeWithId takes the canonical one
  const canonical = new Uint8Array(16);
  canonical.set(id.subarray(8, 16), 0);
  canonical.set(id.subarray(0, 8), 8);
  return encodeWithId({
    messageType: MessageType.acknowledge,
    schemaVersion: 1,
    createdDate: Date.now(),
    sequenceNumber: 0,
    flags: 3,
    payloadType: 0,
    payload: encoder.encode(json),
  }, canonical);
}

const ACK_SEQ_KEY = encoder.encode(`","AcknowledgedMessageSequenceNumber":`);
const ACK_SUFFIX = encoder.encode(`,"IsSequentialMessage":true}`);

/** An acknowledgement's header with the fields that never change: type, SchemaVersion 1, Flags 3. */
const ACK_HEADER = (() => {
  const header = new Uint8Array(HEADER_LENGTH);
  writeUint32(header, 0, HEADER_LENGTH);
  header.fill(0x20, TYPE_OFFSET, TYPE_OFFSET + TYPE_LENGTH);
  header.set(encoder.encode(MessageType.acknowledge), TYPE_OFFSET);
  writeUint32(header, SCHEMA_OFFSET, 1);
  writeUint32(header, FLAGS_OFFSET + 4, 3);
  return header;
})();

const ackPrefixes = new Map<string, { bytes: Uint8Array; state: ReturnType<typeof sha256Midstate> }>();

/** The JSON up to the acknowledged MessageId's value, and the digest state of its whole 64-byte blocks. */
function ackPrefix(messageType: string) {
  let prefix = ackPrefixes.get(messageType);
  if (!prefix) {
    const bytes = encoder.encode(
      `{"AcknowledgedMessageType":${JSON.stringify(messageType)},"AcknowledgedMessageId":"`,
    );
    prefix = { bytes, state: sha256Midstate(bytes) };
    if (ackPrefixes.size < 16) ackPrefixes.set(messageType, prefix); // only ever the few types there are
  }
  return prefix;
}

function writeUint32(out: Uint8Array, at: number, value: number): void {
  out[at] = value >>> 24;
  out[at + 1] = value >>> 16;
  out[at + 2] = value >>> 8;
  out[at + 3] = value;
}

// random bytes for MessageIds, drawn 16 at a time
const POOL = new Uint8Array(16 * 256);
let poolAt = POOL.length;

/**
 * 16 random bytes laid out as a version 4 UUID (RFC 9562), written at `at` in the wire order: the canonical bytes
 * 8..16 first.
 */
function randomIdInto(out: Uint8Array, at: number): void {
  if (poolAt === POOL.length) {
    crypto.getRandomValues(POOL);
    poolAt = 0;
  }
  out.set(POOL.subarray(poolAt, poolAt + 16), at);
  poolAt += 16;
  out[at + 8 + 6] = (out[at + 8 + 6] & 0x0f) | 0x40; // canonical byte 6: the version
  out[at] = (out[at] & 0x3f) | 0x80; // canonical byte 8: the variant
}

/** Reads the JSON payload of a message; undefined when it is not a JSON object. */
export function parseJsonPayload(payload: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(payload));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined;
  } catch {
    return undefined;
  }
}
