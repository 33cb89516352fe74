/**
 * The conformance suite every transport runs against itself: byte streams, exit codes, resize,
 * signals, cleanup and parameter errors, each case only where the manifest advertises what it needs.
 * Register it as Deno tests with {@linkcode conformance}, or run it with `deno task conformance`.
 *
 * Which cases apply is decided from the manifest alone:
 * - `exec` cases (echo, 1 MiB of binary both ways, large output, stdout/stderr apart, exit codes)
 *   need `exec`: only a command without a terminal has a byte-exact stdin/stdout, a separate stderr
 *   and an exit status of its own. Through a PTY the line discipline rewrites bytes (`\n` becomes
 *   `\r\n`, input is echoed, ^C ^D ^Z ^U are control keys) and stderr is merged into stdout, so
 *   binary safety and stream separation are not meaningful there.
 * - shell cases (echo round trip, large output, resize, `exit` ends the session) need `shell` and
 *   `pty`, the interactive session `remote enter` opens; a shell-only transport (ssm) runs these.
 * - resize needs `pty-resize`, signals need `signals`; closing without leaks and malformed
 *   parameters apply to every transport, through `exec` when it has it and a PTY shell otherwise.
 *
 * @module
 */
import { RemoteError } from "./errors.ts";
import type { Capability, Channel, ExitStatus, OpenContext, OpenRequest, Target, Transport } from "./types.ts";

/** Shell recipes for the far side's OS; every transport's host speaks a different shell. */
export interface ConformanceCommands {
  /** copies stdin to stdout unchanged until EOF (`cat`) */
  echoStdin: string;
  /** writes `text` (plain ASCII) to stderr only */
  writeStderr(text: string): string;
  /** exits with `code` */
  exitWith(code: number): string;
  /** sleeps `seconds` */
  sleep(seconds: number): string;
  /** writes exactly `bytes` bytes to stdout */
  bigOutput(bytes: number): string;
  /** in a PTY: reads one line, then prints the terminal size as `<rows> <columns>` */
  printSizeAfterLine: string;
  /** typed at an interactive shell: prints the terminal size as `<rows> <columns>`; default `stty size` */
  printSize?: string;
  /** typed at an interactive shell: prints at least `bytes` bytes; default {@linkcode bigOutput} */
  shellOutput?(bytes: number): string;
}

/** Recipes for a POSIX shell. */
export const POSIX_COMMANDS: ConformanceCommands = {
  echoStdin: "cat",
  writeStderr: (text) => `printf '%s' '${text}' >&2`,
  exitWith: (code) => `exit ${code}`,
  sleep: (seconds) => `sleep ${seconds}`,
  bigOutput: (bytes) => `head -c ${bytes} /dev/zero`,
  printSizeAfterLine: "read line; stty size",
  printSize: "stty size",
};

/**
 * Recipes for cmd.exe on Windows (a WinRS shell). Binary-exact stdin and stdout need .NET streams:
 * `type con` stops at ^Z, and `echo` cannot write bytes; `timeout` refuses redirected stdin, so the
 * classic `ping -n` sleeps instead. cmd's `echo` ends its line with CRLF.
 */
export const WINDOWS_CMD_COMMANDS: ConformanceCommands = {
  echoStdin: 'powershell.exe -NoProfile -NonInteractive -Command "' +
    '$i = [Console]::OpenStandardInput(); $o = [Console]::OpenStandardOutput(); $i.CopyTo($o); $o.Flush()"',
  writeStderr: (text) => `>&2 echo ${text}`,
  exitWith: (code) => `exit /b ${code}`,
  sleep: (seconds) => `ping -n ${seconds + 1} 127.0.0.1 >nul`,
  bigOutput: (bytes) =>
    `powershell.exe -NoProfile -NonInteractive -Command "[Console]::OpenStandardOutput().Write([byte[]]::new(${bytes}), 0, ${bytes})"`,
  printSizeAfterLine: 'set /p line= & powershell.exe -NoProfile -Command "[Console]::WindowHeight, ' +
    "[Console]::WindowWidth -join ' '\"",
};

/** One way of calling `open` that the transport must refuse with a clear `RemoteError`. */
export interface MalformedCase {
  /** what is wrong, for the test name */
  what: string;
  /** replaces the bound parameters */
  parameters?: Record<string, unknown>;
  /** replaces fields of the target */
  target?: Partial<Target>;
}

/** What the suite needs from the transport under test. */
export interface ConformanceOptions {
  /** the transport, or how to load it (e.g. a `TransportEntry`'s `load`) */
  transport: Transport | (() => Promise<Transport>);
  /** a context for one session against a working target; `signal` bounds the case */
  context(signal: AbortSignal): OpenContext;
  /** defaults to {@linkcode POSIX_COMMANDS} */
  commands?: ConformanceCommands;
  /**
   * bad parameters or targets that must be refused; an empty list claims the transport has no
   * parameters to get wrong, which the suite checks against the manifest
   */
  malformed: readonly MalformedCase[];
  /** checks on the far side that nothing of the last session is left (processes, sockets) */
  assertNoLeaks?(): void | Promise<void>;
  /** bytes for the large-output case; default 20 MiB */
  largeOutputBytes?: number;
  /** bytes for the large-output case through a PTY shell; default 1 MiB */
  shellOutputBytes?: number;
  /** the bound of one case; default 60 s */
  timeoutMs?: number;
  /**
   * cases (by name) the peer under test cannot pass although the manifest advertises what they need,
   * each with the peer's reason (e.g. OpenSSH refuses signal requests for a root login); they are
   * left out, so keep this to limits of a test peer that another peer's run covers
   */
  peerLimits?: Readonly<Record<string, string>>;
}

/** One case of the suite. */
export interface ConformanceCase {
  name: string;
  /** capabilities the manifest must advertise for the case to apply */
  needs: readonly Capability[];
  run(): Promise<void>;
}

class ConformanceFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConformanceFailure";
  }
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new ConformanceFailure(message);
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of stream) parts.push(chunk), n += chunk.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}

async function count(stream: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const chunk of stream) n += chunk.length;
  return n;
}

async function writeAndClose(channel: Channel, data: Uint8Array): Promise<void> {
  const w = channel.stdin.getWriter();
  for (let i = 0; i < data.length; i += 16 * 1024) await w.write(data.slice(i, i + 16 * 1024));
  await w.close();
}

function describe(status: ExitStatus): string {
  switch (status.kind) {
    case "exited":
      return `exit code ${status.code}`;
    case "signaled":
      return `signal ${status.signal}`;
    case "detached":
      return "detached";
    case "lost":
      return `lost: ${status.error.message}`;
  }
}

/** Two words that no shell prints together unless it ran `echo` on them (see {@linkcode Shell.run}). */
function marker(): string {
  const id = crypto.randomUUID().slice(0, 8);
  return `conformance-${id}  done-${id}`;
}

/**
 * Drives an interactive shell in a PTY: types lines, reads stdout as it comes. Prompts, echo and
 * escape sequences differ between shells, so it only ever waits for text the shell's own output
 * holds and the echoed input does not: `echo a  b` (two spaces) prints `a b`.
 */
class Shell {
  received = 0;
  readonly drained: Promise<void>;
  #text = "";
  #decoder = new TextDecoder();
  #wake: (() => void) | undefined;
  #ended = false;
  #writer: WritableStreamDefaultWriter<Uint8Array>;

  constructor(readonly channel: Channel) {
    this.#writer = channel.stdin.getWriter();
    void count(channel.stderr).catch(() => {});
    this.drained = (async () => {
      try {
        for await (const chunk of channel.stdout) {
          this.received += chunk.length;
          // only the tail is searched; a megabyte of output need not be kept
          this.#text = (this.#text + this.#decoder.decode(chunk, { stream: true })).slice(-4096);
          this.#wake?.();
        }
      } catch {
        /* the channel was closed under us; waiters say what was missing */
      } finally {
        this.#ended = true;
        this.#wake?.();
      }
    })();
  }

  /** types `line` and Enter, as a person at a terminal does */
  async type(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(`${line}\r`));
  }

  /** runs `echo <text>` and waits for the shell to print it, with runs of spaces made one */
  async run(echo: string): Promise<void> {
    await this.type(echo);
    await this.waitFor(echo.replace(/^echo /, "").replace(/ +/g, " "));
  }

  async waitFor(text: string): Promise<void> {
    await this.#until(() => {
      const at = this.#text.indexOf(text);
      if (at < 0) return false;
      this.#text = this.#text.slice(at + text.length);
      return true;
    }, () => `no ${JSON.stringify(text)} in the shell's output; its tail: ${JSON.stringify(this.#text.slice(-200))}`);
  }

  /** like {@linkcode waitFor}, but gives up after `ms` and says whether `text` came */
  async sawWithin(text: string, ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
    try {
      return await Promise.race([this.waitFor(text).then(() => true, () => false), late]);
    } finally {
      clearTimeout(timer);
      this.#wake?.();
    }
  }

  async waitForBytes(n: number): Promise<void> {
    await this.#until(() => this.received >= n, () => `the shell's output ended after ${this.received} of ${n} bytes`);
  }

  async #until(done: () => boolean, why: () => string): Promise<void> {
    while (!done()) {
      check(!this.#ended, why());
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  /** ends the shell with `exit`, as a user does */
  async close(): Promise<void> {
    await this.type("exit");
    await this.drained;
    this.#writer.releaseLock();
  }
}

/** A process as /proc shows it: parent, session, and whether it still runs (not a zombie). */
interface ProcessInfo {
  ppid: number;
  sid: number;
  alive: boolean;
  /** when it started (clock ticks after boot): a reused process ID is not the process seen before */
  start: string;
}

/** Every process on the machine, from /proc (Linux), or undefined elsewhere. */
async function processTable(): Promise<Map<number, ProcessInfo> | undefined> {
  if (Deno.build.os !== "linux") return undefined;
  const table = new Map<number, ProcessInfo>();
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      // the command name may hold spaces and parentheses: the fields resume after the last ")"
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // a zombie holds nothing but its exit status
      table.set(Number(e.name), {
        ppid: Number(fields[1]),
        sid: Number(fields[3]),
        alive: fields[0] !== "Z",
        start: fields[19],
      });
    } catch { /* it just ended */ }
  }
  return table;
}

/** Live process IDs descending from this process (the far side's, when its server runs here). */
function descendants(table: Map<number, ProcessInfo>): Set<number> {
  const out = new Set<number>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, p] of table) {
      if (!out.has(pid) && (p.ppid === Deno.pid || out.has(p.ppid))) out.add(pid), grew = true;
    }
  }
  for (const pid of out) if (!table.get(pid)!.alive) out.delete(pid);
  return out;
}

async function socketCount(): Promise<number | undefined> {
  if (Deno.build.os !== "linux") return undefined;
  let n = 0;
  for await (const e of Deno.readDir("/proc/self/fd")) {
    try {
      if ((await Deno.readLink(`/proc/self/fd/${e.name}`)).startsWith("socket:")) n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

/**
 * The cases that apply to the transport's manifest, ready to run.
 *
 * @example Running them by hand
 * ```ts ignore
 * for (const c of await conformanceCases(options)) await c.run();
 * ```
 */
export async function conformanceCases(options: ConformanceOptions): Promise<ConformanceCase[]> {
  const transport = typeof options.transport === "function" ? await options.transport() : options.transport;
  return buildCases(transport, options);
}

function buildCases(transport: Transport, options: ConformanceOptions): ConformanceCase[] {
  const caps = transport.manifest.capabilities;
  const cmd = options.commands ?? POSIX_COMMANDS;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const big = options.largeOutputBytes ?? 20 * 1024 * 1024;
  const shellBig = options.shellOutputBytes ?? 1024 * 1024;
  const pty = { term: "xterm", columns: 80, rows: 24 };
  // what the transport-neutral cases (close, malformed) open: a command where possible, else a PTY shell
  const anyRequest: OpenRequest = caps.includes("exec")
    ? { kind: "exec", command: cmd.sleep(60) }
    : { kind: "shell", pty };

  /** Runs `body` with an open exec channel, bounded by the case's deadline; always disposes. */
  const withChannel = async (
    request: OpenRequest,
    body: (channel: Channel) => Promise<void>,
  ): Promise<void> => {
    const signal = AbortSignal.timeout(timeoutMs);
    const ctx = options.context(signal);
    const channel = await transport.open(ctx, request);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        body(channel),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new ConformanceFailure(`no result within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      await channel[Symbol.asyncDispose]();
    }
  };
  const exec = (command: string): OpenRequest => ({ kind: "exec", command });
  const expectExit = async (channel: Channel, code: number) => {
    const status = await channel.exit;
    check(status.kind === "exited" && status.code === code, `expected exit code ${code}, got ${describe(status)}`);
  };

  const cases: ConformanceCase[] = [
    {
      name: "echo round trip",
      needs: ["exec"],
      run: () =>
        withChannel(exec(cmd.echoStdin), async (ch) => {
          const [out] = await Promise.all([
            collect(ch.stdout),
            collect(ch.stderr),
            writeAndClose(ch, new TextEncoder().encode("hello, remote\n")),
          ]);
          check(new TextDecoder().decode(out) === "hello, remote\n", `echo gave ${JSON.stringify(String(out))}`);
          await expectExit(ch, 0);
        }),
    },
    {
      name: "1 MiB of binary data both ways",
      needs: ["exec"],
      run: () =>
        withChannel(exec(cmd.echoStdin), async (ch) => {
          const data = new Uint8Array(1024 * 1024);
          for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
          const [out] = await Promise.all([collect(ch.stdout), collect(ch.stderr), writeAndClose(ch, data)]);
          check(out.length === data.length, `sent ${data.length} bytes, got ${out.length} back`);
          check(await sha256(out) === await sha256(data), "the bytes that came back differ from those sent");
          await expectExit(ch, 0);
        }),
    },
    {
      name: `large output (${big} bytes)`,
      needs: ["exec"],
      run: () =>
        withChannel(exec(cmd.bigOutput(big)), async (ch) => {
          const [n] = await Promise.all([count(ch.stdout), count(ch.stderr), ch.stdin.close()]);
          check(n === big, `expected ${big} bytes of output, got ${n}`);
          await expectExit(ch, 0);
        }),
    },
    {
      name: "stdout and stderr stay apart",
      needs: ["exec"],
      run: () =>
        withChannel(exec(cmd.writeStderr("to-stderr")), async (ch) => {
          const [out, err] = await Promise.all([collect(ch.stdout), collect(ch.stderr), ch.stdin.close()]);
          const text = new TextDecoder().decode(err);
          // a shell's echo may end the line (cmd.exe always does)
          check(/^to-stderr(\r?\n)?$/.test(text), `stderr held ${JSON.stringify(text)}`);
          check(out.length === 0, `stdout held ${out.length} bytes meant for stderr`);
          await expectExit(ch, 0);
        }),
    },
    ...[0, 3, 255].map((code): ConformanceCase => ({
      name: `exit code ${code} comes through`,
      needs: ["exec"],
      run: () =>
        withChannel(exec(cmd.exitWith(code)), async (ch) => {
          await Promise.all([count(ch.stdout), count(ch.stderr), ch.stdin.close()]);
          await expectExit(ch, code);
        }),
    })),
    {
      name: "resize reaches the terminal",
      needs: ["exec", "pty", "pty-resize"],
      run: () =>
        withChannel(
          { kind: "exec", command: cmd.printSizeAfterLine, pty: { term: "xterm", columns: 80, rows: 24 } },
          async (ch) => {
            check(typeof ch.resize === "function", "pty-resize is advertised but the channel has no resize()");
            await ch.resize!({ columns: 101, rows: 31 });
            const w = ch.stdin.getWriter();
            await w.write(new TextEncoder().encode("go\r"));
            const out = new TextDecoder().decode(await collect(ch.stdout));
            await count(ch.stderr);
            check(out.includes("31 101"), `expected "31 101" after resize, got ${JSON.stringify(out)}`);
            await w.close().catch(() => {});
            await expectExit(ch, 0);
          },
        ),
    },
    {
      name: "INT stops a sleeping command",
      needs: ["exec", "signals"],
      run: () =>
        withChannel(exec(cmd.sleep(60)), async (ch) => {
          check(typeof ch.signal === "function", "signals is advertised but the channel has no signal()");
          const drained = Promise.all([count(ch.stdout), count(ch.stderr)]);
          // A server may drop a signal that arrives before the command has started (dropbear does),
          // so press Ctrl-C again, as a person would, until the command ends.
          let ended = false;
          void ch.exit.finally(() => ended = true);
          while (!ended) {
            await ch.signal!("INT");
            await Promise.race([ch.exit, new Promise((r) => setTimeout(r, 500))]);
          }
          const status = await ch.exit;
          await drained;
          const interrupted = (status.kind === "signaled" && status.signal.replace(/^SIG/, "") === "INT") ||
            (status.kind === "exited" && status.code === 130);
          check(interrupted, `expected the command to end by INT, got ${describe(status)}`);
        }),
    },
    {
      name: "close leaves no process or socket behind",
      needs: caps.includes("exec") ? ["exec"] : ["shell", "pty"],
      run: async () => {
        const before = await processTable();
        const sockets = await socketCount();
        // A process the far side leaves running may be orphaned (reparented to init) by the time
        // we look, so while the session runs, note each new process and the sessions (setsid) they
        // belong to; after close, none of those processes and nothing in those sessions may live.
        const sessions = new Set<number>();
        const seen = new Map<number, string>();
        const watch = async () => {
          const now = await processTable();
          if (!now || !before) return;
          for (const pid of descendants(now)) {
            if (before.has(pid)) continue;
            sessions.add(now.get(pid)!.sid);
            seen.set(pid, now.get(pid)!.start);
          }
        };
        await withChannel(anyRequest, async (ch) => {
          // a shell is closed once it runs; a command is closed while it still runs
          if (anyRequest.kind === "shell") await new Shell(ch).run(`echo ${marker()}`);
          for (let i = 0; i < 10; i++) await watch(), await new Promise((r) => setTimeout(r, 100));
        });
        for (const [pid, p] of before ?? []) if (p.sid === pid) sessions.delete(pid); // older sessions
        // Ending processes takes the OS a moment: poll, within the case's bound.
        let leftover: number[] = [];
        let extraSockets = 0;
        for (let i = 0; i < 100; i++) {
          const now = await processTable();
          leftover = now && before
            ? [...now].filter(([pid, p]) =>
              p.alive && !before.has(pid) &&
              (sessions.has(p.sid) || seen.get(pid) === p.start || descendants(now).has(pid))
            ).map(([pid]) => pid)
            : [];
          const s = await socketCount();
          extraSockets = s !== undefined && sockets !== undefined ? s - sockets : 0;
          if (leftover.length === 0 && extraSockets <= 0) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        check(leftover.length === 0, `processes left running after close: ${leftover.join(", ")}`);
        check(extraSockets <= 0, `${extraSockets} socket(s) left open after close`);
        await options.assertNoLeaks?.();
      },
    },
    {
      name: "shell echo round trip",
      needs: ["shell", "pty"],
      run: () =>
        withChannel({ kind: "shell", pty }, async (ch) => {
          const shell = new Shell(ch);
          await shell.run(`echo ${marker()}`);
          await shell.close();
        }),
    },
    {
      name: `shell large output (${shellBig} bytes)`,
      needs: ["shell", "pty"],
      run: () =>
        withChannel({ kind: "shell", pty }, async (ch) => {
          const shell = new Shell(ch);
          await shell.run(`echo ${marker()}`);
          const line = (cmd.shellOutput ?? cmd.bigOutput)(shellBig);
          const before = shell.received;
          await shell.type(line);
          // the typed line comes back as echo; everything past it is the command's output
          await shell.waitForBytes(before + line.length + shellBig);
          // and the shell still answers afterwards: nothing was lost or left in the way
          await shell.run(`echo ${marker()}`);
          await shell.close();
        }),
    },
    {
      name: "shell resize reaches the terminal",
      needs: ["shell", "pty", "pty-resize"],
      run: () =>
        withChannel({ kind: "shell", pty }, async (ch) => {
          check(typeof ch.resize === "function", "pty-resize is advertised but the channel has no resize()");
          const shell = new Shell(ch);
          await shell.run(`echo ${marker()}`);
          // Once in several hundred runs against dropbear the first window-change was not applied before
          // the next command (cause not found yet; see the note on issue 5). A person would resize again,
          // so the case does too, at most twice more; the new size must still be seen.
          let seen = false;
          for (let attempt = 0; attempt < 3 && !seen; attempt++) {
            await ch.resize!({ columns: 101, rows: 31 });
            await shell.type(cmd.printSize ?? "stty size");
            seen = await shell.sawWithin("31 101", 5_000);
          }
          check(seen, "a resize to 101x31 never reached the terminal (stty size)");
          await shell.close();
        }),
    },
    {
      name: "shell exit ends the session",
      needs: ["shell", "pty"],
      run: () =>
        withChannel({ kind: "shell", pty }, async (ch) => {
          const shell = new Shell(ch);
          await shell.run(`echo ${marker()}`);
          await shell.type("exit");
          const status = await ch.exit;
          await shell.drained;
          check(status.kind === "exited" && status.code === 0, `expected exit code 0, got ${describe(status)}`);
        }),
    },
    {
      name: "malformed parameters give a clear error",
      needs: [],
      run: async () => {
        if (options.malformed.length === 0) {
          check(
            transport.manifest.parameters.length === 0,
            "the transport declares parameters but the suite got no malformed cases for them",
          );
        }
        for (const bad of options.malformed) {
          const base = options.context(AbortSignal.timeout(timeoutMs));
          const ctx: OpenContext = {
            ...base,
            parameters: bad.parameters ?? base.parameters,
            target: { ...base.target, ...bad.target },
          };
          let error: unknown;
          try {
            const ch = await transport.open(ctx, caps.includes("exec") ? exec(cmd.exitWith(0)) : anyRequest);
            await ch[Symbol.asyncDispose]();
          } catch (e) {
            error = e;
          }
          check(error !== undefined, `${bad.what}: open() accepted it`);
          check(
            error instanceof RemoteError && error.code !== "bug",
            `${bad.what}: threw ${String(error)} instead of a RemoteError`,
          );
          check(!(error as Error).message.includes("\n"), `${bad.what}: the message is not one line`);
        }
      },
    },
  ];
  return cases.filter((c) => c.needs.every((n) => caps.includes(n)) && options.peerLimits?.[c.name] === undefined);
}

/**
 * Registers the suite as Deno tests named `<name> conformance: <case>`.
 *
 * @example In a transport's test file
 * ```ts ignore
 * import { conformance } from "../../plugins/mod.ts";
 * import * as local from "./mod.ts";
 * conformance("local", { transport: local, context: (signal) => makeContext(signal), malformed: [] });
 * ```
 */
export function conformance(name: string, options: ConformanceOptions): void {
  const common = { sanitizeOps: false, sanitizeResources: false };
  if (typeof options.transport === "function") {
    // A loader runs inside the test, so a loading failure is that test's failure.
    Deno.test({
      name: `${name} conformance`,
      ...common,
      async fn(t) {
        for (const c of await conformanceCases(options)) await t.step(c.name, () => c.run());
      },
    });
    return;
  }
  for (const c of buildCases(options.transport, options)) {
    Deno.test({ name: `${name} conformance: ${c.name}`, ...common, fn: () => c.run() });
  }
}

/** The outcome of {@linkcode runConformance}. */
export interface ConformanceReport {
  passed: string[];
  failed: { name: string; error: string }[];
}

/**
 * Runs every applicable case in order outside `deno test`, reporting each as it ends.
 *
 * @example
 * ```ts ignore
 * const report = await runConformance(options, (name, error) => console.log(error ? "FAIL" : "ok", name));
 * ```
 */
export async function runConformance(
  options: ConformanceOptions,
  onCase?: (name: string, error: string | undefined) => void,
): Promise<ConformanceReport> {
  const report: ConformanceReport = { passed: [], failed: [] };
  for (const c of await conformanceCases(options)) {
    try {
      await c.run();
      report.passed.push(c.name);
      onCase?.(c.name, undefined);
    } catch (e) {
      const error = e instanceof Error
        ? `${e.name === "ConformanceFailure" ? "" : e.name + ": "}${e.message}`
        : String(e);
      report.failed.push({ name: c.name, error });
      onCase?.(c.name, error);
    }
  }
  return report;
}
