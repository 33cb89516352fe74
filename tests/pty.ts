/**
 * A pseudo-terminal driver for end-to-end tests: runs a program in a real PTY (node-pty), types into it,
 * waits for text on its screen, resizes it, and reports how it ended.
 *
 * Needs `--allow-ffi` (node-pty's addon) besides `--allow-run`.
 *
 * @example Running a shell command in a PTY
 * ```ts
 * import { spawnInPty } from "./pty.ts";
 * await using pty = await spawnInPty("/bin/sh", ["-c", "stty size"], { cols: 100, rows: 30 });
 * await pty.waitFor("30 100", 10_000);
 * console.assert((await pty.exited).code === 0);
 * ```
 *
 * @module
 */
import { spawn } from "@lydell/node-pty";

/** How a program in a PTY ended. */
export interface PtyExit {
  code: number;
  /** the signal number that killed it, if any */
  signal?: number;
}

/** Options of {@linkcode spawnInPty}. */
export interface PtyOptions {
  cols?: number;
  rows?: number;
  /** added to (and overriding) this process's environment; TERM defaults to xterm-256color */
  env?: Record<string, string>;
  cwd?: string;
}

/** A program running in a PTY, as a test sees it. */
export interface PtySession extends AsyncDisposable {
  readonly pid: number;
  /** types `text` (UTF-8) into the terminal */
  write(text: string): void;
  /**
   * Resolves once `pattern` appears in the output after the previous match (so consecutive waits read
   * the screen forward), with the matched text; rejects after `timeoutMs` (default 10 s) showing the tail
   * of the screen, or when the program exits without printing it.
   */
  waitFor(pattern: string | RegExp, timeoutMs?: number): Promise<string>;
  /** everything printed so far, as text */
  output(): string;
  /** changes the window size; the program gets SIGWINCH */
  resize(cols: number, rows: number): void;
  /** settles when the program has exited and its output is read */
  readonly exited: Promise<PtyExit>;
  /** sends `signal` (default SIGHUP, as closing a terminal does) */
  kill(signal?: string): void;
}

const TAIL_CHARS = 600;

/**
 * Starts `cmd args` in a new PTY.
 *
 * @example Typing into a shell
 * ```ts
 * import { spawnInPty } from "./pty.ts";
 * await using pty = await spawnInPty("/bin/sh", [], {});
 * pty.write("echo hi; exit\r");
 * await pty.waitFor(/^hi\r$/m);
 * ```
 */
export function spawnInPty(cmd: string, args: string[], opts: PtyOptions = {}): Promise<PtySession> {
  const env: Record<string, string> = { ...Deno.env.toObject(), TERM: "xterm-256color", ...opts.env };
  const term = spawn(cmd, args, {
    name: env.TERM,
    cols: opts.cols ?? 80,
    rows: opts.rows ?? 24,
    cwd: opts.cwd ?? Deno.cwd(),
    env,
    // bytes, not strings: a UTF-8 character split across reads must not turn into U+FFFD
    encoding: null,
  });
  const decoder = new TextDecoder();
  let text = "";
  let cursor = 0;
  let done = false;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of [...listeners]) listener();
  };
  term.onData((data: unknown) => {
    text += decoder.decode(data as Uint8Array, { stream: true });
    notify();
  });
  const exited = new Promise<PtyExit>((resolve) => {
    term.onExit(({ exitCode, signal }) => {
      text += decoder.decode();
      done = true;
      notify();
      resolve(signal ? { code: exitCode, signal } : { code: exitCode });
    });
  });

  const tail = () => JSON.stringify(text.slice(-TAIL_CHARS));
  const describe = (pattern: string | RegExp) => typeof pattern === "string" ? JSON.stringify(pattern) : `${pattern}`;
  const find = (pattern: string | RegExp): { end: number; match: string } | undefined => {
    if (typeof pattern === "string") {
      const at = text.indexOf(pattern, cursor);
      return at < 0 ? undefined : { end: at + pattern.length, match: pattern };
    }
    const flags = pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g";
    const re = new RegExp(pattern.source, flags);
    re.lastIndex = cursor;
    const m = re.exec(text);
    return m ? { end: m.index + m[0].length, match: m[0] } : undefined;
  };

  const session: PtySession = {
    pid: term.pid,
    write(input: string) {
      term.write(input);
    },
    waitFor(pattern, timeoutMs = 10_000) {
      return new Promise<string>((resolve, reject) => {
        const check = () => {
          const found = find(pattern);
          if (found) {
            cursor = found.end;
            finish();
            resolve(found.match);
          } else if (done) {
            finish();
            reject(new Error(`the program exited before printing ${describe(pattern)}; screen tail: ${tail()}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`no ${describe(pattern)} within ${timeoutMs} ms; screen tail: ${tail()}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    output: () => text,
    resize(cols, rows) {
      term.resize(cols, rows);
    },
    exited,
    kill(signal = "SIGHUP") {
      if (!done) term.kill(signal);
    },
    async [Symbol.asyncDispose]() {
      if (done) return;
      signalGroup(term.pid, "SIGHUP");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), 3000));
      if (await Promise.race([exited, late]) === "late") {
        signalGroup(term.pid, "SIGKILL");
        await exited;
      }
      clearTimeout(timer);
    },
  };
  return Promise.resolve(session);
}

/** Signals the PTY's child and its process group (the child leads a new session), so no helper survives a test. */
function signalGroup(pid: number, signal: Deno.Signal) {
  for (const target of [-pid, pid]) {
    try {
      Deno.kill(target, signal);
    } catch {
      // already gone
    }
  }
}
