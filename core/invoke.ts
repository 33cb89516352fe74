/**
 * `remote invoke`: Invoke-Command's fan-out. Runs one command on many targets (any mix of transports)
 * with a throttle, streams output per host with a `[host]` prefix (or JSON lines), summarises
 * failures, and exits 0 only when every host succeeded.
 *
 * With one target, output passes through unprefixed and byte for byte, stdin is forwarded, and the
 * exit code is the remote command's own, as with ssh.
 *
 * @module
 */
import type { Channel, Prompter } from "../plugins/mod.ts";
import { ExitCode, RemoteError, UsageError } from "./errors.ts";
import { copyToOutput, printable, syncWriteSafe, useColor, writeErr, writeOut } from "./output.ts";
import type { Registry } from "./registry.ts";
import type { Route } from "./route.ts";
import type { SessionRecord } from "./session.ts";
import { stdinStream } from "./stdin_stream.ts";
import { exitCodeOf, loadTransport, openContext, powershellConfiguration } from "./transport_use.ts";

/** How one host's run ended. */
export type HostOutcome =
  | { kind: "exited"; host: string; code: number }
  | { kind: "failed"; host: string; error: Error }
  /** never started, or stopped, because the user pressed Ctrl-C */
  | { kind: "cancelled"; host: string };

/** After Ctrl-C, how long remote commands get to end on their own before their channels are closed. */
const GRACE_MS = 3000;

/** What {@linkcode runInvoke} runs where, once the verb has read its parameters and routed its targets. */
export interface InvokePlan {
  /** one per target, in the order given */
  routes: readonly Route[];
  /** the command line, as sent to each host */
  command: string;
  /** at most this many hosts at once */
  throttle: number;
  /** JSON lines instead of prefixed text */
  json: boolean;
  /** false: open a new connection rather than reuse a master */
  reuse: boolean;
  /** start the command in a new persistent session on each host (`--in-disconnected-session`) */
  disconnected: boolean;
  /** with `disconnected`: the sessions' name */
  sessionName?: string;
  prompter: Prompter;
  /** the local session registry, for `disconnected` */
  registry(): Promise<Registry>;
  /** `--configuration-name` on a transport that speaks PSRP: the command is a PowerShell script */
  powershell?: PowerShellPlan;
}

/**
 * A PowerShell run: the configuration given with `--configuration-name` (a transport whose manifest names a
 * default, such as WinRM's `Microsoft.PowerShell`, runs PowerShell without it) and the script's arguments.
 */
export interface PowerShellPlan {
  /** the subsystem or configuration that speaks PSRP (SSH: `powershell`); undefined: the transport's default */
  configuration?: string;
  /** `--argument-list`: the script's `$args` */
  argumentList: string[];
}

/** Runs `remote invoke`'s command on every route; returns the exit code. */
export async function runInvoke(plan: InvokePlan): Promise<number> {
  const { routes, throttle, json } = plan;
  const controller = new AbortController();
  const options: RunOptions = {
    command: plan.command,
    prompter: oncePrompter(plan.prompter),
    reuse: plan.reuse,
    signal: controller.signal,
    powershell: plan.powershell,
  };
  let interrupts = 0;
  // The first Ctrl-C (or SIGTERM) asks every remote command to stop; a second one leaves at once. The abort's
  // reason carries the exit code: 130 for Ctrl-C, 143 for SIGTERM.
  const stopOn = (reason: RemoteError) => () => {
    if (++interrupts > 1) Deno.exit(reason.exitCode);
    controller.abort(reason);
  };
  const onInterrupt = stopOn(new RemoteError("interrupted", "interrupted"));
  const onTerminate = stopOn(new RemoteError("terminated", "terminated by SIGTERM"));
  Deno.addSignalListener("SIGINT", onInterrupt);
  Deno.addSignalListener("SIGTERM", onTerminate);
  try {
    if (plan.disconnected) {
      return await startDisconnected(await plan.registry(), routes, throttle, options, plan.sessionName, json);
    }
    if (routes.length === 1 && !json) return await runSingle(routes[0], options);
    const printer = new PrefixPrinter(json, useColor(Deno.stdout), useColor(Deno.stderr));
    const outcomes = await fanOut(
      routes,
      throttle,
      controller.signal,
      (r) => runOne(r, options, printer),
      (r): HostOutcome => ({ kind: "cancelled", host: r.target.display }),
    );
    return await summarise(outcomes, json, controller.signal.reason);
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    Deno.removeSignalListener("SIGTERM", onTerminate);
  }
}

interface RunOptions {
  command: string;
  prompter: Prompter;
  reuse: boolean;
  signal: AbortSignal;
  powershell?: PowerShellPlan;
}

/**
 * Whether `r` runs the command as PowerShell over PSRP: asked for (or the transport's default) and its
 * transport speaks it.
 */
function speaksPowerShell(r: Route, options: RunOptions): options is RunOptions & { powershell: PowerShellPlan } {
  return options.powershell !== undefined &&
    powershellConfiguration(r.entry, options.powershell.configuration ?? r.configuration) !== undefined;
}

/**
 * Runs the command as a PowerShell script over the channel's PSRP stream (plugins/psrp/invoke.ts): text
 * (PowerShell's formatting) or JSON lines to `stdout`, errors to `stderr`, PowerShell's exit code.
 */
async function runPowerShell(
  channel: Channel,
  options: RunOptions & { powershell: PowerShellPlan },
  out: { stdout: WritableStream<Uint8Array>; stderr: WritableStream<Uint8Array>; json: boolean; stdin: boolean },
): Promise<number> {
  const { invokeScript } = await import("../plugins/psrp/mod.ts");
  // What the server process itself writes to stderr (not PowerShell's error stream) is kept, bounded, and shown
  // only when the run fails: pwsh -s reports its own stdin closing there ("An unknown element … was received").
  const diagnostics = new Response(channel.stderr.pipeThrough(limitBytes(64 * 1024))).text().catch(() => "");
  try {
    return await invokeScript({
      readable: channel.stdout,
      writable: channel.stdin,
      script: options.command,
      argumentList: options.powershell.argumentList,
      input: out.stdin ? stdinLines() : undefined,
      format: out.json ? "json" : "text",
      stdout: out.stdout,
      stderr: out.stderr,
      width: Deno.stdout.isTerminal() ? Deno.consoleSize().columns : undefined,
      signal: options.signal,
    });
  } catch (error) {
    const said = await Promise.race([diagnostics, new Promise<string>((r) => setTimeout(() => r(""), 1000))]);
    if (said.trim() !== "" && error instanceof Error) error.message += ` (the server said: ${said.trim()})`;
    throw error;
  }
}

/** Passes the first `max` bytes and drops the rest. */
function limitBytes(max: number): TransformStream<Uint8Array, Uint8Array> {
  let left = max;
  return new TransformStream({
    transform(chunk, controller) {
      if (left <= 0) return;
      controller.enqueue(chunk.subarray(0, left));
      left -= chunk.byteLength;
    },
  });
}

/** Piped stdin, one line at a time (the newline dropped): a PowerShell pipeline's input. */
async function* stdinLines(): AsyncGenerator<string> {
  let pending = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) yield line.replace(/\r$/, "");
  }
  if (pending !== "") yield pending;
}

/**
 * Reads targets, one per line; `#` starts a comment, blank lines are skipped; `-` reads stdin.
 *
 * @throws {UsageError} when the file cannot be read
 */
export async function readHostFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = file === "-" ? await new Response(Deno.stdin.readable).text() : await Deno.readTextFile(file);
  } catch (cause) {
    throw new UsageError(`cannot read host file ${file}: ${(cause as Error).message}`, {
      hint: "give a readable file with one target per line, or - for stdin",
      cause,
    });
  }
  return parseHostList(text);
}

/** Targets from host-file text: one per line (or several separated by spaces), `#` comments dropped. */
export function parseHostList(text: string): string[] {
  return text.split("\n").flatMap((l) => l.replace(/#.*/, "").trim().split(/\s+/)).filter((l) => l !== "");
}

/**
 * Credentials are asked once per run, never once per host: the first answer to each question (keyed
 * by what is asked for) serves all hosts, and only one question is on the terminal at a time.
 */
export function oncePrompter(inner: Prompter): Prompter {
  const answers = new Map<string, Promise<string>>();
  let queue: Promise<unknown> = Promise.resolve();
  return {
    interactive: inner.interactive,
    ask(question, options) {
      const key = options?.what ?? question;
      let answer = answers.get(key);
      if (!answer) {
        answer = queue.then(() => inner.ask(question, options));
        queue = answer.catch(() => {});
        answers.set(key, answer);
      }
      return answer;
    },
  };
}

/**
 * Runs `work` on every item with at most `limit` running at once, in input order of starting; once
 * `signal` aborts, items not yet started are reported through `cancelled` instead.
 */
export async function fanOut<T, R>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal,
  work: (item: T) => Promise<R>,
  cancelled?: (item: T) => R,
): Promise<(R | undefined)[]> {
  const results: (R | undefined)[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = signal.aborted ? cancelled?.(items[index]) : await work(items[index]);
    }
  });
  await Promise.all(workers);
  return results;
}

async function openChannel(r: Route, options: RunOptions): Promise<Channel> {
  const transport = await loadTransport(r.entry);
  // The context's signal closes the channel once open; Ctrl-C must only cancel connecting, so the
  // remote command can be sent INT and end on its own (see interruptible).
  const connecting = new AbortController();
  const onAbort = () => connecting.abort(options.signal.reason);
  if (options.signal.aborted) onAbort();
  options.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const ctx = {
      ...openContext(r.target, r.parameters, options.prompter, connecting.signal, r.dial),
      reuse: options.reuse,
    };
    if (speaksPowerShell(r, options)) {
      const name = powershellConfiguration(r.entry, options.powershell.configuration ?? r.configuration)!;
      return await transport.open(ctx, { kind: "subsystem", name });
    }
    return await transport.open(ctx, { kind: "exec", command: options.command });
  } finally {
    options.signal.removeEventListener("abort", onAbort);
  }
}

/** Sends INT to the remote command on Ctrl-C, then closes the channel if it has not ended after a grace. */
function interruptible(channel: Channel, signal: AbortSignal): Disposable {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onAbort = () => {
    void Promise.resolve(channel.signal?.("INT")).catch(() => {});
    timer = setTimeout(() => void channel[Symbol.asyncDispose](), GRACE_MS);
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  return {
    [Symbol.dispose]() {
      signal.removeEventListener("abort", onAbort);
      // only when set: the timer globals load part of Deno's Node layer on first touch (~4 ms per run)
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

async function runSingle(r: Route, options: RunOptions): Promise<number> {
  await using channel = await openChannel(r, options);
  if (speaksPowerShell(r, options)) {
    const code = await runPowerShell(channel, options, {
      stdout: Deno.stdout.writable,
      stderr: Deno.stderr.writable,
      json: false,
      stdin: !Deno.stdin.isTerminal(),
    });
    return options.signal.aborted ? stopCode(options.signal.reason) : code;
  }
  using _ = interruptible(channel, options.signal);
  // stdin reaches the remote command only when it is not the terminal (a pipe or a file), as ssh -T
  const stdin = Deno.stdin.isTerminal()
    ? channel.stdin.close().catch(() => {})
    : stdinStream().pipeTo(channel.stdin).catch(() => {});
  // to a pipe, the packets of one socket read leave in one write (waitTurn): ~9 % less CPU for bulk output
  await Promise.all([
    copyToOutput(channel.stdout, Deno.stdout, { sync: syncWriteSafe("stdout"), waitTurn: true }),
    copyToOutput(channel.stderr, Deno.stderr, { sync: syncWriteSafe("stderr"), waitTurn: true }),
  ]);
  const status = await channel.exit;
  void stdin;
  if (options.signal.aborted) return stopCode(options.signal.reason);
  return exitCodeOf(status, r.target.display);
}

async function runOne(r: Route, options: RunOptions, printer: PrefixPrinter): Promise<HostOutcome> {
  const host = r.target.display;
  try {
    await using channel = await openChannel(r, options);
    if (speaksPowerShell(r, options)) {
      const code = await runPowerShellPrefixed(channel, options, printer, host);
      await printer.exit(host, code);
      return { kind: "exited", host, code };
    }
    using _ = interruptible(channel, options.signal);
    await channel.stdin.close().catch(() => {});
    await Promise.all([printer.pump(host, "stdout", channel.stdout), printer.pump(host, "stderr", channel.stderr)]);
    const status = await channel.exit;
    const code = exitCodeOf(status, host);
    await printer.exit(host, code);
    return { kind: "exited", host, code };
  } catch (error) {
    if (options.signal.aborted) return { kind: "cancelled", host };
    const err = error instanceof Error ? error : new Error(String(error));
    await printer.failure(host, err);
    return { kind: "failed", host, error: err };
  }
}

/** {@linkcode runPowerShell} for one of several hosts: each line through the printer (text or JSON). */
async function runPowerShellPrefixed(
  channel: Channel,
  options: RunOptions & { powershell: PowerShellPlan },
  printer: PrefixPrinter,
  host: string,
): Promise<number> {
  const stdout = new TransformStream<Uint8Array, Uint8Array>();
  const stderr = new TransformStream<Uint8Array, Uint8Array>();
  const pumps = Promise.all([
    printer.json ? printer.pumpObjects(host, stdout.readable) : printer.pump(host, "stdout", stdout.readable),
    printer.pump(host, "stderr", stderr.readable),
  ]);
  try {
    return await runPowerShell(channel, options, {
      stdout: stdout.writable,
      stderr: stderr.writable,
      json: printer.json,
      stdin: false,
    });
  } finally {
    await Promise.all([stdout.writable.close().catch(() => {}), stderr.writable.close().catch(() => {})]);
    await pumps;
  }
}

/**
 * Invoke-Command -InDisconnectedSession: starts the command in a new persistent session on every
 * host (throttled like the fan-out), records each, and prints their Get-PSSession rows (or JSON lines)
 * without waiting for the commands. As in the fan-out, one host without `--json` fails with remote's
 * own error; otherwise failures are reported per host and summarised.
 */
async function startDisconnected(
  registry: Registry,
  routes: readonly Route[],
  throttle: number,
  options: RunOptions,
  name: string | undefined,
  json: boolean,
): Promise<number> {
  // loaded here, not up front: a plain invoke would otherwise load every session verb's modules (the
  // registry, file locks, the terminal bridge) on each run; see BENCHMARKS.md, reused first byte
  const { createSession, formatSessions, publicRecord } = await import("./session_records.ts");
  const taken = new Set<string>();
  const create = (r: Route) => {
    const ctx = {
      ...openContext(r.target, r.parameters, options.prompter, options.signal, r.dial),
      reuse: options.reuse,
    };
    return createSession(registry, r, ctx, { name, command: options.command, taken });
  };
  if (routes.length === 1 && !json) {
    await writeOut(formatSessions([{ record: await create(routes[0]) }]));
    return 0;
  }
  const printer = new PrefixPrinter(json, useColor(Deno.stdout), useColor(Deno.stderr));
  const records = new Map<Route, SessionRecord>();
  const outcomes = await fanOut(
    routes,
    throttle,
    options.signal,
    async (r): Promise<HostOutcome> => {
      const host = r.target.display;
      try {
        const record = await create(r);
        records.set(r, record);
        if (json) await writeOut(JSON.stringify(publicRecord(record)) + "\n");
        return { kind: "exited", host, code: 0 };
      } catch (error) {
        if (options.signal.aborted) return { kind: "cancelled", host };
        const err = error instanceof Error ? error : new Error(String(error));
        await printer.failure(host, err);
        return { kind: "failed", host, error: err };
      }
    },
    (r): HostOutcome => ({ kind: "cancelled", host: r.target.display }),
  );
  if (!json && records.size > 0) {
    await writeOut(formatSessions(routes.flatMap((r) => {
      const record = records.get(r);
      return record ? [{ record }] : [];
    })));
  }
  return await summarise(outcomes, json, options.signal.reason);
}

/** The exit code of a run stopped with `reason`: 143 after SIGTERM, else 130 (Ctrl-C). */
function stopCode(reason: unknown): number {
  return reason instanceof RemoteError ? reason.exitCode : ExitCode.interrupted;
}

const COLORS = [36, 32, 33, 35, 34, 31];

/** Writes each host's output line by line, prefixed, or as JSON lines. */
export class PrefixPrinter {
  #json: boolean;
  #color: { stdout: boolean; stderr: boolean };
  #colorOf = new Map<string, number>();

  constructor(json: boolean, colorStdout: boolean, colorStderr: boolean) {
    this.#json = json;
    this.#color = { stdout: colorStdout, stderr: colorStderr };
  }

  /** Whether output is JSON lines. */
  get json(): boolean {
    return this.#json;
  }

  /**
   * Copies a host's JSON lines (one object each, from a PowerShell run) as `{"host", "stream": "output",
   * "data": <object>}` lines.
   */
  async pumpObjects(host: string, readable: ReadableStream<Uint8Array>): Promise<void> {
    let pending = "";
    for await (const chunk of readable.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      const out = lines.filter((l) => l !== "").map((l) =>
        `{"host":${JSON.stringify(host)},"stream":"output","data":${l}}\n`
      );
      if (out.length > 0) await writeOut(out.join(""));
    }
  }

  #prefix(host: string, stream: "stdout" | "stderr"): string {
    if (!this.#color[stream]) return `[${host}] `;
    let c = this.#colorOf.get(host);
    if (c === undefined) {
      c = COLORS[this.#colorOf.size % COLORS.length];
      this.#colorOf.set(host, c);
    }
    return `\x1b[${c}m[${host}]\x1b[0m `;
  }

  /** Copies one stream of one host, a whole line at a time so hosts never interleave within a line. */
  async pump(host: string, stream: "stdout" | "stderr", readable: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of readable) {
      pending += decoder.decode(chunk, { stream: true });
      const cut = pending.lastIndexOf("\n");
      if (cut < 0) continue;
      const lines = pending.slice(0, cut + 1);
      pending = pending.slice(cut + 1);
      await this.#lines(host, stream, lines);
    }
    pending += decoder.decode();
    // a last line without a newline still ends on its own line, so the next host's prefix starts fresh
    if (pending !== "") await this.#lines(host, stream, pending + "\n");
  }

  async #lines(host: string, stream: "stdout" | "stderr", text: string): Promise<void> {
    const lines = text.split("\n");
    lines.pop();
    if (this.#json) {
      await writeOut(lines.map((line) => JSON.stringify({ host, stream, data: line + "\n" }) + "\n").join(""));
      return;
    }
    const prefix = this.#prefix(host, stream);
    const out = lines.map((line) => prefix + line + "\n").join("");
    await (stream === "stdout" ? writeOut(out) : writeErr(out));
  }

  /** Reports a host's exit code (JSON only; the text form reports failures in the summary). */
  async exit(host: string, code: number): Promise<void> {
    if (this.#json) await writeOut(JSON.stringify({ host, stream: "exit", data: null, exitCode: code }) + "\n");
  }

  /** Reports that a host could not be reached or its command could not start. */
  async failure(host: string, error: Error): Promise<void> {
    const exitCode = error instanceof RemoteError ? error.exitCode : ExitCode.bug;
    if (this.#json) {
      await writeOut(JSON.stringify({ host, stream: "error", data: error.message, exitCode }) + "\n");
    } else {
      await writeErr(`${this.#prefix(host, "stderr")}remote: ${printable(error.message)}\n`);
    }
  }
}

/**
 * Prints the failure summary (text mode) and returns the run's exit code: 0 when every host
 * succeeded, 130 after Ctrl-C (143 after SIGTERM: `stopped` is the abort's reason), else the first failed host's code.
 */
export async function summarise(
  outcomes: readonly (HostOutcome | undefined)[],
  json: boolean,
  stopped?: unknown,
): Promise<number> {
  const all = outcomes.filter((o): o is HostOutcome => o !== undefined);
  const cancelled = all.filter((o) => o.kind === "cancelled");
  const failed = all.filter((o) => o.kind === "failed" || (o.kind === "exited" && o.code !== 0));
  if (!json && failed.length > 0) {
    const parts = failed.map((o) =>
      o.kind === "failed" ? `${o.host} (${o.error.message})` : o.kind === "exited" ? `${o.host} (exit ${o.code})` : ""
    );
    await writeErr(`remote: ${failed.length} of ${all.length} hosts failed: ${printable(parts.join(", "))}\n`);
  }
  if (cancelled.length > 0 || all.length < outcomes.length) {
    const why = stopped instanceof RemoteError ? stopped.message : "interrupted";
    if (!json) await writeErr(`remote: ${why}; ${cancelled.length} of ${all.length} hosts did not finish\n`);
    return stopCode(stopped);
  }
  const first = failed[0];
  if (!first) return 0;
  if (first.kind === "exited") return first.code;
  if (first.kind === "failed") return first.error instanceof RemoteError ? first.error.exitCode : ExitCode.bug;
  return stopCode(stopped);
}
