/**
 * `remote enter --configuration-name powershell`: Enter-PSSession over a PSRP byte Channel (the SSH
 * `powershell` subsystem, or a local `pwsh -s`). The prompt is `[host]: ` and the text of the remote
 * `prompt` function; lines are edited locally (plugins/line_editor.ts), each runs in the remote runspace with
 * its output formatted there (`Out-String -Stream`), errors as PowerShell shows them. Ctrl-C stops the
 * running pipeline, not the session; Read-Host, credential and choice prompts are answered here, as
 * PowerShell's console host asks them; progress shows as one line on a terminal; the raw UI (cursor
 * position, sizes, title, filling the buffer) is the local terminal's. `exit N` leaves with N, Ctrl-D with 0.
 *
 * @module
 */
import { cellWidth, type Channel, LineEditor } from "../plugins/mod.ts";
import {
  type Choice,
  connectOutOfProc,
  formatError,
  type HostCoordinates,
  type HostKeyInfo,
  type HostRawUI,
  type ProgressRecord,
  type PSHost,
  PSObject,
  PSPrimitive,
  type PSValue,
  RunspacePool,
} from "../plugins/psrp/mod.ts";
import { RemoteError } from "./errors.ts";
import { printable } from "./output.ts";
import { type EscapeAction, escapeHelp, EscapeScanner } from "./terminal_bridge.ts";

/** Where the session reads keys and writes text; the process's own by default (tests pass a PTY's). */
export interface PowerShellTerminal {
  stdin: ReadableStream<Uint8Array>;
  isTerminal: boolean;
  setRaw?(mode: boolean): void;
  write(text: string): Promise<void>;
  writeError(text: string): Promise<void>;
  columns?: number;
  /**
   * a session the host keeps (`remote connect`): the escape `~&` leaves it running there (Disconnect-PSSession),
   * even while a command runs; enterPowerShell then returns `"detached"`
   */
  detach?(): Promise<void>;
  /** the escape character on a terminal (docs/escapes.md), `~` by default; `null` turns escapes off */
  escapeChar?: string | null;
  /** the text `~#` prints (the sessions known) */
  onEscapeList?: () => Promise<string>;
  /** the transport keeps sessions made with `remote new` but this one was not: what `~&` then says */
  plainSession?: boolean;
  /** the terminal's size now (it may change between commands) */
  size?(): { columns: number; rows: number };
}

/**
 * This process's terminal as a {@linkcode PowerShellTerminal} (stdin's keys, stdout and stderr, the console's size),
 * with `extra` (detach, escapes) added; `release` gives stdout and stderr back when the session is over.
 */
export function stdioTerminal(
  extra: Partial<PowerShellTerminal> = {},
): { term: PowerShellTerminal; release(): void } {
  const stdout = Deno.stdout.writable.getWriter();
  const stderr = Deno.stderr.writable.getWriter();
  const encoder = new TextEncoder();
  const onTerminal = Deno.stdout.isTerminal();
  return {
    term: {
      stdin: Deno.stdin.readable,
      isTerminal: Deno.stdin.isTerminal(),
      setRaw: (mode) => Deno.stdin.setRaw(mode),
      write: (text) => stdout.write(encoder.encode(text)),
      writeError: (text) => stderr.write(encoder.encode(text)),
      columns: onTerminal ? Deno.consoleSize().columns : undefined,
      size: onTerminal ? () => Deno.consoleSize() : undefined,
      ...extra,
    },
    release() {
      stdout.releaseLock();
      stderr.releaseLock();
    },
  };
}

/** System.ConsoleColor 0–15 as SGR foreground codes (background: +10) */
const CONSOLE_SGR = [30, 34, 32, 36, 31, 35, 33, 37, 90, 94, 92, 96, 91, 95, 93, 97];

/** ReadKeyOptions flags (System.Management.Automation.Host) */
const READ_KEY_ALLOW_CTRL_C = 1;
const READ_KEY_NO_ECHO = 2;

/** How long a terminal may take to answer where its cursor is before it is taken to never answer. */
const CURSOR_REPLY_MS = 1000;

/**
 * Runs the interactive session until `exit`, Ctrl-D or the channel ends; returns the exit code, `"detached"`
 * when the user left a kept session running with `~&`, or `"terminated"` when `~.` ended it.
 */
export async function enterPowerShell(
  channel: Channel,
  display: string,
  term: PowerShellTerminal,
): Promise<number | "detached" | "terminated"> {
  const conn = connectOutOfProc({ readable: channel.stdout, writable: channel.stdin });
  const diagnostics = new Response(channel.stderr).text().catch(() => "");
  void diagnostics;
  const escapeChar = term.escapeChar === undefined ? "~" : term.escapeChar;
  const keys = new KeyReader(term, term.isTerminal ? new EscapeScanner(escapeChar) : undefined);
  const screen = new Screen(term);
  const out = (s: string) => screen.write(s);
  const err = (s: string) => screen.write(s, true);
  let detached = false;
  /** `~.` or `~&`: the session loop stops waiting for the line or command at hand */
  const leave = Promise.withResolvers<"detached" | "terminated">();
  /** the prompt shown while a line is read, to show again after an escape's message */
  let prompting: string | undefined;
  /** an escape is leaving the session: what fails meanwhile (the channel going away under a detach) is its doing */
  let leaving = false;
  const untilLeft = <T>(p: Promise<T>): Promise<T | "detached" | "terminated"> =>
    Promise.race([p.catch((e) => leaving ? leave.promise : Promise.reject(e)), leave.promise]);
  keys.onEscape = async (action: EscapeAction) => {
    const e = showEscape(escapeChar ?? "~");
    // the terminal translates line ends here (raw mode keeps output processing), so plain LF
    const say = async (text: string) => {
      await screen.write(`${e}${ESCAPE_KEYS[action]}\n${text}`.replace(/\r\n/g, "\n"), true);
      if (prompting !== undefined) await screen.write(prompting + keys.typed());
    };
    switch (action) {
      case "terminate":
        leaving = true;
        prompting = undefined;
        await say("");
        leave.resolve("terminated");
        return;
      case "detach":
        if (term.detach) {
          leaving = true;
          prompting = undefined;
          await say("");
          detached = true;
          // Disconnect-PSSession: a running command goes on on the host, its output kept for the next connect
          await term.detach();
          // what the host sent before the Disconnect is shown, not dropped: the channel is read to its end first
          await bounded(conn.finished.catch(() => {}), CLOSE_AFTER_ESCAPE_MS);
          await screen.write("");
          leave.resolve("detached");
          return;
        }
        return await say(
          term.plainSession
            ? `remote: this session was not created with \`remote new\`, so it cannot be left running; ${e}. ends it\n`
            : `remote: this transport cannot keep a session running; ${e}. ends it\n`,
        );
      case "help":
        return await say(escapeHelp(escapeChar ?? "~", term.detach !== undefined));
      case "list": {
        let text: string;
        try {
          text = term.onEscapeList ? await term.onEscapeList() : "no sessions to list";
        } catch (error) {
          text = `remote: cannot list sessions: ${error instanceof Error ? error.message : String(error)}`;
        }
        return await say(text.replace(/\n?$/, "\n"));
      }
    }
  };
  /** a line typed at a host prompt; Ctrl-C or the end of input cancels the prompt (the server gets an error) */
  const ask = async (echo = true): Promise<string> => {
    const got = await keys.line(echo, screen.column());
    screen.lineEnded();
    if (got.kind === "line") return got.text;
    throw new Error(got.kind === "eof" ? "the input ended" : "the prompt was cancelled");
  };
  let shouldExit: number | undefined;
  const rawUI: HostRawUI = { foregroundColor: 7, backgroundColor: 0, cursorSize: 25 };
  const colors = term.isTerminal && !Deno.env.get("NO_COLOR"); // https://no-color.org
  /** Write-Host -ForegroundColor/-BackgroundColor: colours other than the host's own, as SGR sequences */
  const painted = (text: string, fg?: number, bg?: number): string => {
    const sgr = [
      ...(fg !== undefined && fg !== rawUI.foregroundColor && CONSOLE_SGR[fg] ? [CONSOLE_SGR[fg]] : []),
      ...(bg !== undefined && bg !== rawUI.backgroundColor && CONSOLE_SGR[bg] ? [CONSOLE_SGR[bg] + 10] : []),
    ];
    return colors && sgr.length && text ? `\x1b[${sgr.join(";")}m${text}\x1b[0m` : text;
  };
  const host: PSHost = {
    rawUI,
    write: (text, fg, bg) => out(painted(text, fg, bg)),
    writeLine: (text, fg, bg) => out(painted(text, fg, bg) + "\n"),
    writeErrorLine: (text) => err(text + "\n"),
    writeWarningLine: (text) => err(`WARNING: ${text}\n`),
    writeVerboseLine: (text) => err(`VERBOSE: ${text}\n`),
    writeDebugLine: (text) => err(`DEBUG: ${text}\n`),
    writeProgress: (_source, record) => screen.progress(record),
    readLine: () => ask(),
    readLineAsSecureString: () => ask(false),
    async prompt(caption, message, fields) {
      // Read-Host "name" arrives as a Prompt with one field: PowerShell's console shows `name: `
      if (caption) await out(caption + "\n");
      if (message) await out(message + "\n");
      const answers: Record<string, PSValue> = {};
      for (const field of fields) {
        await out(`${field.name}: `);
        answers[field.name] = await ask(!/SecureString/.test(field.parameterTypeName));
      }
      return answers;
    },
    async promptForCredential(caption, message, userName) {
      if (caption) await out(caption + "\n");
      if (message) await out(message + "\n");
      let user = userName;
      if (!user) {
        await out("User: ");
        user = await ask();
      }
      await out(`Password for user ${user}: `);
      return { userName: user, password: await ask(false) };
    },
    async promptForChoice(caption, message, choices, defaultChoice) {
      await choiceHeader(out, caption, message);
      const labels = hotkeys(choices);
      const defaults = defaultChoice >= 0 && defaultChoice < choices.length ? [defaultChoice] : [];
      while (true) {
        await out(choiceLine(labels, defaults, false));
        const answer = await ask();
        if (answer.length === 0) {
          if (defaults.length) return defaults[0];
          continue;
        }
        if (answer.trim() === "?") {
          await out(choiceHelp(labels, choices));
          continue;
        }
        const picked = pick(answer.trim(), labels);
        if (picked >= 0) return picked;
      }
    },
    async promptForChoiceMultipleSelection(caption, message, choices, defaultChoices) {
      await choiceHeader(out, caption, message);
      const labels = hotkeys(choices);
      const defaults = [...new Set(defaultChoices.filter((i) => i >= 0 && i < choices.length))];
      await out(choiceLine(labels, defaults, true) + (defaults.length ? "\n" : ""));
      const picked: number[] = [];
      while (true) {
        await out(`Choice[${picked.length}]: `);
        const answer = await ask();
        if (answer.length === 0) return picked.length ? picked : defaults;
        if (answer.trim() === "?") {
          await out(choiceHelp(labels, choices));
          continue;
        }
        const i = pick(answer.trim(), labels);
        if (i >= 0) picked.push(i);
      }
    },
    async readKey(options) {
      const key = await keys.key((options & READ_KEY_NO_ECHO) === 0, (options & READ_KEY_ALLOW_CTRL_C) !== 0);
      if (key === undefined) throw new Error("the input ended");
      if (key === "interrupt") throw new Error("the key read was cancelled");
      return key;
    },
    setShouldExit(code) {
      shouldExit = code;
    },
    async setCursorPosition(position) {
      rawUI.cursorPosition = position;
      if (term.isTerminal) await screen.raw(`\x1b[${position.y + 1};${position.x + 1}H`);
    },
    async setCursorSize(size) {
      rawUI.cursorSize = size;
      if (term.isTerminal) await screen.raw(size === 0 ? "\x1b[?25l" : "\x1b[?25h");
    },
    async setWindowTitle(title) {
      rawUI.windowTitle = title;
      if (term.isTerminal) await screen.raw(`\x1b]0;${printable(title)}\x07`);
    },
    async setBufferContents(r, fill) {
      if (!term.isTerminal) return;
      const { columns, rows } = terminalSize(term);
      if (r.left === -1 && r.top === -1 && r.right === -1 && r.bottom === -1) {
        // the whole buffer: Clear-Host's way of clearing the screen
        await screen.raw(fill.character === " " ? "\x1b[2J\x1b[3J" : "");
        return;
      }
      const cell = printable(fill.character).slice(0, 1) || " ";
      const left = Math.max(0, r.left);
      const right = Math.min(columns - 1, r.right);
      let text = "\x1b7"; // the cursor stays where it was, as filling the buffer does not move it
      for (let y = Math.max(0, r.top); y <= Math.min(rows - 1, r.bottom) && right >= left; y++) {
        text += `\x1b[${y + 1};${left + 1}H${cell.repeat(right - left + 1)}`;
      }
      await screen.raw(text + "\x1b8");
    },
  };
  /** the raw UI as the terminal is now, sent with each command's pipeline (the server answers its getters) */
  const refreshRawUI = async () => {
    const { columns, rows } = terminalSize(term);
    const size = { width: columns, height: rows };
    rawUI.bufferSize =
      rawUI.windowSize =
      rawUI.maxWindowSize =
      rawUI.maxPhysicalWindowSize =
        size;
    const at = await keys.cursor();
    if (at) rawUI.cursorPosition = at;
  };
  const pool = new RunspacePool({ wire: conn.wire, host });
  conn.wire.attach(pool);
  keys.complete = completer(pool);
  try {
    if (term.isTerminal) term.setRaw?.(true);
    // the pool opens meanwhile: a terminal that never answers where its cursor is delays nothing
    await Promise.all([refreshRawUI(), pool.open()]);
    while (shouldExit === undefined) {
      const prompt = await untilLeft(evaluate(pool, "prompt"));
      if (typeof prompt === "string") return prompt;
      prompting = `[${printable(display)}]: ${prompt.join("") || "PS> "}`;
      await out(prompting);
      const got = await untilLeft(keys.line(true, screen.column()));
      prompting = undefined;
      if (typeof got === "string") return got;
      screen.lineEnded();
      if (got.kind === "eof") return 0;
      if (got.kind === "interrupt" || got.text.trim() === "") continue;
      await refreshRawUI();
      const pipeline = pool.createPipeline({
        commands: [{ cmd: got.text, isScript: true }, {
          cmd: "Out-String",
          args: [{ name: "Stream", value: true }, { name: "Width", value: term.columns ?? 120 }],
        }],
        addToHistory: true,
        // this command's host data is the terminal's now, not as it was when the session opened
        useRunspaceHost: false,
        output: (v) => void out(`${text(v)}\n`),
        error: (record) => void err(formatError(record)),
        warning: (m) => void err(`WARNING: ${m}\n`),
        progress: term.isTerminal ? (record) => void screen.progress(record) : undefined,
      });
      keys.running(() => pipeline.stop());
      const result = await untilLeft(pipeline.done);
      if (typeof result === "string") return result;
      keys.running(undefined);
      await screen.endProgress();
      if (result.reason) await err(formatError(result.reason));
    }
    return shouldExit;
  } finally {
    // a cursor the session hid ($host.UI.RawUI.CursorSize = 0) comes back for the shell after it
    if (term.isTerminal && rawUI.cursorSize === 0) await screen.raw("\x1b[?25h");
    if (term.isTerminal) term.setRaw?.(false);
    keys.stop();
    // a detached session's pool stays open on the host: closing it would end the session; after ~. a host that
    // does not answer holds nothing up
    if (!detached) await bounded(pool.close(), CLOSE_AFTER_ESCAPE_MS).catch(() => {});
    await conn.closeInput();
  }
}

/**
 * The error `~.` ends a PowerShell session with, as it ends a terminal session (docs/escapes.md: exit 250).
 *
 * @example
 * ```ts
 * import { endedByEscape } from "./powershell_enter.ts";
 * console.assert(endedByEscape("~").message === "session ended with ~.");
 * ```
 */
export function endedByEscape(escapeChar: string | null): RemoteError {
  return new RemoteError("lost", `session ended with ${showEscape(escapeChar ?? "~")}.`);
}

/** How long `~.` waits for the pool to close before leaving anyway. */
const CLOSE_AFTER_ESCAPE_MS = 5_000;

/** `promise`, or nothing once `ms` passed */
async function bounded(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([promise, new Promise((resolve) => timer = setTimeout(resolve, ms))]);
  clearTimeout(timer);
}

/** The key after the escape character for each action, as echoed. */
const ESCAPE_KEYS: Readonly<Record<EscapeAction, string>> = { terminate: ".", detach: "&", help: "?", list: "#" };

/** How an escape character is shown: control keys as `^X`. */
function showEscape(esc: string): string {
  const code = esc.charCodeAt(0);
  return code < 0x20 ? `^${String.fromCharCode(code + 0x40)}` : code === 0x7f ? "^?" : esc;
}

function terminalSize(term: PowerShellTerminal): { columns: number; rows: number } {
  try {
    const s = term.size?.();
    if (s && s.columns > 0 && s.rows > 0) return s;
  } catch {
    // not a terminal after all
  }
  return { columns: term.columns ?? 120, rows: 50 };
}

/** A choice's hotkey (the letter after `&`, upper-cased) and its label without the `&`, as PowerShell splits them. */
interface Hotkey {
  key: string;
  label: string;
}

function hotkeys(choices: Choice[]): Hotkey[] {
  return choices.map(({ label }) => {
    const at = label.indexOf("&");
    if (at < 0) return { key: "", label };
    return {
      key: at + 1 < label.length ? label.slice(at + 1, at + 2).trim().toUpperCase() : "",
      label: (label.slice(0, at) + label.slice(at + 1)).trim(),
    };
  });
}

async function choiceHeader(out: (s: string) => Promise<void>, caption: string, message: string): Promise<void> {
  if (caption) await out(`\n${caption}\n`);
  if (message) await out(`${message}\n`);
}

/**
 * `[Y] Yes  [N] No  [?] Help (default is "Y"): ` as PowerShell's console writes it; for several answers
 * each choice on its own line and `(default choices are Y,N)`.
 */
function choiceLine(labels: Hotkey[], defaults: number[], multiple: boolean): string {
  const sep = multiple ? "\n" : "";
  let line = labels.map((l) => `[${l.key}] ${l.label}  ${sep}`).join("") + `[?] Help ${sep}`;
  const names = defaults.map((i) => labels[i].key || labels[i].label);
  if (names.length === 1) line += multiple ? `(default is "${names[0]}")` : `(default is "${names[0]}"): `;
  else if (names.length > 1) line += `(default choices are ${names.join(",")})`;
  return line;
}

function choiceHelp(labels: Hotkey[], choices: Choice[]): string {
  return labels.map((l, i) => `${l.key || l.label} - ${choices[i].helpMessage}\n`).join("");
}

/** The choice an answer names: its label, else its hotkey (case-insensitive); -1 for none. */
function pick(answer: string, labels: Hotkey[]): number {
  const a = answer.toUpperCase();
  const byLabel = labels.findIndex((l) => l.label.toUpperCase() === a);
  return byLabel >= 0 ? byLabel : labels.findIndex((l) => l.key !== "" && l.key === a);
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

/**
 * The terminal's output, in order across stdout and stderr, with at most one progress line kept below it: the
 * line is erased before other text and drawn again once that text ends its line.
 */
class Screen {
  #term: PowerShellTerminal;
  #queue: Promise<void> = Promise.resolve();
  /** running activities by id, most recently updated last */
  #activities = new Map<number, ProgressRecord>();
  /** the progress line on the screen now, if any */
  #shown?: string;
  #atLineStart = true;
  /** the column the text written so far ends in (where a line typed next starts) */
  #column = 0;

  constructor(term: PowerShellTerminal) {
    this.#term = term;
  }

  #then(step: () => Promise<void>): Promise<void> {
    this.#queue = this.#queue.then(step).catch(() => {});
    return this.#queue;
  }

  /** Writes text (to stderr when `error`), keeping the progress line below it. */
  write(text: string, error = false): Promise<void> {
    return this.#then(async () => {
      if (text === "") return;
      await this.#erase();
      await (error ? this.#term.writeError(text) : this.#term.write(text));
      this.#atLineStart = text.endsWith("\n");
      this.#column = columnAfter(this.#column, text, terminalSize(this.#term).columns);
      await this.#draw();
    });
  }

  /** The line editor ended a typed line (its echo is not written through here): output starts a line. */
  lineEnded(): void {
    void this.#then(() => {
      this.#atLineStart = true;
      this.#column = 0;
      return Promise.resolve();
    });
  }

  /** The column the cursor is in after the text written (the prompt), for the line editor. */
  column(): number {
    return this.#column;
  }

  /** Control sequences for the terminal itself (cursor, title); the progress line is not redrawn around them. */
  raw(sequence: string): Promise<void> {
    return this.#then(async () => {
      if (sequence) await this.#term.write(sequence);
    });
  }

  /** Shows a progress record (a terminal only); a Completed record takes its activity away. */
  progress(record: ProgressRecord): Promise<void> {
    if (!this.#term.isTerminal) return Promise.resolve();
    return this.#then(async () => {
      this.#activities.delete(record.activityId);
      if (record.recordType !== 1) this.#activities.set(record.activityId, record);
      if (this.#shown !== undefined && this.#shown === this.#line()) return;
      await this.#erase();
      await this.#draw();
    });
  }

  /** The command ended: its progress goes, as PowerShell's host clears it. */
  endProgress(): Promise<void> {
    return this.#then(async () => {
      this.#activities.clear();
      await this.#erase();
    });
  }

  #line(): string | undefined {
    const record = [...this.#activities.values()].at(-1);
    return record && progressLine(record, terminalSize(this.#term).columns);
  }

  async #erase(): Promise<void> {
    if (this.#shown === undefined) return;
    this.#shown = undefined;
    await this.#term.write("\r\x1b[K");
  }

  async #draw(): Promise<void> {
    const line = this.#line();
    if (line === undefined || !this.#atLineStart || this.#shown !== undefined) return;
    this.#shown = line;
    await this.#term.write(line);
  }
}

/**
 * The column the cursor is in after `text` is written from column `from` of a terminal `columns` wide: control
 * sequences take no room, CR and LF go back to the start, and a row that fills up wraps.
 */
export function columnAfter(from: number, text: string, columns: number): number {
  let col = from;
  // deno-lint-ignore no-control-regex -- CSI and OSC sequences, which take no room on the screen
  for (const ch of text.replace(/\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b./g, "")) {
    if (ch === "\r" || ch === "\n") col = 0;
    else if (ch === "\t") col = Math.min(columns, (Math.floor(col / 8) + 1) * 8);
    else {
      const w = cellWidth(ch);
      if (w > 0 && col + w > columns) col = 0;
      col += w;
    }
  }
  return col >= columns ? 0 : col;
}

/** `Activity [=====     ] 50% Status`, cut to the terminal's width. */
export function progressLine(record: ProgressRecord, columns: number): string {
  const width = 30;
  const status = record.currentOperation
    ? `${record.statusDescription} ${record.currentOperation}`
    : record.statusDescription;
  let line = printable(record.activity);
  if (record.percentComplete >= 0) {
    const pct = Math.min(100, record.percentComplete);
    const done = Math.round((pct / 100) * width);
    line += ` [${"=".repeat(done)}${" ".repeat(width - done)}] ${pct}%`;
  }
  if (status) line += ` ${printable(status)}`;
  if (record.secondsRemaining >= 0) line += ` (${record.secondsRemaining} s left)`;
  return [...line].slice(0, Math.max(1, columns - 1)).join("");
}

/** A ReadKey waiting for one key: whether it shows, whether Ctrl-C is a key, and where the key goes. */
interface KeyWait {
  echo: boolean;
  allowCtrlC: boolean;
  resolve(key: HostKeyInfo | "interrupt" | undefined): void;
}

/** What a read of the keyboard gave. */
type Typed = { kind: "line"; text: string } | { kind: "eof" } | { kind: "interrupt" };

/**
 * Keystrokes through the line editor. As a terminal in canonical mode whose echo the remote side does, keys
 * typed while nothing reads (a command runs) are held unechoed until a read takes them: the prompt after the
 * command, or a host call (Read-Host, a secret), which says whether they are shown. Ctrl-C goes at once to
 * the running command and drops what was typed ahead, as the terminal's interrupt character flushes its input.
 */
class KeyReader {
  #editor = new LineEditor({ tabs: "event", history: true, columns: () => terminalSize(this.#term).columns });
  /** typed bytes no read has taken yet */
  #held: Uint8Array = new Uint8Array(0);
  #ended = false;
  #waiting?: { echo: boolean; resolve(t: Typed): void };
  /** a ReadKey waiting for one key */
  #keyWaiting?: KeyWait;
  #work: Promise<void> = Promise.resolve();
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #term: PowerShellTerminal;
  #interrupt?: () => void;
  #cursorReply?: (at: HostCoordinates) => void;
  #noCursorReplies = false;
  #cursorQuery?: Promise<HostCoordinates | undefined>;
  #cursorTimer?: ReturnType<typeof setTimeout>;
  /** Tab: the completed line, or undefined to leave it */
  complete?: (text: string) => Promise<string | undefined>;
  /** an escape typed on the terminal (`~.`, `~&`, `~?`, `~#`), acted on as it arrives */
  onEscape?: (action: EscapeAction) => Promise<void>;
  #scanner?: EscapeScanner;

  constructor(term: PowerShellTerminal, scanner?: EscapeScanner) {
    this.#term = term;
    this.#scanner = scanner;
    this.#reader = term.stdin.getReader();
    void this.#pump();
  }

  /** While a command runs, Ctrl-C calls `stop`; undefined when it ended. */
  running(stop: (() => void) | undefined): void {
    this.#interrupt = stop;
  }

  async #pump(): Promise<void> {
    try {
      while (true) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        const typed = this.#cursorReply ? this.#takeCursorReply(value) : value;
        // escapes act as they are typed, whatever reads the keys (a prompt, a running command, ReadKey)
        const events = this.#scanner?.feed(typed) ?? [{ kind: "send" as const, bytes: typed }];
        for (const event of events) {
          if (event.kind === "escape") {
            await this.#work;
            await this.onEscape?.(event.action).catch(() => {});
            continue;
          }
          let bytes = event.bytes;
          if (!this.#waiting && !this.#keyWaiting?.allowCtrlC && this.#interrupt) {
            const at = bytes.lastIndexOf(3);
            if (at >= 0) {
              this.#held = new Uint8Array(0);
              bytes = bytes.subarray(at + 1);
              this.#interrupt();
            }
          }
          this.#hold(bytes);
          this.#drain();
        }
      }
    } catch {
      // stdin closed under us
    }
    this.#ended = true;
    this.#drain();
  }

  #hold(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const all = new Uint8Array(this.#held.length + bytes.length);
    all.set(this.#held);
    all.set(bytes, this.#held.length);
    this.#held = all;
  }

  /** Feeds held bytes to the editor, one at a time, while a read waits for them. */
  #drain(): void {
    this.#work = this.#work.then(async () => {
      if (this.#keyWaiting && (this.#held.length > 0 || this.#ended)) await this.#takeKey(this.#keyWaiting);
      while (this.#waiting && this.#held.length > 0) {
        const byte = this.#held.subarray(0, 1);
        this.#held = this.#held.subarray(1);
        for (const event of this.#editor.feed(byte)) await this.#event(event);
      }
      if (this.#waiting && this.#ended && this.#held.length === 0) this.#settle({ kind: "eof" });
    }).catch(() => {});
  }

  async #event(event: ReturnType<LineEditor["feed"]>[number]): Promise<void> {
    const waiting = this.#waiting;
    if (!waiting) return;
    // with echo off (a secret) nothing shows but the line's end, so the next output starts on its own line
    const ended = !waiting.echo && this.#term.isTerminal && (event.kind === "line" || event.kind === "interrupt");
    if (ended) await this.#term.write("\r\n");
    if (event.kind === "echo") {
      if (this.#term.isTerminal && waiting.echo) await this.#term.write(new TextDecoder().decode(event.bytes));
    } else if (event.kind === "line") this.#settle({ kind: "line", text: event.text });
    else if (event.kind === "eof") this.#settle({ kind: "eof" });
    else if (event.kind === "interrupt") {
      this.#interrupt?.();
      this.#settle({ kind: "interrupt" });
    } else if (event.kind === "tab" && this.complete && waiting.echo) {
      const done = await this.complete(event.text).catch(() => undefined);
      if (done !== undefined && done !== event.text) {
        await this.#term.write(new TextDecoder().decode(this.#editor.replace(done)));
      }
    }
  }

  #settle(typed: Typed): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve(typed);
  }

  /** One key for ReadKey, from the held bytes: a character, Enter, Backspace, Tab, Escape or an arrow. */
  async #takeKey(waiting: KeyWait): Promise<void> {
    this.#keyWaiting = undefined;
    const held = this.#held;
    if (held.length === 0) return waiting.resolve(undefined);
    let length = 1;
    let key: HostKeyInfo;
    if (held[0] === 0x1b && (held[1] === 0x5b || held[1] === 0x4f)) {
      // an escape sequence is one key: the arrows (VK_LEFT 37 … VK_DOWN 40), the rest without a code
      let end = 2;
      while (end < held.length && !(held[end] >= 0x40 && held[end] <= 0x7e)) end++;
      length = Math.min(end + 1, held.length);
      const arrow = "DACB".indexOf(String.fromCharCode(held[end]));
      key = { virtualKeyCode: arrow >= 0 ? 37 + arrow : 0, character: "\0", controlKeyState: 0, keyDown: true };
    } else {
      const lead = held[0];
      length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
      const ch = new TextDecoder().decode(held.subarray(0, length));
      const upper = ch.toUpperCase();
      const vk = ch === "\r" || ch === "\n"
        ? 13
        : lead === 0x7f
        ? 8
        : /^[A-Z0-9 ]$/.test(upper) || ch === "\t" || ch === "\x1b" // VK_A… and VK_0… are the ASCII codes
        ? upper.charCodeAt(0)
        : 0;
      key = {
        virtualKeyCode: vk,
        character: lead === 0x7f ? "\b" : ch === "\n" ? "\r" : ch,
        controlKeyState: 0,
        keyDown: true,
      };
      if (lead === 3 && !waiting.allowCtrlC) {
        this.#held = held.subarray(1);
        this.#interrupt?.();
        return waiting.resolve("interrupt");
      }
    }
    this.#held = held.subarray(length);
    if (waiting.echo && this.#term.isTerminal && key.character >= " " && key.character !== "\x7f") {
      await this.#term.write(key.character);
    }
    waiting.resolve(key);
  }

  /** The line being typed at the prompt, to show again after an escape's message. */
  typed(): string {
    return this.#editor.text();
  }

  /** The next key (ReadKey): undefined at the end of input, "interrupt" for Ctrl-C unless `allowCtrlC`. */
  key(echo: boolean, allowCtrlC: boolean): Promise<HostKeyInfo | "interrupt" | undefined> {
    return new Promise((resolve) => {
      this.#keyWaiting = { echo, allowCtrlC, resolve };
      this.#drain();
    });
  }

  /** The next typed line, starting at `column` (after the prompt). `echo` false hides what is typed (a password). */
  line(echo = true, column = 0): Promise<Typed> {
    return new Promise((resolve) => {
      this.#editor.startAt(column);
      this.#waiting = { echo, resolve };
      this.#drain();
    });
  }

  /**
   * Where the terminal's cursor is (0-based), asked with the terminal's cursor position report (ECMA-48 DSR 6);
   * undefined when stdin is not a terminal or the terminal does not answer.
   */
  cursor(): Promise<HostCoordinates | undefined> {
    if (!this.#term.isTerminal || this.#noCursorReplies || this.#ended) return Promise.resolve(undefined);
    // one question at a time: a second asker shares the answer
    return this.#cursorQuery ??= new Promise<HostCoordinates | undefined>((resolve) => {
      const done = (at: HostCoordinates | undefined) => {
        clearTimeout(this.#cursorTimer);
        this.#cursorReply = undefined;
        this.#cursorQuery = undefined;
        resolve(at);
      };
      this.#cursorTimer = setTimeout(() => {
        this.#noCursorReplies = true;
        done(undefined);
      }, CURSOR_REPLY_MS);
      this.#cursorReply = done;
      this.#term.write("\x1b[6n").catch(() => {});
    });
  }

  /** Takes a cursor position report (`ESC [ row ; col R`) out of typed bytes. */
  #takeCursorReply(bytes: Uint8Array): Uint8Array {
    const s = String.fromCharCode(...bytes);
    // deno-lint-ignore no-control-regex -- the terminal's reply is an escape sequence
    const m = /\x1b\[(\d+);(\d+)R/.exec(s);
    if (!m) return bytes;
    this.#cursorReply?.({ x: Number(m[2]) - 1, y: Number(m[1]) - 1 });
    const rest = new Uint8Array(bytes.length - m[0].length);
    rest.set(bytes.subarray(0, m.index));
    rest.set(bytes.subarray(m.index + m[0].length), m.index);
    return rest;
  }

  stop(): void {
    clearTimeout(this.#cursorTimer);
    this.#reader.cancel().catch(() => {});
  }
}
