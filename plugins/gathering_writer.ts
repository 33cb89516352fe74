/**
 * Writing a stream of chunks with few, large writes: chunks that arrive while a write is in flight wait and
 * go together in the next one. A write is an operation of its own (a system call, and in Deno a hop to an
 * I/O thread), so one write per 32 KiB channel packet, or per 1 KiB Session Manager payload, caps
 * throughput; one write per batch does not. What waits is bounded: past the bound, {@linkcode
 * GatheringWriter.write} waits, so a slow reader holds up the source instead of filling memory.
 *
 * The core copies a command's output to stdout with it, and the SSH transport writes forwarded channels to
 * their sockets with it.
 *
 * @module
 */

/** Bytes a {@linkcode GatheringWriter} holds, by default, before {@linkcode GatheringWriter.write} waits. */
export const GATHER_LIMIT = 1024 * 1024;

/** The smallest buffer batches are gathered in; it grows to the largest batch. */
const SCRATCH_BYTES = 64 * 1024;

/** What a {@linkcode GatheringWriter} writes to: `Deno.Conn`, `Deno.stdout`, a `Deno.FsFile`, or a stand-in. */
export interface GatherSink {
  /** writes some of `p` (at least one byte) and tells how many; may write less than all */
  write(p: Uint8Array): Promise<number>;
}

/** Options of {@linkcode GatheringWriter}. */
export interface GatheringWriterOptions {
  /** bytes held (not yet in a write) at which {@linkcode GatheringWriter.write} waits; default {@linkcode GATHER_LIMIT} */
  limit?: number;
  /**
   * called once, when a write fails, before anyone waiting on the writer learns of it: e.g. to cancel a
   * reader that sits in a read no more data will end (what it throws is ignored)
   */
  onFailure?(error: unknown): void;
  /**
   * a write that starts a batch waits one turn of the event loop first (a zero timeout), so the chunks that
   * arrive in the same turn go with it: all the channel packets of one socket read, which would otherwise be
   * written as one write for the first packet and one for the rest
   */
  waitTurn?: boolean;
}

/**
 * A bounded writer to a {@linkcode GatherSink} that gathers the chunks arriving while a write is in
 * flight into the next write, writes every byte in order (partial writes are continued), and fails once:
 * after a write error what it holds is dropped, `onFailure` runs, and every later `write`, `flush` and
 * `close` throws that error.
 *
 * @example Chunks that arrive during a write go together in the next
 * ```ts
 * import { GatheringWriter } from "./gathering_writer.ts";
 * const writes: number[] = [];
 * const out = new GatheringWriter({
 *   write: (p) => Promise.resolve(writes.push(p.length) && p.length),
 * });
 * await Promise.all([out.write(new Uint8Array(1)), out.write(new Uint8Array(2)), out.write(new Uint8Array(3))]);
 * await out.close();
 * console.assert(writes.join() === "1,5");
 * ```
 */
export class GatheringWriter {
  #sink: GatherSink;
  #limit: number;
  #onFailure?: (error: unknown) => void;
  #waitTurn: boolean;
  #chunks: Uint8Array[] = [];
  #held = 0;
  #busy = false;
  #pumped: Promise<void> = Promise.resolve();
  #failure?: { error: unknown };
  #closed = false;
  #space?: PromiseWithResolvers<void>;
  #scratch?: Uint8Array;
  #writable?: WritableStream<Uint8Array>;

  constructor(sink: GatherSink, options: GatheringWriterOptions = {}) {
    this.#sink = sink;
    this.#limit = options.limit ?? GATHER_LIMIT;
    this.#onFailure = options.onFailure;
    this.#waitTurn = options.waitTurn ?? false;
  }

  /** bytes taken and not yet handed to a write */
  get held(): number {
    return this.#held;
  }

  /** whether a write failed (then `write`, `flush` and `close` throw its error) */
  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /**
   * Takes `chunk` without waiting, for a source that cannot wait (it watches {@linkcode held} instead).
   * The writer holds on to `chunk` until it is written: do not change it. A zero-length chunk is
   * ignored.
   *
   * @returns false when `chunk` is dropped: the writer failed, was closed or aborted
   */
  push(chunk: Uint8Array): boolean {
    if (this.#failure || this.#closed) return false;
    if (chunk.length === 0) return true;
    this.#chunks.push(chunk);
    this.#held += chunk.length;
    if (!this.#busy) {
      this.#busy = true;
      this.#pumped = this.#pump();
    }
    return true;
  }

  /**
   * Takes `chunk`, and settles once fewer than `limit` bytes are held (at once, unless the sink is slow).
   *
   * @throws the write error once a write failed, a `TypeError` after `close` or `abort`
   */
  async write(chunk: Uint8Array): Promise<void> {
    this.#check();
    if (this.#closed) throw new TypeError("the writer is closed");
    this.push(chunk);
    while (this.#held >= this.#limit && !this.#failure) {
      this.#space ??= Promise.withResolvers();
      await this.#space.promise;
    }
    this.#check();
  }

  /**
   * Settles once everything taken is written.
   *
   * @throws the write error once a write failed
   */
  async flush(): Promise<void> {
    while (this.#busy) await this.#pumped;
    this.#check();
  }

  /**
   * Takes no more chunks, and settles once everything taken is written. Safe to call twice.
   *
   * @throws the write error once a write failed
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  /** Drops what is held and takes no more; a write in flight still finishes. */
  abort(): void {
    this.#closed = true;
    this.#chunks = [];
    this.#held = 0;
    this.#wakeSpace();
  }

  /** The writer as a `WritableStream` (`pipeTo` target): its `close` flushes, its `abort` drops what is held. */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.write(chunk),
      close: () => this.close(),
      abort: () => this.abort(),
    });
    return this.#writable;
  }

  async #pump(): Promise<void> {
    try {
      if (this.#waitTurn) await new Promise((resolve) => setTimeout(resolve, 0));
      while (this.#held > 0) {
        const batch = this.#take();
        this.#wakeSpace();
        for (let at = 0; at < batch.length;) at += await this.#sink.write(batch.subarray(at));
      }
    } catch (error) {
      this.#fail(error);
    } finally {
      // in the same step as the loop's last look at #held: a chunk pushed after it starts a new pump
      this.#busy = false;
    }
  }

  #check(): void {
    if (this.#failure) throw this.#failure.error;
  }

  #fail(error: unknown): void {
    this.#failure = { error };
    this.#chunks = [];
    this.#held = 0;
    try {
      this.#onFailure?.(error);
    } catch { /* the hook's own trouble is not the write's */ }
    this.#wakeSpace();
  }

  #wakeSpace(): void {
    const space = this.#space;
    this.#space = undefined;
    space?.resolve();
  }

  /**
   * The held chunks from the oldest, as one batch: a single chunk as it is, several gathered in one buffer
   * reused for every batch (the sink is done with a batch once its write settles, as a file or socket is,
   * and the pump writes one batch at a time).
   */
  #take(): Uint8Array {
    const chunks = this.#chunks;
    const total = this.#held;
    this.#chunks = [];
    this.#held = 0;
    if (chunks.length === 1) return chunks[0];
    if (!this.#scratch || this.#scratch.length < total) this.#scratch = new Uint8Array(Math.max(total, SCRATCH_BYTES));
    const batch = this.#scratch.subarray(0, total);
    let at = 0;
    for (const chunk of chunks) {
      batch.set(chunk, at);
      at += chunk.length;
    }
    return batch;
  }
}
