/**
 * The out-of-process framing PowerShell speaks over a child's stdio (`pwsh -s`) and the SSH `powershell`
 * subsystem (`pwsh -sshs`): one XML element per line, written exactly as PowerShell writes them
 * (OutOfProcTransportManager.cs in PowerShell's remoting source): single-quoted attributes, a lower-case
 * GUID, a space before `/>`.
 *
 * ```
 * <Data Stream='Default' PSGuid='00000000-0000-0000-0000-000000000000'>base64 of fragments</Data>
 * <Command PSGuid='…' />   <CommandAck PSGuid='…' />   <Close …/> <CloseAck …/> <Signal …/> <SignalAck …/>
 * <DataAck PSGuid='…' />
 * ```
 *
 * @module
 */
import { PsrpError } from "./errors.ts";
import { isGuid } from "./guid.ts";

/** The stream a `Data` packet travels on: host responses use `PromptResponse`, all else `Default`. */
export type PacketStream = "Default" | "PromptResponse";

/** An element without payload. */
export type ControlPacketKind = "DataAck" | "Command" | "CommandAck" | "Close" | "CloseAck" | "Signal" | "SignalAck";

/** One packet line, decoded. */
export type Packet =
  | { kind: "Data"; stream: PacketStream; guid: string; data: Uint8Array }
  | { kind: ControlPacketKind; guid: string };

const CONTROL = new Set<string>(["DataAck", "Command", "CommandAck", "Close", "CloseAck", "Signal", "SignalAck"]);

/**
 * One packet as the line PowerShell would write, newline included.
 *
 * @example
 * ```ts
 * import { encodePacket } from "./packet.ts";
 * const line = encodePacket({ kind: "Close", guid: "00000000-0000-0000-0000-000000000000" });
 * console.assert(line === "<Close PSGuid='00000000-0000-0000-0000-000000000000' />\n");
 * ```
 */
export function encodePacket(packet: Packet): string {
  const guid = packet.guid.toLowerCase();
  if (packet.kind === "Data") {
    return `<Data Stream='${packet.stream}' PSGuid='${guid}'>${base64Encode(packet.data)}</Data>\n`;
  }
  return `<${packet.kind} PSGuid='${guid}' />\n`;
}

/** Options of {@linkcode PacketParser}. */
export interface PacketParserOptions {
  /** longest line accepted, in bytes (default 16 MiB); a longer one is a protocol error, not a growing buffer */
  maxLineLength?: number;
}

/**
 * Splits a byte stream into packets. Bytes in, packets out; it owns no I/O. A line that is not one of
 * the eight elements, or a `__NamedPipeError__:` line, raises {@linkcode PsrpError} carrying its text.
 *
 * @example Parsing a chunk
 * ```ts
 * import { PacketParser } from "./packet.ts";
 * const p = new PacketParser();
 * const packets = p.push(new TextEncoder().encode("<CommandAck PSGuid='00000000-0000-0000-0000-000000000001' />\n"));
 * console.assert(packets[0].kind === "CommandAck");
 * ```
 */
export class PacketParser {
  readonly #max: number;
  #pending: Uint8Array[] = [];
  #pendingLength = 0;

  constructor(options: PacketParserOptions = {}) {
    this.#max = options.maxLineLength ?? 16 * 1024 * 1024;
  }

  /**
   * Feeds bytes; returns every packet completed by them.
   *
   * @throws {PsrpError} on a malformed or too long line
   */
  push(chunk: Uint8Array): Packet[] {
    const out: Packet[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      let line: Uint8Array;
      if (this.#pendingLength) {
        line = concat([...this.#pending, piece], this.#pendingLength + piece.length);
        this.#pending = [];
        this.#pendingLength = 0;
      } else line = piece;
      if (line.length > this.#max) throw tooLong(this.#max);
      const packet = parsePacketLine(lineText(line));
      if (packet) out.push(packet);
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.slice(start);
      this.#pendingLength += rest.length;
      if (this.#pendingLength > this.#max) throw tooLong(this.#max);
      this.#pending.push(rest);
    }
    return out;
  }

  /** Bytes of an unfinished line, held until its newline arrives. */
  get buffered(): number {
    return this.#pendingLength;
  }
}

function tooLong(max: number): PsrpError {
  return new PsrpError(`a packet line is longer than ${max} bytes`);
}

const ELEMENT_RE = /^<([A-Za-z]+)((?:\s+[A-Za-z]+\s*=\s*(?:'[^']*'|"[^"]*"))*)\s*(\/>|>([A-Za-z0-9+/=\s]*)<\/\1>)$/;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const ATTR_RE = /([A-Za-z]+)\s*=\s*(?:'([^']*)'|"([^"]*)")/g;
const PIPE_ERROR = "__namedpipeerror__:";

/**
 * One line as a packet; `undefined` for a blank line (a trailing `\r` is allowed).
 *
 * @throws {PsrpError} for anything else that is not a packet, with the line's text as PowerShell reports it
 * @example
 * ```ts
 * import { parsePacketLine } from "./packet.ts";
 * const p = parsePacketLine("<Data Stream='Default' PSGuid='00000000-0000-0000-0000-000000000000'>AQI=</Data>");
 * console.assert(p?.kind === "Data" && p.data.length === 2);
 * ```
 */
export function parsePacketLine(text: string): Packet | undefined {
  const line = text.replace(/\r$/, "").trim();
  if (line === "") return undefined;
  if (line.slice(0, PIPE_ERROR.length).toLowerCase() === PIPE_ERROR) {
    throw new PsrpError(`server error: ${printable(line.slice(PIPE_ERROR.length).trim())}`);
  }
  // a Data line is mostly base64: match its short head and tail, not the whole line, with the regex
  let m: RegExpExecArray | null;
  const open = line.startsWith("<Data ") ? line.indexOf(">") : -1;
  if (open > 0 && line.endsWith("</Data>") && line[open - 1] !== "/") {
    m = ELEMENT_RE.exec(line.slice(0, open + 1) + "</Data>");
    if (m) m[4] = line.slice(open + 1, line.length - 7);
  } else m = ELEMENT_RE.exec(line);
  if (!m) throw new PsrpError(`server sent a line that is not a packet: ${printable(line)}`);
  const [, kind, attrText, close, body] = m;
  const attrs = new Map<string, string>();
  for (const a of attrText.matchAll(ATTR_RE)) attrs.set(a[1], a[2] ?? a[3]);
  const guid = attrs.get("PSGuid");
  if (guid === undefined || !isGuid(guid)) throw new PsrpError(`packet ${kind} has no valid PSGuid`);
  if (kind === "Data") {
    const stream = attrs.get("Stream");
    if (stream !== "Default" && stream !== "PromptResponse") {
      throw new PsrpError(`Data packet has an unknown Stream: ${printable(stream ?? "")}`);
    }
    if (attrs.size !== 2) throw new PsrpError("Data packet needs exactly the Stream and PSGuid attributes");
    let data: Uint8Array;
    try {
      if (body && !BASE64_RE.test(body)) throw new SyntaxError("not base64");
      data = base64Decode(body ?? "");
    } catch (cause) {
      throw new PsrpError("Data packet holds invalid base64", { cause });
    }
    return { kind, stream, guid: guid.toLowerCase(), data };
  }
  if (!CONTROL.has(kind)) throw new PsrpError(`unknown packet element ${printable(kind)}`);
  if (close !== "/>" && body?.trim()) throw new PsrpError(`packet ${kind} must be empty`);
  if (attrs.size !== 1) throw new PsrpError(`packet ${kind} needs exactly the PSGuid attribute`);
  return { kind: kind as ControlPacketKind, guid: guid.toLowerCase() };
}

function printable(s: string): string {
  // deno-lint-ignore no-control-regex
  const clean = s.replace(/[\x00-\x1f\x7f]/g, "?");
  return clean.length > 200 ? clean.slice(0, 200) + "…" : clean;
}

// packets are ASCII; an error line a server prints may be UTF-8, so decode leniently as UTF-8
const lineDecoder = new TextDecoder();

function lineText(bytes: Uint8Array): string {
  return lineDecoder.decode(bytes);
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

interface Base64Native {
  toBase64?(this: Uint8Array): string;
}
interface Base64NativeCtor {
  fromBase64?(text: string): Uint8Array;
}
const nativeTo = (Uint8Array.prototype as Base64Native).toBase64;
const nativeFrom = (Uint8Array as unknown as Base64NativeCtor).fromBase64;

/** Standard base64 of bytes. */
export function base64Encode(bytes: Uint8Array): string {
  if (nativeTo) return nativeTo.call(bytes);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/**
 * Bytes of standard base64 text.
 *
 * @throws {DOMException} on invalid base64
 */
export function base64Decode(text: string): Uint8Array {
  if (nativeFrom) return nativeFrom(text);
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
