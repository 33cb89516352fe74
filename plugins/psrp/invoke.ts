/**
 * One script in a fresh runspace over a PSRP byte stream, as `remote invoke --configuration-name powershell`
 * runs it: the glue from a transport's Channel (the SSH `powershell` subsystem, a local `pwsh -s`) to text,
 * JSON and an exit code. It owns no socket: the caller passes the stream's two halves and where output goes.
 *
 * - Text: the script's output is piped through `Out-String -Stream` in the remote runspace, so it is
 *   PowerShell's own formatting, one line at a time (streamed, never collected).
 * - JSON: each output object as one JSON line ({@linkcode toJson}: a property bag with its type names).
 * - Errors: to `stderr` as PowerShell's ConciseView shows them (`Get-Item: Cannot find path …`).
 * - Exit code as `pwsh -c` computes it: `exit N` gives N (the server calls the host's SetShouldExit), a
 *   terminating error or `$?` false after the script gives 1, else 0.
 *
 * @module
 */
import { PipelineState } from "./constants.ts";
import { PSObject, PSPrimitive, PSSecureString, type PSValue } from "./clixml.ts";
import { connectOutOfProc } from "./out_of_proc.ts";
import type { ErrorRecord } from "./records.ts";
import { type CommandSpec, RunspacePool } from "./runspace_pool.ts";
import type { PSHost } from "./host.ts";

/** What {@linkcode invokeScript} runs and where its results go. */
export interface InvokeScriptOptions {
  /** the PSRP bytes from the peer (a channel's stdout) */
  readable: ReadableStream<Uint8Array>;
  /** the PSRP bytes to the peer (a channel's stdin) */
  writable: WritableStream<Uint8Array>;
  script: string;
  /** `$args` of the script (`--argument-list`) */
  argumentList?: readonly string[];
  /** pipeline input, one string per line (piped stdin); `$input` in the script */
  input?: AsyncIterable<string>;
  /** "text": PowerShell's formatting; "json": one JSON line per object */
  format: "text" | "json";
  stdout: WritableStream<Uint8Array>;
  stderr: WritableStream<Uint8Array>;
  /** width of the formatted text (Out-String -Width); default 120 */
  width?: number;
  /** aborting stops the running pipeline (Ctrl-C) */
  signal?: AbortSignal;
  /** host calls besides SetShouldExit (Read-Host, prompts); the default host answers none */
  host?: PSHost;
}

/**
 * The pipeline's result code, when neither `exit N` nor a failure decides it: `$?` after the script, read by a
 * second statement of the same pipeline (PowerShell's AddStatement), which saves a pipeline and its round trips.
 * Its one output is a string carrying a random marker, so no output of the script can pass for it.
 */
function statusScript(marker: string): string {
  return `$s = $global:?; "${marker}$s"`;
}

/**
 * Opens a runspace pool on the stream, runs `script`, closes the pool, and returns the exit code.
 *
 * @throws {PsrpError} when the peer breaks the protocol (exit 244)
 */
export async function invokeScript(options: InvokeScriptOptions): Promise<number> {
  const out = new LineWriter(options.stdout);
  const err = new LineWriter(options.stderr);
  // Bounded memory: the peer's bytes are read only while what they produced has been written out, so a slow
  // stdout holds the server back (through the transport's flow control) instead of filling this process.
  const gate = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      await out.drained();
      await err.drained();
      controller.enqueue(chunk);
    },
  });
  const conn = connectOutOfProc({ readable: options.readable.pipeThrough(gate), writable: options.writable });
  let shouldExit: number | undefined;
  const host: PSHost = {
    ...options.host,
    setShouldExit(code) {
      shouldExit = code;
    },
    writeLine: (text) => out.write(text + "\n"),
    write: (text) => out.write(text),
    writeErrorLine: (text) => err.write(text + "\n"),
    writeWarningLine: (text) => err.write(`WARNING: ${text}\n`),
  };
  const pool = new RunspacePool({ wire: conn.wire, host });
  conn.wire.attach(pool);
  try {
    await pool.open(options.signal);
    const commands: CommandSpec[] = [{
      cmd: options.script,
      isScript: true,
      args: (options.argumentList ?? []).map((value) => ({ value })),
    }];
    if (options.format === "text") {
      commands.push({
        cmd: "Out-String",
        isScript: false,
        args: [{ name: "Stream", value: true }, { name: "Width", value: options.width ?? 120 }],
      });
    }
    const marker = `remote-status-${crypto.randomUUID()}:`;
    let status: boolean | undefined;
    const pipeline = pool.createPipeline({
      commands,
      moreStatements: [[{ cmd: statusScript(marker), isScript: true }]],
      input: options.input !== undefined,
      // PowerShell sets $global:? from a history pipeline, as its console host does for each line
      addToHistory: true,
      output: (value) => {
        if (typeof value === "string" && value.startsWith(marker)) {
          status = value.slice(marker.length) !== "False";
          return;
        }
        if (options.format === "json") out.write(JSON.stringify(toJson(value)) + "\n");
        else out.write(`${text(value)}\n`);
      },
      error: (record) => err.write(formatError(record)),
      warning: (message) => err.write(`WARNING: ${message}\n`),
    });
    const stop = () => pipeline.stop();
    options.signal?.addEventListener("abort", stop, { once: true });
    const feeding = options.input ? feed(pipeline, options.input) : undefined;
    const result = await pipeline.done;
    options.signal?.removeEventListener("abort", stop);
    await feeding?.catch(() => {});
    if (result.reason) err.write(formatError(result.reason));
    let code: number;
    if (shouldExit !== undefined) code = shouldExit;
    else if (result.state !== PipelineState.Completed) code = 1;
    else code = status === false ? 1 : 0;
    await pool.close().catch(() => {});
    return code;
  } finally {
    await conn.closeInput();
    await Promise.all([out.close(), err.close()]);
  }
}

async function feed(
  pipeline: { sendInput(v: PSValue): Promise<void>; endInput(): void },
  input: AsyncIterable<string>,
): Promise<void> {
  try {
    for await (const line of input) await pipeline.sendInput(line);
  } finally {
    pipeline.endInput();
  }
}

/** Bytes written but not yet taken by the destination, above which the peer's input waits. */
const HIGH_WATER = 1 << 20;

/**
 * Writes text in order without waiting in the caller (output callbacks are synchronous). Text that arrives
 * while a write is under way is joined into the next one, so 100,000 one-line objects cost a few large writes
 * instead of 100,000 system calls.
 */
class LineWriter {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #encoder = new TextEncoder();
  #last: Promise<void> = Promise.resolve();
  #queued: string[] = [];
  #pending = 0;

  constructor(stream: WritableStream<Uint8Array>) {
    this.#writer = stream.getWriter();
  }

  write(text: string): void {
    this.#pending += text.length;
    this.#queued.push(text);
    if (this.#queued.length > 1) return; // a flush is already queued; it takes this text too
    this.#last = this.#last.then(async () => {
      const text = this.#queued.join("");
      this.#queued = [];
      await this.#writer.write(this.#encoder.encode(text)).catch(() => {});
      this.#pending -= text.length;
    });
  }

  /** Settles once fewer than {@linkcode HIGH_WATER} characters wait to be written. */
  async drained(): Promise<void> {
    while (this.#pending >= HIGH_WATER) await this.#last;
  }

  async close(): Promise<void> {
    await this.#last;
    this.#writer.releaseLock();
  }
}

/** A value as Out-String would print a scalar: strings as they are, else their ToString text. */
function text(value: PSValue): string {
  if (typeof value === "string") return value;
  if (value instanceof PSObject) return value.toStringText ?? (value.value !== undefined ? text(value.value) : "");
  if (value instanceof PSPrimitive) return String(value.value);
  return String(value ?? "");
}

/**
 * An error record as PowerShell 7's ConciseView prints it: `<command>: <message>`, `Exception:` when no
 * command raised it (a `throw`).
 */
export function formatError(record: ErrorRecord): string {
  const activity = /\[([^\]]*)\]/.exec(record.categoryMessage)?.[1] ?? "";
  return `${activity || "Exception"}: ${record.message}\n`;
}

/**
 * A deserialised value as JSON: primitives as themselves (64-bit integers beyond 2^53 as text, dates as
 * ISO text), lists as arrays, dictionaries as objects, objects as a property bag whose `PSTypeNames` are
 * the type names PowerShell sent (most specific first); a secure string is never shown (`null`).
 *
 * @example
 * ```ts
 * import { PSObject } from "./clixml.ts";
 * import { toJson } from "./invoke.ts";
 * const o = new PSObject({ typeNames: ["System.Management.Automation.PSCustomObject"], extended: { Name: "x" } });
 * console.assert(JSON.stringify(toJson(o)) === '{"PSTypeNames":["System.Management.Automation.PSCustomObject"],"Name":"x"}');
 * ```
 */
export function toJson(value: PSValue, depth = 0): unknown {
  if (depth > 50) return null;
  if (value === null || value === undefined) return null;
  if (typeof value === "bigint") return Number.isSafeInteger(Number(value)) ? Number(value) : String(value);
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return btoa(String.fromCharCode(...value));
  if (value instanceof PSSecureString) return null;
  if (value instanceof PSPrimitive) {
    if (value.tag === "DT") return value.toDate().toISOString();
    return toJson(value.value as PSValue, depth + 1);
  }
  if (Array.isArray(value)) return value.map((v) => toJson(v, depth + 1));
  if (value instanceof Map) return dictJson(value, depth);
  if (value instanceof PSObject) {
    const props = [...value.adapted, ...value.extended];
    if (props.length === 0) {
      if (value.items) return value.items.map((v) => toJson(v, depth + 1));
      if (value.dict) return dictJson(value.dict, depth);
      if (value.value !== undefined) return toJson(value.value, depth + 1);
    }
    const bag: Record<string, unknown> = { PSTypeNames: value.typeNames.map((t) => t.replace(/^Deserialized\./, "")) };
    for (const [name, v] of props) bag[name] = toJson(v, depth + 1);
    return bag;
  }
  return String(value);
}

function dictJson(dict: Map<PSValue, PSValue>, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of dict) o[String(toJson(k, depth + 1))] = toJson(v, depth + 1);
  return o;
}
