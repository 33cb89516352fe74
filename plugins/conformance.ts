/**
 * The conformance suite every transport runs against itself: byte streams, exit codes, resize,
 * signals, cleanup and parameter errors, each case only where the manifest advertises what it needs.
 * Register it as Deno tests with {@linkcode conformance}, or run it with `deno task conformance`.
 *
 * @module
 */
import { RemoteError } from "../core/errors.ts";
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
}

/** Recipes for a POSIX shell. */
export const POSIX_COMMANDS: ConformanceCommands = {
  echoStdin: "cat",
  writeStderr: (text) => `printf '%s' '${text}' >&2`,
  exitWith: (code) => `exit ${code}`,
  sleep: (seconds) => `sleep ${seconds}`,
  bigOutput: (bytes) => `head -c ${bytes} /dev/zero`,
  printSizeAfterLine: "read line; stty size",
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
  /** the bound of one case; default 60 s */
  timeoutMs?: number;
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

/** Process IDs descending from this process, read from /proc (Linux), or undefined elsewhere. */
async function descendants(): Promise<Set<number> | undefined> {
  if (Deno.build.os !== "linux") return undefined;
  const parent = new Map<number, number>();
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue; // a zombie holds nothing but its exit status
      parent.set(Number(e.name), Number(fields[1]));
    } catch { /* it just ended */ }
  }
  const out = new Set<number>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!out.has(pid) && (ppid === Deno.pid || out.has(ppid))) out.add(pid), grew = true;
    }
  }
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
          check(text === "to-stderr", `stderr held ${JSON.stringify(text)}`);
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
          await ch.signal!("INT");
          const status = await ch.exit;
          await drained;
          const interrupted = (status.kind === "signaled" && status.signal.replace(/^SIG/, "") === "INT") ||
            (status.kind === "exited" && status.code === 130);
          check(interrupted, `expected the command to end by INT, got ${describe(status)}`);
        }),
    },
    {
      name: "close leaves no process or socket behind",
      needs: ["exec"],
      run: async () => {
        const before = await descendants();
        const sockets = await socketCount();
        await withChannel(exec(cmd.sleep(60)), () => Promise.resolve());
        // Ending processes takes the OS a moment: poll, within the case's bound.
        let leftover: number[] = [];
        let extraSockets = 0;
        for (let i = 0; i < 100; i++) {
          const now = await descendants();
          leftover = now && before ? [...now].filter((p) => !before.has(p)) : [];
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
            const ch = await transport.open(ctx, { kind: "exec", command: cmd.exitWith(0) });
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
  return cases.filter((c) => c.needs.every((n) => caps.includes(n)));
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
