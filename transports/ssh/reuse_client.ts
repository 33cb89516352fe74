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
import {
  encodeFrame,
  Frame,
  FrameDecoder,
  framePayloadJson,
  idleMsFrom,
  masterSocketPath,
  type ReuseRequest,
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

/** Sockets this process started a master for: 32 hosts connecting at once start one master, not 32. */
const started = new Set<string>();

/** Starts the master in the background (its own session, so the terminal's Ctrl-C never reaches it). */
function startMaster(socketPath: string, idleMs: number): void {
  if (started.has(socketPath)) return;
  started.add(socketPath);
  const self = selfCommand();
  const child = new Deno.Command(self.command, {
    args: [...self.args, "__transport-background", "ssh", "master", socketPath, String(idleMs)],
    cwd: self.cwd,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  child.unref();
  child.status.catch(() => {});
}

async function connectTo(socketPath: string): Promise<Deno.UnixConn | undefined> {
  try {
    const info = await Deno.lstat(socketPath);
    const uid = Deno.uid();
    // Someone else's socket could impersonate the master and read our commands and passwords.
    if (!info.isSocket || (uid !== null && info.uid !== uid)) return undefined;
    return await Deno.connect({ transport: "unix", path: socketPath });
  } catch {
    return undefined;
  }
}

/** Connects to the running master, or starts one and waits for it to listen. */
async function masterConnection(socketPath: string, idleMs: number, signal: AbortSignal): Promise<Deno.UnixConn> {
  const first = await connectTo(socketPath);
  if (first) return first;
  startMaster(socketPath, idleMs);
  const deadline = Date.now() + MASTER_START_MS;
  while (Date.now() < deadline && !signal.aborted) {
    await new Promise((r) => setTimeout(r, 15));
    const conn = await connectTo(socketPath);
    if (conn) return conn;
  }
  throw new TransportError("the connection-reuse master did not start", {
    layer: "socket",
    code: "refused",
    hint: "run with --no-reuse, or check that remote can run itself in the background",
  });
}

/**
 * Whether `request` can go through the reuse master: a plain command (no PTY, no subsystem) with
 * reuse allowed and ControlPersist not `no`.
 */
export function reusable(ctx: OpenContext, request: OpenRequest): boolean {
  if (ctx.reuse !== true || request.kind !== "exec" || request.pty !== undefined) return false;
  if (typeof ctx.parameters.Subsystem === "string") return false;
  return idleMsFrom(optionsOf(ctx)) > 0;
}

function optionsOf(ctx: OpenContext): Record<string, string> | undefined {
  const o = ctx.parameters.Options;
  return typeof o === "object" && o !== null ? o as Record<string, string> : undefined;
}

/**
 * Runs `request` (an exec, see {@linkcode reusable}) through the reuse master, starting it if needed.
 *
 * @throws {RemoteError} as a direct connection would (the master relays connection errors)
 */
export async function openReused(
  ctx: OpenContext,
  request: Extract<OpenRequest, { kind: "exec" }>,
  socketPath = masterSocketPath(),
): Promise<Channel> {
  const conn = await masterConnection(socketPath, idleMsFrom(optionsOf(ctx)), ctx.signal);
  const writer = conn.writable.getWriter();
  let writing: Promise<void> = Promise.resolve();
  const send = (type: number, payload?: Uint8Array | unknown): Promise<void> => {
    writing = writing.then(() => writer.write(encodeFrame(type, payload)));
    return writing;
  };
  const options = { ...(optionsOf(ctx) ?? {}) };
  for (const k of Object.keys(options)) if (/^control(persist|master|path)$/i.test(k)) delete options[k];
  const parameters = { ...ctx.parameters, ...(optionsOf(ctx) ? { Options: options } : {}) };
  const wire: ReuseRequest = {
    target: { ...ctx.target },
    parameters,
    command: request.command,
    env: request.env ? { ...request.env } : undefined,
    localEnv: Deno.env.toObject(),
    interactive: ctx.prompt.interactive,
  };

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
            case Frame.M_NOTICE:
              ctx.notice((framePayloadJson(frame.payload) as { line: string }).line);
              break;
            case Frame.M_ERROR:
              failed(remoteErrorFrom(framePayloadJson(frame.payload) as WireError));
              ended = true;
              break;
            case Frame.M_OPENED:
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
    await writing.catch(() => {});
    await writer.close().catch(() => {});
    await reader.cancel().catch(() => {});
    pull();
    await pump;
    try {
      conn.close();
    } catch { /* already closed */ }
  };

  try {
    await send(Frame.C_REQUEST, wire);
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
      close: () => send(Frame.C_STDIN_EOF),
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
