/**
 * The `dial` capability: byte streams to a unix socket or a TCP port as the SSH host sees them, each one channel on
 * one authenticated connection (ssh_config, ProxyJump and host keys as for a shell): `direct-streamlocal@openssh.com`
 * (OpenSSH's PROTOCOL, §2.4) for a path, `direct-tcpip` (RFC 4254 §7.2) for `host:port`. This is what
 * `docker -H ssh://host` gets by running `docker system dial-stdio` on the host, without needing a docker CLI there.
 *
 * @module
 */
import type { ClientChannel } from "ssh2";
import {
  type DialAddress,
  type Dialer,
  type DialStream,
  type OpenContext,
  RemoteError,
  TransportError,
} from "../../plugins/mod.ts";
import { channelWriter } from "./channel.ts";
import { connectSsh, type SshConnection } from "./connection.ts";
import { hostPort } from "./socket.ts";
import { shellQuote } from "../../plugins/mod.ts";

/** RFC 4254 §5.1 reason codes of SSH_MSG_CHANNEL_OPEN_FAILURE. */
const ADMINISTRATIVELY_PROHIBITED = 1;
const CONNECT_FAILED = 2;
const UNKNOWN_CHANNEL_TYPE = 3;

/**
 * Connects to `ctx.target` and returns a dialer on that connection; disposing it closes the connection.
 *
 * @throws {RemoteError} as a connection would (docs/ssh.md)
 */
export async function dialer(ctx: OpenContext): Promise<Dialer> {
  const connection = await connectSsh(ctx);
  return {
    dial: (to) => dial(connection, to),
    [Symbol.asyncDispose]: () => connection[Symbol.asyncDispose](),
  };
}

/** `/run/x.sock` or `host:port`, for messages. */
export function describeAddress(to: DialAddress): string {
  return to.kind === "unix" ? to.path : hostPort(to.host, to.port);
}

async function dial(connection: SshConnection, to: DialAddress): Promise<DialStream> {
  const client = connection.client;
  let ch: ClientChannel;
  try {
    ch = await new Promise<ClientChannel>((resolve, reject) => {
      const cb = (err: Error | undefined, channel: ClientChannel) => err ? reject(err) : resolve(channel);
      try {
        if (to.kind === "unix") client.openssh_forwardOutStreamLocal(to.path, cb);
        else client.forwardOut("127.0.0.1", 0, to.host, to.port, cb);
      } catch (err) {
        reject(err); // not connected any more
      }
    });
  } catch (err) {
    throw await openFailure(connection, to, err);
  }
  return channelStream(ch);
}

/** One channel as a {@linkcode DialStream}: reads paced by the reader (the SSH window), writes by `drain`. */
function channelStream(ch: ClientChannel): DialStream {
  const closed = new Promise<void>((resolve) => ch.once("close", () => resolve()));
  let done = false;
  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      ch.on("data", (chunk: Uint8Array) => {
        if (done) return;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 1) <= 0) ch.pause();
      });
      const end = () => {
        if (done) return;
        done = true;
        try {
          controller.close();
        } catch { /* cancelled by the reader */ }
      };
      ch.once("end", end);
      ch.once("close", end);
      ch.stderr?.resume(); // a forwarded channel has no extended data; never let it hold the window
    },
    pull() {
      ch.resume();
    },
    cancel() {
      done = true;
      ch.close();
    },
  }, { highWaterMark: 16 });
  return {
    readable,
    writable: channelWriter(ch),
    async [Symbol.asyncDispose]() {
      try {
        ch.close();
      } catch { /* the connection is gone already */ }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([closed, new Promise<void>((r) => timer = setTimeout(r, 2000))]);
      clearTimeout(timer);
    },
  };
}

/**
 * The error for a channel the server would not open. OpenSSH answers a unix socket it cannot connect to (a missing
 * socket) and one its AllowStreamLocalForwarding forbids alike (`open failed`, reason connect failed: serverloop.c),
 * so for a path one `test -S` on the same connection tells them apart.
 */
async function openFailure(connection: SshConnection, to: DialAddress, err: unknown): Promise<RemoteError> {
  const where = describeAddress(to);
  const display = connection.display;
  const text = (err as Error)?.message?.replace(/^\(SSH\) Channel open failure: /, "") ?? String(err);
  if (/^(Not connected|No response from server)$/.test(text)) {
    return new TransportError(`connection to ${display} is lost: cannot reach ${where} through it`, {
      layer: "channel",
      code: "lost",
      hint: "run the command again to reconnect",
      cause: err,
    });
  }
  const reason = typeof err === "object" && err !== null && "reason" in err ? Number(err.reason) : 0;
  const missing = () =>
    new TransportError(`${display} has no socket ${where}`, {
      layer: "socket",
      code: "refused",
      hint: "is the service running on that host, and is the path right?",
      cause: err,
    });
  if (to.kind === "tcp" && reason === CONNECT_FAILED) {
    return new TransportError(`${display} cannot connect to ${where}: ${text || "connect failed"}`, {
      layer: "socket",
      code: "refused",
      hint: `is something listening on ${where} as ${display} sees it?`,
      cause: err,
    });
  }
  if (reason === UNKNOWN_CHANNEL_TYPE) {
    const kind = to.kind === "unix" ? "direct-streamlocal@openssh.com" : "direct-tcpip";
    return new RemoteError("unsupported", `${display} does not know ${kind} channels: it cannot forward to ${where}`, {
      hint: to.kind === "unix"
        ? "unix sockets need an OpenSSH server on that host (dropbear has no streamlocal forwarding)"
        : "the SSH server on that host has no TCP forwarding",
      cause: err,
    });
  }
  if (to.kind === "unix") {
    const socket = await isSocket(connection, to.path);
    if (socket === false) return missing();
    if (socket === true) {
      return new RemoteError("unsupported", `${display} does not allow forwarding to its unix socket ${where}`, {
        hint: "the host's sshd_config forbids it: AllowStreamLocalForwarding yes (or local), and no DisableForwarding",
        cause: err,
      });
    }
  }
  if (reason === ADMINISTRATIVELY_PROHIBITED) {
    return new RemoteError("unsupported", `${display} refused to forward to ${where}: ${text || "prohibited"}`, {
      hint: to.kind === "unix"
        ? "check that the socket exists, and AllowStreamLocalForwarding in the host's sshd_config"
        : "the host's sshd_config forbids it (AllowTcpForwarding, PermitOpen, DisableForwarding)",
      cause: err,
    });
  }
  return new TransportError(`${display} could not open a channel to ${where}: ${text}`, {
    layer: "server",
    hint: "check the host's sshd_config and logs",
    cause: err,
  });
}

/** Whether `path` is a socket on the host (`test -S`); undefined when that cannot be asked. */
async function isSocket(connection: SshConnection, path: string): Promise<boolean | undefined> {
  try {
    const { code } = await connection.run(`test -S ${shellQuote(path)}`);
    return code === 0 ? true : code === 1 ? false : undefined;
  } catch {
    return undefined;
  }
}
