/**
 * Asking the user: on the controlling terminal when there is one (question on stderr, secrets without
 * echo), and a clear usage error naming what was needed when there is none.
 *
 * @example Asking for a password
 * ```ts ignore
 * import { terminalPrompter } from "./prompt.ts";
 * const password = await terminalPrompter().ask("alice@db1's password: ", { secret: true, what: "password" });
 * ```
 *
 * @module
 */
import type { Prompter } from "../plugins/mod.ts";
import { RemoteError, UsageError } from "./errors.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const CTRL_C = 0x03;
const CTRL_D = 0x04;
const BACKSPACE = 0x08;
const CTRL_U = 0x15;
const ESC = 0x1b;
const DELETE = 0x7f;

function noAnswer(what: string | undefined): UsageError {
  const thing = what ?? "an answer";
  return new UsageError(`cannot ask for ${thing}: stdin is not a terminal`, {
    hint: `run remote in a terminal, or give the ${what ?? "answer"} another way than a prompt`,
  });
}

function interrupted(): RemoteError {
  return new RemoteError("interrupted", "interrupted");
}

/**
 * Signals that end a question, each with its error (exit 128 + n). The terminal's modes are restored before the
 * error is thrown: killed by the default action, remote would leave a terminal without echo behind. As ssh's
 * readpassphrase(3) does, though it then dies by the signal where remote exits with the code.
 */
const ENDING_SIGNALS: ReadonlyArray<[Deno.Signal, () => RemoteError]> = [
  ["SIGINT", interrupted],
  ["SIGTERM", () => new RemoteError("terminated", "terminated by SIGTERM")],
  ["SIGHUP", () => new RemoteError("hangup", "the terminal hung up (SIGHUP)")],
];

/**
 * Listens for {@linkcode ENDING_SIGNALS} until disposed: `ended` rejects with the error of the first one. Installed
 * before the terminal leaves its modes and before the question shows, so no signal finds it unguarded.
 */
function endingSignals(): { ended: Promise<never>; [Symbol.dispose](): void } {
  const ended = Promise.withResolvers<never>();
  ended.promise.catch(() => {});
  const listeners = ENDING_SIGNALS.map(([sig, error]) => [sig, () => ended.reject(error())] as const);
  for (const [sig, listener] of listeners) {
    try {
      Deno.addSignalListener(sig, listener);
    } catch {
      // a signal this platform has not
    }
  }
  return {
    ended: ended.promise,
    [Symbol.dispose]() {
      for (const [sig, listener] of listeners) {
        try {
          Deno.removeSignalListener(sig, listener);
        } catch {
          // never added
        }
      }
    },
  };
}

/** `work` unless a signal ends the question first; a read of the terminal cannot be cancelled, so it is left. */
function unless<T>(ended: Promise<never>, work: Promise<T>): Promise<T> {
  work.catch(() => {});
  return Promise.race([work, ended]);
}

/**
 * A prompter that never asks: for scripts, `--non-interactive` runs and tests.
 *
 * @example
 * ```ts
 * import { nonInteractivePrompter } from "./prompt.ts";
 * console.assert(!nonInteractivePrompter().interactive);
 * ```
 */
export function nonInteractivePrompter(): Prompter {
  return {
    interactive: false,
    ask(_question, options = {}) {
      return Promise.reject(noAnswer(options.what));
    },
  };
}

/**
 * The prompter for a person at a terminal: interactive when stdin and stderr are both terminals. The
 * question goes to stderr, so stdout stays clean for the remote output. A secret is read in raw mode
 * without echo; Backspace and Ctrl-U edit it, Ctrl-C throws `interrupted` (exit 130). SIGINT, SIGTERM and
 * SIGHUP end a question with the terminal's modes restored, throwing `interrupted`, `terminated` (143) or
 * `hangup` (129).
 *
 * @example
 * ```ts
 * import { terminalPrompter } from "./prompt.ts";
 * const prompter = terminalPrompter();
 * console.assert(typeof prompter.interactive === "boolean");
 * ```
 */
export function terminalPrompter(): Prompter {
  const interactive = Deno.stdin.isTerminal() && Deno.stderr.isTerminal();
  if (!interactive) return nonInteractivePrompter();
  return {
    interactive,
    async ask(question, options = {}) {
      if (options.secret) return await readSecret(question);
      using signals = endingSignals();
      await unless(signals.ended, writeAll(Deno.stderr, encoder.encode(question)));
      return await unless(signals.ended, readLine());
    },
  };
}

async function writeAll(out: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await out.write(bytes.subarray(offset));
}

/** One line in the terminal's own (cooked) mode, which echoes and edits it. */
async function readLine(): Promise<string> {
  const bytes: number[] = [];
  const buf = new Uint8Array(1024);
  while (true) {
    const n = await Deno.stdin.read(buf);
    if (n === null) {
      // Ctrl-D on an empty line
      if (bytes.length === 0) throw interrupted();
      break;
    }
    const chunk = buf.subarray(0, n);
    const end = chunk.indexOf(0x0a);
    bytes.push(...(end < 0 ? chunk : chunk.subarray(0, end)));
    if (end >= 0) break;
  }
  return decoder.decode(Uint8Array.from(bytes)).replace(/\r$/, "");
}

/** A line read in raw mode, so nothing is echoed; the line discipline's editing is redone here. */
async function readSecret(question: string): Promise<string> {
  const bytes: number[] = [];
  const buf = new Uint8Array(1024);
  // a signal from here on ends the question with the terminal's modes restored (see ENDING_SIGNALS)
  using signals = endingSignals();
  // echo goes off before the question shows, so keys typed the moment it appears are not echoed
  Deno.stdin.setRaw(true);
  // Deno.exit() elsewhere skips our finally; the unload event still runs
  const onUnload = () => Deno.stdin.setRaw(false);
  globalThis.addEventListener("unload", onUnload);
  let done = false;
  try {
    await unless(signals.ended, writeAll(Deno.stderr, encoder.encode(question)));
    await unless(
      signals.ended,
      (async () => {
        read: while (!done) {
          const n = await Deno.stdin.read(buf);
          if (n === null) throw interrupted();
          // a signal ended the question while this read waited: what it read is not the answer
          if (done) return;
          for (let i = 0; i < n; i++) {
            const byte = buf[i];
            if (byte === 0x0d || byte === 0x0a) break read;
            if (byte === CTRL_C) throw interrupted();
            if (byte === CTRL_D) {
              if (bytes.length === 0) throw interrupted();
            } else if (byte === BACKSPACE || byte === DELETE) {
              // drop one whole UTF-8 character: its continuation bytes, then its lead byte
              while (bytes.length && (bytes[bytes.length - 1] & 0xc0) === 0x80) bytes.pop();
              bytes.pop();
            } else if (byte === CTRL_U) {
              bytes.length = 0;
            } else if (byte === ESC) {
              // a function key's sequence arrives in one read: skip the rest of it
              break;
            } else if (byte >= 0x20) {
              bytes.push(byte);
            }
          }
        }
      })(),
    );
  } catch (error) {
    bytes.fill(0);
    buf.fill(0);
    throw error;
  } finally {
    done = true;
    Deno.stdin.setRaw(false);
    globalThis.removeEventListener("unload", onUnload);
    // Enter was not echoed
    await writeAll(Deno.stderr, encoder.encode("\r\n")).catch(() => {});
  }
  const secret = decoder.decode(Uint8Array.from(bytes));
  bytes.fill(0);
  buf.fill(0);
  return secret;
}
