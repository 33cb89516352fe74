/**
 * The one interactive bridge every transport's channel goes through: the user's terminal (raw mode,
 * window-size changes, OpenSSH-style `~` escapes) or plain pipes, joined to a {@linkcode Channel}.
 *
 * @example Bridging an open channel
 * ```ts ignore
 * import { ptyRequestFromEnvironment, runInteractive } from "./terminal_bridge.ts";
 * await using channel = await transport.open(ctx, { kind: "shell", pty: ptyRequestFromEnvironment() });
 * const status = await runInteractive(channel, { canDetach: false });
 * ```
 *
 * @module
 */
import type { Channel, ExitStatus, PtyRequest, WindowSize } from "../plugins/mod.ts";
import { RemoteError, UsageError } from "./errors.ts";
import { copyToOutput, syncWriteSafe } from "./output.ts";

/** The keyboard side: `Deno.stdin` or a stand-in. */
export interface BridgeInput {
  readonly readable: ReadableStream<Uint8Array>;
  isTerminal(): boolean;
  setRaw(mode: boolean): void;
}

/** An output side: `Deno.stdout`, `Deno.stderr` or a stand-in. */
export interface BridgeOutput {
  write(p: Uint8Array): Promise<number>;
  writeSync?(p: Uint8Array): number;
}

/** Options of {@linkcode runInteractive}. */
export interface BridgeOptions {
  /** default `Deno.stdin` */
  stdin?: BridgeInput;
  /** default `Deno.stdout` */
  stdout?: BridgeOutput;
  /** default `Deno.stderr`; also where escape messages go */
  stderr?: BridgeOutput;
  /** the escape character, `~` by default; `null` turns escapes off, as `ssh -e none` */
  escapeChar?: string | null;
  /** the text `~#` prints (the sessions known) */
  onEscapeList?: () => Promise<string>;
  /** whether the transport can leave the session running: `~&` then calls `channel.detach()` */
  canDetach: boolean;
  /**
   * the transport keeps sessions made with `remote new`, but this one was not made so: `~&` says that instead of
   * "this transport cannot keep a session running"
   */
  plainSession?: boolean;
  /** aborting ends the session: the channel is disposed and the status is `lost` with the reason */
  signal?: AbortSignal;
}

/** What a recognized escape asks the bridge to do. */
export type EscapeAction =
  /** `~.`: end the session */
  | "terminate"
  /** `~&`: disconnect, leaving the session running */
  | "detach"
  /** `~?`: print the escapes */
  | "help"
  /** `~#`: print the sessions */
  | "list";

/** One step of the scanner's output, in the order typed. */
export type EscapeEvent =
  | { kind: "send"; bytes: Uint8Array }
  | { kind: "escape"; action: EscapeAction };

const CR = 0x0d;
const LF = 0x0a;
const ACTIONS: Readonly<Record<string, EscapeAction>> = { ".": "terminate", "&": "detach", "?": "help", "#": "list" };

/**
 * Finds OpenSSH-style escapes in typed bytes. As in ssh, the escape character counts only as the first
 * byte of the input or right after CR or LF; doubled, it sends itself once; followed by anything else it
 * sends both bytes. Pure (bytes in, events out), so it tests without a terminal.
 *
 * @example Terminating after a command line
 * ```ts
 * import { EscapeScanner } from "./terminal_bridge.ts";
 * const events = new EscapeScanner("~").feed(new TextEncoder().encode("ls\r~."));
 * console.assert(events.length === 2 && events[1].kind === "escape");
 * ```
 */
export class EscapeScanner {
  readonly #escape: number | undefined;
  #atLineStart = true;
  #pending = false;

  /**
   * @param escapeChar one ASCII character, or `null` for no escapes
   * @throws {UsageError} when `escapeChar` is not one ASCII character
   */
  constructor(escapeChar: string | null = "~") {
    if (escapeChar === null) return;
    const code = escapeChar.charCodeAt(0);
    if (escapeChar.length !== 1 || code > 0x7f) {
      throw new UsageError(`bad escape character ${JSON.stringify(escapeChar)}`, {
        hint: "use one ASCII character, ^X for a control key, or none",
      });
    }
    this.#escape = code;
  }

  /** Scans one chunk of typed bytes; an escape character at the end of a chunk waits for the next one. */
  feed(chunk: Uint8Array): EscapeEvent[] {
    const esc = this.#escape;
    if (chunk.length === 0) return [];
    if (esc === undefined || (!this.#pending && !chunk.includes(esc))) {
      const last = chunk[chunk.length - 1];
      this.#atLineStart = last === CR || last === LF;
      return [{ kind: "send", bytes: chunk }];
    }
    const events: EscapeEvent[] = [];
    let out: number[] = [];
    const flush = () => {
      if (out.length) events.push({ kind: "send", bytes: Uint8Array.from(out) });
      out = [];
    };
    for (const byte of chunk) {
      if (this.#pending) {
        this.#pending = false;
        const action = ACTIONS[String.fromCharCode(byte)];
        if (action) {
          flush();
          events.push({ kind: "escape", action });
          // like ssh, a local command leaves the line start as it was: another escape may follow at once
          continue;
        }
        if (byte !== esc) out.push(esc);
      } else if (this.#atLineStart && byte === esc) {
        this.#pending = true;
        continue;
      }
      out.push(byte);
      this.#atLineStart = byte === CR || byte === LF;
    }
    flush();
    return events;
  }
}

/**
 * Parses an escape-character setting as ssh's `-e` does: one character, `^X` for a control key, or `none`.
 *
 * @example
 * ```ts
 * import { parseEscapeChar } from "./terminal_bridge.ts";
 * console.assert(parseEscapeChar("^]") === "\x1d" && parseEscapeChar("none") === null);
 * ```
 * @throws {UsageError} for anything else
 */
export function parseEscapeChar(text: string): string | null {
  if (text === "none") return null;
  if (text.length === 2 && text[0] === "^") {
    const code = text.toUpperCase().charCodeAt(1);
    if (code >= 0x40 && code <= 0x5f) return String.fromCharCode(code & 0x1f);
  }
  if (text.length === 1 && text.charCodeAt(0) <= 0x7f) return text;
  throw new UsageError(`bad escape character ${JSON.stringify(text)}`, {
    hint: "use one ASCII character, ^X for a control key, or none",
  });
}

/** How an escape character is shown in messages: control keys as `^X`. */
function showEscape(esc: string): string {
  const code = esc.charCodeAt(0);
  return code < 0x20 ? `^${String.fromCharCode(code + 0x40)}` : code === 0x7f ? "^?" : esc;
}

/**
 * The text `~?` prints, with CRLF line ends (the terminal is raw while it shows): only the escapes that do
 * something in this session, so `~&` is listed only where it can leave the session running.
 *
 * @example
 * ```ts
 * import { escapeHelp } from "./terminal_bridge.ts";
 * console.assert(escapeHelp("~", false).includes("~.") && !escapeHelp("~", false).includes("~&"));
 * ```
 */
export function escapeHelp(escapeChar: string, canDetach: boolean): string {
  const e = showEscape(escapeChar);
  return [
    "supported escape sequences:",
    ` ${e}.   end the session`,
    ...(canDetach ? [` ${e}&   disconnect, leaving the session running (reconnect with: remote connect)`] : []),
    ` ${e}#   list sessions`,
    ` ${e}?   this message`,
    ` ${e}${e}   send the escape character by typing it twice`,
    "(escapes are only recognized right after a newline)",
    "",
  ].join("\r\n");
}

/**
 * The size of the user's terminal, or `undefined` when there is none.
 *
 * @example
 * ```ts
 * import { currentWindowSize } from "./terminal_bridge.ts";
 * const size = currentWindowSize();
 * console.assert(size === undefined || size.columns > 0);
 * ```
 */
export function currentWindowSize(): WindowSize | undefined {
  try {
    const { columns, rows } = Deno.consoleSize();
    return columns > 0 && rows > 0 ? { columns, rows } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The PTY to ask for, as ssh decides it: one when stdin is a terminal, sized like it, with the user's
 * TERM (xterm-256color when unset); `undefined` otherwise.
 *
 * @example
 * ```ts
 * import { ptyRequestFromEnvironment } from "./terminal_bridge.ts";
 * const pty = ptyRequestFromEnvironment();
 * console.assert(pty === undefined || pty.term.length > 0);
 * ```
 */
export function ptyRequestFromEnvironment(): PtyRequest | undefined {
  if (!Deno.stdin.isTerminal()) return undefined;
  let term: string | undefined;
  try {
    term = Deno.env.get("TERM");
  } catch {
    // no --allow-env: fall back to the default
  }
  const size = currentWindowSize() ?? { columns: 80, rows: 24 };
  return { term: term || "xterm-256color", ...size };
}

/** Signals that end the session; the status reports them as a shell would (128 + n). */
const ENDING_SIGNALS: ReadonlyArray<[Deno.Signal, string, number]> = [
  ["SIGTERM", "TERM", 15],
  ["SIGHUP", "HUP", 1],
];

/**
 * Joins the user's terminal to `channel` until the remote process ends, and returns its status.
 *
 * With a terminal on stdin: raw mode (restored on every way out), window-size changes passed on with
 * `channel.resize`, and the `~` escapes (see docs/escapes.md). `~.` disposes the channel and returns
 * `lost` with a `RemoteError("lost")`. SIGTERM or SIGHUP dispose the channel and return
 * `signaled` with code 128 + n.
 *
 * Without a terminal on stdin: stream mode, no escapes; stdin is copied to the channel and closed at its
 * end, so `printf 'ls\n' | remote enter host` works. SIGINT, too, then ends the session (as 130).
 *
 * Output is fully written before this returns. A read of a pipe cannot be cancelled in Deno, so the caller
 * should exit the process once it has the status.
 *
 * @example
 * ```ts ignore
 * import { runInteractive } from "./terminal_bridge.ts";
 * const status = await runInteractive(channel, { canDetach: false });
 * ```
 */
export async function runInteractive(channel: Channel, options: BridgeOptions): Promise<ExitStatus> {
  const stdin = options.stdin ?? Deno.stdin;
  const stdout = options.stdout ?? Deno.stdout;
  const stderr = options.stderr ?? Deno.stderr;
  const escapeChar = options.escapeChar === undefined ? "~" : options.escapeChar;
  const tty = stdin.isTerminal();
  const scanner = tty ? new EscapeScanner(escapeChar) : undefined;

  const stop = Promise.withResolvers<ExitStatus>();
  const cleanups: Array<() => void> = [];
  const restore = () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        cleanup();
      } catch {
        // the terminal or listener is already gone
      }
    }
  };

  try {
    if (tty) {
      stdin.setRaw(true);
      if (stdin === Deno.stdin) rawOutput();
      // Deno.exit() elsewhere skips our finally; the unload event still runs
      const onUnload = () => stdin.setRaw(false);
      globalThis.addEventListener("unload", onUnload);
      cleanups.push(() => stdin.setRaw(false), () => globalThis.removeEventListener("unload", onUnload));
      if (channel.resize) {
        const resize = channel.resize.bind(channel);
        listen("SIGWINCH", () => {
          const size = currentWindowSize();
          if (size) Promise.resolve(resize(size)).catch(() => {});
        }, cleanups);
      }
    }
    const ending = tty ? ENDING_SIGNALS : [...ENDING_SIGNALS, ["SIGINT", "INT", 2] as [Deno.Signal, string, number]];
    for (const [sig, name, n] of ending) {
      listen(sig, () => stop.resolve({ kind: "signaled", signal: name, code: 128 + n }), cleanups);
    }
    if (options.signal) {
      const signal = options.signal;
      const onAbort = () => stop.resolve({ kind: "lost", error: asError(signal.reason) });
      if (signal.aborted) onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      cleanups.push(() => signal.removeEventListener("abort", onAbort));
    }

    // the user's own stdout and stderr: written synchronously to a terminal or file (see syncWriteSafe)
    const outPump = pump(channel.stdout, stdout, options.stdout === undefined && syncWriteSafe("stdout"));
    const errPump = pump(channel.stderr, stderr, options.stderr === undefined && syncWriteSafe("stderr"));
    const reader = stdin.readable.getReader();
    // not awaited: it may sit in a read of a pipe that never ends (see above)
    pumpInput(reader, channel, {
      scanner,
      escapeChar: escapeChar ?? "~",
      stderr,
      canDetach: options.canDetach && channel.detach !== undefined,
      plainSession: options.plainSession ?? false,
      onEscapeList: options.onEscapeList,
      stop: (status) => stop.resolve(status),
    }).catch(() => {});

    const exit = channel.exit.catch((e): ExitStatus => ({ kind: "lost", error: asError(e) }));
    const winner = await Promise.race([
      exit.then((status) => ({ status, ended: true })),
      stop.promise.then((status) => ({ status, ended: false })),
    ]);
    if (!winner.ended) await (async () => await channel[Symbol.asyncDispose]())().catch(() => {});
    // a terminal read is cancellable; a pipe read finishes when the pipe does (see above)
    reader.cancel().catch(() => {});
    await drain([outPump, errPump]);
    return winner.status;
  } finally {
    restore();
  }
}

/**
 * Turns output processing off, as ssh's raw mode does: Deno's raw mode keeps OPOST, so the terminal
 * would turn the far side's bare LF (a full-screen program's "cursor down") into CR LF. Deno has no call
 * for it, so stty does it; `setRaw(false)` restores the saved modes, OPOST included.
 */
function rawOutput(): void {
  try {
    new Deno.Command("stty", { args: ["-opost"], stdin: "inherit", stdout: "null", stderr: "null" }).outputSync();
  } catch {
    // no stty (or no --allow-run): output keeps CR LF translation, which costs only full-screen programs
  }
}

/** Listens for `sig` until cleanup; signals that cannot be listened for here are skipped. */
function listen(sig: Deno.Signal, handler: () => void, cleanups: Array<() => void>): void {
  try {
    Deno.addSignalListener(sig, handler);
    cleanups.push(() => Deno.removeSignalListener(sig, handler));
  } catch {
    // not on this platform, or no terminal for SIGWINCH
  }
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

async function writeAll(out: BridgeOutput, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await out.write(bytes.subarray(offset));
}

interface Pump {
  done: Promise<void>;
  cancel(): void;
}

function pump(source: ReadableStream<Uint8Array>, out: BridgeOutput, sync: boolean): Pump {
  const stop = new AbortController();
  const done = copyToOutput(source, out, { sync, signal: stop.signal }).catch(() => {
    // our stdout is gone (EPIPE) or the channel broke: the copy has cancelled the channel's stream, so the far
    // side is not held up
  });
  return { done, cancel: () => stop.abort() };
}

/** How long output may keep flowing after the channel has ended, for a transport that never closes it. */
const DRAIN_LIMIT_MS = 5_000;

async function drain(pumps: Pump[]): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), DRAIN_LIMIT_MS));
  const all = Promise.all(pumps.map((p) => p.done));
  if (await Promise.race([all, limit]) === "late") {
    for (const p of pumps) p.cancel();
    await all;
  }
  clearTimeout(timer);
}

interface InputContext {
  scanner?: EscapeScanner;
  escapeChar: string;
  stderr: BridgeOutput;
  canDetach: boolean;
  plainSession: boolean;
  onEscapeList?: () => Promise<string>;
  stop(status: ExitStatus): void;
}

const encoder = new TextEncoder();

async function pumpInput(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  channel: Channel,
  ctx: InputContext,
): Promise<void> {
  const writer = channel.stdin.getWriter();
  const say = (text: string) => writeAll(ctx.stderr, encoder.encode(text));
  const e = showEscape(ctx.escapeChar);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      const events: EscapeEvent[] = ctx.scanner ? ctx.scanner.feed(value) : [{ kind: "send", bytes: value }];
      for (const event of events) {
        if (event.kind === "send") {
          await writer.write(event.bytes);
          continue;
        }
        switch (event.action) {
          case "terminate":
            await say(`${e}.\r\n`);
            ctx.stop({ kind: "lost", error: new RemoteError("lost", `session ended with ${e}.`) });
            return;
          case "detach":
            if (ctx.canDetach) {
              await say(`${e}&\r\n`);
              // the transport ends the channel as `detached`
              await channel.detach?.();
              return;
            }
            await say(
              ctx.plainSession
                ? `${e}&\r\nremote: this session was not created with \`remote new\`, so it cannot be left running; ${e}. ends it\r\n`
                : `${e}&\r\nremote: this transport cannot keep a session running; ${e}. ends it\r\n`,
            );
            break;
          case "help":
            await say(`${e}?\r\n${escapeHelp(ctx.escapeChar, ctx.canDetach)}`);
            break;
          case "list": {
            let text: string;
            try {
              text = ctx.onEscapeList ? await ctx.onEscapeList() : "no sessions to list";
            } catch (err) {
              text = `remote: cannot list sessions: ${asError(err).message}`;
            }
            await say(`${e}#\r\n${text.replace(/\r?\n/g, "\r\n").replace(/(\r\n)?$/, "\r\n")}`);
            break;
          }
        }
      }
    }
    // end of our input: the far side sees end of file, as with ssh
    await writer.close();
  } finally {
    writer.releaseLock();
  }
}
