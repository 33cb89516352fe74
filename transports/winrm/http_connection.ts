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
}

/** The connection died or the reply was not HTTP. */
export class HttpError extends Error {
  constructor(message: string, readonly kind: "closed" | "timeout" | "protocol") {
    super(message);
    this.name = "HttpError";
  }
}

const enc = new TextEncoder();
const MAX_HEADER = 64 * 1024;
const MAX_BODY = 64 * 1024 * 1024;

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
  #buf = new Uint8Array(0);
  #waiter?: () => void;
  #ended = false;
  #error?: Error;
  #busy = false;
  readonly host: string;
  readonly port: number;

  private constructor(socket: net.Socket, host: string, port: number) {
    this.#socket = socket;
    this.host = host;
    this.port = port;
    socket.on("data", (d: Buffer) => {
      const n = new Uint8Array(this.#buf.length + d.length);
      n.set(this.#buf);
      n.set(d, this.#buf.length);
      this.#buf = n;
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

  /** sends one request and reads its reply; a timeout or a broken socket closes the connection */
  async request(
    method: string,
    path: string,
    headers: Readonly<Record<string, string>>,
    body: Uint8Array,
    timeoutMs: number,
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
      return await this.#readResponse();
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

  async #more(): Promise<void> {
    if (this.#ended) {
      throw this.#error instanceof HttpError ? this.#error : new HttpError(
        this.#error ? `the connection broke (${this.#error.message})` : "the server closed the connection",
        "closed",
      );
    }
    await new Promise<void>((r) => this.#waiter = r);
  }

  #take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  async #readLine(): Promise<string> {
    for (;;) {
      const i = this.#buf.indexOf(10);
      if (i >= 0) return new TextDecoder().decode(this.#take(i + 1)).replace(/\r?\n$/, "");
      if (this.#buf.length > MAX_HEADER) throw new HttpError("the reply header is too long", "protocol");
      await this.#more();
    }
  }

  async #readExactly(n: number): Promise<Uint8Array> {
    if (n > MAX_BODY) throw new HttpError("the reply is too large", "protocol");
    while (this.#buf.length < n) await this.#more();
    return this.#take(n);
  }

  async #readResponse(): Promise<HttpResponse> {
    let status: number;
    let headers: Map<string, string>;
    // 100 Continue and other 1xx replies precede the real one
    do {
      const line = await this.#readLine();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(line);
      if (!m) throw new HttpError("the reply is not HTTP", "protocol");
      status = Number(m[1]);
      headers = new Map();
      for (;;) {
        const h = await this.#readLine();
        if (h === "") break;
        const c = h.indexOf(":");
        if (c <= 0) throw new HttpError("the reply has a malformed header", "protocol");
        const k = h.slice(0, c).trim().toLowerCase();
        const v = h.slice(c + 1).trim();
        headers.set(k, headers.has(k) ? `${headers.get(k)}, ${v}` : v);
      }
    } while (status >= 100 && status < 200);
    let body: Uint8Array;
    if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
      const parts: Uint8Array[] = [];
      let total = 0;
      for (;;) {
        const size = parseInt((await this.#readLine()).split(";")[0], 16);
        if (!Number.isFinite(size) || size < 0) throw new HttpError("the reply has a bad chunk size", "protocol");
        if (size === 0) {
          while ((await this.#readLine()) !== "");
          break;
        }
        total += size;
        if (total > MAX_BODY) throw new HttpError("the reply is too large", "protocol");
        parts.push(await this.#readExactly(size));
        await this.#readLine();
      }
      body = new Uint8Array(total);
      let o = 0;
      for (const p of parts) {
        body.set(p, o);
        o += p.length;
      }
    } else if (headers.has("content-length")) {
      const n = Number(headers.get("content-length"));
      if (!Number.isInteger(n) || n < 0) throw new HttpError("the reply has a bad Content-Length", "protocol");
      body = await this.#readExactly(n);
    } else if (status === 204 || status === 304) {
      body = new Uint8Array(0);
    } else {
      // no length: the body runs to the end of the connection
      try {
        for (;;) await this.#more();
      } catch (e) {
        if (!(e instanceof HttpError) || e.kind !== "closed") throw e;
      }
      body = this.#take(this.#buf.length);
    }
    if (/close/i.test(headers.get("connection") ?? "")) this.close();
    return { status, headers, body };
  }
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
