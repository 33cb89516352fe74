/**
 * The TCP layer: resolves and connects, mapping each failure to its own exit code and one line.
 *
 * @module
 */
import * as dns from "node:dns";
import * as net from "node:net";
import { TransportError } from "../../plugins/mod.ts";
import { type DebugLog, SILENT } from "./debug_log.ts";

/** `host:port`, with brackets around IPv6 literals. */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function errnoCode(err: unknown): string {
  return typeof err === "object" && err !== null && "code" in err ? String(err.code) : "";
}

/**
 * Opens a TCP connection with Nagle off (ssh2 never turns it off, and under Deno it roughly doubles
 * time to first byte). Rejects with a {@linkcode TransportError}: `dns` 240, `refused` 241, `timeout`
 * 242, `unreachable` 243.
 */
export async function connectSocket(
  host: string,
  port: number,
  /** `family`: IPv4 or IPv6 only (ssh -4, -6); `log`: ssh's -v lines (address tried, outcome) */
  options: { deadline: AbortSignal; family?: 4 | 6; log?: DebugLog },
): Promise<net.Socket> {
  const where = hostPort(host, port);
  let address = host;
  const family = options.family;
  const log = options.log ?? SILENT;
  log.debug2(`resolving "${host}" port ${port}${family ? ` (IPv${family} only: -${family} or AddressFamily)` : ""}`);
  if (family !== undefined && net.isIP(host) !== 0 && net.isIP(host) !== family) {
    throw new TransportError(`${host} is not an IPv${family} address (-${family})`, {
      layer: "dns",
      hint: `drop -${family}, or give an IPv${family} address or a host name`,
    });
  }
  if (net.isIP(host) === 0) {
    try {
      address = (await raceAbort(dns.promises.lookup(host, { family: family ?? 0 }), options.deadline)).address;
    } catch (cause) {
      if (options.deadline.aborted) throw timeoutError(where, cause);
      const code = errnoCode(cause);
      if (code === "ENOTFOUND" || code === "EAI_NONAME" || code === "ENODATA") {
        throw new TransportError(`cannot resolve host name ${host}`, {
          layer: "dns",
          hint: "check the spelling, or the HostName in your ssh_config",
          cause,
        });
      }
      throw new TransportError(`cannot resolve host name ${host}: ${code || String(cause)}`, {
        layer: "dns",
        hint: "check your network and DNS settings",
        cause,
      });
    }
  }
  log.debug1(`Connecting to ${host} [${address}] port ${port}.`);
  return await new Promise<net.Socket>((resolve, reject) => {
    const sock = net.connect({ host: address, port });
    const onAbort = () => {
      sock.destroy();
      reject(timeoutError(where));
    };
    options.deadline.addEventListener("abort", onAbort, { once: true });
    sock.once("connect", () => {
      options.deadline.removeEventListener("abort", onAbort);
      sock.removeAllListeners("error");
      sock.setNoDelay(true);
      log.debug1("Connection established.");
      resolve(sock);
    });
    sock.once("error", (cause) => {
      log.debug1(`connect to address ${address} port ${port}: ${(cause as Error).message}`);
      options.deadline.removeEventListener("abort", onAbort);
      sock.destroy();
      reject(socketError(where, cause));
    });
  });
}

function timeoutError(where: string, cause?: unknown): TransportError {
  return new TransportError(`timed out connecting to ${where}`, {
    layer: "timeout",
    hint: "is the host up and the port right? raise the limit with --connecting-timeout",
    cause,
  });
}

/** Maps a socket error (errno code) to a one-line {@linkcode TransportError}. */
export function socketError(where: string, cause: unknown): TransportError {
  const code = errnoCode(cause);
  switch (code) {
    case "ECONNREFUSED":
      return new TransportError(`connection refused by ${where}`, {
        layer: "socket",
        code: "refused",
        hint: "is sshd running there, and is the port right?",
        cause,
      });
    case "ETIMEDOUT":
      return timeoutError(where, cause);
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EHOSTDOWN":
    case "ENETDOWN":
    case "EADDRNOTAVAIL":
      return new TransportError(`no route to ${where}`, {
        layer: "socket",
        code: "unreachable",
        hint: "check the address and your network",
        cause,
      });
    default:
      return new TransportError(`cannot connect to ${where}: ${code || (cause as Error)?.message || cause}`, {
        layer: "socket",
        code: "unreachable",
        hint: "check the address and your network",
        cause,
      });
  }
}

/** Settles like `promise`, or rejects once `signal` aborts. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The part of a socket (or a --via stream) {@linkcode batchWritesPerRead} uses. */
interface Corkable {
  cork?: () => void;
  uncork?: () => void;
  prependListener(event: "data", fn: () => void): unknown;
  on(event: "data", fn: () => void): unknown;
}

/**
 * Makes everything ssh2 writes while it handles one read from `sock` leave in one socket write: the
 * socket is corked before ssh2's own 'data' listener runs and uncorked after it, in the same event. A
 * window adjustment from the server releases up to a window of held input at once, which ssh2 writes
 * as one packet each (32 KiB; one write operation each under Deno): corked, they go out in one writev.
 * Nothing waits for a later tick, so no packet is delayed. Call it once ssh2's listener is in place
 * (after 'ready'); a stream without `cork` is left as it is.
 */
export function batchWritesPerRead(sock: Corkable): void {
  if (typeof sock.cork !== "function" || typeof sock.uncork !== "function") return;
  const cork = sock.cork.bind(sock);
  const uncork = sock.uncork.bind(sock);
  sock.prependListener("data", cork);
  sock.on("data", uncork);
}

/** What {@linkcode corked} needs of an ssh2 object (a channel, an SFTP session): the client it belongs to. */
interface OnSsh2Client {
  _client?: { _sock?: { cork?: () => void; uncork?: () => void } };
}

/**
 * Runs `fn` with the socket under `owner`'s ssh2 connection corked, so the packets ssh2 makes inside it
 * (one per 32 KiB of data, each written to the socket on its own: one write operation each under Deno)
 * leave in one writev. ssh2 encrypts and writes synchronously, and the socket is uncorked before this
 * returns: nothing waits for a later tick (keystrokes go out at once). Without a socket with `cork`
 * (another ssh2, a stream without it) `fn` just runs.
 */
export function corked<T>(owner: unknown, fn: () => T): T {
  const sock = (owner as OnSsh2Client)._client?._sock;
  if (typeof sock?.cork !== "function" || typeof sock.uncork !== "function") return fn();
  sock.cork();
  try {
    return fn();
  } finally {
    sock.uncork();
  }
}
