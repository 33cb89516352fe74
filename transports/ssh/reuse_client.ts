/**
 * The client side of SSH connection reuse: runs a command through the per-user master (starting it
 * when none runs), so the command rides an already authenticated connection. The master's questions
 * (password, passphrase, unknown host key) are answered by this process's prompter, so nothing is
 * bypassed; its notices are printed here.
 *
 * @module
 */
import type { Channel, ExitStatus, OpenContext, OpenRequest } from "../../plugins/mod.ts";
import { ExitCode, type ExitCodeName, RemoteError, TransportError } from "../../plugins/mod.ts";
import { type DebugLog, debugLog, SILENT } from "./debug_log.ts";
import { parameters } from "./manifest.ts";
import {
  encodeFrame,
  ensurePrivateDir,
  Frame,
  FrameDecoder,
  framePayloadJson,
  idleMsFrom,
  masterEnvironment,
  masterSocketPath,
  type ReuseRequest,
  selectSendEnv,
  type WireError,
  type WireStatus,
} from "./reuse_protocol.ts";

/** How long a freshly started master may take to listen before this run connects directly instead. */
const MASTER_START_MS = 10_000;

/** The argv that starts this same program again: the compiled binary itself, or `deno run main.ts`. */
export function selfCommand(): { command: string; args: string[]; cwd: string } {
  if (Deno.build.standalone) return { command: Deno.execPath(), args: [], cwd: "/" };
  const main = new URL(Deno.mainModule);
  const dir = main.protocol === "file:" ? decodeURIComponent(main.pathname.replace(/\/[^/]*$/, "")) : "/";
  return { command: Deno.execPath(), args: ["run", "--allow-all", "--quiet", Deno.mainModule], cwd: dir || "/" };
}

/** A master this process started: whether it has exited yet. */
type Started = { exited(): boolean; code(): number | undefined };

/**
 * Per socket, the master this process started (32 hosts connecting at once start one master, not 32),
 * or why none could be started: then every host of this run connects directly.
 */
const started = new Map<string, Promise<Started | string>>();
/** Sockets for which this run has already said why it connects directly. */
const told = new Set<string>();

/**
 * Starts the master in the background (its own session, so the terminal's Ctrl-C never reaches it),
 * with only the environment it needs; resolves with why it cannot be started.
 */
function startMaster(socketPath: string, idleMs: number): Promise<Started | string> {
  let known = started.get(socketPath);
  if (!known) {
    known = launch(socketPath, idleMs);
    started.set(socketPath, known);
  }
  return known;
}

async function launch(socketPath: string, idleMs: number): Promise<Started | string> {
  try {
    await ensurePrivateDir(socketPath.slice(0, socketPath.lastIndexOf("/")));
  } catch (err) {
    return `${(err as Error).message}; remove it, or set XDG_RUNTIME_DIR to a private directory`;
  }
  const self = selfCommand();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(self.command, {
      args: [...self.args, "__transport-background", "ssh", "master", socketPath, String(idleMs)],
      cwd: self.cwd,
      clearEnv: true,
      env: masterEnvironment(),
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true,
    }).spawn();
  } catch (err) {
    return `cannot start the connection-reuse master: ${(err as Error).message}`;
  }
  child.unref();
  let code: number | undefined;
  child.status.then((s) => code = s.code, () => code = -1);
  return { exited: () => code !== undefined, code: () => code };
}

async function connectTo(socketPath: string): Promise<Deno.UnixConn | undefined> {
  try {
    // synchronous: an async file op is a hop through Deno's blocking-I/O threads, which a loaded machine
    // makes the slowest step of a reused run (BENCHMARKS.md, reused first byte)
    const info = Deno.lstatSync(socketPath);
    const uid = Deno.uid();
    // Someone else's socket could impersonate the master and read our commands and passwords.
    if (!info.isSocket || (uid !== null && info.uid !== uid)) return undefined;
    return await Deno.connect({ transport: "unix", path: socketPath });
  } catch {
    return undefined;
  }
}

/**
 * Connects to the running master, or starts one and waits for it to listen; returns why not when
 * it cannot be used (this run then connects directly).
 */
async function masterConnection(
  socketPath: string,
  idleMs: number,
  signal: AbortSignal,
  log: DebugLog = SILENT,
): Promise<Deno.UnixConn | string> {
  const first = await connectTo(socketPath);
  if (first) {
    log.debug1(`reuse: connected to the running master at ${socketPath}`);
    return first;
  }
  log.debug1(`reuse: no master listens at ${socketPath}: starting one`);
  const master = await startMaster(socketPath, idleMs);
  if (typeof master === "string") return master;
  const deadline = Date.now() + MASTER_START_MS;
  while (!signal.aborted) {
    // the exit is read before connecting: a master that lost the race to start leaves the winner listening
    const exited = master.exited();
    const conn = await connectTo(socketPath);
    if (conn) return conn;
    if (exited) return `the connection-reuse master exited (code ${master.code()}) without listening on ${socketPath}`;
    if (Date.now() > deadline) return `the connection-reuse master did not listen within ${MASTER_START_MS / 1000} s`;
    await new Promise((r) => setTimeout(r, 15));
  }
  throw new RemoteError("interrupted", "interrupted while connecting");
}

/** Writes all of `bytes`; unlike `conn.writable`, a failed write leaves the socket open for reading. */
async function writeAll(conn: Deno.UnixConn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/**
 * Whether `request` can go through the reuse master: a plain command (no PTY, no Subsystem parameter) or a
 * subsystem asked for by the core (PowerShell's `powershell`), with reuse allowed and ControlPersist not `no`.
 */
export function reusable(ctx: OpenContext, request: OpenRequest): boolean {
  return reuseBlocker(ctx, request) === undefined;
}

/** Why `request` cannot go through the reuse master, for the -v lines; undefined when it can. */
export function reuseBlocker(ctx: OpenContext, request: OpenRequest): string | undefined {
  if (request.kind !== "exec" && request.kind !== "subsystem") {
    return "an interactive session has a connection of its own";
  }
  if (ctx.reuse !== true) return "connection reuse is off here (remote invoke uses it, unless --no-reuse)";
  if (request.kind === "exec" && request.pty !== undefined) {
    return "a command on a pseudo-terminal has a connection of its own";
  }
  if (parameters.read(ctx.parameters).subsystem !== undefined) return "a subsystem has a connection of its own";
  if (idleMsFrom(optionsOf(ctx)) <= 0) return "ControlPersist is no";
  return undefined;
}

function optionsOf(ctx: OpenContext): Record<string, string> | undefined {
  return parameters.read(ctx.parameters).options;
}

/**
 * Runs `request` (an exec or a subsystem, see {@linkcode reusable}) through the reuse master, starting it if needed.
 * Resolves `undefined` when no master can be used (its directory is not private, it cannot start):
 * the caller then connects directly; why is said once per run. With `use.heldOnly` (shell
 * completion) it only uses a running master and a connection it holds already: `undefined`, silently,
 * when no master runs, and a `notFound` rejection when it holds no connection for the target.
 *
 * @throws {RemoteError} as a direct connection would (the master relays connection errors)
 */
export async function openReused(
  ctx: OpenContext,
  request: Extract<OpenRequest, { kind: "exec" | "subsystem" }>,
  socketPath?: string,
  use: { heldOnly?: boolean } = {},
): Promise<Channel | undefined> {
  socketPath ??= await masterSocketPath();
  const log = debugLog(ctx);
  const conn = use.heldOnly
    ? await connectTo(socketPath) ?? "no connection-reuse master is running"
    : await masterConnection(socketPath, idleMsFrom(optionsOf(ctx)), ctx.signal, log);
  if (typeof conn === "string") {
    if (use.heldOnly) return undefined;
    log.debug1(`reuse: bypassed, connecting directly: ${conn}`);
    if (!told.has(socketPath)) {
      told.add(socketPath);
      ctx.notice(`warning: connecting directly, without the connection-reuse master: ${conn}`);
    }
    return undefined;
  }
  // Frames are written with conn.write, not conn.writable: a write that fails (the master has finished
  // and closed while stdin's end was still on its way) would close the whole socket through the stream,
  // cancelling the pending read and losing the output and exit status already received.
  let writing: Promise<void> = Promise.resolve();
  const send = (type: number, payload?: Uint8Array | unknown): Promise<void> => {
    const bytes = encodeFrame(type, payload);
    const done = writing.then(() => writeAll(conn, bytes));
    writing = done.catch(() => {});
    return done;
  };
  const options = { ...(optionsOf(ctx) ?? {}) };
  for (const k of Object.keys(options)) if (/^control(persist|master|path)$/i.test(k)) delete options[k];
  const parameters = { ...ctx.parameters, ...(optionsOf(ctx) ? { Options: options } : {}) };
  const wire: ReuseRequest = {
    target: { ...ctx.target },
    parameters,
    ...(request.kind === "exec" ? { command: request.command } : { command: "", subsystem: request.name }),
    env: request.kind === "exec" && request.env ? { ...request.env } : undefined,
    interactive: ctx.prompt.interactive,
    ...(use.heldOnly ? { heldOnly: true } : {}),
  };
  // written at once (the first frame: nothing to queue behind), so the master opens the channel while this
  // process sets up its side; awaited below, where a failure is handled as before
  const requestSent = (async () => await writeAll(conn, encodeFrame(Frame.C_REQUEST, wire)))();
  writing = requestSent.catch(() => {});

  let opened: (v: void) => void = () => {};
  let failed: (e: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    opened = resolve;
    failed = reject;
  });
  let exitWith: (s: ExitStatus) => void = () => {};
  const exit = new Promise<ExitStatus>((r) => exitWith = r);
  let outC!: ReadableStreamDefaultController<Uint8Array>;
  let errC!: ReadableStreamDefaultController<Uint8Array>;
  let demand: (() => void) | undefined;
  const pull = () => {
    demand?.();
    demand = undefined;
  };
  const stdout = new ReadableStream<Uint8Array>({ start: (c) => void (outC = c), pull }, { highWaterMark: 4 });
  const stderr = new ReadableStream<Uint8Array>({ start: (c) => void (errC = c), pull }, { highWaterMark: 4 });
  const closeStreams = () => {
    for (const c of [outC, errC]) {
      try {
        c.close();
      } catch { /* closed or cancelled already */ }
    }
  };

  const reader = conn.readable.getReader();
  const decoder = new FrameDecoder();
  const pump = (async () => {
    let ended = false;
    try {
      while (!ended) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const frame of decoder.push(value)) {
          switch (frame.type) {
            case Frame.M_ASK: {
              const q = framePayloadJson(frame.payload) as {
                id: number;
                question: string;
                secret: boolean;
                what?: string;
              };
              ctx.prompt.ask(q.question, { secret: q.secret, what: q.what }).then(
                (answer) => send(Frame.C_ANSWER, { id: q.id, answer }),
                (err: Error) => {
                  // a question ended by Ctrl-C, SIGTERM or SIGHUP ends this run with that error (130, 143, 129)
                  if (err instanceof RemoteError) failed(err);
                  return send(Frame.C_ANSWER, { id: q.id, error: err.message });
                },
              ).catch(() => {});
              break;
            }
            case Frame.M_SENDENV: {
              // only the variables the connection's SendEnv names leave this process
              const { patterns } = framePayloadJson(frame.payload) as { patterns: string[] };
              send(Frame.C_SENDENV, { env: selectSendEnv(patterns, Deno.env.toObject()) }).catch(() => {});
              break;
            }
            case Frame.M_NOTICE:
              ctx.notice((framePayloadJson(frame.payload) as { line: string }).line);
              break;
            case Frame.M_ERROR:
              failed(remoteErrorFrom(framePayloadJson(frame.payload) as WireError));
              ended = true;
              break;
            case Frame.M_OPENED:
              log.debug1("reuse: the command runs on the master's connection");
              opened();
              break;
            case Frame.M_STDOUT:
            case Frame.M_STDERR: {
              const c = frame.type === Frame.M_STDOUT ? outC : errC;
              try {
                c.enqueue(frame.payload);
              } catch { /* the reader cancelled; drop */ }
              // Backpressure: stop reading the socket (and so the master, and so sshd) while a reader lags.
              while ((c.desiredSize ?? 1) <= 0) await new Promise<void>((r) => demand = r);
              break;
            }
            case Frame.M_EXIT:
              closeStreams();
              exitWith(statusFrom(framePayloadJson(frame.payload) as WireStatus));
              ended = true;
              break;
          }
        }
      }
    } catch {
      // a broken socket: reported below as a lost link
    }
    const lost = new TransportError(`the connection-reuse master went away`, { layer: "channel", code: "lost" });
    failed(lost);
    closeStreams();
    exitWith({ kind: "lost", error: lost });
  })();

  const onAbort = () => {
    // the reason says which: Ctrl-C (130) or SIGTERM (143)
    const why = ctx.signal.reason instanceof RemoteError ? ctx.signal.reason : undefined;
    failed(new RemoteError(why?.code ?? "interrupted", `${why?.message ?? "interrupted"} while connecting`));
  };
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  let disposed = false;
  const dispose = async () => {
    if (disposed) return;
    disposed = true;
    ctx.signal.removeEventListener("abort", onAbort);
    await writing;
    await reader.cancel().catch(() => {});
    pull();
    await pump;
    try {
      conn.close();
    } catch { /* already closed */ }
  };

  try {
    await requestSent;
    await ready;
  } catch (err) {
    await dispose();
    throw err;
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
  }

  return {
    stdin: new WritableStream<Uint8Array>({
      write: (chunk) => send(Frame.C_STDIN, chunk),
      // after the command ended the master may be gone already: its output and status still count
      close: () => send(Frame.C_STDIN_EOF).catch(() => {}),
      abort: () => send(Frame.C_STDIN_EOF).catch(() => {}),
    }),
    stdout,
    stderr,
    exit,
    signal: (name: string) => send(Frame.C_SIGNAL, { name: name.replace(/^SIG/, "") }).catch(() => {}),
    [Symbol.asyncDispose]: dispose,
  };
}

function remoteErrorFrom(e: WireError): RemoteError {
  const code = (e.code in ExitCode ? e.code : "bug") as ExitCodeName;
  return new RemoteError(code, e.message, { hint: e.hint });
}

function statusFrom(s: WireStatus): ExitStatus {
  if (s.kind === "lost") {
    return { kind: "lost", error: new TransportError(s.message, { layer: "channel", code: "lost" }) };
  }
  return s;
}
