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
 * without echo; Backspace and Ctrl-U edit it, Ctrl-C throws `interrupted` (exit 130).
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
      await writeAll(Deno.stderr, encoder.encode(question));
      return await readLine();
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
  // echo goes off before the question shows, so keys typed the moment it appears are not echoed
  Deno.stdin.setRaw(true);
  // Deno.exit() elsewhere skips our finally; the unload event still runs
  const onUnload = () => Deno.stdin.setRaw(false);
  globalThis.addEventListener("unload", onUnload);
  try {
    await writeAll(Deno.stderr, encoder.encode(question));
    read: while (true) {
      const n = await Deno.stdin.read(buf);
      if (n === null) throw interrupted();
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
  } finally {
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
