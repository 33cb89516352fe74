/**
 * Local port forwarding over a Session Manager "Port" session.
 *
 * One session carries every local connection: with a `LocalPortForwarding` session and an agent
 * newer than 3.0.196.0 the Output stream is one smux session and each local connection is a smux
 * stream (plugin `portsession/muxportforwarding.go`; the agent muxes because remote's ClientVersion
 * is at least 1.1.70, agent `plugins/port/port.go`). Older agents get the "basic" mode: one local
 * connection at a time, Flag DisconnectToPort when it ends (`basicportforwarding.go`); further
 * connections wait their turn. A basic agent dials the destination when the session starts (so a
 * server that speaks first is heard before any local client connects: that output waits for the
 * first connection) and again on the first data after a DisconnectToPort (agent `port_basic.go`).
 *
 * Output waiting for slow local clients is bounded: past {@linkcode FORWARD_HIGH_WATER_BYTES} the
 * data channel is not read until it drains (smux v1 has no per-stream window, so a stalled stream
 * holds the whole session, as xtaci/smux's own receive buffer does).
 *
 * @module
 */
import { type ForwardRequest, type OpenContext, TransportError, UsageError } from "../../plugins/mod.ts";
import { PayloadFlag } from "./client_message.ts";
import { resolveConnection } from "./connection.ts";
import { compareVersions, SsmSession } from "./session.ts";
import { SmuxClient, smuxOutput } from "./smux.ts";

const MUX_AFTER_AGENT = "3.0.196.0";

/** Output bytes queued for local connections before remote stops reading the data channel. */
export const FORWARD_HIGH_WATER_BYTES = 1024 * 1024;
const TERMINATE_FLAG_AFTER_AGENT = "2.3.722.0";

function listen(port: number): Deno.TcpListener {
  try {
    return Deno.listen({ hostname: "127.0.0.1", port, transport: "tcp" });
  } catch (cause) {
    if (cause instanceof Deno.errors.AddrInUse) {
      throw new TransportError(`local port ${port} is already in use`, {
        layer: "config",
        hint: "choose another --local-port (0 picks a free one)",
        cause,
      });
    }
    throw new TransportError(`cannot listen on 127.0.0.1:${port}: ${String(cause)}`, { layer: "config", cause });
  }
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch { /* already closed */ }
}

/**
 * Listens on 127.0.0.1:`localPort` and forwards each connection to `remotePort` on the target (or on
 * `remoteHost` as the target sees it). Resolves when `ctx.signal` aborts or the session closes.
 *
 * @throws {TransportError} when the port is taken, for AWS errors, or when the session is lost
 */
export async function forward(ctx: OpenContext, request: ForwardRequest): Promise<void> {
  if (request.remotePort === undefined) {
    throw new UsageError("missing --remote-port", { hint: "e.g. --local-port 8080 --remote-port 80" });
  }
  const connection = await resolveConnection(ctx);
  const input = connection.input;
  input.DocumentName ??= request.remoteHost
    ? "AWS-StartPortForwardingSessionToRemoteHost"
    : "AWS-StartPortForwardingSession";
  input.Parameters = {
    portNumber: [String(request.remotePort)],
    ...(request.remoteHost ? { host: [request.remoteHost] } : {}),
    ...input.Parameters,
  };
  const listener = listen(request.localPort ?? 0);
  const localPort = listener.addr.port;
  input.Parameters.localPortNumber ??= [String(localPort)];

  const conns = new Set<Deno.TcpConn>();
  const { promise: ended, resolve: end } = Promise.withResolvers<Error | undefined>();
  // output that comes with the end of the handshake, before the mode is known (a basic agent's destination
  // may speak first): kept for the handler chosen below
  const beforeMode: Uint8Array[] = [];
  let onOutput: (data: Uint8Array) => void = (data) => void beforeMode.push(data);
  let session: SsmSession;
  try {
    session = await SsmSession.start({
      control: connection.control,
      input,
      notice: (line) => ctx.notice(line),
      signal: ctx.signal,
      handlers: {
        onOutput: (data) => onOutput(data),
        onFlag: (flag) => {
          if (flag === PayloadFlag.connectToPortError) {
            ctx.notice(
              `warning: the target could not connect to ${request.remoteHost ?? "port"} ${request.remotePort}`,
            );
          }
        },
        onEnd: (result) => end(result.kind === "lost" ? result.error : undefined),
      },
    });
  } catch (error) {
    listener.close();
    throw error;
  }
  const info = session.info;
  if (info.sessionType !== "Port") {
    listener.close();
    await session.terminate();
    throw new TransportError(
      `the session document opened a ${info.sessionType || "shell"} session, not a port session`,
      {
        layer: "protocol",
        hint: "use a port forwarding document such as AWS-StartPortForwardingSession",
      },
    );
  }
  const mux = info.properties.type === "LocalPortForwarding" && compareVersions(info.agentVersion, MUX_AFTER_AGENT) > 0;

  // bytes handed to local sockets and not yet written: backpressure on the data channel
  let queued = 0;
  const deliver = (writer: WritableStreamDefaultWriter<Uint8Array>, data: Uint8Array): Promise<void> => {
    queued += data.length;
    if (queued > FORWARD_HIGH_WATER_BYTES) session.pauseOutput();
    return writer.write(data).finally(() => {
      queued -= data.length;
      if (queued <= FORWARD_HIGH_WATER_BYTES / 2) session.resumeOutput();
    });
  };

  const pump = async (conn: Deno.TcpConn, send: (d: Uint8Array) => Promise<void>) => {
    const reader = conn.readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        await send(value);
      }
    } catch {
      /* reset by the local client, or the session ended */
    } finally {
      reader.releaseLock();
    }
  };

  let handle: (conn: Deno.TcpConn) => Promise<void>;
  if (mux) {
    const smux = new SmuxClient((bytes) => session.write(bytes));
    onOutput = smuxOutput(smux, end);
    handle = async (conn) => {
      const writer = conn.writable.getWriter();
      let chain = Promise.resolve();
      const id = await smux.open({
        onData: (data) => {
          queued += data.length; // counted at once: the chain may hold many
          if (queued > FORWARD_HIGH_WATER_BYTES) session.pauseOutput();
          chain = chain.then(() => {
            queued -= data.length;
            return deliver(writer, data);
          }).catch(() => {});
        },
        onClose: () => {
          chain = chain.then(() => writer.close()).catch(() => {}).then(() => closeQuietly(conn));
        },
      });
      await pump(conn, (d) => smux.send(id, d));
      await smux.close(id).catch(() => {});
      await chain;
      closeQuietly(conn);
    };
  } else {
    // basic mode: one connection at a time over the plain Output stream
    let current: WritableStreamDefaultWriter<Uint8Array> | undefined;
    // what the destination said before the first local connection (the agent dials at session start)
    let early: Uint8Array[] | undefined = [];
    let earlyBytes = 0;
    let turn = Promise.resolve();
    onOutput = (data) => {
      if (current) {
        void deliver(current, data).catch(() => {});
      } else if (early) {
        early.push(data);
        earlyBytes += data.length;
        if (earlyBytes > FORWARD_HIGH_WATER_BYTES) session.pauseOutput();
      }
      // else: the previous connection's destination, which the agent closes on DisconnectToPort
    };
    handle = (conn) => {
      const run = async () => {
        const writer = conn.writable.getWriter();
        current = writer;
        for (const data of early ?? []) void deliver(writer, data).catch(() => {});
        early = undefined;
        if (queued <= FORWARD_HIGH_WATER_BYTES / 2) session.resumeOutput(); // counted as queued now
        await pump(conn, (d) => session.write(d));
        current = undefined;
        closeQuietly(conn);
        await session.flag(PayloadFlag.disconnectToPort).catch(() => {});
      };
      turn = turn.then(run);
      return turn;
    };
  }

  for (const data of beforeMode.splice(0)) onOutput(data);
  request.onListening?.(localPort);
  const accepting = (async () => {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return; // the listener was closed
      }
      conns.add(conn);
      void handle(conn).catch(() => {}).finally(() => {
        conns.delete(conn);
        closeQuietly(conn);
      });
    }
  })();

  const onAbort = () => end(undefined);
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  if (ctx.signal.aborted) end(undefined);
  const failure = await ended;
  ctx.signal.removeEventListener("abort", onAbort);
  listener.close();
  for (const conn of conns) closeQuietly(conn);
  await accepting;
  if (!session.ended) {
    if (compareVersions(info.agentVersion, TERMINATE_FLAG_AFTER_AGENT) > 0) {
      await Promise.race([session.flag(PayloadFlag.terminateSession), new Promise((r) => setTimeout(r, 500))])
        .catch(() => {});
    }
    await session.terminate();
  }
  if (failure) throw failure;
}
