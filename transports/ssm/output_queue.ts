/**
 * Output of a session on its way to a reader (stdout, a socket): the agent sends at most 1 KiB per message, so
 * handing each payload on as a chunk of its own costs the reader one write (a system call, and a hop to Deno's
 * I/O threads) per KiB. Here payloads that arrive while the reader is busy with the previous chunk wait and go
 * together, as one chunk of at most {@linkcode OUTPUT_CHUNK_BYTES}, at its next read; a reader that waits gets
 * each payload at once, so nothing is delayed.
 *
 * @module
 */

/** The most bytes handed to the reader as one chunk. */
export const OUTPUT_CHUNK_BYTES = 64 * 1024;

/**
 * A readable stream fed by `push`, coalescing what waits. The caller watches `bytes` for backpressure;
 * `onPull` tells it the reader took a chunk.
 *
 * @example Payloads that wait are read as one chunk
 * ```ts
 * import { OutputQueue } from "./output_queue.ts";
 * const q = new OutputQueue();
 * q.push(new Uint8Array([1]));
 * q.push(new Uint8Array([2, 3]));
 * const { value } = await q.readable.getReader().read();
 * console.assert(value?.length === 3);
 * ```
 */
export class OutputQueue {
  readonly readable: ReadableStream<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #bytes = 0;
  #ctl!: ReadableStreamDefaultController<Uint8Array>;
  #waiting?: () => void;
  #done = false;
  #cancelled = false;

  constructor(onPull: () => void = () => {}) {
    this.readable = new ReadableStream<Uint8Array>({
      start: (c) => void (this.#ctl = c),
      pull: () => {
        if (this.#chunks.length > 0) {
          this.#ctl.enqueue(this.#take());
          onPull();
          return;
        }
        onPull();
        if (this.#done) return;
        return new Promise<void>((resolve) => this.#waiting = resolve);
      },
      cancel: () => {
        this.#cancelled = true;
        this.#done = true;
        this.#chunks = [];
        this.#bytes = 0;
        this.#wake();
        onPull();
      },
    }, { highWaterMark: 0 });
  }

  /** bytes waiting for the reader */
  get bytes(): number {
    return this.#bytes;
  }

  /** true once the reader cancelled: what is pushed is dropped */
  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Queues `data`; a waiting reader gets it at once. */
  push(data: Uint8Array): void {
    if (this.#done || data.length === 0) return;
    this.#chunks.push(data);
    this.#bytes += data.length;
    if (this.#waiting) {
      this.#ctl.enqueue(this.#take());
      this.#wake();
    }
  }

  /** Ends the stream after what waits; safe to call twice. */
  close(): void {
    if (this.#done) return;
    this.#done = true;
    try {
      while (this.#chunks.length > 0) this.#ctl.enqueue(this.#take());
      this.#ctl.close();
    } catch { /* the reader cancelled */ }
    this.#wake();
  }

  /** Fails the stream; what waits is dropped. */
  error(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#chunks = [];
    this.#bytes = 0;
    try {
      this.#ctl.error(error);
    } catch { /* the reader cancelled */ }
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.();
  }

  /** the waiting payloads from the oldest, as one chunk of at most OUTPUT_CHUNK_BYTES (one payload if larger) */
  #take(): Uint8Array {
    const first = this.#chunks[0];
    let n = 1;
    let total = first.length;
    while (n < this.#chunks.length && total + this.#chunks[n].length <= OUTPUT_CHUNK_BYTES) {
      total += this.#chunks[n++].length;
    }
    this.#bytes -= total;
    if (n === 1) {
      this.#chunks.shift();
      return first;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const chunk of this.#chunks.splice(0, n)) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}
