/**
 * Piped stdin as a web stream for bulk input (`remote invoke HOST -- CMD < file`), read off the main thread
 * once the input turns out to be large.
 *
 * @module
 */

/** Bytes read on the main thread before reading moves to a worker: small inputs do not pay for its start. */
export const STDIN_HANDOFF = 1024 * 1024;

/** Bytes the worker has read and the stream not yet handed on, at which the worker stops reading. */
export const STDIN_AHEAD = 1024 * 1024;

/** One read, on the main thread or the worker (a pipe holds 64 KiB). */
const READ_BYTES = 64 * 1024;

/**
 * The worker, as source text (a file of its own would need naming to `deno compile` and the bundle): blocking
 * reads of fd 0 into a new buffer each, transferred (a short read is copied out, so a buffer held is mostly
 * data); `ahead[0]` counts the bytes of the buffers sent and not yet taken, and the worker waits while it is
 * `limit` or more. `null` is the end of input, `{ error }` a failed read.
 */
const WORKER_SOURCE = `
self.onmessage = ({ data: { ahead, limit, size } }) => {
  const sent = new Int32Array(ahead);
  let buf = new Uint8Array(size);
  for (;;) {
    for (let h = Atomics.load(sent, 0); h >= limit; h = Atomics.load(sent, 0)) Atomics.wait(sent, 0, h);
    let n;
    try {
      n = Deno.stdin.readSync(buf);
    } catch (error) {
      self.postMessage({ error: String(error && error.message || error) });
      return;
    }
    if (n === null) {
      self.postMessage(null);
      return;
    }
    let chunk;
    if (n >= size / 4) {
      chunk = buf.subarray(0, n);
      buf = new Uint8Array(size);
    } else chunk = buf.slice(0, n);
    Atomics.add(sent, 0, chunk.buffer.byteLength);
    self.postMessage(chunk, [chunk.buffer]);
  }
};
`;

/**
 * Stdin (a pipe or a file, not a terminal) as a stream of chunks, every byte in order, ending at end of input.
 *
 * Deno's asynchronous read of stdin costs the main thread ~40 µs per 64 KiB (a hop through its blocking-I/O
 * threads; more on a busy machine), which is the largest part of an upload's time beside the cipher. So after
 * the first {@linkcode STDIN_HANDOFF} bytes, read as usual, a worker reads with blocking reads and transfers
 * each chunk: the main thread then spends one message per chunk, and reading overlaps the upload's work. The
 * worker reads at most {@linkcode STDIN_AHEAD} bytes ahead of the consumer, so memory stays bounded and a slow
 * remote command holds up the reading (and the local writer of the pipe) as before.
 *
 * Cancelling ends the stream; a read under way (the main thread's or the worker's, which is terminated) cannot
 * be taken back, so stdin must not be read by anything else afterwards, and the process ends with `Deno.exit`
 * (as main.ts does): as with Deno's own stdin stream, a read under way otherwise keeps it alive until input
 * comes.
 *
 * @example Forward piped stdin
 * ```ts ignore
 * await stdinStream().pipeTo(channel.stdin);
 * ```
 */
export function stdinStream(): ReadableStream<Uint8Array> {
  let readDirect = 0;
  let worker: Worker | undefined;
  let ahead: Int32Array | undefined;
  const queue: Uint8Array[] = [];
  let end: { error?: Error } | undefined;
  let wake: (() => void) | undefined;
  const stop = () => {
    worker?.terminate();
    worker = undefined;
  };

  const startWorker = () => {
    ahead = new Int32Array(new SharedArrayBuffer(4));
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    worker = new Worker(url, { type: "module" });
    URL.revokeObjectURL(url);
    worker.onmessage = ({ data }: MessageEvent<Uint8Array | null | { error: string }>) => {
      if (data instanceof Uint8Array) queue.push(data);
      else {
        end = data === null ? {} : { error: new Error(data.error) };
        stop();
      }
      wake?.();
    };
    worker.onerror = (event) => {
      event.preventDefault();
      end = { error: new Error(event.message) };
      stop();
      wake?.();
    };
    worker.postMessage({ ahead: ahead.buffer, limit: STDIN_AHEAD, size: READ_BYTES });
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!worker && !end && queue.length === 0) {
        if (readDirect < STDIN_HANDOFF) {
          const buf = new Uint8Array(READ_BYTES);
          const n = await Deno.stdin.read(buf);
          if (n === null) controller.close();
          else {
            readDirect += n;
            controller.enqueue(buf.subarray(0, n));
          }
          return;
        }
        startWorker();
      }
      while (queue.length === 0 && !end) await new Promise<void>((resolve) => wake = resolve);
      wake = undefined;
      if (queue.length === 0) {
        if (end?.error) controller.error(end.error);
        else controller.close();
        return;
      }
      const chunk = queue.shift()!;
      Atomics.sub(ahead!, 0, chunk.buffer.byteLength);
      Atomics.notify(ahead!, 0);
      controller.enqueue(chunk);
    },
    cancel() {
      end ??= {};
      queue.length = 0;
      stop();
    },
  }, { highWaterMark: 0 });
}
