/**
 * Finds and loads the transports that are not built in: TS/JS plugin modules named by `--plugin` or
 * the config (imported in-process), and `remote-transport-<name>` executables in the plugin directory
 * or on PATH (run out-of-process, speaking plugins/protocol.ts).
 *
 * @module
 */
import { DELIMITER, isAbsolute, join, resolve } from "./_path.ts";
import { ExitCode, PluginError, RemoteError, TransportError, type TransportLayer } from "./errors.ts";
import type { TransportEntry } from "./transport_catalog.ts";
import { EXECUTABLE_PREFIX } from "./user_files.ts";
import {
  type Call,
  type Capability,
  type Channel,
  encodeMessage,
  type ExitStatus,
  FrameDecoder,
  type HostSession,
  mergeCatalog,
  type Message,
  type OpenContext,
  type OpenRequest,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  readMessages,
  type ReservedParameters,
  type SessionHost,
  type Transport,
  type TransportManifest,
  validateManifest,
  validateTransportModule,
  type WireExitStatus,
} from "../plugins/mod.ts";

/** What {@linkcode loadPluginEntries} looks at. */
export interface PluginLoaderOptions {
  /** `--plugin` values and config entries: a path to a .ts/.js module, or an `npm:` specifier */
  specifiers: readonly string[];
  /** whether to discover `remote-transport-*` executables */
  executables: boolean;
  /** searched before PATH; see {@linkcode defaultPluginDir} */
  pluginDir: string;
  /** the PATH value to search */
  path: string;
  /** receives broken discovered executables, which are then skipped; without it they throw */
  warn?(error: PluginError): void;
  /**
   * the core's own parameters, which no plugin may declare (see core/reserved_parameters.ts); a function
   * is called once, and only when there is a plugin to check
   */
  reserved?: ReservedParameters | (() => Promise<ReservedParameters>);
}

export { defaultPluginDir, EXECUTABLE_PREFIX } from "./user_files.ts";
const EXECUTABLE_NAME = /^remote-transport-([a-z][a-z0-9+.-]*?)(\.exe|\.cmd|\.bat)?$/;
/** How long `--manifest` may take. */
const MANIFEST_TIMEOUT_MS = 10_000;
/** How long a started plugin may take to say hello. */
const HELLO_TIMEOUT_MS = 10_000;
/** How long a plugin process gets to leave after its session before it is killed. */
const EXIT_GRACE_MS = 2_000;

/**
 * Loads the plugin modules named in `specifiers` and discovers plugin executables, returning one
 * entry each. Callers merge them after the built-ins with `mergeCatalog`, which rejects clashes.
 *
 * @throws {PluginError} naming the plugin for a module that cannot be imported or is invalid, an
 * executable whose `--manifest` fails (unless `warn` is given), or two plugins claiming one name
 *
 * @example
 * ```ts
 * import { defaultPluginDir, loadPluginEntries } from "./plugin_loader.ts";
 * const entries = await loadPluginEntries({
 *   specifiers: ["./plugins/examples/cliexec/mod.ts"],
 *   executables: false,
 *   pluginDir: defaultPluginDir(),
 *   path: "",
 * });
 * console.assert(entries[0].manifest.id === "cliexec");
 * ```
 */
export async function loadPluginEntries(opts: PluginLoaderOptions): Promise<TransportEntry[]> {
  const entries: TransportEntry[] = [];
  let reserving: Promise<ReservedParameters> | undefined;
  const reserved = () => typeof opts.reserved === "function" ? reserving ??= opts.reserved() : opts.reserved;
  for (const specifier of opts.specifiers) entries.push(await loadModuleEntry(specifier, await reserved()));
  if (opts.executables) {
    const found = await findExecutables([opts.pluginDir, ...opts.path.split(DELIMITER)]);
    const loaded = await Promise.all(found.map(async ({ name, path }) => {
      try {
        return await loadExecutableEntry(path, name, await reserved());
      } catch (e) {
        if (opts.warn === undefined || !(e instanceof PluginError)) throw e;
        opts.warn(e);
        return undefined;
      }
    }));
    for (const entry of loaded) if (entry !== undefined) entries.push(entry);
  }
  return mergeCatalog(entries);
}

/** True when running as a `deno compile` binary, which cannot import files it did not embed. */
function isCompiled(): boolean {
  return !/^deno(\.exe)?$/i.test(Deno.execPath().split(/[\\/]/).pop() ?? "");
}

async function loadModuleEntry(specifier: string, reserved?: ReservedParameters): Promise<TransportEntry> {
  // node:url only here, for a plugin file: a run without one never starts Deno's Node layer for it
  const url = /^(npm|jsr|https?|file):/.test(specifier)
    ? specifier
    : (await import("node:url")).pathToFileURL(isAbsolute(specifier) ? specifier : resolve(specifier)).href;
  let mod: unknown;
  try {
    // Not a literal on purpose: this is the user's file, chosen at run time.
    mod = await import(url);
  } catch (cause) {
    const first = String(cause instanceof Error ? cause.message : cause).split("\n")[0];
    throw new PluginError(specifier, `cannot be imported: ${first}`, {
      cause,
      hint: isCompiled()
        ? "the prebuilt binary cannot import plugin files; build it as an executable with serve() or use a custom build"
        : "check the path or npm: specifier given to --plugin or in the config",
    });
  }
  const transport = validateTransportModule(mod, specifier, { reserved });
  return {
    manifest: transport.manifest,
    origin: { kind: "module", specifier },
    load: () => Promise.resolve(transport),
  };
}

async function findExecutables(dirs: readonly string[]): Promise<{ name: string; path: string }[]> {
  const seen = new Map<string, string>();
  // folders listed already (device and inode): /bin and /usr/bin are one folder on most Linux systems now, and
  // PATH names both; a second listing finds only names the first one found
  const listed = new Set<string>();
  for (const dir of dirs) {
    if (dir === "") continue;
    let names: string[];
    try {
      const { dev, ino } = Deno.statSync(dir);
      if (ino !== null) {
        if (listed.has(`${dev}:${ino}`)) continue;
        listed.add(`${dev}:${ino}`);
      }
      // One synchronous listing per folder, keeping only plugin names: a PATH holds thousands of entries, and
      // an await per entry cost ~20 ms on every run (BENCHMARKS.md).
      names = [];
      for (const e of Deno.readDirSync(dir)) if (e.name.startsWith(EXECUTABLE_PREFIX)) names.push(e.name);
    } catch {
      continue; // a PATH entry that does not exist is normal
    }
    for (const file of names.sort()) {
      const m = EXECUTABLE_NAME.exec(file);
      if (m === null || seen.has(m[1])) continue; // the first on the search path wins, as for commands
      const path = join(dir, file);
      try {
        const info = await Deno.stat(path);
        if (!info.isFile || (Deno.build.os !== "windows" && ((info.mode ?? 0) & 0o111) === 0)) continue;
      } catch {
        continue;
      }
      seen.set(m[1], path);
    }
  }
  return [...seen].map(([name, path]) => ({ name, path }));
}

/**
 * Runs `<path> --manifest`, checks the manifest and returns an entry whose transport runs the
 * executable once per session.
 *
 * @throws {PluginError} naming the plugin when it fails, prints no valid manifest, or its ID is not
 * its file name's
 */
export async function loadExecutableEntry(
  path: string,
  name: string,
  reserved?: ReservedParameters,
): Promise<TransportEntry> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(path, {
      args: ["--manifest"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(MANIFEST_TIMEOUT_MS),
    }).output();
  } catch (cause) {
    throw new PluginError(name, `cannot run ${path} --manifest: ${(cause as Error).message}`, {
      cause,
      hint: "check that the file is an executable for this system",
    });
  }
  const lastWords = lastLine(new TextDecoder().decode(output.stderr));
  if (!output.success) {
    throw new PluginError(name, `${path} --manifest failed with exit code ${output.code}${lastWords}`, {
      hint: "run it yourself to see why",
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(output.stdout));
  } catch {
    throw new PluginError(name, `${path} --manifest did not print a JSON manifest`, {
      hint: "an out-of-process plugin prints its manifest as JSON on stdout (serve() does this)",
    });
  }
  const manifest = validateManifest(value, path, { reserved });
  if (manifest.id !== name) {
    throw new PluginError(name, `${path} declares the id "${manifest.id}", not "${name}"`, {
      hint: `rename the file to ${EXECUTABLE_PREFIX}${manifest.id} or fix its manifest`,
    });
  }
  const transport = executableTransport(path, manifest);
  return { manifest: transport.manifest, origin: { kind: "executable", path }, load: () => Promise.resolve(transport) };
}

function lastLine(text: string): string {
  const line = text.trim().split("\n").pop()?.trim() ?? "";
  return line === "" ? "" : `: ${line.slice(0, 200)}`;
}

/**
 * A `Transport` that runs `path` once per session and speaks the stdio protocol to it. Protocol 1
 * carries no port forwarding, no file copy and no byte streams besides a channel's, so `forward`, `copy`, `dial`
 * and `via` are dropped from the capabilities.
 */
/** What protocol 1 cannot carry for an executable plugin. */
const NOT_ON_THE_WIRE: readonly Capability[] = ["forward", "copy", "dial", "via"];

export function executableTransport(path: string, declared: TransportManifest): Transport {
  const manifest: TransportManifest = {
    ...declared,
    capabilities: declared.capabilities.filter((c) => !NOT_ON_THE_WIRE.includes(c)),
  };
  const caps = manifest.capabilities;
  const run = (ctx: OpenContext, call: Partial<Call> & Pick<Call, "op">) =>
    new PluginProcess(path, manifest, ctx).start(call);
  const sessions: SessionHost = {
    list: async (ctx) => (await (await run(ctx, { op: "list" })).result()) as HostSession[],
    create: async (ctx, name, options) =>
      (await (await run(ctx, { op: "create", name, options: { ...options } })).result()) as HostSession,
    attach: async (ctx, name, options) => (await run(ctx, { op: "attach", name, options: { ...options } })).channel(),
    disconnect: async (ctx, name, options) => {
      await (await run(ctx, { op: "disconnect", name, options: { ...options } })).result();
    },
    receive: async (ctx, name) => {
      const value = await (await run(ctx, { op: "receive", name })).result();
      return Uint8Array.from(atob(String(value)), (c) => c.charCodeAt(0));
    },
    remove: async (ctx, name) => {
      await (await run(ctx, { op: "remove", name })).result();
    },
  };
  const hosts = caps.some((c) => c === "disconnect" || c === "list" || c === "receive" || c === "remove");
  return {
    manifest,
    open: async (ctx: OpenContext, request: OpenRequest) => (await run(ctx, { op: "open", request })).channel(),
    ...(hosts ? { sessions } : {}),
  };
}

const LAYERS: readonly TransportLayer[] = [
  "config",
  "dns",
  "socket",
  "timeout",
  "handshake",
  "protocol",
  "host-key",
  "auth",
  "channel",
  "server",
];

/** Turns the plugin's closed `error` reply back into the error it threw. */
function errorFromReply(m: Extract<Message, { type: "error" }>): RemoteError {
  const code = m.code !== undefined && m.code in ExitCode && m.code !== "ok" && m.code !== "bug"
    ? m.code as keyof typeof ExitCode
    : undefined;
  if (m.layer !== undefined && (LAYERS as readonly string[]).includes(m.layer)) {
    return new TransportError(m.message, { layer: m.layer as TransportLayer, code, hint: m.hint });
  }
  return new RemoteError(code ?? "remoteFault", m.message, { hint: m.hint });
}

/** A readable stream fed by the message loop, which waits while the reader is behind. */
class Outlet {
  readonly stream: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #pulled = Promise.withResolvers<void>();
  #closed = false;

  constructor() {
    this.stream = new ReadableStream<Uint8Array>({
      start: (c) => void (this.#controller = c),
      pull: () => this.#pulled.resolve(),
      cancel: () => {
        this.#closed = true;
        this.#pulled.resolve();
      },
    }, { highWaterMark: 4 });
  }

  get closed(): boolean {
    return this.#closed;
  }

  async push(data: Uint8Array): Promise<void> {
    if (this.#closed) return;
    this.#controller.enqueue(data);
    while (!this.#closed && (this.#controller.desiredSize ?? 1) <= 0) {
      this.#pulled = Promise.withResolvers<void>();
      await this.#pulled.promise;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#controller.close();
    this.#pulled.resolve();
  }
}

/** One run of a plugin executable: one session or one session-host call. */
class PluginProcess {
  readonly #path: string;
  readonly #manifest: TransportManifest;
  readonly #ctx: OpenContext;
  #child!: Deno.ChildProcess;
  #stdin!: WritableStreamDefaultWriter<Uint8Array>;
  #stderrTail = "";
  #stderrDone: Promise<void> = Promise.resolve();
  #reply = Promise.withResolvers<"opened" | { value: unknown }>();
  #exit = Promise.withResolvers<ExitStatus>();
  #stdout = new Outlet();
  #stderr = new Outlet();
  #loop: Promise<void> = Promise.resolve();
  #disposed: Promise<void> | undefined;
  #sawExit = false;
  #hello = false;

  constructor(path: string, manifest: TransportManifest, ctx: OpenContext) {
    this.#path = path;
    this.#manifest = manifest;
    this.#ctx = ctx;
    this.#reply.promise.catch(() => {});
  }

  get #id(): string {
    return this.#manifest.id;
  }

  start(call: Partial<Call> & Pick<Call, "op">): this {
    try {
      this.#child = new Deno.Command(this.#path, { stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
    } catch (cause) {
      throw new PluginError(this.#id, `cannot start ${this.#path}: ${(cause as Error).message}`, { cause });
    }
    this.#stdin = this.#child.stdin.getWriter();
    this.#stdin.closed.catch(() => {});
    this.#stderrDone = this.#collectStderr();
    const full: Call = {
      target: this.#ctx.target,
      parameters: { ...this.#ctx.parameters },
      interactive: this.#ctx.prompt.interactive,
      ...call,
    };
    this.#loop = this.#run(full);
    const silent = setTimeout(() => {
      if (this.#hello) return;
      const error = new PluginError(this.#id, `said nothing for ${HELLO_TIMEOUT_MS / 1000} s after it was started`, {
        hint: `an out-of-process plugin must answer with the protocol's hello; is ${this.#path} one?`,
      });
      this.#reply.reject(error);
      this.#exit.resolve({ kind: "lost", error });
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, HELLO_TIMEOUT_MS);
    this.#loop.finally(() => clearTimeout(silent));
    const onAbort = () => void this.dispose();
    this.#ctx.signal.addEventListener("abort", onAbort, { once: true });
    this.#exit.promise.finally(() => this.#ctx.signal.removeEventListener("abort", onAbort)).catch(() => {});
    return this;
  }

  async #collectStderr(): Promise<void> {
    const debug = Deno.env.get("REMOTE_DEBUG") === "1";
    const text = this.#child.stderr.pipeThrough(new TextDecoderStream());
    for await (const chunk of text) {
      this.#stderrTail = (this.#stderrTail + chunk).slice(-4096);
      if (debug) { for (const line of chunk.split("\n")) if (line !== "") this.#ctx.notice(`${this.#id}: ${line}`); }
    }
  }

  #send(m: Message): Promise<void> {
    return this.#stdin.write(encodeMessage(m)).catch(() => {});
  }

  async #run(call: Call): Promise<void> {
    try {
      for await (const m of readMessages(this.#child.stdout, new FrameDecoder(this.#id, "plugin"))) {
        if (!this.#hello) {
          if (m.type !== "hello") throw this.#violation(`spoke ${m.type} before its hello`);
          this.#checkHello(m);
          this.#hello = true;
          await this.#send({ type: "call", call });
          continue;
        }
        switch (m.type) {
          case "hello":
            throw this.#violation("sent a second hello");
          case "opened":
            this.#reply.resolve("opened");
            break;
          case "result":
            this.#reply.resolve({ value: m.value });
            break;
          case "error": {
            const error = errorFromReply(m);
            this.#reply.reject(error);
            this.#exit.resolve({ kind: "lost", error });
            break;
          }
          case "stdout":
          case "stderr": {
            const outlet = m.type === "stdout" ? this.#stdout : this.#stderr;
            if (m.data.length === 0) outlet.close();
            else await outlet.push(m.data);
            break;
          }
          case "exit":
            this.#sawExit = true;
            this.#stdout.close();
            this.#stderr.close();
            this.#exit.resolve(statusFromWire(m.status));
            void this.dispose(); // the session is over: let the process go
            break;
          case "notice":
            this.#ctx.notice(m.line);
            break;
          case "prompt":
            this.#ctx.prompt.ask(m.question, { secret: m.secret, what: m.what }).then(
              (answer) => this.#send({ type: "answer", id: m.id, answer }),
              (e) => this.#send({ type: "answer", id: m.id, error: e instanceof Error ? e.message : String(e) }),
            );
            break;
        }
      }
      if (!this.#sawExit && !this.#disposed) {
        const status = await this.#child.status;
        await this.#stderrDone.catch(() => {});
        const how = status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
        throw new PluginError(
          this.#id,
          `${how} ${this.#hello ? "in the middle of a session" : "before its hello"}` +
            lastLine(this.#stderrTail),
          { hint: `this is a bug in the plugin ${this.#path}` },
        );
      }
    } catch (e) {
      const error = e instanceof RemoteError ? e : new PluginError(this.#id, String(e));
      this.#reply.reject(error);
      this.#exit.resolve({ kind: "lost", error });
      // A plugin that broke the protocol gets no grace period.
      if (!this.#disposed) {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
    } finally {
      this.#stdout.close();
      this.#stderr.close();
      this.#reply.reject(new PluginError(this.#id, "ended without answering"));
      if (!this.#sawExit) this.#exit.resolve({ kind: "lost", error: new PluginError(this.#id, "session closed") });
    }
  }

  #violation(message: string): PluginError {
    return new PluginError(this.#id, `protocol error: ${message}`, {
      hint: "the plugin does not speak remote-transport protocol 1; report it to its author",
    });
  }

  #checkHello(m: Extract<Message, { type: "hello" }>): void {
    if (m.protocol !== PROTOCOL_NAME) throw this.#violation(`hello names protocol "${m.protocol}"`);
    if (m.version !== PROTOCOL_VERSION) {
      throw new PluginError(this.#id, `speaks protocol version ${m.version}, this remote speaks ${PROTOCOL_VERSION}`, {
        hint: m.version > PROTOCOL_VERSION ? "upgrade remote" : "rebuild the plugin against this SDK",
      });
    }
    const manifest = validateManifest(m.manifest, this.#path);
    if (manifest.id !== this.#id) throw this.#violation(`hello declares the id "${manifest.id}"`);
  }

  /** Waits for a session-host call's result, then lets the process go. */
  async result(): Promise<unknown> {
    try {
      const reply = await this.#reply.promise;
      if (reply === "opened") throw this.#violation("answered a call with opened");
      return reply.value;
    } finally {
      await this.dispose();
    }
  }

  /** Waits for `opened` and returns the channel. */
  async channel(): Promise<Channel> {
    try {
      const reply = await this.#reply.promise;
      if (reply !== "opened") throw this.#violation("answered open with a result");
    } catch (e) {
      await this.dispose();
      throw e;
    }
    const caps = this.#manifest.capabilities;
    const stdin = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        for (let i = 0; i < chunk.length; i += 0x10000) {
          await this.#send({ type: "stdin", data: chunk.subarray(i, i + 0x10000) });
        }
      },
      close: () => this.#send({ type: "stdin", data: new Uint8Array(0) }),
      abort: () => this.#send({ type: "stdin", data: new Uint8Array(0) }),
    });
    return {
      stdin,
      stdout: this.#stdout.stream,
      stderr: this.#stderr.stream,
      exit: this.#exit.promise,
      ...(caps.includes("pty-resize")
        ? { resize: (size) => this.#send({ type: "resize", columns: size.columns, rows: size.rows }) }
        : {}),
      ...(caps.includes("signals") ? { signal: (name: string) => this.#send({ type: "signal", name }) } : {}),
      ...(caps.includes("disconnect") ? { detach: () => this.#send({ type: "detach" }) } : {}),
      [Symbol.asyncDispose]: () => this.dispose(),
    };
  }

  /** Ends the session: a close frame, then EOF, then SIGKILL if the process lingers. Safe twice. */
  dispose(): Promise<void> {
    this.#disposed ??= (async () => {
      await this.#send({ type: "close" });
      await this.#stdin.close().catch(() => {});
      const timer = setTimeout(() => {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, EXIT_GRACE_MS);
      try {
        await this.#child.status;
      } finally {
        clearTimeout(timer);
      }
      await this.#loop.catch(() => {});
      await this.#stderrDone.catch(() => {});
      this.#stdout.close();
      this.#stderr.close();
    })();
    return this.#disposed;
  }
}

function statusFromWire(status: WireExitStatus): ExitStatus {
  return status.kind === "lost" ? { kind: "lost", error: new Error(status.message) } : status;
}
