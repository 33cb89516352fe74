/**
 * Just enough HTTP/1.1 (RFC 9112) for a container engine's API over a unix socket or TCP: one request per
 * connection, a bounded response head, bodies by Content-Length, chunked coding or connection close, and the
 * hijack `exec/{id}/start` does (`Upgrade: tcp`, answered `101` or `200`, after which the connection carries raw
 * bytes). `fetch` cannot hand over a hijacked connection, hence this.
 *
 * @module
 */
import { type DialStream, TransportError } from "../../plugins/mod.ts";

/** The longest response head accepted. */
export const MAX_HEAD_BYTES = 64 * 1024;

/** The longest response body read (engine replies are small JSON documents). */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** A parsed response head. */
export interface ResponseHead {
  status: number;
  headers: Headers;
}

/** A response read whole. */
export interface HttpResponse extends ResponseHead {
  body: Uint8Array;
}

const encoder = new TextEncoder();

/**
 * A byte stream to the engine: a socket of this computer (`Deno.Conn`), or a stream dialled through another
 * transport's connection (`--via`, see {@linkcode streamConn}).
 */
export type EngineConn = Pick<Deno.Conn, "read" | "write" | "closeWrite" | "close">;

/**
 * A dialled stream (`OpenContext.dial`) read and written like a socket. `closeWrite` is the stream's half-close;
 * `close` may be called more than once.
 *
 * @example
 * ```ts ignore
 * const conn = streamConn(await ctx.dial!({ kind: "unix", path: "/var/run/docker.sock" }));
 * ```
 */
export function streamConn(stream: DialStream): EngineConn {
  const reader = stream.readable.getReader();
  const writer = stream.writable.getWriter();
  let pending: Uint8Array | undefined;
  let closed = false;
  return {
    async read(into: Uint8Array): Promise<number | null> {
      if (!pending || pending.length === 0) {
        const { value, done } = await reader.read();
        if (done) return null;
        pending = value;
      }
      const n = Math.min(into.length, pending.length);
      into.set(pending.subarray(0, n));
      pending = pending.subarray(n);
      return n;
    },
    async write(bytes: Uint8Array): Promise<number> {
      await writer.write(bytes.slice()); // the caller may reuse its buffer once this resolves
      return bytes.length;
    },
    async closeWrite(): Promise<void> {
      await writer.close();
    },
    close(): void {
      if (closed) return;
      closed = true;
      reader.cancel().catch(() => {});
      writer.abort().catch(() => {});
      Promise.resolve(stream[Symbol.asyncDispose]()).catch(() => {});
    },
  };
}

/** Writes all of `bytes`. */
export async function writeAll(conn: EngineConn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

/** The bytes of a request: head and optional JSON body. */
export function encodeRequest(
  method: string,
  path: string,
  options: { json?: unknown; headers?: Record<string, string> } = {},
): Uint8Array {
  const body = options.json === undefined ? undefined : encoder.encode(JSON.stringify(options.json));
  let head = `${method} ${path} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: remote\r\n`;
  for (const [k, v] of Object.entries(options.headers ?? {})) head += `${k}: ${v}\r\n`;
  if (body) head += `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n`;
  else if (method === "POST") head += "Content-Length: 0\r\n";
  const headBytes = encoder.encode(head + "\r\n");
  if (!body) return headBytes;
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}

/** Reads from a connection with bytes kept over between calls. */
export class BufferedReader {
  #conn: EngineConn;
  #buf: Uint8Array = new Uint8Array(0);
  #eof = false;

  constructor(conn: EngineConn) {
    this.#conn = conn;
  }

  /** Bytes read but not yet consumed; consumes them. */
  takeBuffered(): Uint8Array {
    const b = this.#buf;
    this.#buf = new Uint8Array(0);
    return b;
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const chunk = new Uint8Array(32 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) {
      this.#eof = true;
      return false;
    }
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  /**
   * Reads a response head.
   *
   * @throws {TransportError} (layer protocol) when the peer sends no valid head
   */
  async readHead(what: string): Promise<ResponseHead> {
    let searchFrom = 0;
    while (true) {
      const end = indexOfCrlfCrlf(this.#buf, searchFrom);
      if (end >= 0) {
        const text = new TextDecoder().decode(this.#buf.subarray(0, end));
        this.#buf = this.#buf.slice(end + 4);
        return parseHead(text, what);
      }
      searchFrom = Math.max(0, this.#buf.length - 3);
      if (this.#buf.length > MAX_HEAD_BYTES) {
        throw new TransportError(`${what} sent a response head longer than ${MAX_HEAD_BYTES} bytes`, {
          layer: "protocol",
        });
      }
      if (!await this.#fill()) {
        throw new TransportError(`${what} closed the connection without an HTTP response`, {
          layer: "protocol",
          hint: "is this the engine's API socket?",
        });
      }
    }
  }

  /**
   * Reads a body as its head describes it, at most {@linkcode MAX_BODY_BYTES}.
   *
   * @throws {TransportError} (layer protocol) when it is too long or malformed
   */
  async readBody(head: ResponseHead, method: string, what: string): Promise<Uint8Array> {
    if (method === "HEAD" || head.status === 204 || head.status === 304 || head.status < 200) {
      return new Uint8Array(0);
    }
    const tooLong = () =>
      new TransportError(`${what} sent a reply longer than ${MAX_BODY_BYTES} bytes`, { layer: "protocol" });
    if (head.headers.get("transfer-encoding")?.toLowerCase().includes("chunked")) {
      const parts: Uint8Array[] = [];
      let total = 0;
      while (true) {
        const line = await this.#readLine(what);
        const size = parseInt(line.split(";")[0].trim(), 16);
        if (!Number.isFinite(size) || size < 0) {
          throw new TransportError(`${what} sent a malformed chunk size`, { layer: "protocol" });
        }
        if (size === 0) {
          // trailers, up to the blank line
          while ((await this.#readLine(what)) !== "") { /* ignored */ }
          break;
        }
        total += size;
        if (total > MAX_BODY_BYTES) throw tooLong();
        parts.push(await this.#readExactly(size, what));
        await this.#readLine(what);
      }
      return concat(parts);
    }
    const lengthText = head.headers.get("content-length");
    if (lengthText !== null) {
      const length = Number(lengthText);
      if (!Number.isSafeInteger(length) || length < 0) {
        throw new TransportError(`${what} sent a malformed Content-Length`, { layer: "protocol" });
      }
      if (length > MAX_BODY_BYTES) throw tooLong();
      return await this.#readExactly(length, what);
    }
    while (await this.#fill()) if (this.#buf.length > MAX_BODY_BYTES) throw tooLong();
    return this.takeBuffered();
  }

  async #readLine(what: string): Promise<string> {
    while (true) {
      const i = this.#buf.indexOf(10);
      if (i >= 0) {
        const line = new TextDecoder().decode(this.#buf.subarray(0, i)).replace(/\r$/, "");
        this.#buf = this.#buf.slice(i + 1);
        return line;
      }
      if (this.#buf.length > MAX_HEAD_BYTES) {
        throw new TransportError(`${what} sent an overlong chunk line`, { layer: "protocol" });
      }
      if (!await this.#fill()) throw new TransportError(`${what} cut a reply short`, { layer: "protocol" });
    }
  }

  async #readExactly(n: number, what: string): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      if (!await this.#fill()) throw new TransportError(`${what} cut a reply short`, { layer: "protocol" });
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }
}

function indexOfCrlfCrlf(buf: Uint8Array, from: number): number {
  for (let i = from; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

function parseHead(text: string, what: string): ResponseHead {
  const lines = text.split("\r\n");
  const status = /^HTTP\/1\.[01] ([0-9]{3})(?: |$)/.exec(lines[0]);
  if (!status) {
    throw new TransportError(`${what} did not answer in HTTP`, {
      layer: "protocol",
      hint: "is this the engine's API socket?",
    });
  }
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    try {
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    } catch {
      // a header Headers refuses (bad characters) is one this client does not read
    }
  }
  return { status: Number(status[1]), headers };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
