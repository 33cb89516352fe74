/**
 * The SSH connection-reuse master: a short-lived per-user background process that keeps authenticated
 * connections open and runs each client's command on a new channel of the matching one, so a repeated
 * short command costs a round trip instead of a handshake (OpenSSH's ControlMaster + ControlPersist).
 *
 * Security: the socket is 0600 in a 0700 directory owned by the user; a connection is shared only by
 * requests with the same {@linkcode connectionKey} (target, user, keys, agent, config, options); every
 * new connection goes through the full `connectSsh` (host-key verification, authentication), whose
 * questions are relayed to the client that asked for it. The master exits after `idleMs` without
 * clients, when its socket file is removed, or on SIGTERM.
 *
 * @module
 */
import type { BackgroundContext, Channel, ExitStatus, OpenContext, Prompter } from "../../plugins/mod.ts";
import { RemoteError } from "../../plugins/mod.ts";
import { connectSsh, routeFingerprint, type SshConnection } from "./connection.ts";
import {
  connectionKey,
  encodeFrame,
  Frame,
  FrameDecoder,
  framePayloadJson,
  type ReuseRequest,
  type WireError,
  type WireStatus,
} from "./reuse_protocol.ts";

/** Options of {@linkcode runMaster}. */
export interface MasterOptions {
  socketPath: string;
  /** milliseconds without any client before the master exits */
  idleMs: number;
  /** stops the master */
  signal: AbortSignal;
}

/** Stdin bytes queued towards a channel before the master stops reading that client (backpressure). */
const STDIN_QUEUE_MAX = 8 << 20;

interface Held {
  connection: Promise<SshConnection>;
  alive: boolean;
}

/**
 * Serves clients on `socketPath` until idle, removed or aborted; returns the exit code.
 *
 * @example
 * ```ts ignore
 * await runMaster({ socketPath: "/run/user/1000/remote/ssh.sock", idleMs: 60_000, signal: AbortSignal.timeout(1e6) });
 * ```
 */
export async function runMaster(options: MasterOptions): Promise<number> {
  const dir = options.socketPath.slice(0, options.socketPath.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await checkPrivateDir(dir);
  // Two clients may start a master at once: the second one leaves the first in charge.
  const other = await Deno.connect({ transport: "unix", path: options.socketPath }).catch(() => undefined);
  if (other) {
    other.close();
    return 0;
  }
  await Deno.remove(options.socketPath).catch(() => {});
  const listener = Deno.listen({ transport: "unix", path: options.socketPath });
  await Deno.chmod(options.socketPath, 0o600);
  const inode = (await Deno.stat(options.socketPath)).ino;
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  const held = new Map<string, Held>();
  let clients = 0;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  const armIdle = () => {
    clearTimeout(idleTimer);
    if (clients === 0) idleTimer = setTimeout(() => stop.abort(), options.idleMs);
  };
  // The socket file is the master's identity: once removed or replaced, no client can reach it.
  const watch = setInterval(async () => {
    const now = await Deno.stat(options.socketPath).catch(() => undefined);
    if (now?.ino !== inode) stop.abort();
  }, 1000);
  signal.addEventListener("abort", () => listener.close(), { once: true });
  armIdle();
  const running = new Set<Promise<void>>();
  try {
    for await (const conn of listener) {
      clients++;
      clearTimeout(idleTimer);
      const done = serveClient(conn, held, signal).catch(() => {}).finally(() => {
        clients--;
        running.delete(done);
        armIdle();
      });
      running.add(done);
    }
  } catch {
    // the listener was closed: shutting down
  } finally {
    clearTimeout(idleTimer);
    clearInterval(watch);
    const now = await Deno.stat(options.socketPath).catch(() => undefined);
    if (now?.ino === inode) await Deno.remove(options.socketPath).catch(() => {});
    await Promise.race([Promise.allSettled(running), new Promise((r) => setTimeout(r, 2000))]);
    for (const h of held.values()) {
      await h.connection.then((c) => c[Symbol.asyncDispose](), () => {});
    }
  }
  return 0;
}

/**
 * The transport's background entry: `master <socket> <idleMs>` runs {@linkcode runMaster}.
 *
 * @throws {RemoteError} for any other arguments
 */
export function background(args: readonly string[], ctx: BackgroundContext): Promise<number> {
  const [what, socketPath, idle] = args;
  if (what !== "master" || !socketPath || !/^\d+$/.test(idle ?? "")) {
    throw new RemoteError("usage", "usage: remote __transport-background ssh master <socket> <idle-ms>", {
      hint: "this verb is for remote's own use",
    });
  }
  return runMaster({ socketPath, idleMs: Number(idle), signal: ctx.signal });
}

/** Refuses a socket directory another user owns or others can enter. */
export async function checkPrivateDir(dir: string): Promise<void> {
  const info = await Deno.lstat(dir);
  const uid = Deno.uid();
  if (!info.isDirectory || (uid !== null && info.uid !== uid) || ((info.mode ?? 0) & 0o077) !== 0) {
    throw new RemoteError("config", `${dir} is not a private directory of this user`, {
      hint: `remove it or chmod 700 it; it holds remote's connection-reuse socket`,
    });
  }
}

async function serveClient(conn: Deno.Conn, held: Map<string, Held>, signal: AbortSignal): Promise<void> {
  const writer = conn.writable.getWriter();
  let writing = Promise.resolve();
  const send = (type: number, payload?: Uint8Array | unknown) => {
    writing = writing.then(() => writer.write(encodeFrame(type, payload))).catch(() => {});
    return writing;
  };
  const decoder = new FrameDecoder();
  const reader = conn.readable.getReader();
  const asks = new Map<number, { resolve(v: string): void; reject(e: Error): void }>();
  let nextAsk = 1;
  let channel: Channel | undefined;
  let stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  let request: ReuseRequest | undefined;
  let requestSeen: (r: ReuseRequest) => void = () => {};
  const firstRequest = new Promise<ReuseRequest>((r) => requestSeen = r);
  let clientGone: () => void = () => {};
  const gone = new Promise<void>((r) => clientGone = r);
  const pendingStdin: (Uint8Array | null)[] = [];
  let stdinChain: Promise<void> = Promise.resolve();
  let queued = 0;

  const pump = (async () => {
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const frame of decoder.push(value)) {
          switch (frame.type) {
            case Frame.C_REQUEST:
              if (!request) {
                request = framePayloadJson(frame.payload) as ReuseRequest;
                requestSeen(request);
              }
              break;
            case Frame.C_STDIN:
            case Frame.C_STDIN_EOF: {
              const chunk = frame.type === Frame.C_STDIN ? frame.payload : null;
              if (!stdin) {
                pendingStdin.push(chunk);
                break;
              }
              // Not awaited in line: a close waits for the channel, and signals must still get through.
              queued += chunk?.length ?? 0;
              const w = stdin;
              stdinChain = stdinChain.then(() => chunk ? w.write(chunk) : w.close()).catch(() => {}).finally(() =>
                queued -= chunk?.length ?? 0
              );
              if (queued > STDIN_QUEUE_MAX) await stdinChain;
              break;
            }
            case Frame.C_SIGNAL: {
              const { name } = framePayloadJson(frame.payload) as { name: string };
              await channel?.signal?.(name);
              break;
            }
            case Frame.C_ANSWER: {
              const a = framePayloadJson(frame.payload) as { id: number; answer?: string; error?: string };
              const waiting = asks.get(a.id);
              asks.delete(a.id);
              if (a.answer !== undefined) waiting?.resolve(a.answer);
              else waiting?.reject(new RemoteError("auth", a.error ?? "no answer"));
              break;
            }
          }
        }
      }
    } catch {
      // a broken client: treated as gone
    } finally {
      clientGone();
      for (const a of asks.values()) a.reject(new RemoteError("interrupted", "the client went away"));
    }
  })();

  try {
    const req = await Promise.race([firstRequest, gone.then(() => undefined)]);
    if (!req) return;
    const prompt: Prompter = {
      interactive: req.interactive,
      ask(question, options) {
        const id = nextAsk++;
        return new Promise<string>((resolve, reject) => {
          asks.set(id, { resolve, reject });
          void send(Frame.M_ASK, { id, question, secret: options?.secret ?? false, what: options?.what });
        });
      },
    };
    let connection: SshConnection;
    try {
      connection = await acquire(held, req, { prompt, notice: (line) => void send(Frame.M_NOTICE, { line }), signal });
      channel = await connection.exec(req.command, { env: req.env, localEnv: req.localEnv });
    } catch (error) {
      await send(Frame.M_ERROR, wireError(error));
      return;
    }
    await send(Frame.M_OPENED);
    const w = channel.stdin.getWriter();
    for (const chunk of pendingStdin) {
      stdinChain = stdinChain.then(() => chunk ? w.write(chunk) : w.close()).catch(() => {});
    }
    stdin = w;
    const open = channel;
    // A client that vanishes mid-command (killed) must not leave the command running unattended.
    const onGone = gone.then(async () => {
      await open.signal?.("TERM");
      await open[Symbol.asyncDispose]();
    });
    await Promise.all([
      forward(channel.stdout, (b) => send(Frame.M_STDOUT, b)),
      forward(channel.stderr, (b) => send(Frame.M_STDERR, b)),
    ]);
    const status = await channel.exit;
    await send(Frame.M_EXIT, wireStatus(status));
    void onGone;
  } finally {
    await Promise.resolve(channel?.[Symbol.asyncDispose]()).catch(() => {});
    await writing;
    await writer.close().catch(() => {});
    reader.cancel().catch(() => {});
    await pump;
    try {
      conn.close();
    } catch { /* closed by the peer */ }
  }
}

/** The held connection for this request's key, connecting (with the client's prompts) when none is alive. */
async function acquire(
  held: Map<string, Held>,
  req: ReuseRequest,
  io: { prompt: Prompter; notice(line: string): void; signal: AbortSignal },
): Promise<SshConnection> {
  const ctx: OpenContext = {
    target: req.target,
    parameters: req.parameters,
    // The connection outlives this client: only the master's own shutdown may close it.
    signal: io.signal,
    prompt: io.prompt,
    notice: io.notice,
  };
  // ssh_config is read again for every request: after an edit, the old connection may go to another host or user
  const key = `${connectionKey(req)}\0${await routeFingerprint(ctx)}`;
  const known = held.get(key);
  if (known?.alive) {
    try {
      return await known.connection;
    } catch {
      // a failed connect is not kept; fall through and try again for this client
    }
  }
  const entry: Held = { connection: connectSsh(ctx), alive: true };
  held.set(key, entry);
  entry.connection.then((c) =>
    c.lost.then(() => {
      entry.alive = false;
      if (held.get(key) === entry) held.delete(key);
    }), () => {
    entry.alive = false;
    if (held.get(key) === entry) held.delete(key);
  });
  return await entry.connection;
}

async function forward(stream: ReadableStream<Uint8Array>, send: (b: Uint8Array) => Promise<void>): Promise<void> {
  for await (const chunk of stream) await send(chunk);
}

function wireStatus(status: ExitStatus): WireStatus {
  switch (status.kind) {
    case "exited":
    case "signaled":
      return status;
    case "lost":
      return { kind: "lost", message: status.error.message };
    case "detached":
      return { kind: "exited", code: 0 };
  }
}

function wireError(error: unknown): WireError {
  if (error instanceof RemoteError) return { code: error.code, message: error.message, hint: error.hint };
  return { code: "bug", message: error instanceof Error ? error.message : String(error) };
}
