/**
 * Typed, length-prefixed frames: `[u32 big-endian length][u8 type][payload]`, with no I/O (bytes in,
 * frames out). The plugin stdio protocol (`protocol.ts`) and the SSH transport's connection-reuse
 * socket both frame this way; they differ only in what the length counts, which is a parameter here:
 * the payload alone, or the type byte and the payload.
 *
 * @module
 */

/** Bytes before the payload: length (4) and type (1). */
export const FRAME_HEADER_SIZE = 5;

/** How one wire format spells its frames. */
export interface FramingOptions {
  /** whether the length counts the type byte as well as the payload */
  lengthCountsType: boolean;
  /** largest payload accepted, in bytes */
  maxPayload: number;
}

/** One frame as it travels: its type number and its payload bytes. */
export interface RawFrame {
  type: number;
  payload: Uint8Array;
}

/**
 * Encodes one frame.
 *
 * @throws {RangeError} when `payload` is bigger than `options.maxPayload`
 *
 * @example
 * ```ts
 * import { encodeFrame } from "./framing.ts";
 * const bytes = encodeFrame(7, new Uint8Array([1]), { lengthCountsType: false, maxPayload: 16 });
 * console.assert(bytes.join() === "0,0,0,1,7,1");
 * ```
 */
export function encodeFrame(type: number, payload: Uint8Array, options: FramingOptions): Uint8Array {
  if (payload.length > options.maxPayload) throw new RangeError(`frame payload of ${payload.length} bytes is too big`);
  const out = new Uint8Array(FRAME_HEADER_SIZE + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length + (options.lengthCountsType ? 1 : 0));
  out[4] = type;
  out.set(payload, FRAME_HEADER_SIZE);
  return out;
}

/** What a {@linkcode FrameSplitter} checks in each header, before it waits for the payload. */
export interface FrameChecks {
  /** called with the length as sent when the payload would be negative or over the limit; must throw */
  badLength(length: number, rest: Uint8Array): never;
  /** called with each frame's type as soon as its header is complete; throws to refuse it */
  header?(type: number, rest: Uint8Array): void;
}

/**
 * Splits a byte stream into frames; push bytes as they come. A header is checked as soon as it is
 * complete, so garbage fails fast rather than after a long wait for a payload that never comes.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameSplitter } from "./framing.ts";
 * const options = { lengthCountsType: true, maxPayload: 16 };
 * const splitter = new FrameSplitter(options, { badLength: (n) => { throw new Error(`bad length ${n}`); } });
 * const [frame] = splitter.push(encodeFrame(3, new Uint8Array([9]), options));
 * console.assert(frame.type === 3 && frame.payload[0] === 9);
 * ```
 */
export class FrameSplitter {
  #buffer: Uint8Array = new Uint8Array(0);
  readonly #options: FramingOptions;
  readonly #checks: FrameChecks;

  constructor(options: FramingOptions, checks: FrameChecks) {
    this.#options = options;
    this.#checks = checks;
  }

  /** How many bytes wait for the rest of their frame. */
  get pending(): number {
    return this.#buffer.length;
  }

  /**
   * Adds bytes and returns the frames now complete.
   *
   * @throws whatever the {@linkcode FrameChecks} throw on a bad header
   */
  push(chunk: Uint8Array): RawFrame[] {
    const buf = this.#buffer.length === 0 ? chunk : concat(this.#buffer, chunk);
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const frames: RawFrame[] = [];
    let at = 0;
    while (buf.length - at >= FRAME_HEADER_SIZE) {
      const length = view.getUint32(at);
      const size = length - (this.#options.lengthCountsType ? 1 : 0);
      if (size < 0 || size > this.#options.maxPayload) this.#checks.badLength(length, buf.subarray(at));
      const type = buf[at + 4];
      this.#checks.header?.(type, buf.subarray(at));
      if (buf.length - at - FRAME_HEADER_SIZE < size) break;
      frames.push({ type, payload: buf.slice(at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + size) });
      at += FRAME_HEADER_SIZE + size;
    }
    this.#buffer = buf.slice(at); // a copy: callers may read into one buffer again and again
    return frames;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
