/**
 * A session as the core sees it: a Channel of byte streams over an {@linkcode SsmSession}, with output
 * backpressure, Ctrl-C as a byte, window sizes as Size messages, and, for a session kept on the service
 * (`remote new`/`connect`), detaching instead of ending it.
 *
 * @module
 */
import { type Channel, type ExitStatus, type OpenContext, TransportError, type WindowSize } from "../../plugins/mod.ts";
import { OutputQueue } from "./output_queue.ts";
import type { DetachedSession, SessionHandlers, SsmSession } from "./session.ts";

/**
 * Output bytes queued for the reader of stdout or stderr before remote stops reading the data channel.
 * The agent keeps what it cannot send and resends it, so nothing is lost while the reader is slow.
 */
export const OUTPUT_HIGH_WATER_BYTES = 1024 * 1024;

/** How a session kept on the service is left and ended (absent: the channel's end ends the session). */
export interface Persistence {
  /** the session stays on the service without a client: keep what the next client needs */
  keep(detached: DetachedSession): Promise<void>;
  /** the session ended on the service (its shell exited, or it was terminated) */
  ended(): Promise<void>;
}

/** Options of {@linkcode sessionChannel}. */
export interface SessionChannelOptions {
  /** sent as the first Size message */
  pty?: WindowSize;
  /** a lone newline typed goes as a carriage return, as the plugin sends it (shells) */
  newlineAsReturn?: boolean;
  /** bytes shown before any new output: what an earlier client received and nobody has seen */
  replay?: Uint8Array;
  persistence?: Persistence;
}

/**
 * Starts a session through `start` and wraps it as a Channel. Without `persistence`, closing the channel
 * or aborting `ctx.signal` terminates the session; with it, both leave the session running (detached).
 */
export async function sessionChannel(
  ctx: OpenContext,
  start: (handlers: SessionHandlers) => Promise<SsmSession>,
  options: SessionChannelOptions = {},
): Promise<Channel> {
  // backpressure: output over its high-water mark pauses the data channel, a read resumes it
  // deno-lint-ignore prefer-const -- assigned once started; the stream callbacks defined before read it
  let session: SsmSession | undefined;
  const full = (q: OutputQueue) => !q.cancelled && q.bytes >= OUTPUT_HIGH_WATER_BYTES;
  const flow = () => {
    if (full(stdoutQueue) || full(stderrQueue)) session?.pauseOutput();
    else session?.resumeOutput();
  };
  const stdoutQueue = new OutputQueue(() => flow());
  const stderrQueue = new OutputQueue(() => flow());
  const stdout = stdoutQueue.readable;
  const stderr = stderrQueue.readable;
  const { promise: exit, resolve: settle } = Promise.withResolvers<ExitStatus>();
  let settled = false;
  let exitCode: number | undefined;
  const persistence = options.persistence;
  const finish = (status: ExitStatus) => {
    if (settled) return;
    settled = true;
    stdoutQueue.close();
    stderrQueue.close();
    settle(status);
  };
  const enqueue = (q: OutputQueue, data: Uint8Array) => {
    if (settled) return;
    q.push(data);
    if (full(q)) session?.pauseOutput();
  };
  if (options.replay && options.replay.length > 0) enqueue(stdoutQueue, options.replay);

  // a persistent session: where it stands is kept once, whichever way this client leaves it
  let kept: Promise<void> | undefined;
  const keep = (s: SsmSession): Promise<void> => {
    kept ??= s.detach().then((d) => persistence!.keep(d));
    return kept;
  };

  session = await start({
    onOutput: (data) => enqueue(stdoutQueue, data),
    onStdErr: (data) => enqueue(stderrQueue, data),
    onExitCode: (code) => void (exitCode = code),
    onEnd: (result) => {
      if (result.kind === "closed") {
        const done = persistence ? persistence.ended().catch(() => {}) : Promise.resolve();
        void done.then(() => finish({ kind: "exited", code: exitCode ?? 0 }));
        return;
      }
      // a resumed data channel that could not be kept: the session may still live on the service
      const saved = persistence && session ? keep(session).catch(() => {}) : Promise.resolve();
      void saved.then(() => finish({ kind: "lost", error: result.error }));
    },
  });

  const started = session;
  flow(); // output delivered during the handshake may have filled a queue already
  const onAbort = () => {
    if (persistence) {
      void keep(started).finally(() => finish({ kind: "detached" }));
      return;
    }
    void started.terminate();
    finish({
      kind: "lost",
      error: new TransportError("the session was closed", { layer: "channel", code: "interrupted" }),
    });
  };
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  void exit.then(() => ctx.signal.removeEventListener("abort", onAbort));

  if (options.pty) await started.resize(options.pty.columns, options.pty.rows);

  const stdin = new WritableStream<Uint8Array>({
    async write(chunk) {
      if (settled) return;
      // the plugin sends a lone newline as a carriage return (`streaming.go`)
      const lone = options.newlineAsReturn !== false && chunk.length === 1 && chunk[0] === 0x0a;
      await started.write(lone ? new Uint8Array([0x0d]) : chunk);
    },
  });

  const channel: Channel = {
    stdin,
    stdout,
    stderr,
    exit,
    resize: (size) => started.resize(size.columns, size.rows),
    async [Symbol.asyncDispose]() {
      if (persistence) {
        if (!started.ended) await keep(started);
        finish({ kind: "detached" });
        return;
      }
      // after channel_closed the session is over already; otherwise end it on the service too
      if (!started.ended) await started.terminate();
      finish({ kind: "lost", error: new TransportError("the session was closed", { layer: "channel" }) });
    },
  };
  if (persistence) {
    channel.detach = async () => {
      await keep(started);
      finish({ kind: "detached" });
    };
  }
  return channel;
}
