/**
 * The server side of a SOCKS handshake, as ssh -D speaks it (OpenSSH channels.c): SOCKS4 (no RFC; the
 * NEC protocol document "SOCKS: A protocol for TCP proxy across firewalls"), SOCKS4a (host names, "SOCKS 4A:
 * A Simple Extension to SOCKS 4 Protocol") and SOCKS5 (RFC 1928) with IPv4, IPv6 and domain names, no
 * authentication, CONNECT only. It works on any byte streams: the -D listener's TCP connections and the
 * channels of a `-R [bind:]port` proxy.
 *
 * Unlike ssh, which says "granted" before it knows, the reply waits for the destination: a refused
 * connection reaches the client as a SOCKS error, not as a closed socket.
 *
 * @example Answer one client
 * ```ts
 * import { acceptSocks } from "./socks.ts";
 * declare const conn: Deno.TcpConn;
 * const reader = conn.readable.getReader();
 * const writer = conn.writable.getWriter();
 * const hs = await acceptSocks(reader, writer, AbortSignal.timeout(30_000));
 * console.log(hs.request.host, hs.request.port);
 * await hs.reply("ok");
 * ```
 *
 * @module
 */

/** Where the SOCKS client asked to go. */
export interface SocksRequest {
  version: 4 | 5;
  /** a host name, an IPv4 address or an IPv6 address (without brackets) */
  host: string;
  port: number;
}

/** What became of the connection to the destination, as told to the client. */
export type SocksOutcome = "ok" | "failure" | "prohibited" | "unreachable" | "refused";

/** A client whose request was read; reply once the destination is known. */
export interface SocksHandshake {
  request: SocksRequest;
  /** bytes the client sent after its request, to pass on first */
  rest: Uint8Array;
  /** sends the reply; anything but "ok" ends the exchange */
  reply(outcome: SocksOutcome): Promise<void>;
}

/** Why a SOCKS exchange ended before a request was read. */
export class SocksError extends Error {
  override name = "SocksError";
}

const MAX_NAME = 255;

const SOCKS5_REPLY: Readonly<Record<SocksOutcome, number>> = {
  ok: 0x00,
  failure: 0x01,
  prohibited: 0x02,
  unreachable: 0x04,
  refused: 0x05,
};

/** A byte buffer over a reader: wait for n bytes, or up to a NUL. */
class Input {
  #buf = new Uint8Array(0);
  constructor(readonly reader: ReadableStreamDefaultReader<Uint8Array>, readonly signal: AbortSignal) {}

  async #more(): Promise<void> {
    if (this.signal.aborted) throw new SocksError("the SOCKS client took too long");
    const onAbort = () => void this.reader.cancel().catch(() => {});
    this.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const { value, done } = await this.reader.read();
      if (done) throw new SocksError("the SOCKS client closed the connection");
      const next = new Uint8Array(this.#buf.length + value.length);
      next.set(this.#buf);
      next.set(value, this.#buf.length);
      this.#buf = next;
    } finally {
      this.signal.removeEventListener("abort", onAbort);
    }
  }

  async take(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) await this.#more();
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** a NUL-terminated string of at most `max` bytes, NUL dropped */
  async cstring(max: number): Promise<Uint8Array> {
    for (;;) {
      const at = this.#buf.indexOf(0);
      if (at >= 0) {
        const out = this.#buf.slice(0, at);
        this.#buf = this.#buf.subarray(at + 1);
        return out;
      }
      if (this.#buf.length > max) throw new SocksError("SOCKS4 request too long");
      await this.#more();
    }
  }

  rest(): Uint8Array {
    return this.#buf.slice();
  }
}

function ipv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  return groups.join(":");
}

/**
 * Reads a SOCKS4, SOCKS4a or SOCKS5 CONNECT request (answering SOCKS5's method negotiation with "no
 * authentication") and returns it with a way to reply. Requests it does not serve (BIND, UDP ASSOCIATE, a
 * SOCKS5 client that insists on authentication) are answered with the protocol's refusal, then rejected.
 *
 * @throws {SocksError} when the client speaks something else, goes away, or takes longer than `signal` allows
 */
export async function acceptSocks(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  writer: WritableStreamDefaultWriter<Uint8Array>,
  signal: AbortSignal,
): Promise<SocksHandshake> {
  const input = new Input(reader, signal);
  const [version] = await input.take(1);
  if (version === 4) {
    const head = await input.take(7); // CD, DSTPORT(2), DSTIP(4)
    const port = (head[1] << 8) | head[2];
    const ip = head.subarray(3, 7);
    await input.cstring(MAX_NAME); // USERID, unused as by ssh
    let host = Array.from(ip).join(".");
    // SOCKS4a: 0.0.0.x with x != 0 means a host name follows
    if (ip[0] === 0 && ip[1] === 0 && ip[2] === 0 && ip[3] !== 0) {
      host = new TextDecoder().decode(await input.cstring(MAX_NAME));
    }
    const reply4 = async (granted: boolean) => {
      await writer.write(new Uint8Array([0, granted ? 90 : 91, 0, 0, 0, 0, 0, 0]));
    };
    if (head[0] !== 1) {
      await reply4(false);
      throw new SocksError(`SOCKS4 command ${head[0]} is not supported (only CONNECT)`);
    }
    return {
      request: { version: 4, host, port },
      rest: input.rest(),
      reply: (outcome) => reply4(outcome === "ok"),
    };
  }
  if (version !== 5) throw new SocksError(`not a SOCKS request (first byte ${version})`);
  const [count] = await input.take(1);
  const methods = await input.take(count);
  if (!methods.includes(0)) {
    await writer.write(new Uint8Array([5, 0xff]));
    throw new SocksError("the SOCKS5 client offers no method without authentication");
  }
  await writer.write(new Uint8Array([5, 0]));
  const [ver, cmd, , atyp] = await input.take(4);
  if (ver !== 5) throw new SocksError(`bad SOCKS5 request version ${ver}`);
  let host: string;
  if (atyp === 1) host = Array.from(await input.take(4)).join(".");
  else if (atyp === 4) host = ipv6(await input.take(16));
  else if (atyp === 3) {
    const [len] = await input.take(1);
    host = new TextDecoder().decode(await input.take(len));
  } else {
    await writer.write(new Uint8Array([5, 0x08, 0, 1, 0, 0, 0, 0, 0, 0]));
    throw new SocksError(`SOCKS5 address type ${atyp} is not supported`);
  }
  const portBytes = await input.take(2);
  const port = (portBytes[0] << 8) | portBytes[1];
  const reply5 = async (code: number) => {
    // BND.ADDR/PORT are 0.0.0.0:0 as from ssh: the bound address is the server's business
    await writer.write(new Uint8Array([5, code, 0, 1, 0, 0, 0, 0, 0, 0]));
  };
  if (cmd !== 1) {
    await reply5(0x07);
    throw new SocksError(`SOCKS5 command ${cmd} is not supported (only CONNECT)`);
  }
  return {
    request: { version: 5, host, port },
    rest: input.rest(),
    reply: (outcome) => reply5(SOCKS5_REPLY[outcome]),
  };
}
