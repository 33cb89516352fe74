/**
 * The SSH connection-reuse master: a short-lived per-user background process that keeps authenticated
 * connections open and runs each client's command on a new channel of the matching one, so a repeated
 * short command costs a round trip instead of a handshake (OpenSSH's ControlMaster + ControlPersist).
 *
 * Security: the socket is 0600 in a 0700 directory owned by the user; a connection is shared only by
 * requests with the same {@linkcode connectionKey} (target, user, keys, agent, config, options); every
 * new connection goes through the full `connectSsh` (host-key verification, authentication), whose
 * questions are relayed to the client that asked for it. A held connection takes no new request once
 * a known_hosts file it was checked against has changed (a revoked key must not keep serving).
 * Requests beyond the sessions a server allows on one connection (sshd's MaxSessions) go on another
 * connection, never fail. The master exits after `idleMs` without clients, when its socket file is
 * removed, or on SIGTERM.
 *
 * @module
 */
import type { BackgroundContext, Channel, ExitStatus, OpenContext, Prompter } from "../../plugins/mod.ts";
import { RemoteError } from "../../plugins/mod.ts";
import { connectSsh, routeFingerprint, type SshConnection } from "./connection.ts";
import { debugLog } from "./debug_log.ts";
import {
  connectionKey,
  encodeFrame,
  ensurePrivateDir,
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

/** Connections one request may try before a refused session counts as the server's answer. */
const MAX_OPEN_ATTEMPTS = 8;

/** How long the master waits for a client to hang up after the exit frame, before closing on it. */
const LINGER_MS = 5_000;

/** One held connection. */
interface Held {
  connection: Promise<SshConnection>;
  /** false once lost, failed or retired: it takes no new channel */
  alive: boolean;
  /** channels open or opening on it */
  open: number;
  /** how many sessions the server allows on it, once it refused one */
  limit: number;
  /** a channel has opened on it */
  used: boolean;
  /** the known_hosts files it was checked against, as they were then (see knownHostsStamp) */
  stamp?: string;
}

/** The held connections of one connection key: more than one when the server limits sessions per connection. */
interface Pool {
  held: Held[];
  /** the sessions per connection the server allowed when it last refused one: a new connection starts with it */
  limit: number;
  /** requests waiting for a session to end on a held connection (the server took no further connection) */
  waiters: (() => void)[];
}

/** Pools by connection key. */
type Pools = Map<string, Pool>;

/**
 * Serves clients on `socketPath` until idle, removed or aborted; returns the exit code.
 *
 * @example
 * ```ts ignore
 * await runMaster({ socketPath: "/run/user/1000/remote/ssh.sock", idleMs: 60_000, signal: AbortSignal.timeout(1e6) });
 * ```
 */
export async function runMaster(options: MasterOptions): Promise<number> {
  await ensurePrivateDir(options.socketPath.slice(0, options.socketPath.lastIndexOf("/")));
  // Many clients may start a master at once: under a lock, the first listens and the others leave it in
  // charge. Without the lock a later one could replace the socket of one that already serves clients.
  const lock = await Deno.open(`${options.socketPath}.lock`, { create: true, write: true, mode: 0o600 });
  let listener: Deno.UnixListener;
  try {
    await lock.lock(true);
    const other = await Deno.connect({ transport: "unix", path: options.socketPath }).catch(() => undefined);
    if (other) {
      other.close();
      return 0;
    }
    await Deno.remove(options.socketPath).catch(() => {});
    listener = Deno.listen({ transport: "unix", path: options.socketPath });
    await Deno.chmod(options.socketPath, 0o600);
  } finally {
    lock.close();
  }
  const inode = (await Deno.stat(options.socketPath)).ino;
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  const pools: Pools = new Map();
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
      const done = serveClient(conn, pools, signal).catch(() => {}).finally(() => {
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
    for (const pool of pools.values()) {
      for (const h of pool.held) await h.connection.then((c) => c[Symbol.asyncDispose](), () => {});
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

/** Writes all of `bytes`; unlike `conn.writable`, a failed write does not close the socket for reading. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

async function serveClient(conn: Deno.Conn, pools: Pools, signal: AbortSignal): Promise<void> {
  let clientGone: () => void = () => {};
  const gone = new Promise<void>((r) => clientGone = r);
  let writing = Promise.resolve();
  const send = (type: number, payload?: Uint8Array | unknown) => {
    const bytes = encodeFrame(type, payload);
    // a failed write means the client is gone
    writing = writing.then(() => writeAll(conn, bytes)).catch(() => clientGone());
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
  let envSeen: (env: Record<string, string>) => void = () => {};
  const clientEnv = new Promise<Record<string, string>>((r) => envSeen = r);
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
            case Frame.C_SENDENV: {
              const { env } = framePayloadJson(frame.payload) as { env?: Record<string, string> };
              envSeen(env ?? {});
              break;
            }
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

  let release = () => {};
  let finished = false;
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
    // SendEnv's values come from the client, and only those its patterns name (the client picks them)
    const askEnv = async (patterns: string[]): Promise<Record<string, string>> => {
      if (patterns.length === 0) return {};
      await send(Frame.M_SENDENV, { patterns });
      const env = await Promise.race([clientEnv, gone.then(() => undefined)]);
      if (!env) throw new RemoteError("interrupted", "the client went away");
      return env;
    };
    try {
      const opened = await openChannel(pools, req, {
        prompt,
        notice: (line) => void send(Frame.M_NOTICE, { line }),
        signal,
        askEnv,
      });
      channel = opened.channel;
      release = opened.release;
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
    void gone.then(async () => {
      if (finished) return;
      await open.signal?.("TERM");
      await open[Symbol.asyncDispose]();
    }).catch(() => {});
    await Promise.all([
      forward(channel.stdout, (b) => send(Frame.M_STDOUT, b)),
      forward(channel.stderr, (b) => send(Frame.M_STDERR, b)),
    ]);
    const status = await channel.exit;
    finished = true;
    await send(Frame.M_EXIT, wireStatus(status));
    // The client hangs up once it has read the exit frame; closing first would make its late writes
    // (the end of stdin) fail, so wait for that, but not forever.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([gone, new Promise<void>((r) => timer = setTimeout(r, LINGER_MS))]);
    clearTimeout(timer);
  } finally {
    finished = true;
    await Promise.resolve(channel?.[Symbol.asyncDispose]()).catch(() => {});
    release();
    await writing;
    reader.cancel().catch(() => {});
    await pump;
    try {
      conn.close();
    } catch { /* closed by the peer, or by the reader's cancel */ }
  }
}

/** What {@linkcode openChannel} needs from the client it serves. */
interface ClientIo {
  prompt: Prompter;
  notice(line: string): void;
  signal: AbortSignal;
  /** asks the client for its values of the variables SendEnv `patterns` name */
  askEnv(patterns: string[]): Promise<Record<string, string>>;
}

/**
 * Opens the request's command on a held connection for its key, connecting (with the client's prompts)
 * when none is alive or has room: a server that refuses another session on a connection (MaxSessions)
 * gets the command on a new connection instead.
 */
async function openChannel(
  pools: Pools,
  req: ReuseRequest,
  io: ClientIo,
): Promise<{ channel: Channel; release(): void }> {
  const ctx: OpenContext = {
    target: req.target,
    parameters: req.parameters,
    // The connection outlives this client: only the master's own shutdown may close it.
    signal: io.signal,
    prompt: io.prompt,
    notice: io.notice,
  };
  // ssh_config is read again for every request: after an edit, the old connection may go to another host or user
  const route = await routeFingerprint(ctx).catch((error) => {
    if (error instanceof RemoteError && error.code === "config" && /environment variable/.test(error.message)) {
      throw new RemoteError("config", error.message, {
        hint:
          "the connection-reuse master sees only part of your environment: run with --no-reuse, or write the path " +
          "without ${VAR} (see: remote help invoke.md)",
      });
    }
    throw error;
  });
  const key = `${connectionKey(req)}\0${route}`;
  const hops = JSON.parse(route) as RouteHop[];
  const localEnv = await io.askEnv(hops[hops.length - 1]?.config?.sendEnv ?? []);
  const stamp = knownHostsStamp(hops);
  for (let attempt = 1;; attempt++) {
    const pool = pools.get(key) ?? { held: [], limit: Infinity, waiters: [] };
    pools.set(key, pool);
    // known_hosts changed since these were checked (a key revoked, replaced): verify again on a new connection
    for (const h of [...pool.held]) if (h.stamp !== undefined && h.stamp !== stamp) retire(pool, h);
    if (req.heldOnly && !pool.held.some((h) => h.alive)) {
      throw new RemoteError("notFound", `no connection to ${req.target.display} is held`);
    }
    let held = pool.held.find((h) => h.alive && h.open < h.limit);
    const fresh = !held;
    debugLog(ctx).debug1(
      fresh
        ? "reuse master: no connection held for this route: connecting"
        : `reuse master: using the connection it holds for this route (${held!.open} other command(s) on it)`,
    );
    held ??= hold(pool, ctx, hops);
    held.open++;
    let connection: SshConnection;
    try {
      connection = await held.connection;
    } catch (error) {
      held.open--;
      // another client's connect failed (declined prompt, Ctrl-C there): this client tries its own
      if (!fresh && attempt < MAX_OPEN_ATTEMPTS) continue;
      // the server took no further connection (MaxStartups, a login limit) while those held are full: queue
      // for a session on them rather than fail
      if (fresh && pool.held.some((h) => h.alive && h.used && h.open > 0)) {
        await new Promise<void>((resolve) => pool.waiters.push(resolve));
        attempt--;
        continue;
      }
      throw error;
    }
    try {
      const channel = req.subsystem !== undefined
        ? await connection.subsystem(req.subsystem)
        : await connection.exec(req.command, { env: req.env, localEnv });
      held.used = true;
      const h = held;
      let released = false;
      return {
        channel,
        release: () => {
          if (released) return;
          released = true;
          h.open--;
          if (!h.alive && h.open === 0) void Promise.resolve(connection[Symbol.asyncDispose]()).catch(() => {});
          pool.waiters.shift()?.();
        },
      };
    } catch (error) {
      held.open--;
      if (!sessionRefused(error) || attempt >= MAX_OPEN_ATTEMPTS) throw error;
      // a connection that never had a session refusing its first: that is the server's answer
      if (!held.used && held.open === 0) throw error;
      held.limit = Math.min(held.limit, held.open);
      if (held.limit > 0) pool.limit = held.limit;
      else retire(pool, held);
    }
  }
}

/** A hop of a route, as {@linkcode routeFingerprint} describes it (the parts the master reads). */
interface RouteHop {
  config?: { userKnownHostsFiles?: string[]; globalKnownHostsFiles?: string[]; sendEnv?: string[] };
}

/** Starts a new connection into `pool`; it leaves the pool once lost or failed. */
function hold(pool: Pool, ctx: OpenContext, hops: RouteHop[]): Held {
  const held: Held = { connection: connectSsh(ctx), alive: true, open: 0, limit: pool.limit, used: false };
  pool.held.push(held);
  const drop = () => {
    held.alive = false;
    const at = pool.held.indexOf(held);
    if (at >= 0) pool.held.splice(at, 1);
    // whoever waited for a session on it connects anew
    for (const wake of pool.waiters.splice(0)) wake();
  };
  held.connection.then((c) => {
    // the stamp is taken after the check, so a key this very connect added does not count as a change
    held.stamp = knownHostsStamp(hops);
    c.lost.then(drop);
  }, drop);
  return held;
}

/** Takes `held` out of service: running commands finish, then it closes. */
function retire(pool: Pool, held: Held): void {
  held.alive = false;
  const at = pool.held.indexOf(held);
  if (at >= 0) pool.held.splice(at, 1);
  if (held.open === 0) void held.connection.then((c) => c[Symbol.asyncDispose](), () => {});
}

/** Whether `error` is the server refusing to open another session channel (RFC 4254 5.1). */
function sessionRefused(error: unknown): boolean {
  const cause = (error as { cause?: unknown })?.cause;
  return cause instanceof Error && /channel open failure/i.test(cause.message);
}

/**
 * What the known_hosts files of a route look like now (path, size, times, inode): a changed stamp
 * means a key may have been revoked or replaced since a connection was checked against them.
 */
function knownHostsStamp(hops: RouteHop[]): string {
  const files = new Set<string>();
  for (const hop of hops) {
    for (const f of [...hop.config?.userKnownHostsFiles ?? [], ...hop.config?.globalKnownHostsFiles ?? []]) {
      files.add(f);
    }
  }
  const parts: string[] = [];
  for (const file of [...files].sort()) {
    let info: Deno.FileInfo | undefined;
    try {
      // synchronous: per request, and an async stat is a hop through a blocking thread (the reused first byte)
      info = Deno.statSync(file);
    } catch {
      info = undefined;
    }
    parts.push(
      info ? `${file}\0${info.size}\0${info.mtime?.getTime()}\0${info.ctime?.getTime()}\0${info.ino}` : `${file}\0-`,
    );
  }
  return parts.join("\n");
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
