/**
 * Port forwarding over an authenticated SSH connection, with ssh(1)'s semantics: `-L` listens here and opens
 * a `direct-tcpip` (or `direct-streamlocal@openssh.com`) channel per connection (RFC 4254 7.2); `-R` asks
 * the server for a `tcpip-forward` (RFC 4254 7.1; `streamlocal-forward@openssh.com` for socket paths) and
 * connects each `forwarded-tcpip` channel to its destination here; `-D` is a SOCKS4/4a/5 proxy here whose
 * connections leave from the server; `-R [bind:]port` is the reverse, a SOCKS proxy on the server whose
 * connections leave from here (ssh 7.6).
 *
 * Listeners here bind loopback unless a bind address is given (`*` or an empty address: every interface),
 * as ssh's GatewayPorts=no. With `exitOnForwardFailure`, a forwarding that cannot be set up (a local port in
 * use, the server refusing a tcpip-forward) fails the whole start, as ssh's ExitOnForwardFailure=yes; without
 * it, a warning is printed and the others run. A connection the server refuses to forward (AllowTcpForwarding
 * no, nothing listening at the destination) is closed with a warning, as ssh does.
 *
 * Bytes flow through `pipeTo`, so a slow reader on one side stops reading on the other: local sockets are
 * not read while the channel's window is shut, and the channel's window is not reopened while a local
 * socket does not drain.
 *
 * @example Forward 127.0.0.1:8080 to port 80 as the server sees it
 * ```ts
 * import { startForwarding } from "./forward.ts";
 * import { parseForwardSpec } from "./forward_spec.ts";
 * import type { SshConnection } from "./connection.ts";
 * declare const connection: SshConnection;
 * await using fwd = await startForwarding(connection, [parseForwardSpec("L", "8080:localhost:80")], {
 *   notice: (line) => console.error(line),
 *   exitOnForwardFailure: true,
 * });
 * console.log(fwd.active[0].bound);
 * ```
 *
 * @module
 */
import type { ClientChannel, TcpConnectionDetails, UNIXConnectionDetails } from "ssh2";
import { GatheringWriter, RemoteError, TransportError } from "../../plugins/mod.ts";
import { channelReadable, channelWriter } from "./channel.ts";
import type { SshConnection } from "./connection.ts";
import { describeEndpoint, type ForwardEndpoint, type ForwardSpec } from "./forward_spec.ts";
import { acceptSocks, type SocksOutcome } from "./socks.ts";

/** How long a SOCKS client may take to send its request. */
export const SOCKS_HANDSHAKE_TIMEOUT_MS = 30_000;
/** How long disposal waits for the server to cancel a remote listener. */
const CANCEL_TIMEOUT_MS = 2_000;

/** Options of {@linkcode startForwarding}. */
export interface ForwardOptions {
  /** one-line notices for the user (warnings, allocated ports) */
  notice(line: string): void;
  /** ssh's ExitOnForwardFailure: a forwarding that cannot be set up fails the start (default false) */
  exitOnForwardFailure?: boolean;
  /** ssh's GatewayPorts: listeners without a bind address take every interface, not loopback (default false) */
  gatewayPorts?: boolean;
  /**
   * called when one forwarded connection fails (refused by the server, destination unreachable); by default
   * printed through `notice` as a warning, with the hint the first time each kind is seen
   */
  onConnectionError?(error: RemoteError): void;
}

/** A forwarding that is up. */
export interface ActiveForward {
  spec: ForwardSpec;
  /** where it listens: the port bound (the allocated one for port 0) or the socket path */
  bound: ForwardEndpoint;
}

/** Running forwardings; dispose to close their listeners and connections. */
export interface Forwarding extends AsyncDisposable {
  readonly active: readonly ActiveForward[];
  /** forwardings that could not be set up (only without exitOnForwardFailure) */
  readonly failures: readonly RemoteError[];
}

/** One side of a forwarded connection. */
interface End {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  closeWrite(): Promise<void> | void;
  close(): void;
}

/** Bytes read from a local socket at once: 8 packets, sent in one socket write (channel.ts writeCorked). */
const READ_SIZE = 256 * 1024;

/**
 * A socket's bytes as a stream that leaves the socket open at EOF: Deno's `conn.readable` closes the whole
 * socket when the peer half-closes, so the answer to a request sent before `shutdown(SHUT_WR)` (what `nc -N`
 * and HTTP/1.0 clients do) could not be delivered.
 */
function socketReadable(conn: Deno.Conn): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buf = new Uint8Array(READ_SIZE);
      const n = await conn.read(buf);
      if (n === null) controller.close();
      else controller.enqueue(buf.subarray(0, n));
    },
  }, { highWaterMark: 0 });
}

/**
 * A socket as one end of a bridge. Its writing side gathers what arrives while a socket write is under way
 * into the next write ({@linkcode GatheringWriter}): a channel delivers 32 KiB per packet, and one write
 * operation per packet (what `pipeTo(conn.writable)` does) capped -L downloads. Past the writer's bound a
 * client that reads late holds up the channel (and through its window, the server) with bounded memory.
 */
function connEnd(conn: Deno.Conn): End {
  const out = new GatheringWriter(conn);
  return {
    readable: socketReadable(conn),
    writable: out.writable,
    // what is taken is written before the half-close (the bridge pipes with preventClose)
    closeWrite: () => out.flush().catch(() => {}).then(() => conn.closeWrite()).catch(() => {}),
    close: () => {
      try {
        conn.close();
      } catch { /* closed before */ }
    },
  };
}

function channelEnd(ch: ClientChannel): End {
  return {
    readable: channelReadable(ch),
    writable: channelWriter(ch),
    // Ends the channel's writing half once everything written has gone out: ssh2 holds what the peer's
    // window has no room for, and a close() before that would cut it off.
    closeWrite: () =>
      new Promise<void>((resolve) => {
        if (ch.destroyed || ch.writableFinished) return resolve();
        ch.once("finish", resolve);
        ch.once("close", resolve);
        if (!ch.writableEnded) ch.end();
      }),
    close: () => {
      try {
        ch.close();
      } catch { /* the connection is gone */ }
    },
  };
}

function errnoName(err: unknown): string {
  return typeof err === "object" && err !== null && "code" in err ? String(err.code) : "";
}

/** The address a listener without a bind address takes, and the forms of `*`. */
function listenHosts(host: string | undefined, gatewayPorts: boolean): string[] {
  if (host === undefined) return gatewayPorts ? ["0.0.0.0", "::"] : ["127.0.0.1", "::1"];
  if (host === "") return ["0.0.0.0", "::"];
  if (host === "localhost") return ["127.0.0.1", "::1"];
  return [host];
}

function bindError(spec: ForwardSpec, where: string, cause: unknown): RemoteError {
  const flag = spec.kind === "dynamic" ? "-D" : "-L";
  if (cause instanceof Deno.errors.AddrInUse) {
    return new TransportError(
      spec.listen.kind === "unix" ? `socket ${where} already exists` : `local port ${where} is already in use`,
      {
        layer: "config",
        hint: spec.listen.kind === "unix"
          ? `remove it if no program uses it, or choose another path for ${flag} ${spec.text}`
          : `choose another port for ${flag} ${spec.text}, or stop the program listening there`,
        cause,
      },
    );
  }
  if (cause instanceof Deno.errors.PermissionDenied) {
    return new TransportError(`cannot listen on ${where}: permission denied`, {
      layer: "config",
      hint: spec.listen.kind === "unix" ? "choose a folder you can write to" : "ports below 1024 need root",
      cause,
    });
  }
  if (cause instanceof Deno.errors.AddrNotAvailable) {
    return new TransportError(`cannot listen on ${where}: the address is not on this machine`, {
      layer: "config",
      hint: `give one of this machine's addresses, localhost, or * for every interface in ${flag} ${spec.text}`,
      cause,
    });
  }
  return new TransportError(`cannot listen on ${where}: ${(cause as Error)?.message ?? cause}`, {
    layer: "config",
    hint: `check the bind address in ${flag} ${spec.text}`,
    cause,
  });
}

/** Listens as ssh does: every address of the bind host (127.0.0.1 and ::1 for loopback), one port. */
function listenLocal(spec: ForwardSpec, gatewayPorts: boolean): { listeners: Deno.Listener[]; bound: ForwardEndpoint } {
  const ep = spec.listen;
  if (ep.kind === "unix") {
    try {
      return { listeners: [Deno.listen({ transport: "unix", path: ep.path })], bound: ep };
    } catch (cause) {
      throw bindError(spec, ep.path, cause);
    }
  }
  const hosts = listenHosts(ep.host, gatewayPorts);
  const listeners: Deno.Listener[] = [];
  let port = ep.port;
  for (const [i, hostname] of hosts.entries()) {
    try {
      const l = Deno.listen({ hostname, port, transport: "tcp" });
      listeners.push(l);
      port = (l.addr as Deno.NetAddr).port;
    } catch (cause) {
      // the first address must work; the other family is best effort (no IPv6, or a dual-stack "::")
      if (i === 0) throw bindError(spec, describeEndpoint({ ...ep, host: ep.host ?? "localhost" }), cause);
    }
  }
  return { listeners, bound: { kind: "tcp", host: ep.host, port } };
}

/** The bind address sent in tcpip-forward, as ssh's channel_rfwd_bind_host(). */
function remoteBindHost(host: string | undefined): string {
  return host === undefined ? "localhost" : host === "*" ? "" : host;
}

function openFailure(display: string, to: string, err: unknown, via: string): RemoteError {
  const reason = typeof err === "object" && err !== null && "reason" in err ? Number(err.reason) : 0;
  const text = (err as Error)?.message?.replace(/^\(SSH\) Channel open failure: /, "") ?? String(err);
  // ssh2's words when the connection under the channel is gone (never opened, or dropped while opening)
  if (/^(Not connected|No response from server)$/.test(text)) {
    return new TransportError(`connection to ${display} is lost: cannot forward ${via} to ${to}`, {
      layer: "channel",
      code: "lost",
      hint: "run the command again to reconnect",
      cause: err,
    });
  }
  // RFC 4254 5.1 reason codes
  if (reason === 1) {
    return new TransportError(`${display} refused to forward ${via} to ${to}: administratively prohibited`, {
      layer: "server",
      hint: "the server's sshd_config forbids it (AllowTcpForwarding, PermitOpen, DisableForwarding)",
      cause: err,
    });
  }
  if (reason === 2) {
    return new TransportError(`${display} cannot connect to ${to} (forwarding ${via}): ${text || "connect failed"}`, {
      layer: "server",
      hint: `is something listening on ${to} as the server sees it?`,
      cause: err,
    });
  }
  return new TransportError(`${display} could not open a channel to ${to} (forwarding ${via}): ${text}`, {
    layer: "server",
    hint: "check the server's sshd_config (AllowTcpForwarding, AllowStreamLocalForwarding) and logs",
    cause: err,
  });
}

/** Copies both ways until both sides are done; half-closes as each direction ends, as ssh does. */
async function bridge(a: End, b: End, aFirst?: Uint8Array, bFirst?: Uint8Array): Promise<void> {
  const one = async (from: End, to: End, first?: Uint8Array) => {
    if (first?.length) {
      const w = to.writable.getWriter();
      await w.write(first);
      w.releaseLock();
    }
    await from.readable.pipeTo(to.writable, { preventClose: true });
    await to.closeWrite();
  };
  try {
    await Promise.all([one(a, b, aFirst), one(b, a, bFirst)]);
  } catch {
    // a reset on either side ends both; nothing to tell the user, as with ssh
  } finally {
    a.close();
    b.close();
  }
}

/**
 * Sets up `specs` on `connection` and runs them until disposed (or the connection ends).
 *
 * @throws {RemoteError} with `exitOnForwardFailure`, for the first forwarding that cannot be set up: a local
 * port in use or a bad bind address (230), the server refusing a remote listener (251)
 */
export async function startForwarding(
  connection: Pick<SshConnection, "client" | "display">,
  specs: readonly ForwardSpec[],
  options: ForwardOptions,
): Promise<Forwarding> {
  const { client, display } = connection;
  const active: ActiveForward[] = [];
  const failures: RemoteError[] = [];
  const listeners: Deno.Listener[] = [];
  const socketFiles: string[] = [];
  const remoteTcp = new Map<string, ForwardSpec>();
  const remoteUnix = new Map<string, ForwardSpec>();
  const open = new Set<End>();
  const running = new Set<Promise<void>>();
  const hinted = new Set<string>();
  let closed = false;

  const report = options.onConnectionError ?? ((error: RemoteError) => {
    options.notice(`warning: ${error.message}`);
    const kind = error instanceof TransportError ? `${error.layer}:${error.hint}` : error.message;
    if (error.hint && !hinted.has(kind)) {
      hinted.add(kind);
      options.notice(`hint: ${error.hint}`);
    }
  });

  const track = (work: Promise<void>) => {
    const p = work.catch(() => {}).finally(() => running.delete(p));
    running.add(p);
  };
  const run = async (a: End, b: End, aFirst?: Uint8Array, bFirst?: Uint8Array) => {
    open.add(a);
    open.add(b);
    try {
      await bridge(a, b, aFirst, bFirst);
    } finally {
      open.delete(a);
      open.delete(b);
    }
  };

  /** Opens a channel from the server to `to` for a connection that came from `from`. */
  const openChannel = (to: ForwardEndpoint, from: Deno.Addr): Promise<ClientChannel> =>
    new Promise((resolve, reject) => {
      const cb = (err: Error | undefined, ch: ClientChannel) => err ? reject(err) : resolve(ch);
      try {
        if (to.kind === "unix") client.openssh_forwardOutStreamLocal(to.path, cb);
        else {
          const src = from.transport === "tcp" ? from as Deno.NetAddr : { hostname: "127.0.0.1", port: 0 };
          client.forwardOut(src.hostname, src.port, to.host ?? "localhost", to.port, cb);
        }
      } catch (err) {
        reject(err); // not connected any more
      }
    });

  const connectHere = async (to: ForwardEndpoint): Promise<Deno.Conn> => {
    if (to.kind === "unix") return await Deno.connect({ transport: "unix", path: to.path });
    const conn = await Deno.connect({ hostname: to.host ?? "localhost", port: to.port });
    conn.setNoDelay(true);
    return conn;
  };

  const serveLocal = async (spec: ForwardSpec, conn: Deno.Conn) => {
    if (conn.remoteAddr.transport === "tcp") (conn as Deno.TcpConn).setNoDelay(true);
    const local = connEnd(conn);
    // tracked from the start, so disposal also ends connections still in their SOCKS handshake or channel open
    open.add(local);
    try {
      if (closed) return local.close();
      await serveLocalConn(spec, conn, local);
    } finally {
      open.delete(local);
    }
  };

  const serveLocalConn = async (spec: ForwardSpec, conn: Deno.Conn, local: End) => {
    if (spec.kind === "local") {
      let ch: ClientChannel;
      try {
        ch = await openChannel(spec.connect!, conn.remoteAddr);
      } catch (err) {
        local.close();
        if (!closed) report(openFailure(display, describeEndpoint(spec.connect!), err, `-L ${spec.text}`));
        return;
      }
      if (closed) {
        ch.close();
        return local.close();
      }
      await run(local, channelEnd(ch));
      return;
    }
    // dynamic: a SOCKS proxy whose connections leave from the server
    const reader = local.readable.getReader();
    const writer = local.writable.getWriter();
    let hs;
    try {
      hs = await acceptSocks(reader, writer, AbortSignal.timeout(SOCKS_HANDSHAKE_TIMEOUT_MS));
    } catch {
      local.close();
      return;
    }
    const to: ForwardEndpoint = { kind: "tcp", host: hs.request.host, port: hs.request.port };
    let ch: ClientChannel;
    try {
      ch = await openChannel(to, conn.remoteAddr);
    } catch (err) {
      const reason = typeof err === "object" && err !== null && "reason" in err ? Number(err.reason) : 0;
      const outcome: SocksOutcome = reason === 1 ? "prohibited" : reason === 2 ? "refused" : "failure";
      await hs.reply(outcome).catch(() => {});
      local.close();
      if (!closed) report(openFailure(display, describeEndpoint(to), err, `-D ${spec.text}`));
      return;
    }
    try {
      if (closed) throw new Error("closed");
      await hs.reply("ok");
    } catch {
      local.close();
      ch.close();
      return;
    }
    reader.releaseLock();
    writer.releaseLock();
    await run(local, channelEnd(ch), hs.rest);
  };

  /** A channel the server opened for a remote forwarding: connect it to its destination here. */
  const serveRemote = async (spec: ForwardSpec, accept: () => ClientChannel, reject: () => void) => {
    if (closed) return reject();
    if (spec.connect) {
      let conn: Deno.Conn;
      try {
        conn = await connectHere(spec.connect);
      } catch (err) {
        reject();
        report(
          new TransportError(
            `cannot connect to ${describeEndpoint(spec.connect)} (forwarding -R ${spec.text}): ${
              errnoName(err) || (err as Error).message
            }`,
            { layer: "socket", hint: `is something listening on ${describeEndpoint(spec.connect)} here?`, cause: err },
          ),
        );
        return;
      }
      await run(channelEnd(accept()), connEnd(conn));
      return;
    }
    // -R [bind:]port: the server's side speaks SOCKS, connections leave from here
    const ch = accept();
    const remote = channelEnd(ch);
    open.add(remote);
    try {
      await serveRemoteSocks(remote);
    } finally {
      open.delete(remote);
    }
  };

  const serveRemoteSocks = async (remote: End) => {
    const reader = remote.readable.getReader();
    const writer = remote.writable.getWriter();
    let hs;
    try {
      hs = await acceptSocks(reader, writer, AbortSignal.timeout(SOCKS_HANDSHAKE_TIMEOUT_MS));
    } catch {
      remote.close();
      return;
    }
    let conn: Deno.Conn;
    try {
      conn = await connectHere({ kind: "tcp", host: hs.request.host, port: hs.request.port });
    } catch (err) {
      await hs.reply(err instanceof Deno.errors.ConnectionRefused ? "refused" : "unreachable").catch(() => {});
      remote.close();
      return;
    }
    await hs.reply("ok").catch(() => {});
    reader.releaseLock();
    writer.releaseLock();
    await run(remote, connEnd(conn), hs.rest);
  };

  const onTcp = (details: TcpConnectionDetails, accept: () => ClientChannel, reject: () => void) => {
    const spec = remoteTcp.get(`${details.destIP}:${details.destPort}`);
    if (spec) track(serveRemote(spec, accept, reject));
  };
  const onUnix = (details: UNIXConnectionDetails, accept: () => ClientChannel, reject: () => void) => {
    const spec = remoteUnix.get(details.socketPath);
    if (spec) track(serveRemote(spec, accept, reject));
  };
  client.on("tcp connection", onTcp);
  client.on("unix connection", onUnix as never);

  const requestRemote = (spec: ForwardSpec): Promise<ForwardEndpoint> =>
    new Promise((resolve, reject) => {
      const ep = spec.listen;
      const refused = (err: unknown) =>
        new TransportError(`${display} refused remote port forwarding on ${describeEndpoint(ep)}`, {
          layer: "server",
          hint: ep.kind === "unix"
            ? "the path may exist there, or the server's sshd_config forbids it (AllowStreamLocalForwarding)"
            : "the port may be in use there (ports below 1024 need root), or the server's sshd_config forbids it " +
              "(AllowTcpForwarding, PermitListen)",
          cause: err,
        });
      try {
        if (ep.kind === "unix") {
          client.openssh_forwardInStreamLocal(ep.path, (err?: Error | null) => {
            if (err) return reject(refused(err));
            remoteUnix.set(ep.path, spec);
            resolve(ep);
          });
        } else {
          const bind = remoteBindHost(ep.host);
          client.forwardIn(bind, ep.port, (err, port) => {
            if (err) return reject(refused(err));
            remoteTcp.set(`${bind}:${port}`, spec);
            resolve({ kind: "tcp", host: ep.host, port });
          });
        }
      } catch (cause) {
        reject(new TransportError(`connection to ${display} is closed`, { layer: "channel", cause }));
      }
    });

  const dispose = async () => {
    if (closed) return;
    closed = true;
    for (const l of listeners) {
      try {
        l.close();
      } catch { /* closed before */ }
    }
    for (const path of socketFiles) await Deno.remove(path).catch(() => {});
    const cancels: Promise<void>[] = [];
    for (const key of remoteTcp.keys()) {
      const at = key.lastIndexOf(":");
      cancels.push(
        new Promise<void>((resolve) => {
          try {
            client.unforwardIn(key.slice(0, at), Number(key.slice(at + 1)), () => resolve());
          } catch {
            resolve(); // not connected any more
          }
        }),
      );
    }
    for (const path of remoteUnix.keys()) {
      cancels.push(
        new Promise<void>((resolve) => {
          try {
            client.openssh_unforwardInStreamLocal(path, () => resolve());
          } catch {
            resolve();
          }
        }),
      );
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all(cancels), new Promise((r) => timer = setTimeout(r, CANCEL_TIMEOUT_MS))]);
    clearTimeout(timer);
    client.off("tcp connection", onTcp);
    client.off("unix connection", onUnix as never);
    for (const end of open) end.close();
    await Promise.all(running);
  };

  try {
    for (const spec of specs) {
      try {
        if (spec.kind === "remote") {
          const bound = await requestRemote(spec);
          if (spec.listen.kind === "tcp" && spec.listen.port === 0 && bound.kind === "tcp") {
            options.notice(
              `allocated port ${bound.port} for remote forward to ${
                spec.connect ? describeEndpoint(spec.connect) : "a SOCKS proxy here"
              }`,
            );
          }
          active.push({ spec, bound });
          continue;
        }
        const { listeners: ls, bound } = listenLocal(spec, options.gatewayPorts ?? false);
        listeners.push(...ls);
        if (spec.listen.kind === "unix") socketFiles.push(spec.listen.path);
        active.push({ spec, bound });
        for (const l of ls) {
          track((async () => {
            try {
              for await (const conn of l) track(serveLocal(spec, conn));
            } catch { /* closed */ }
          })());
        }
      } catch (err) {
        if (!(err instanceof RemoteError)) throw err;
        if (options.exitOnForwardFailure) throw err;
        failures.push(err);
        options.notice(`warning: ${err.message}`);
        if (err.hint) options.notice(`hint: ${err.hint}`);
      }
    }
  } catch (err) {
    await dispose();
    throw err;
  }
  return { active, failures, [Symbol.asyncDispose]: dispose };
}
