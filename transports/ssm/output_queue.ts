/**
 * Output of a session on its way to a reader (stdout, a socket): the agent sends at most 1 KiB per message, so
 * handing each payload on as a chunk of its own costs the reader one write (a system call, and a hop to Deno's
 * I/O threads) per KiB. Here payloads that arrive while the reader is busy with the previous chunk wait and go
 * together, as one chunk of at most {@linkcode OUTPUT_CHUNK_BYTES}, at its next read; a reader that waits gets
 * each payload at once, so nothing is delayed.
 *
 * @module
 */
import { GatheringWriter } from "../../plugins/mod.ts";

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
  #gather: GatheringWriter;
  #ctl!: ReadableStreamDefaultController<Uint8Array>;
  /** the reader waits for a chunk (always, once closed: what is left goes at once) */
  #asked = false;
  /** the writer waits for the reader to ask */
  #asking?: PromiseWithResolvers<void>;
  /** settles the reader's pull */
  #answer?: () => void;
  /** a pull found payloads waiting: onPull runs once they are handed over */
  #pulled = false;
  #done = false;
  #cancelled = false;

  constructor(onPull: () => void = () => {}) {
    // the reader is the writer's sink: a batch is formed when the reader asks, from everything waiting then
    this.#gather = new GatheringWriter({
      ready: () => this.#asked ? undefined : (this.#asking ??= Promise.withResolvers()).promise,
      write: (chunk) => {
        this.#asked = this.#done;
        try {
          this.#ctl.enqueue(chunk);
        } catch { /* the reader cancelled */ }
        if (this.#pulled) {
          this.#pulled = false;
          onPull();
        }
        this.#wake();
        return Promise.resolve(chunk.length);
      },
    }, { limit: Infinity, maxBatch: OUTPUT_CHUNK_BYTES, reuseBuffer: false });
    this.readable = new ReadableStream<Uint8Array>({
      start: (c) => void (this.#ctl = c),
      pull: () => {
        if (this.#gather.held > 0) this.#pulled = true;
        else {
          onPull();
          if (this.#done) return;
        }
        const answered = new Promise<void>((resolve) => this.#answer = resolve);
        this.#ask();
        return answered;
      },
      cancel: () => {
        this.#cancelled = true;
        this.#done = true;
        this.#gather.abort();
        this.#ask();
        this.#wake();
        onPull();
      },
    }, { highWaterMark: 0 });
  }

  /** bytes waiting for the reader */
  get bytes(): number {
    return this.#gather.held;
  }

  /** true once the reader cancelled: what is pushed is dropped */
  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Queues `data`; a waiting reader gets it at once. */
  push(data: Uint8Array): void {
    if (this.#done) return;
    this.#gather.push(data);
  }

  /** Ends the stream after what waits; safe to call twice. */
  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#ask();
    void this.#gather.close().then(() => {
      try {
        this.#ctl.close();
      } catch { /* the reader cancelled */ }
      this.#wake();
    });
  }

  /** Fails the stream; what waits is dropped. */
  error(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#gather.abort();
    this.#ask();
    try {
      this.#ctl.error(error);
    } catch { /* the reader cancelled */ }
    this.#wake();
  }

  #ask(): void {
    this.#asked = true;
    const asking = this.#asking;
    this.#asking = undefined;
    asking?.resolve();
  }

  #wake(): void {
    const answer = this.#answer;
    this.#answer = undefined;
    answer?.();
  }
}
