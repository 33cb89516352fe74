/**
 * The client side of smux protocol version 1, which the SSM agent uses to carry several TCP
 * connections over one port-forwarding session (agent `plugins/port/port_mux.go`, plugin
 * `sessionmanagerplugin/session/portsession/muxportforwarding.go`, both vendoring xtaci/smux).
 *
 * Frame (xtaci/smux `frame.go`): `version(1)=1 | cmd(1) | length(2, little-endian) |
 * streamId(4, little-endian) | data`; cmd 0 SYN, 1 FIN, 2 PSH, 3 NOP. Client stream IDs are odd
 * and start at 3 (`session.go`). Version 1 has no flow-control window; backpressure comes from the
 * data channel's window of unacknowledged messages. Keepalive NOPs are off on both sides for
 * clients newer than 1.2.331.0 (agent `port.go`), which remote announces.
 *
 * @module
 */
import { TransportError } from "../../plugins/mod.ts";

/** smux commands. */
export const SmuxCmd = { syn: 0, fin: 1, psh: 2, nop: 3 } as const;

/** The largest data a frame carries (smux `DefaultConfig().MaxFrameSize`). */
export const SMUX_MAX_FRAME = 32768;
const HEADER = 8;

/** One smux frame. */
export interface SmuxFrame {
  cmd: number;
  streamId: number;
  data: Uint8Array;
}

/** Encodes one frame. */
export function encodeSmuxFrame(cmd: number, streamId: number, data: Uint8Array = new Uint8Array()): Uint8Array {
  if (data.length > 0xffff) throw new RangeError("smux frame data over 65535 bytes");
  const out = new Uint8Array(HEADER + data.length);
  const view = new DataView(out.buffer);
  out[0] = 1;
  out[1] = cmd;
  view.setUint16(2, data.length, true);
  view.setUint32(4, streamId, true);
  out.set(data, HEADER);
  return out;
}

/**
 * Splits a byte stream into smux frames, whatever the chunking of the input.
 *
 * @example Two frames across three chunks
 * ```ts
 * import { encodeSmuxFrame, SmuxFrameReader } from "./smux.ts";
 * const bytes = new Uint8Array([...encodeSmuxFrame(0, 3), ...encodeSmuxFrame(2, 3, new Uint8Array([7]))]);
 * const r = new SmuxFrameReader();
 * const frames = [...r.push(bytes.subarray(0, 5)), ...r.push(bytes.subarray(5, 12)), ...r.push(bytes.subarray(12))];
 * console.assert(frames.length === 2 && frames[1].data[0] === 7);
 * ```
 */
export class SmuxFrameReader {
  // chunks are queued, not re-joined on every push: a 32 KiB frame arrives in 1 KiB payloads
  #chunks: Uint8Array[] = [];
  #first = 0;
  #length = 0;

  /** feeds bytes; returns the frames completed by them
   * @throws {Error} on a frame with a version other than 1 or 2 */
  push(bytes: Uint8Array): SmuxFrame[] {
    if (bytes.length > 0) {
      this.#chunks.push(bytes);
      this.#length += bytes.length;
    }
    const frames: SmuxFrame[] = [];
    while (this.#length >= HEADER) {
      const header = this.#peek(HEADER);
      const version = header[0];
      if (version !== 1 && version !== 2) throw new Error(`smux frame version ${version}`);
      const length = header[2] | (header[3] << 8);
      if (this.#length < HEADER + length) break;
      this.#take(HEADER);
      const view = new DataView(header.buffer, header.byteOffset, HEADER);
      frames.push({ cmd: header[1], streamId: view.getUint32(4, true), data: this.#take(length) });
    }
    return frames;
  }

  /** the next `n` bytes, without consuming them (a view when they lie in one chunk) */
  #peek(n: number): Uint8Array {
    const head = this.#chunks[0];
    if (head.length - this.#first >= n) return head.subarray(this.#first, this.#first + n);
    const out = new Uint8Array(n);
    let at = 0;
    let offset = this.#first;
    for (const chunk of this.#chunks) {
      const part = chunk.subarray(offset, offset + n - at);
      out.set(part, at);
      at += part.length;
      offset = 0;
      if (at === n) break;
    }
    return out;
  }

  /** consumes `n` bytes into a new array */
  #take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const chunk = this.#chunks[0];
      const part = chunk.subarray(this.#first, this.#first + n - at);
      out.set(part, at);
      at += part.length;
      this.#first += part.length;
      if (this.#first === chunk.length) {
        this.#chunks.shift();
        this.#first = 0;
      }
    }
    this.#length -= n;
    return out;
  }
}

/** A stream's events. */
export interface SmuxStreamHandlers {
  onData(data: Uint8Array): void;
  /** the peer sent FIN */
  onClose(): void;
}

/**
 * A client smux session over a byte stream written by `write` (called in order, awaited) and fed by
 * `feed`.
 */
export class SmuxClient {
  #write: (bytes: Uint8Array) => Promise<void>;
  #reader = new SmuxFrameReader();
  #nextId = 1;
  #streams = new Map<number, SmuxStreamHandlers>();

  constructor(write: (bytes: Uint8Array) => Promise<void>) {
    this.#write = write;
  }

  /** how many streams are open */
  get streams(): number {
    return this.#streams.size;
  }

  /** opens a stream (SYN) and returns its ID */
  async open(handlers: SmuxStreamHandlers): Promise<number> {
    this.#nextId += 2;
    const id = this.#nextId;
    this.#streams.set(id, handlers);
    await this.#write(encodeSmuxFrame(SmuxCmd.syn, id));
    return id;
  }

  /** sends data on a stream, split into frames of at most {@linkcode SMUX_MAX_FRAME} bytes */
  async send(id: number, data: Uint8Array): Promise<void> {
    for (let at = 0; at < data.length; at += SMUX_MAX_FRAME) {
      await this.#write(encodeSmuxFrame(SmuxCmd.psh, id, data.subarray(at, at + SMUX_MAX_FRAME)));
    }
  }

  /** closes a stream (FIN); a second call does nothing */
  async close(id: number): Promise<void> {
    if (!this.#streams.delete(id)) return;
    await this.#write(encodeSmuxFrame(SmuxCmd.fin, id));
  }

  /** feeds bytes from the peer */
  feed(bytes: Uint8Array): void {
    for (const frame of this.#reader.push(bytes)) {
      const stream = this.#streams.get(frame.streamId);
      if (!stream) continue; // frames for closed streams are dropped, as smux does
      if (frame.cmd === SmuxCmd.psh && frame.data.length > 0) stream.onData(frame.data);
      else if (frame.cmd === SmuxCmd.fin) {
        this.#streams.delete(frame.streamId);
        stream.onClose();
      }
    }
  }

  /** ends every stream locally (the session is gone) */
  closeAll(): void {
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const s of streams) s.onClose();
  }
}

/**
 * The port session's output handler for `smux`: each chunk fed to it, and frames it cannot read ending the
 * session through `end` with a protocol error.
 */
export function smuxOutput(smux: SmuxClient, end: (error: TransportError) => void): (data: Uint8Array) => void {
  return (data) => {
    try {
      smux.feed(data);
    } catch (error) {
      end(new TransportError(`the port session sent bad multiplexing frames: ${String(error)}`, { layer: "protocol" }));
    }
  };
}
