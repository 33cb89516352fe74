/**
 * A minimal HTTP/1.1 client bound to one TCP or TLS socket. NTLM authenticates a TCP connection, not
 * a request, so the handshake and every sealed message after it must travel on the same socket; a
 * pooled `fetch` cannot promise that. Handles keep-alive, Content-Length and chunked replies, and
 * bounds every wait with a timeout. node:tls is used rather than Deno.connectTls because WinRM's
 * SkipCACheck needs `rejectUnauthorized: false` and channel binding needs the peer certificate.
 *
 * @module
 */
import * as net from "node:net";
import * as tls from "node:tls";
import type { Buffer } from "node:buffer";
import { TransportError } from "../../plugins/mod.ts";

/** How to reach the server. */
export interface HttpConnectOptions {
  host: string;
  port: number;
  /** present for HTTPS */
  tls?: {
    /** verify the chain against the system trust store (false = SkipCACheck) */
    verifyCa: boolean;
    /** verify the host name (false = SkipCNCheck) */
    verifyHost: boolean;
    /** extra trusted roots (PEM), for tests */
    ca?: string[];
  };
  connectTimeoutMs: number;
  signal?: AbortSignal;
}

/** A reply: status, lower-cased headers, body. */
export interface HttpResponse {
  status: number;
  headers: Map<string, string>;
  body: Uint8Array;
  /**
   * the chunks of a chunked reply, in order: MS-WSMV 3.2.4.2.1 puts one whole SOAP envelope in each chunk
   * of a reply that carries several (a robust operation's, 3.1.6.6)
   */
  chunks?: Uint8Array[];
}

/** The connection died or the reply was not HTTP. */
export class HttpError extends Error {
  constructor(
    message: string,
    readonly kind: "closed" | "timeout" | "protocol",
    /** the reply had begun and the connection closed before its end */
    readonly cut = false,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

const enc = new TextEncoder();

/** Limits on one reply; every byte past them is refused, not buffered. */
export interface ReplyLimits {
  /** the status line and header fields together, 1xx replies included */
  maxHeader: number;
  /** the body, whatever its framing (Content-Length, chunked, or up to the close) */
  maxBody: number;
}

/** A status line and header fields of a real WinRM reply take well under 1 KiB. */
export const MAX_HEADER = 64 * 1024;
/**
 * Replies of an unauthenticated exchange (the NTLM handshake, a 401): Windows sends at most a short
 * HTML page with them.
 */
export const MAX_PREAUTH_BODY = 64 * 1024;
/**
 * Any other reply. Requests ask for envelopes of at most 512,000 bytes (w:MaxEnvelopeSize, DSP0226
 * 6.2; MAX_ENVELOPE_SIZE in client.ts) and Windows answers larger ones with w:EncodingLimit; sealing
 * adds a few hundred bytes. The rest is headroom for servers that count loosely.
 */
export const MAX_BODY = 1024 * 1024;
/** Socket reads pause while this much is buffered and unread (backpressure through TCP). */
const HIGH_WATER = 256 * 1024;
/** The longest line of chunked framing (a chunk size with extensions, a trailer field). */
const MAX_CHUNK_LINE = 4096;

/** Unread bytes: appended at the end, taken from the front, compacted instead of copied per packet. */
class ByteQueue {
  #buf = new Uint8Array(16 * 1024);
  #start = 0;
  #end = 0;

  get length(): number {
    return this.#end - this.#start;
  }

  push(d: Uint8Array): void {
    if (this.#end + d.length > this.#buf.length) {
      const live = this.length;
      if (live + d.length <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const n = new Uint8Array(Math.max(this.#buf.length * 2, live + d.length));
        n.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = n;
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(d, this.#end);
    this.#end += d.length;
  }

  /** the offset of `byte` at or after `from` (relative to the front), or -1 */
  indexOf(byte: number, from: number): number {
    return this.#buf.subarray(this.#start, this.#end).indexOf(byte, from);
  }

  /** removes up to `n` bytes from the front into `out` at `at`; returns how many */
  takeInto(out: Uint8Array, at: number, n: number): number {
    const k = Math.min(n, this.length);
    out.set(this.#buf.subarray(this.#start, this.#start + k), at);
    this.#start += k;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return k;
  }

  take(n: number): Uint8Array {
    const out = new Uint8Array(Math.min(n, this.length));
    this.takeInto(out, 0, out.length);
    return out;
  }
}

/**
 * One socket, one request at a time.
 *
 * @example A request
 * ```ts ignore
 * import { HttpConnection } from "./http_connection.ts";
 * const c = await HttpConnection.connect({ host: "127.0.0.1", port: 5985, connectTimeoutMs: 5000 });
 * const r = await c.request("POST", "/wsman", {}, new Uint8Array(), 30_000);
 * c.close();
 * ```
 */
export class HttpConnection {
  #socket: net.Socket;
  #queue = new ByteQueue();
  #waiter?: () => void;
  #ended = false;
  #error?: Error;
  #busy = false;
  #paused = false;
  /** a line of the current reply has arrived */
  #replyStarted = false;
  readonly host: string;
  readonly port: number;

  private constructor(socket: net.Socket, host: string, port: number) {
    this.#socket = socket;
    this.host = host;
    this.port = port;
    socket.on("data", (d: Buffer) => {
      this.#queue.push(d);
      if (this.#queue.length >= HIGH_WATER && !this.#paused) {
        this.#paused = true;
        socket.pause();
      }
      this.#wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("error", (e: Error) => {
      this.#error ??= e;
      this.#ended = true;
      this.#wake();
    });
  }

  /** opens the socket (and the TLS session); errors are {@linkcode TransportError}s naming the stage */
  static connect(o: HttpConnectOptions): Promise<HttpConnection> {
    const where = `${o.host}:${o.port}`;
    return new Promise((resolve, reject) => {
      let socket: net.Socket;
      const fail = (e: Error) => {
        clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
        socket.destroy();
        reject(e);
      };
      const onAbort = () =>
        fail(new TransportError(`connecting to ${where} was cancelled`, { layer: "timeout", code: "interrupted" }));
      const timer = setTimeout(() =>
        fail(
          new TransportError(`no answer from ${where} within ${o.connectTimeoutMs / 1000}s`, {
            layer: "timeout",
            hint: "check the host name and port, and that a firewall lets WinRM through",
          }),
        ), o.connectTimeoutMs);
      const ready = () => {
        clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
        socket.removeAllListeners("error");
        socket.setNoDelay(true);
        resolve(new HttpConnection(socket, o.host, o.port));
      };
      if (o.tls) {
        const t = o.tls;
        socket = tls.connect({
          host: o.host,
          port: o.port,
          servername: net.isIP(o.host) ? undefined : o.host,
          rejectUnauthorized: t.verifyCa,
          ca: t.ca ? [...tls.rootCertificates, ...t.ca] : undefined,
          ...(t.verifyHost ? {} : { checkServerIdentity: () => undefined }),
        }, ready);
      } else {
        socket = net.connect({ host: o.host, port: o.port }, ready);
      }
      socket.once("error", (e: Error & { code?: string }) => fail(connectError(e, where, !!o.tls)));
      o.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** true once the socket can no longer carry a request */
  get closed(): boolean {
    return this.#ended || this.#socket.destroyed;
  }

  /** the server certificate (DER), for HTTPS */
  peerCertificate(): Uint8Array | undefined {
    if (!(this.#socket instanceof tls.TLSSocket)) return undefined;
    const raw = this.#socket.getPeerCertificate(true)?.raw;
    return raw ? new Uint8Array(raw) : undefined;
  }

  /**
   * sends one request and reads its reply within `limits`; a timeout, a broken socket or a reply
   * past the limits closes the connection
   */
  async request(
    method: string,
    path: string,
    headers: Readonly<Record<string, string>>,
    body: Uint8Array,
    timeoutMs: number,
    limits: ReplyLimits = { maxHeader: MAX_HEADER, maxBody: MAX_BODY },
  ): Promise<HttpResponse> {
    if (this.#busy) throw new Error("http connection is busy");
    if (this.closed) throw new HttpError("the connection is closed", "closed");
    this.#busy = true;
    const timer = setTimeout(() => {
      this.#error ??= new HttpError(`no reply within ${Math.round(timeoutMs / 1000)}s`, "timeout");
      this.close();
    }, timeoutMs);
    try {
      let head = `${method} ${path} HTTP/1.1\r\nHost: ${
        this.host.includes(":") ? `[${this.host}]` : this.host
      }:${this.port}\r\n`;
      for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
      head += `Content-Length: ${body.length}\r\n\r\n`;
      const all = new Uint8Array(head.length + body.length);
      all.set(enc.encode(head));
      all.set(body, head.length);
      this.#socket.write(all);
      return await this.#readResponse(limits);
    } catch (e) {
      // the rest of a refused reply would be read as the next one
      if (e instanceof HttpError && e.kind === "protocol") this.close();
      throw e;
    } finally {
      clearTimeout(timer);
      this.#busy = false;
    }
  }

  /** closes the socket; safe to call twice */
  close(): void {
    this.#ended = true;
    this.#socket.destroy();
    this.#wake();
  }

  #wake() {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** waits for more bytes; throws once the connection has ended */
  async #more(): Promise<void> {
    if (this.#ended) {
      throw this.#error instanceof HttpError ? this.#error : new HttpError(
        this.#error ? `the connection broke (${this.#error.message})` : "the server closed the connection",
        "closed",
      );
    }
    if (this.#paused) {
      this.#paused = false;
      this.#socket.resume();
    }
    await new Promise<void>((r) => this.#waiter = r);
  }

  /** one line without its CR LF; refuses a line longer than `max` before buffering more of it */
  async #readLine(max: number, tooLong: string): Promise<string> {
    let scanned = 0;
    for (;;) {
      const i = this.#queue.indexOf(10, scanned);
      if (i >= 0) {
        if (i > max) break;
        return new TextDecoder().decode(this.#queue.take(i + 1)).replace(/\r?\n$/, "");
      }
      scanned = this.#queue.length;
      if (scanned > max) break;
      await this.#more();
    }
    throw new HttpError(tooLong, "protocol");
  }

  /** exactly `n` bytes, copied out as they arrive */
  async #readExactly(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let got = 0;
    for (;;) {
      got += this.#queue.takeInto(out, got, n - got);
      if (got === n) return out;
      await this.#more();
    }
  }

  async #readResponse(limits: ReplyLimits): Promise<HttpResponse> {
    try {
      return await this.#readFramed(limits);
    } catch (e) {
      // a clean close after the reply began leaves it incomplete (RFC 9112 section 8): the server broke it
      if (e instanceof HttpError && e.kind === "closed" && this.#began && !this.#error) {
        throw new HttpError(
          "the reply was cut short (the server closed the connection before its end)",
          "protocol",
          true,
        );
      }
      throw e;
    }
  }

  get #began(): boolean {
    return this.#queue.length > 0 || this.#replyStarted;
  }

  async #readFramed(limits: ReplyLimits): Promise<HttpResponse> {
    this.#replyStarted = false;
    let status: number;
    let headers: Map<string, string>;
    let headerLeft = limits.maxHeader;
    const headerTooLong = `the reply header is longer than ${size(limits.maxHeader)}`;
    const headerLine = async () => {
      const line = await this.#readLine(Math.max(0, headerLeft), headerTooLong);
      this.#replyStarted = true;
      headerLeft -= line.length + 2;
      return line;
    };
    // 100 Continue and other 1xx replies precede the real one
    do {
      const line = await headerLine();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(line);
      if (!m) throw new HttpError("the reply is not HTTP", "protocol");
      status = Number(m[1]);
      headers = new Map();
      for (;;) {
        const h = await headerLine();
        if (h === "") break;
        const c = h.indexOf(":");
        if (c <= 0) throw new HttpError("the reply has a malformed header", "protocol");
        const k = h.slice(0, c).trim().toLowerCase();
        const v = h.slice(c + 1).trim();
        headers.set(k, headers.has(k) ? `${headers.get(k)}, ${v}` : v);
      }
    } while (status >= 100 && status < 200);
    const tooLarge = () => new HttpError(`the reply is larger than ${size(limits.maxBody)}`, "protocol");
    let body: Uint8Array;
    let chunks: Uint8Array[] | undefined;
    if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
      const parts: Uint8Array[] = [];
      let total = 0;
      for (;;) {
        const size = parseInt(
          (await this.#readLine(MAX_CHUNK_LINE, "the reply has an overlong chunk size line")).split(";")[0],
          16,
        );
        if (!Number.isFinite(size) || size < 0) throw new HttpError("the reply has a bad chunk size", "protocol");
        if (size === 0) {
          let trailerLeft = headerLeft;
          for (;;) {
            const t = await this.#readLine(Math.max(0, trailerLeft), headerTooLong);
            if (t === "") break;
            trailerLeft -= t.length + 2;
          }
          break;
        }
        total += size;
        if (total > limits.maxBody) throw tooLarge();
        parts.push(await this.#readExactly(size));
        await this.#readLine(MAX_CHUNK_LINE, "the reply has an overlong chunk end");
      }
      body = join(parts, total);
      chunks = parts;
    } else if (headers.has("content-length")) {
      const n = Number(headers.get("content-length"));
      if (!Number.isInteger(n) || n < 0) throw new HttpError("the reply has a bad Content-Length", "protocol");
      if (n > limits.maxBody) throw tooLarge();
      body = await this.#readExactly(n);
    } else if (status === 204 || status === 304) {
      body = new Uint8Array(0);
    } else {
      // no length: the body runs to the end of the connection
      const parts: Uint8Array[] = [];
      let total = 0;
      for (;;) {
        if (this.#queue.length) {
          total += this.#queue.length;
          if (total > limits.maxBody) throw tooLarge();
          parts.push(this.#queue.take(this.#queue.length));
        }
        try {
          await this.#more();
        } catch (e) {
          if (!(e instanceof HttpError) || e.kind !== "closed") throw e;
          if (this.#queue.length === 0) break;
        }
      }
      body = join(parts, total);
    }
    if (/close/i.test(headers.get("connection") ?? "")) this.close();
    return chunks ? { status, headers, body, chunks } : { status, headers, body };
  }
}

function join(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function size(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`;
}

function connectError(e: Error & { code?: string }, where: string, isTls: boolean): TransportError {
  const code = e.code ?? "";
  if (code === "ECONNREFUSED") {
    return new TransportError(`${where} refused the connection`, {
      layer: "socket",
      hint: "is the WinRM service listening there? (winrm quickconfig; 5985 is HTTP, 5986 HTTPS)",
      cause: e,
    });
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || /getaddrinfo|dns|lookup/i.test(e.message)) {
    return new TransportError(`cannot resolve ${where.replace(/:\d+$/, "")}`, {
      layer: "dns",
      hint: "check the host name",
      cause: e,
    });
  }
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") {
    return new TransportError(`no route to ${where}`, { layer: "socket", code: "unreachable", cause: e });
  }
  if (isTls && /cert|self.signed|verify|altname|issuer/i.test(`${code} ${e.message}`)) {
    const host = /altname|ERR_TLS_CERT_ALTNAME/i.test(`${code} ${e.message}`);
    return new TransportError(`the certificate of ${where} is not trusted: ${e.message}`, {
      layer: "handshake",
      hint: host
        ? "connect by the name in the certificate, or pass --skip-cn-check if you accept the risk"
        : "add the issuing CA to the system trust store, or pass --skip-ca-check if you accept the risk",
      cause: e,
    });
  }
  return new TransportError(`cannot connect to ${where}: ${e.message}`, {
    layer: isTls ? "handshake" : "socket",
    code: isTls ? "protocol" : "refused",
    cause: e,
  });
}
