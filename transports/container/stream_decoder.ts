/**
 * The Docker Engine API's multiplexed stream, which an exec without a TTY sends on its hijacked connection: frames
 * of an 8-byte header (byte 0 the stream: 0 stdin, 1 stdout, 2 stderr, 3 an engine error; bytes 1-3 zero; bytes 4-7
 * the payload length, uint32 big-endian) followed by the payload (Docker Engine API reference, "Attach to a
 * container", stream format). Framing only: bytes in, pieces out, no I/O.
 *
 * @module
 */
import { TransportError } from "../../plugins/mod.ts";

/** The size of a frame header. */
export const FRAME_HEADER_BYTES = 8;

/** Which stream a piece of payload belongs to. */
export type StreamKind = "stdout" | "stderr" | "system";

/** A piece of one frame's payload: a frame may arrive in many pieces, and one chunk may hold many frames. */
export interface StreamPiece {
  stream: StreamKind;
  bytes: Uint8Array;
}

/**
 * Splits the multiplexed stream into stdout and stderr pieces as bytes arrive. It never holds a frame whole: a
 * payload is passed on as soon as any of it has arrived, so memory stays bounded by the chunks read, whatever
 * length a header announces.
 *
 * @example Decoding one stdout and one stderr frame
 * ```ts
 * import { StreamDecoder } from "./stream_decoder.ts";
 * const decoder = new StreamDecoder();
 * const pieces = decoder.push(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 2, 104, 105, 2, 0, 0, 0, 0, 0, 0, 1, 33]));
 * console.assert(pieces.map((p) => p.stream).join() === "stdout,stderr");
 * decoder.finish();
 * ```
 */
export class StreamDecoder {
  #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerFill = 0;
  #remaining = 0;
  #stream: StreamKind = "stdout";

  /**
   * Takes the next bytes of the stream; returns the payload pieces they complete, as views into `chunk`.
   *
   * @throws {TransportError} (layer protocol) when a header is not one the engine writes
   */
  push(chunk: Uint8Array): StreamPiece[] {
    const pieces: StreamPiece[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, chunk.length - at);
        pieces.push({ stream: this.#stream, bytes: chunk.subarray(at, at + take) });
        this.#remaining -= take;
        at += take;
        continue;
      }
      const take = Math.min(FRAME_HEADER_BYTES - this.#headerFill, chunk.length - at);
      this.#header.set(chunk.subarray(at, at + take), this.#headerFill);
      this.#headerFill += take;
      at += take;
      if (this.#headerFill < FRAME_HEADER_BYTES) break;
      this.#headerFill = 0;
      const h = this.#header;
      if (h[1] !== 0 || h[2] !== 0 || h[3] !== 0 || h[0] > 3) {
        throw new TransportError("the container engine sent a malformed stream header", {
          layer: "protocol",
          hint: "the engine answered an exec without a terminal with unframed output; report the engine version",
        });
      }
      // stream 0 is stdin echoed back; nothing writes it for an exec, and stdout is where a user would want it
      this.#stream = h[0] === 2 ? "stderr" : h[0] === 3 ? "system" : "stdout";
      this.#remaining = new DataView(h.buffer, h.byteOffset, FRAME_HEADER_BYTES).getUint32(4);
    }
    return pieces;
  }

  /**
   * Says the stream has ended.
   *
   * @throws {TransportError} (layer channel) when it ended inside a frame: output was cut short
   */
  finish(): void {
    if (this.#headerFill > 0 || this.#remaining > 0) {
      throw new TransportError("the container engine closed the stream in the middle of a frame", {
        layer: "channel",
        hint: "output was cut short; check the engine's log",
      });
    }
  }
}
