/**
 * The channel layer: an ssh2 `ClientChannel` (Node streams) turned into the contract's `Channel`
 * (web streams) once, at this edge.
 *
 * @module
 */
import { finished, type Readable } from "node:stream";
import type { ClientChannel } from "ssh2";
import { type Channel, type ExitStatus, TransportError, type WindowSize } from "../../plugins/mod.ts";
import { corked } from "./socket.ts";

/** POSIX signal numbers, for the 128+n exit code of a signalled process (as a shell reports it). */
const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  ILL: 4,
  TRAP: 5,
  ABRT: 6,
  BUS: 7,
  FPE: 8,
  KILL: 9,
  USR1: 10,
  SEGV: 11,
  USR2: 12,
  PIPE: 13,
  ALRM: 14,
  TERM: 15,
};

/** The exit code a shell reports for a process killed by `signal` (`TERM` → 143). */
export function signalExitCode(signal: string): number {
  return 128 + (SIGNAL_NUMBERS[signal.replace(/^SIG/, "")] ?? 0);
}

/** Options of {@linkcode toChannel}. */
export interface ToChannelOptions {
  /** a PTY merges stderr into stdout; the contract's stderr is then empty */
  pty: boolean;
  /** resolves with the error when the whole connection goes away */
  lost: Promise<Error>;
  /** runs after the channel is closed, e.g. to close a connection the channel owns */
  onDispose?: () => Promise<void>;
}

/** Wraps an open ssh2 channel as a contract {@linkcode Channel}. */
export function toChannel(ch: ClientChannel, options: ToChannelOptions): Channel {
  let status: { code?: number | null; signal?: string; coreDumped?: boolean } | undefined;
  ch.on("exit", (code: number | null, signal?: string, coreDumped?: boolean) => {
    status = { code, signal: signal ?? undefined, coreDumped };
  });
  const closed = new Promise<void>((resolve) => ch.once("close", () => resolve()));

  const stdout = channelReadable(ch);
  let stderr: ReadableStream<Uint8Array>;
  if (options.pty) {
    ch.stderr.resume();
    stderr = new ReadableStream({ start: (c) => c.close() });
  } else {
    stderr = channelReadable(ch.stderr);
  }
  // the web streams end on 'end'; observing that through tees would copy, so track via events
  const stdoutDone = new Promise<void>((resolve) => {
    if (ch.readableEnded) resolve();
    ch.once("end", () => resolve());
    ch.once("close", () => resolve());
  });
  const stderrDone = options.pty ? Promise.resolve() : new Promise<void>((resolve) => {
    ch.stderr.once("end", () => resolve());
    ch.once("close", () => resolve());
  });

  const exit: Promise<ExitStatus> = Promise.race([
    closed.then(() => "closed" as const),
    options.lost,
  ]).then(async (how): Promise<ExitStatus> => {
    if (how !== "closed" && !status) return { kind: "lost", error: how };
    await Promise.all([stdoutDone, stderrDone]);
    if (!status) {
      // ssh2 closes every channel when the link drops; prefer the connection's own error then
      const error = await within(options.lost, 200) ??
        new TransportError("the server closed the channel without an exit status", { layer: "channel" });
      return { kind: "lost", error };
    }
    if (status.signal) {
      const signal = status.signal.replace(/^SIG/, "");
      const code = signalExitCode(signal);
      return status.coreDumped
        ? { kind: "signaled", signal, code, coreDumped: true }
        : { kind: "signaled", signal, code };
    }
    return { kind: "exited", code: status.code ?? 0 };
  });

  let disposed = false;
  const sendSignal = (name: string): void => {
    const sig = name.replace(/^SIG/, "");
    // ssh2's signal() sends nothing once stdin is closed (state "eof"), yet RFC 4254 6.9 allows the
    // request until the channel closes: a command run with stdin at EOF must still get Ctrl-C.
    const raw = ch as unknown as {
      outgoing?: { id: number; state: string };
      _client?: { _protocol?: { signal(id: number, signal: string): void } };
    };
    const state = raw.outgoing?.state;
    if ((state === "open" || state === "eof") && raw._client?._protocol) {
      raw._client._protocol.signal(raw.outgoing!.id, sig);
    } else ch.signal(sig);
  };
  return {
    stdin: channelWriter(ch),
    stdout,
    stderr,
    exit,
    resize(size: WindowSize) {
      ch.setWindow(size.rows, size.columns, 0, 0);
    },
    signal: sendSignal,
    async [Symbol.asyncDispose]() {
      if (disposed) return;
      disposed = true;
      // Without a PTY, sshd leaves a command running when its channel closes (OpenSSH session.c
      // waits for the child), so ask it to end first; RFC 4254 6.9, best effort: a server may refuse.
      if (!status && !options.pty) {
        try {
          sendSignal("TERM");
        } catch { /* the connection is gone already */ }
      }
      try {
        ch.close();
      } catch { /* the connection is gone already */ }
      await within(Promise.race([closed, options.lost]), 2000);
      await options.onDispose?.();
    },
  };
}

/** `promise`'s value, or undefined once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Bytes the web stream of {@linkcode channelReadable} holds before it pauses the channel (its SSH window). */
export const CHANNEL_READ_BUFFER = 2 * 1024 * 1024;

/**
 * A channel's output (or its stderr) as a web stream, for the bulk path. Not `Readable.toWeb`: under Deno
 * that copies every chunk into a new Uint8Array (a second copy of all the data: ~10 % of a download's CPU)
 * and counts its buffer in chunks. Here ssh2's Buffers are handed on as they are (ssh2 never reuses one
 * after pushing it), the buffer is counted in bytes, and reading pauses the channel when it is full, so
 * ssh2 stops adjusting the window and the server stops sending (backpressure, as before). It ends as
 * `toWeb`'s did: closed on 'end', errored on an error or a close without an end, and cancelling destroys
 * the stream.
 */
export function channelReadable(stream: Readable): ReadableStream<Uint8Array> {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let settled = false;
  const onData = (chunk: Uint8Array) => {
    if (settled) return;
    controller.enqueue(chunk);
    if ((controller.desiredSize ?? 0) <= 0) stream.pause();
  };
  // the readable side only: a channel is a Duplex, and its writing half may stay open long after
  const cleanup = finished(stream, { writable: false }, (error) => {
    cleanup();
    stream.off("data", onData);
    stream.on("error", () => {}); // a late error after the end must not go unhandled
    if (settled) return;
    settled = true;
    if (error) controller.error(error);
    else controller.close();
  });
  stream.on("data", onData);
  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    pull() {
      stream.resume();
    },
    cancel(reason) {
      settled = true;
      stream.destroy(reason instanceof Error ? reason : undefined);
    },
  }, { highWaterMark: CHANNEL_READ_BUFFER, size: (chunk) => chunk.byteLength });
}

/**
 * `ch.write(chunk)` with the connection's socket corked ({@linkcode corked}): the packets ssh2 makes of
 * one chunk leave in one socket write.
 */
export function writeCorked(ch: ClientChannel, chunk: Uint8Array): boolean {
  return corked(ch, () => ch.write(chunk));
}

/**
 * The channel's input as a web stream. Not `Writable.toWeb`: under Deno its close also ends the
 * readable side, so no more window adjustments go out and a large output stalls after ~2 MB.
 */
export function channelWriter(ch: ClientChannel): WritableStream<Uint8Array> {
  const gone = () => ch.destroyed || ch.writableEnded;
  return new WritableStream<Uint8Array>({
    write(chunk) {
      if (gone()) return;
      if (writeCorked(ch, chunk)) return;
      return new Promise<void>((resolve) => {
        const done = () => {
          ch.off("drain", done);
          ch.off("close", done);
          resolve();
        };
        ch.on("drain", done);
        ch.on("close", done);
      });
    },
    close() {
      if (gone()) return;
      return new Promise<void>((resolve) => {
        ch.end(() => resolve());
        ch.once("close", () => resolve());
      });
    },
    abort() {
      if (!gone()) ch.end();
    },
  });
}
