/**
 * The stdio protocol between remote and an out-of-process transport (`remote-transport-<name>`),
 * version 1: framing and message shapes only, no I/O, so it tests offline (as ssh2 keeps its framing
 * apart from sockets). docs/plugin-protocol.md is the normative description; wire numbers live here.
 *
 * Every frame is `[u32 big-endian payload length][u8 type][payload]`. Byte frames (stdin, stdout,
 * stderr) carry raw bytes, an empty one ends that stream; every other payload is one UTF-8 JSON object.
 *
 * @module
 */
import { PluginError } from "./errors.ts";
import { encodeFrame, FRAME_HEADER_SIZE, FrameSplitter, type FramingOptions } from "./framing.ts";
import type { ExitStatus, OpenRequest, Target } from "./types.ts";

/** The protocol name in the handshake. */
export const PROTOCOL_NAME = "remote-transport";
/** The protocol version this SDK speaks; a different one is refused in the handshake. */
export const PROTOCOL_VERSION = 1;
/** Largest payload of one frame; a bigger length means the stream is not this protocol. */
export const MAX_PAYLOAD = 1 << 20;
/** How much stdin/stdout/stderr data one frame carries at most when encoding. */
export const DATA_CHUNK = 64 * 1024;
/** Bytes before the payload: length (4) and type (1). */
export const HEADER_SIZE = FRAME_HEADER_SIZE;
/** This protocol's frames: the length counts the payload only. */
const FRAMING: FramingOptions = { lengthCountsType: false, maxPayload: MAX_PAYLOAD };

/** Frame type numbers, as on the wire. */
export const FrameType = {
  hello: 0x01,
  call: 0x02,
  opened: 0x03,
  result: 0x04,
  error: 0x05,
  stdin: 0x10,
  stdout: 0x11,
  stderr: 0x12,
  resize: 0x20,
  signal: 0x21,
  detach: 0x22,
  close: 0x23,
  answer: 0x24,
  exit: 0x30,
  notice: 0x31,
  prompt: 0x32,
} as const;

/** A frame type's name. */
export type FrameTypeName = keyof typeof FrameType;

const NAME_BY_NUMBER = new Map<number, FrameTypeName>(
  Object.entries(FrameType).map(([k, v]) => [v, k as FrameTypeName]),
);

/** Which side may send each frame type; anything else from a side is a protocol violation. */
const SENDER: Record<FrameTypeName, "plugin" | "core"> = {
  hello: "plugin",
  call: "core",
  opened: "plugin",
  result: "plugin",
  error: "plugin",
  stdin: "core",
  stdout: "plugin",
  stderr: "plugin",
  resize: "core",
  signal: "core",
  detach: "core",
  close: "core",
  answer: "core",
  exit: "plugin",
  notice: "plugin",
  prompt: "plugin",
};

/** The operations a `call` frame asks for: `open` and `attach` produce a channel, the rest a result. */
export type CallOp = "open" | "list" | "create" | "attach" | "disconnect" | "receive" | "remove";
const CALL_OPS: readonly CallOp[] = ["open", "list", "create", "attach", "disconnect", "receive", "remove"];

/** The request in a `call` frame: what `OpenContext` and the method's arguments hold, as data. */
export interface Call {
  op: CallOp;
  target: Target;
  parameters: Record<string, unknown>;
  /** whether a person can answer prompts */
  interactive: boolean;
  /** for `open` */
  request?: OpenRequest;
  /** session name, for the session-host operations */
  name?: string;
  /** the options argument of the session-host operation */
  options?: Record<string, unknown>;
}

/** An exit status as data; `lost` carries the message instead of an Error. */
export type WireExitStatus =
  | Exclude<ExitStatus, { kind: "lost" }>
  | { kind: "lost"; message: string };

/** One protocol message, decoded. */
export type Message =
  | { type: "hello"; protocol: string; version: number; manifest: unknown }
  | { type: "call"; call: Call }
  | { type: "opened" }
  /** `receive`'s bytes travel base64-encoded in `value` */
  | { type: "result"; value: unknown }
  /** the closed error reply: a message, an optional hint, and remote's exit-code name */
  | { type: "error"; message: string; hint?: string; code?: string; layer?: string }
  | { type: "stdin" | "stdout" | "stderr"; data: Uint8Array }
  | { type: "resize"; columns: number; rows: number }
  | { type: "signal"; name: string }
  | { type: "detach" }
  | { type: "close" }
  | { type: "answer"; id: number; answer?: string; error?: string }
  | { type: "exit"; status: WireExitStatus }
  | { type: "notice"; line: string }
  | { type: "prompt"; id: number; question: string; secret: boolean; what?: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function frame(type: FrameTypeName, payload: Uint8Array): Uint8Array {
  return encodeFrame(FrameType[type], payload, FRAMING);
}

/**
 * Encodes one message as one frame (byte messages bigger than {@linkcode DATA_CHUNK} as several).
 *
 * @example
 * ```ts
 * import { encodeMessage } from "./protocol.ts";
 * const bytes = encodeMessage({ type: "signal", name: "INT" });
 * console.assert(bytes[4] === 0x21);
 * ```
 */
export function encodeMessage(message: Message): Uint8Array {
  switch (message.type) {
    case "stdin":
    case "stdout":
    case "stderr": {
      const { data } = message;
      if (data.length <= DATA_CHUNK) return frame(message.type, data);
      const parts: Uint8Array[] = [];
      for (let i = 0; i < data.length; i += DATA_CHUNK) {
        parts.push(frame(message.type, data.subarray(i, Math.min(i + DATA_CHUNK, data.length))));
      }
      return concat(parts);
    }
    default: {
      const { type, ...rest } = message;
      return frame(type, encoder.encode(JSON.stringify(rest)));
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Converts an exit status to its wire form. */
export function exitStatusToWire(status: ExitStatus): WireExitStatus {
  return status.kind === "lost" ? { kind: "lost", message: status.error.message } : status;
}

/**
 * Incremental decoder for one direction of the stream: feed it bytes as they come, get whole
 * messages out. It never waits for more than one frame's worth, so garbage fails fast.
 *
 * @example Decoding what a plugin sent
 * ```ts
 * import { encodeMessage, FrameDecoder } from "./protocol.ts";
 * const d = new FrameDecoder("demo", "plugin");
 * const [m] = d.push(encodeMessage({ type: "notice", line: "hi" }));
 * console.assert(m.type === "notice");
 * d.end();
 * ```
 */
export class FrameDecoder {
  readonly #splitter: FrameSplitter;
  readonly #plugin: string;
  readonly #from: "plugin" | "core";

  /**
   * @param plugin the plugin's name, for errors
   * @param from the side whose bytes this decodes; frames only the other side may send are refused
   */
  constructor(plugin: string, from: "plugin" | "core") {
    this.#plugin = plugin;
    this.#from = from;
    this.#splitter = new FrameSplitter(FRAMING, {
      badLength: (length, rest) => {
        throw this.#garbage(`frame length ${length} is over the ${MAX_PAYLOAD}-byte limit`, rest);
      },
      header: (number, rest) => {
        const type = NAME_BY_NUMBER.get(number);
        if (type === undefined) throw this.#garbage(`unknown frame type 0x${number.toString(16)}`, rest);
        if (SENDER[type] !== this.#from) {
          throw this.#error(`sent a ${type} frame, which only ${SENDER[type]} may send`);
        }
      },
    });
  }

  /**
   * Adds bytes and returns every message now complete.
   *
   * @throws {PluginError} naming the plugin on a bad length, an unknown or misdirected type, or a
   * malformed payload
   */
  push(chunk: Uint8Array): Message[] {
    return this.#splitter.push(chunk).map((f) => this.#decode(NAME_BY_NUMBER.get(f.type)!, f.payload));
  }

  /**
   * Declares the end of the stream.
   *
   * @throws {PluginError} when a frame was cut off
   */
  end(): void {
    if (this.#splitter.pending > 0) {
      throw this.#error(`stream ended inside a frame (${this.#splitter.pending} bytes left over)`);
    }
  }

  #error(message: string, hint?: string): PluginError {
    return new PluginError(this.#plugin, `protocol error: ${message}`, {
      hint: hint ?? "the plugin does not speak remote-transport protocol 1 correctly; report it to its author",
    });
  }

  #garbage(message: string, bytes: Uint8Array): PluginError {
    const text = new TextDecoder().decode(bytes.subarray(0, 40)).replace(/[^\x20-\x7e]/g, ".");
    return this.#error(
      `garbage on the protocol stream: ${message} (starts "${text}")`,
      "a plugin must write logs to stderr, never stdout",
    );
  }

  #decode(type: FrameTypeName, payload: Uint8Array): Message {
    if (type === "stdin" || type === "stdout" || type === "stderr") return { type, data: payload };
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(payload));
    } catch {
      throw this.#error(`${type} frame does not hold JSON`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw this.#error(`${type} frame does not hold a JSON object`);
    }
    const v = value as Record<string, unknown>;
    const bad = (field: string): never => {
      throw this.#error(`${type} frame has a missing or bad ${field}`);
    };
    const str = (field: string, optional = false) => {
      if (optional && v[field] === undefined) return;
      if (typeof v[field] !== "string") bad(field);
    };
    const num = (field: string) => {
      if (typeof v[field] !== "number" || !Number.isFinite(v[field])) bad(field);
    };
    switch (type) {
      case "hello":
        str("protocol"), num("version");
        return { type, protocol: v.protocol as string, version: v.version as number, manifest: v.manifest };
      case "call": {
        const call = v.call;
        if (typeof call !== "object" || call === null) return bad("call");
        const c = call as Record<string, unknown>;
        if (!CALL_OPS.includes(c.op as CallOp)) bad("call.op");
        if (typeof c.target !== "object" || c.target === null) bad("call.target");
        if (typeof c.parameters !== "object" || c.parameters === null) bad("call.parameters");
        if (c.op === "open" && (typeof c.request !== "object" || c.request === null)) bad("call.request");
        return { type, call: c as unknown as Call };
      }
      case "opened":
      case "detach":
      case "close":
        return { type };
      case "result":
        return { type, value: v.value };
      case "error":
        str("message"), str("hint", true), str("code", true), str("layer", true);
        return {
          type,
          message: v.message as string,
          hint: v.hint as string | undefined,
          code: v.code as string | undefined,
          layer: v.layer as string | undefined,
        };
      case "resize":
        num("columns"), num("rows");
        return { type, columns: v.columns as number, rows: v.rows as number };
      case "signal":
        str("name");
        return { type, name: v.name as string };
      case "answer":
        num("id"), str("answer", true), str("error", true);
        return {
          type,
          id: v.id as number,
          answer: v.answer as string | undefined,
          error: v.error as string | undefined,
        };
      case "exit": {
        const s = v.status as Record<string, unknown> | null;
        if (typeof s !== "object" || s === null) return bad("status");
        const ok = (s.kind === "exited" && typeof s.code === "number") ||
          (s.kind === "signaled" && typeof s.signal === "string" && typeof s.code === "number") ||
          s.kind === "detached" || (s.kind === "lost" && typeof s.message === "string");
        if (!ok) bad("status");
        return { type, status: s as unknown as WireExitStatus };
      }
      case "notice":
        str("line");
        return { type, line: v.line as string };
      case "prompt":
        num("id"), str("question"), str("what", true);
        return {
          type,
          id: v.id as number,
          question: v.question as string,
          secret: v.secret === true,
          what: v.what as string | undefined,
        };
    }
  }
}

/**
 * Yields the messages on `stream` in order, then checks the stream did not end inside a frame. It
 * does no I/O of its own: the caller owns the stream.
 *
 * @throws {PluginError} from the decoder on garbage
 *
 * @example
 * ```ts
 * import { encodeMessage, FrameDecoder, readMessages } from "./protocol.ts";
 * const stream = ReadableStream.from([encodeMessage({ type: "close" })]);
 * for await (const m of readMessages(stream, new FrameDecoder("demo", "core"))) console.assert(m.type === "close");
 * ```
 */
export async function* readMessages(
  stream: ReadableStream<Uint8Array>,
  decoder: FrameDecoder,
): AsyncGenerator<Message> {
  const reader = stream.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* decoder.push(value);
    }
    decoder.end();
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
