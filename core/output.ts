/**
 * Writing to the user's stdout and stderr, completely, as bytes.
 *
 * @module
 */

import { GATHER_LIMIT, GatheringWriter } from "../plugins/mod.ts";

const encoder = new TextEncoder();

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await w.write(data.subarray(offset));
}

/** Writes text or bytes to stdout, all of it. */
export async function writeOut(data: string | Uint8Array): Promise<void> {
  await writeAll(Deno.stdout, typeof data === "string" ? encoder.encode(data) : data);
}

/** Writes text or bytes to stderr, all of it. */
export async function writeErr(data: string | Uint8Array): Promise<void> {
  await writeAll(Deno.stderr, typeof data === "string" ? encoder.encode(data) : data);
}

/** Where {@linkcode copyToOutput} writes: `Deno.stdout`, `Deno.stderr` or a stand-in. */
export interface OutputSink {
  write(p: Uint8Array): Promise<number>;
  writeSync?(p: Uint8Array): number;
}

/** Options of {@linkcode copyToOutput}. */
export interface CopyOptions {
  /**
   * write with `writeSync` (no hop to a blocking-I/O thread per write): only where a stalled write may
   * stall the whole process, see {@linkcode syncWriteSafe}
   */
  sync?: boolean;
  /** at most this many bytes are held while a write is in flight; then reading stops (backpressure) */
  limit?: number;
  /** aborting cancels `readable`; what was read is still written */
  signal?: AbortSignal;
  /**
   * (asynchronous writes) a write that starts a batch waits one turn of the event loop, so what arrives in the
   * same turn goes with it (GatheringWriter's `waitTurn`): for bulk output to a pipe, at the cost of a zero
   * timeout's delay before a batch
   */
  waitTurn?: boolean;
}

/** What {@linkcode copyToOutput} holds at most by default while a write is in flight. */
export const COPY_LIMIT = GATHER_LIMIT;

/**
 * Copies `readable` to `out`, every byte in order, with few large writes: chunks that arrive while a
 * write is in flight are gathered (up to `limit` bytes) into the next write, so a fast source costs one
 * write per batch rather than one per chunk (a 32 KiB pipe write is an operation of its own in Deno, and
 * that per-write cost capped bulk output). Once `limit` bytes wait, reading stops until the write
 * finishes: a slow reader of `out` holds up the source (and, through the channel's window, the remote
 * command), and memory stays bounded. A write error (EPIPE) cancels `readable` and is thrown.
 */
export async function copyToOutput(
  readable: ReadableStream<Uint8Array>,
  out: OutputSink,
  options: CopyOptions = {},
): Promise<void> {
  const reader = readable.getReader();
  const onAbort = () => void reader.cancel(options.signal?.reason).catch(() => {});
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (options.sync && out.writeSync) {
      const writeSync = out.writeSync.bind(out);
      while (true) {
        const { value, done } = await reader.read();
        if (done) return;
        let offset = 0;
        while (offset < value.length) offset += writeSync(value.subarray(offset));
      }
    }
    await copyBatched(reader, out, options.limit ?? COPY_LIMIT, options.waitTurn ?? false);
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
}

async function copyBatched(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  out: OutputSink,
  limit: number,
  waitTurn: boolean,
): Promise<void> {
  // a failed write cancels the reader: it may sit in a read that no more data will end
  const onFailure = (error: unknown) => void reader.cancel(error).catch(() => {});
  const writer = new GatheringWriter(out, { limit, onFailure, waitTurn });
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    await writer.write(value);
  }
  await writer.close();
}

/**
 * Whether `file` (`Deno.stdout` or `Deno.stderr`) may be written with `writeSync`, saving a hop through
 * Deno's blocking-I/O threads per write (which shows in keystroke echo): a regular file or a character
 * device (/dev/null, a terminal). A terminal stalls a write only while the terminal itself does not read,
 * and OpenSSH, too, writes to a terminal with blocking writes (it makes only non-terminal descriptors
 * non-blocking). Not a pipe or socket: their reader may stop reading for good, and the event loop must
 * keep running (Ctrl-C, stderr, the channel's window) while it does. Linux reads it from /proc/self/fd.
 */
export function syncWriteSafe(file: "stdout" | "stderr"): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    const info = Deno.statSync(`/proc/self/fd/${file === "stdout" ? 1 : 2}`);
    return info.isFile || info.isCharDevice === true;
  } catch {
    return false;
  }
}

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;

/**
 * `text` with control characters shown as escapes (`\n`, `\x1b`): names and messages can come from a
 * host or a file, and must neither split a line nor drive the user's terminal.
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** Whether colour may be used on stream `fd`: a TTY, and NO_COLOR unset (https://no-color.org). */
export function useColor(stream: { isTerminal(): boolean }): boolean {
  const noColor = Deno.env.get("NO_COLOR");
  return stream.isTerminal() && (noColor === undefined || noColor === "");
}

/**
 * A plain text table: a header row, a row of dashes, then `rows`, each column padded to its widest cell
 * and separated by `gap`.
 */
export function table(headers: readonly string[], rows: readonly string[][], gap = "  "): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(gap).trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n") + "\n";
}
