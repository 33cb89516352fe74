/**
 * `remote enter --configuration-name powershell`: Enter-PSSession over a PSRP byte Channel (the SSH
 * `powershell` subsystem, or a local `pwsh -s`). The prompt is `[host]: ` and the text of the remote
 * `prompt` function; lines are edited locally (plugins/line_editor.ts), each runs in the remote runspace with
 * its output formatted there (`Out-String -Stream`), errors as PowerShell shows them. Ctrl-C stops the
 * running pipeline, not the session; Read-Host is answered here; `exit N` leaves with N, Ctrl-D with 0.
 *
 * @module
 */
import { type Channel, LineEditor } from "../plugins/mod.ts";
import {
  connectOutOfProc,
  formatError,
  type PSHost,
  PSObject,
  PSPrimitive,
  type PSValue,
  RunspacePool,
} from "../plugins/psrp/mod.ts";
import { printable } from "./output.ts";

/** Where the session reads keys and writes text; the process's own by default (tests pass a PTY's). */
export interface PowerShellTerminal {
  stdin: ReadableStream<Uint8Array>;
  isTerminal: boolean;
  setRaw?(mode: boolean): void;
  write(text: string): Promise<void>;
  writeError(text: string): Promise<void>;
  columns?: number;
  /**
   * a session the host keeps (`remote connect`): a line `~&` leaves it running there (Disconnect-PSSession), as
   * `~&` detaches a terminal session; enterPowerShell then returns `"detached"`
   */
  detach?(): Promise<void>;
}

/**
 * Runs the interactive session until `exit`, Ctrl-D or the channel ends; returns the exit code, or `"detached"`
 * when the user left a kept session running with `~&`.
 */
export async function enterPowerShell(
  channel: Channel,
  display: string,
  term: PowerShellTerminal,
): Promise<number | "detached"> {
  const conn = connectOutOfProc({ readable: channel.stdout, writable: channel.stdin });
  const diagnostics = new Response(channel.stderr).text().catch(() => "");
  void diagnostics;
  const keys = new KeyReader(term);
  // the terminal keeps its output processing in raw mode (Deno.stdin.setRaw leaves OPOST), so "\n" is enough
  const eol = (s: string) => s;
  const out = (s: string) => void term.write(eol(s)).catch(() => {});
  const err = (s: string) => void term.writeError(eol(s)).catch(() => {});
  let shouldExit: number | undefined;
  let detached = false;
  const host: PSHost = {
    write: (text) => out(text),
    writeLine: (text) => out(text + "\n"),
    writeErrorLine: (text) => err(text + "\n"),
    writeWarningLine: (text) => err(`WARNING: ${text}\n`),
    writeVerboseLine: (text) => err(`VERBOSE: ${text}\n`),
    writeDebugLine: (text) => err(`DEBUG: ${text}\n`),
    readLine: async () => (await keys.line()) ?? "",
    readLineAsSecureString: async () => (await keys.line(false)) ?? "",
    async prompt(caption, message, fields) {
      // Read-Host "name" arrives as a Prompt with one field: PowerShell's console shows `name: `
      if (caption) out(caption + "\n");
      if (message) out(message + "\n");
      const answers: Record<string, PSValue> = {};
      for (const field of fields) {
        // echo is set before the question shows, so a secret typed at once is never echoed
        const answer = keys.line(!/SecureString/.test(field.parameterTypeName));
        await term.write(`${field.name}: `);
        answers[field.name] = (await answer) ?? "";
      }
      return answers;
    },
    async promptForCredential(caption, message, userName) {
      if (caption) out(caption + "\n");
      if (message) out(message + "\n");
      let user = userName;
      if (!user) {
        await term.write("User: ");
        user = (await keys.line()) ?? "";
      }
      const password = keys.line(false);
      await term.write(`Password for user ${user}: `);
      return { userName: user, password: (await password) ?? "" };
    },
    setShouldExit(code) {
      shouldExit = code;
    },
  };
  const pool = new RunspacePool({ wire: conn.wire, host });
  conn.wire.attach(pool);
  keys.complete = completer(pool);
  try {
    if (term.isTerminal) term.setRaw?.(true);
    await pool.open();
    while (shouldExit === undefined) {
      const prompt = await evaluate(pool, "prompt");
      await term.write(`[${printable(display)}]: ${prompt.join("") || "PS> "}`);
      const line = await keys.line();
      if (line === undefined) return 0;
      if (line.trim() === "") continue;
      if (line.trim() === "~&" && term.detach) {
        detached = true;
        await term.detach();
        return "detached";
      }
      const pipeline = pool.createPipeline({
        commands: [{ cmd: line, isScript: true }, {
          cmd: "Out-String",
          args: [{ name: "Stream", value: true }, { name: "Width", value: term.columns ?? 120 }],
        }],
        addToHistory: true,
        output: (v) => out(`${text(v)}\n`),
        error: (record) => err(formatError(record)),
        warning: (m) => err(`WARNING: ${m}\n`),
      });
      keys.onInterrupt = () => pipeline.stop();
      const result = await pipeline.done;
      keys.onInterrupt = undefined;
      if (result.reason) err(formatError(result.reason));
    }
    return shouldExit;
  } finally {
    if (term.isTerminal) term.setRaw?.(false);
    keys.stop();
    // a detached session's pool stays open on the host: closing it would end the session
    if (!detached) await pool.close().catch(() => {});
    await conn.closeInput();
  }
}

/**
 * Tab completion through TabExpansion2 in the remote runspace, as PowerShell's console does: the first match
 * replaces the word, and Tab again (on the line it produced) moves to the next match.
 */
function completer(pool: RunspacePool): (text: string) => Promise<string | undefined> {
  let last: { produced: string; base: string; start: number; length: number; matches: string[]; i: number } | undefined;
  const script = "$c = TabExpansion2 -inputScript $args[0] -cursorColumn $args[0].Length; " +
    "$c.ReplacementIndex; $c.ReplacementLength; $c.CompletionMatches | ForEach-Object CompletionText";
  return async (text) => {
    if (last && last.produced === text && last.matches.length > 1) {
      last.i = (last.i + 1) % last.matches.length;
    } else {
      const out: PSValue[] = [];
      await pool.createPipeline({
        commands: [{ cmd: script, isScript: true, args: [{ value: text }] }],
        output: (v) => out.push(v),
      }).done;
      const [start, length, ...matches] = out;
      if (typeof start !== "number" || typeof length !== "number" || matches.length === 0) return undefined;
      last = { produced: "", base: text, start, length, matches: matches.map(String), i: 0 };
    }
    const m = last;
    m.produced = m.base.slice(0, m.start) + m.matches[m.i] + m.base.slice(m.start + m.length);
    return m.produced;
  };
}

/** Runs `script` and returns its output as text. */
async function evaluate(pool: RunspacePool, script: string): Promise<string[]> {
  const out: string[] = [];
  await pool.createPipeline({ commands: [{ cmd: script, isScript: true }], output: (v) => out.push(text(v)) }).done;
  return out;
}

function text(value: PSValue): string {
  if (typeof value === "string") return value;
  if (value instanceof PSObject) return value.toStringText ?? (value.value !== undefined ? text(value.value) : "");
  if (value instanceof PSPrimitive) return String(value.value);
  return String(value ?? "");
}

/** Keystrokes through the line editor: whole lines on request, Ctrl-C to whoever runs a pipeline. */
class KeyReader {
  #editor = new LineEditor({ tabs: "event", history: true });
  #lines: (string | undefined)[] = [];
  #waiting?: (line: string | undefined) => void;
  #echo = true;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #term: PowerShellTerminal;
  onInterrupt?: () => void;
  /** Tab: the completed line, or undefined to leave it */
  complete?: (text: string) => Promise<string | undefined>;

  constructor(term: PowerShellTerminal) {
    this.#term = term;
    this.#reader = term.stdin.getReader();
    void this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      while (true) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        for (const event of this.#editor.feed(value)) {
          if (event.kind === "echo") {
            if (this.#term.isTerminal) {
              // with echo off (a secret) only the line ends show, so the next output starts on its own line
              const shown = this.#echo ? event.bytes : event.bytes.filter((b) => b === 13 || b === 10);
              if (shown.length > 0) await this.#term.write(new TextDecoder().decode(shown));
            }
          } else if (event.kind === "line") this.#push(event.text);
          else if (event.kind === "interrupt") {
            if (this.onInterrupt) this.onInterrupt();
            else if (this.#waiting) this.#push("");
          } else if (event.kind === "eof") this.#push(undefined);
          else if (event.kind === "tab" && this.#waiting && this.complete) {
            const done = await this.complete(event.text).catch(() => undefined);
            if (done !== undefined && done !== event.text) {
              await this.#term.write(new TextDecoder().decode(this.#editor.replace(done)));
            }
          }
        }
      }
    } catch {
      // stdin closed under us
    }
    this.#push(undefined);
  }

  #push(line: string | undefined): void {
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting(line);
    } else this.#lines.push(line);
  }

  /** The next typed line; undefined at end of input. `echo` false hides what is typed (a password). */
  line(echo = true): Promise<string | undefined> {
    this.#echo = echo;
    if (this.#lines.length > 0) return Promise.resolve(this.#lines.shift());
    return new Promise((resolve) => {
      this.#waiting = (line) => {
        this.#echo = true;
        resolve(line);
      };
    });
  }

  stop(): void {
    this.#reader.cancel().catch(() => {});
  }
}
