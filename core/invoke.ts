/**
 * `remote invoke`: Invoke-Command's fan-out. Runs one command on many targets with a throttle,
 * streams output per host with a `[host]` prefix (or JSON lines), summarises failures, and exits 0
 * only when every host succeeded.
 *
 * With one target, output passes through unprefixed and byte for byte, stdin is forwarded, and the
 * exit code is the remote command's own, as with ssh.
 *
 * @module
 */
import type { Channel, Prompter } from "../plugins/types.ts";
import { ExitCode, RemoteError, UsageError } from "./errors.ts";
import { useColor, writeErr, writeOut } from "./output.ts";
import { route, type Route } from "./route.ts";
import type { VerbInput } from "./verb_handlers.ts";
import { exitCodeOf, loadTransport, openContext, requireCapability } from "./transport_use.ts";

/** How one host's run ended. */
type HostOutcome =
  | { kind: "exited"; host: string; code: number }
  | { kind: "failed"; host: string; error: RemoteError | Error };

/** Runs `remote invoke`; returns the exit code. */
export async function runInvoke(input: VerbInput): Promise<number> {
  const { resolution, entries, config } = input;
  const v = resolution.values;
  const command = Array.isArray(v.Command) ? v.Command.map(String) : [];
  if (command.length === 0) {
    throw new UsageError("no command to run", { hint: "put it after --, e.g. remote invoke db1 -- uptime" });
  }
  const targets = [...(Array.isArray(v.HostName) ? v.HostName.map(String) : [])];
  if (typeof v.HostFile === "string") targets.push(...await readHostFile(v.HostFile));
  const routes: Route[] = targets.length > 0
    ? targets.map((t) => route(resolution, entries, config, t))
    : [route(resolution, entries, config)];
  for (const r of routes) requireCapability(r.entry, "exec");
  const throttle = typeof v.ThrottleLimit === "number" ? v.ThrottleLimit : config.defaults.throttleLimit ?? 32;
  const commandLine = command.join(" ");
  const controller = new AbortController();
  const onInterrupt = () => controller.abort(new RemoteError("interrupted", "interrupted"));
  Deno.addSignalListener("SIGINT", onInterrupt);
  Deno.addSignalListener("SIGTERM", onInterrupt);
  const prompter = oncePrompter(input.prompter);
  try {
    if (routes.length === 1 && v.Json !== true) {
      return await runSingle(routes[0], commandLine, prompter, controller.signal);
    }
    const printer = new PrefixPrinter(v.Json === true, useColor(Deno.stdout));
    const outcomes = await fanOut(routes, throttle, (r) => runOne(r, commandLine, prompter, controller.signal, printer));
    if (controller.signal.aborted) return ExitCode.interrupted;
    return await summarise(outcomes, v.Json === true);
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    Deno.removeSignalListener("SIGTERM", onInterrupt);
  }
}

async function readHostFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = file === "-" ? await new Response(Deno.stdin.readable).text() : await Deno.readTextFile(file);
  } catch (cause) {
    throw new UsageError(`cannot read host file ${file}: ${(cause as Error).message}`, {
      hint: "give a readable file with one target per line, or - for stdin",
      cause,
    });
  }
  return text.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter((l) => l !== "");
}

/** Credentials are asked once per run, never once per host: the first answer to each question serves all. */
function oncePrompter(inner: Prompter): Prompter {
  const answers = new Map<string, Promise<string>>();
  let queue: Promise<unknown> = Promise.resolve();
  return {
    interactive: inner.interactive,
    ask(question, options) {
      const key = options?.what ?? question;
      let answer = answers.get(key);
      if (!answer) {
        // One prompt at a time on the terminal, even with 32 hosts connecting at once.
        answer = queue.then(() => inner.ask(question, options));
        queue = answer.catch(() => {});
        answers.set(key, answer);
      }
      return answer;
    },
  };
}

async function fanOut<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  });
  await Promise.all(workers);
  return results;
}

async function runSingle(r: Route, command: string, prompter: Prompter, signal: AbortSignal): Promise<number> {
  const transport = await loadTransport(r.entry);
  const channel = await transport.open(openContext(r.target, r.parameters, prompter, signal), {
    kind: "exec",
    command,
  });
  const onAbort = () => void channel.signal?.("INT");
  signal.addEventListener("abort", onAbort);
  try {
    const stdin = Deno.stdin.isTerminal()
      ? channel.stdin.close().catch(() => {})
      : Deno.stdin.readable.pipeTo(channel.stdin).catch(() => {});
    await Promise.all([
      channel.stdout.pipeTo(Deno.stdout.writable, { preventClose: true }),
      channel.stderr.pipeTo(Deno.stderr.writable, { preventClose: true }),
    ]);
    const status = await channel.exit;
    void stdin;
    if (signal.aborted) return ExitCode.interrupted;
    return exitCodeOf(status, r.target.display);
  } finally {
    signal.removeEventListener("abort", onAbort);
    await channel[Symbol.asyncDispose]();
  }
}

async function runOne(
  r: Route,
  command: string,
  prompter: Prompter,
  signal: AbortSignal,
  printer: PrefixPrinter,
): Promise<HostOutcome> {
  const host = r.target.display;
  let channel: Channel | undefined;
  try {
    const transport = await loadTransport(r.entry);
    channel = await transport.open(openContext(r.target, r.parameters, prompter, signal), { kind: "exec", command });
    const open = channel;
    const onAbort = () => void open.signal?.("INT");
    signal.addEventListener("abort", onAbort);
    await channel.stdin.close().catch(() => {});
    await Promise.all([printer.pump(host, "stdout", channel.stdout), printer.pump(host, "stderr", channel.stderr)]);
    const status = await channel.exit;
    signal.removeEventListener("abort", onAbort);
    const code = exitCodeOf(status, host);
    await printer.exit(host, code);
    return { kind: "exited", host, code };
  } catch (error) {
    await printer.failure(host, error as Error);
    return { kind: "failed", host, error: error as Error };
  } finally {
    await channel?.[Symbol.asyncDispose]();
  }
}

const COLORS = [31, 32, 33, 34, 35, 36];

/** Writes each host's output line by line, prefixed, or as JSON lines. */
class PrefixPrinter {
  #json: boolean;
  #color: boolean;
  #colorOf = new Map<string, number>();

  constructor(json: boolean, color: boolean) {
    this.#json = json;
    this.#color = color;
  }

  #prefix(host: string): string {
    if (!this.#color) return `[${host}] `;
    let c = this.#colorOf.get(host);
    if (c === undefined) {
      c = COLORS[this.#colorOf.size % COLORS.length];
      this.#colorOf.set(host, c);
    }
    return `\x1b[${c}m[${host}]\x1b[0m `;
  }

  async pump(host: string, stream: "stdout" | "stderr", readable: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of readable) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) await this.#line(host, stream, line + "\n");
    }
    pending += decoder.decode();
    if (pending !== "") await this.#line(host, stream, pending + "\n");
  }

  async #line(host: string, stream: "stdout" | "stderr", data: string): Promise<void> {
    if (this.#json) {
      await writeOut(JSON.stringify({ host, stream, data }) + "\n");
    } else if (stream === "stdout") {
      await writeOut(this.#prefix(host) + data);
    } else {
      await writeErr(this.#prefix(host) + data);
    }
  }

  async exit(host: string, code: number): Promise<void> {
    if (this.#json) await writeOut(JSON.stringify({ host, stream: "exit", exitCode: code }) + "\n");
  }

  async failure(host: string, error: Error): Promise<void> {
    const message = error.message;
    if (this.#json) {
      const exitCode = error instanceof RemoteError ? error.exitCode : ExitCode.bug;
      await writeOut(JSON.stringify({ host, stream: "error", data: message, exitCode }) + "\n");
    } else {
      await writeErr(`${this.#prefix(host)}remote: ${message}\n`);
    }
  }
}

async function summarise(outcomes: HostOutcome[], json: boolean): Promise<number> {
  const failed = outcomes.filter((o) => o.kind === "failed" || o.code !== 0);
  if (failed.length === 0) return 0;
  if (!json) {
    const parts = failed.map((o) =>
      o.kind === "failed" ? `${o.host} (${o.error.message})` : `${o.host} (exit ${o.code})`
    );
    await writeErr(`remote: ${failed.length} of ${outcomes.length} hosts failed: ${parts.join(", ")}\n`);
  }
  const first = failed[0];
  if (first.kind === "exited") return first.code;
  return first.error instanceof RemoteError ? first.error.exitCode : ExitCode.bug;
}
