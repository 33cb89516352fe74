/**
 * WinRS shell operations over authenticated WS-Man connections: Create, Command, Send, Receive,
 * Signal, Delete (MS-WSMV 3.1.4). Connections come from a small pool so a long-polling Receive and
 * a Send or Signal can run at once on separate sockets, each with its own NTLM context.
 *
 * @module
 */
import { type RemoteError, TransportError, UsageError } from "../../plugins/mod.ts";
import { createHash, randomUUID } from "node:crypto";
import { concat, NtlmClient, NtlmError, type NtlmSession } from "./ntlm.ts";
import { decryptMessage, ENCRYPTED_CONTENT_TYPE, EncryptionError, encryptMessage, isEncrypted } from "./encryption.ts";
import { type BasicCharset, DEFAULT_BASIC_CHARSET, encodeBasic, isAscii } from "./basic_charset.ts";
import {
  HttpConnection,
  HttpError,
  type HttpResponse,
  MAX_BODY,
  MAX_HEADER,
  MAX_PREAUTH_BODY,
} from "./http_connection.ts";
import {
  Action,
  buildEnvelope,
  checkRelatesTo,
  commandBody,
  CONFIG_RESOURCE,
  createShellBody,
  DEFAULT_MAX_ENVELOPE_SIZE,
  FaultCode,
  parseCommandResponse,
  parseConfigMaxEnvelope,
  parseCreateResponse,
  parseEnvelope,
  parseFault,
  parseReceiveResponse,
  receiveBody,
  type ReceiveResult,
  robustHeaders,
  sendBody,
  signalBody,
  type WsmanFault,
  WsmanXmlError,
  type XmlElement,
} from "./wsman_xml.ts";

/** Everything needed to talk to one WinRM endpoint. */
export interface WinrmSettings {
  /** the endpoint, e.g. `http://win01:5985/wsman` */
  url: URL;
  auth: "basic" | "negotiate";
  /** the code page Basic credentials are sent in (the host's ANSI code page); default windows-1252 */
  basicCharset?: BasicCharset;
  /** as typed: `DOMAIN\user`, `user@domain` or `user` */
  username: string;
  password: string;
  /** certificate checks for HTTPS */
  tls: { verifyCa: boolean; verifyHost: boolean; ca?: string[] };
  allowRedirection: boolean;
  /** w:OperationTimeout in ms: how long the host may hold a Receive */
  operationTimeoutMs: number;
  connectTimeoutMs: number;
}

/** The longest a reply may take beyond OperationTimeout before the connection is given up. */
export function replyTimeoutMs(operationTimeoutMs: number): number {
  return operationTimeoutMs + Math.min(10_000, Math.max(2_000, operationTimeoutMs / 2));
}

const MAX_REDIRECTS = 5;
const NOT_WINRM_HINT = "the host does not answer as a WinRM service does; check the address and port, " +
  "and any proxy in between";
const SOAP_TYPE = "application/soap+xml;charset=UTF-8";
const te = new TextEncoder();
const td = new TextDecoder();

/** Counters for the benchmark: HTTP requests by purpose. */
export interface WinrmStats {
  requests: number;
  handshakes: number;
  connections: number;
  byAction: Record<string, number>;
}

/** One socket with its authentication state. */
class WsmanConnection {
  #http?: HttpConnection;
  #session?: NtlmSession;
  #authed = false;

  constructor(readonly client: WinrmClient) {}

  get usable(): boolean {
    return !this.#http || !this.#http.closed;
  }

  close(): void {
    this.#http?.close();
  }

  /**
   * one request; `texts` holds the reply's envelopes: one per chunk of a chunked reply (MS-WSMV 3.2.4.2.1: each
   * chunk a whole envelope, each sealed on its own), else the whole body
   */
  async post(
    soap: string,
    timeoutMs: number,
    split = false,
  ): Promise<HttpResponse & { text: string; texts: string[] }> {
    const s = this.client.settings;
    if (!this.#http || this.#http.closed) {
      this.#http = await HttpConnection.connect({
        host: s.url.hostname.replace(/^\[|\]$/g, ""),
        port: Number(s.url.port || (s.url.protocol === "https:" ? 5986 : 5985)),
        tls: s.url.protocol === "https:" ? s.tls : undefined,
        connectTimeoutMs: s.connectTimeoutMs,
      });
      this.client.stats.connections++;
      this.#authed = false;
      this.#session = undefined;
    }
    const http = this.#http;
    if (s.auth === "negotiate" && !this.#authed) await this.#handshake(http, timeoutMs);
    const headers: Record<string, string> = {
      "User-Agent": "Microsoft WinRM Client",
      "Connection": "Keep-Alive",
    };
    let body: Uint8Array = te.encode(soap);
    if (s.auth === "basic") headers["Authorization"] = `Basic ${b64(this.client.basicCredentials())}`;
    if (this.#session) {
      headers["Content-Type"] = ENCRYPTED_CONTENT_TYPE;
      body = encryptMessage(this.#session, body);
    } else headers["Content-Type"] = SOAP_TYPE;
    this.client.stats.requests++;
    // until the host has accepted the credentials, nothing it sends is trusted with more than a small reply
    const r = await http.request("POST", s.url.pathname || "/wsman", headers, body, timeoutMs, {
      maxHeader: MAX_HEADER,
      maxBody: this.#authed ? MAX_BODY : MAX_PREAUTH_BODY,
    });
    if (s.auth === "basic" && r.status !== 401) this.#authed = true;
    const session = this.#session;
    if (session && r.body.length && !isEncrypted(r.headers.get("content-type"))) {
      throw new TransportError(`${s.url.host} replied unencrypted on an encrypted connection`, {
        layer: "protocol",
        hint: "the reply cannot be trusted; check for a proxy between you and the host",
      });
    }
    const open = (bytes: Uint8Array): string => {
      if (!session || !bytes.length) return td.decode(bytes);
      try {
        return td.decode(decryptMessage(session, bytes));
      } catch (e) {
        if (e instanceof EncryptionError || e instanceof NtlmError) {
          this.close();
          throw new TransportError(`cannot decrypt the reply from ${s.url.host}: ${e.message}`, {
            layer: "protocol",
            cause: e,
          });
        }
        throw e;
      }
    };
    if (split && r.chunks && r.chunks.length > 1) {
      try {
        const texts = r.chunks.map((c) => session && c.length ? td.decode(decryptMessage(session, c)) : td.decode(c));
        return { ...r, text: texts.join(""), texts };
      } catch { /* not one sealed envelope per chunk: the body is one message, below */ }
    }
    const text = open(r.body);
    return { ...r, text, texts: [text] };
  }

  async #handshake(http: HttpConnection, timeoutMs: number): Promise<void> {
    const s = this.client.settings;
    const https = s.url.protocol === "https:";
    let channelBindings: Uint8Array | undefined;
    const cert = https ? http.peerCertificate() : undefined;
    if (cert) channelBindings = tlsChannelBindings(cert);
    const ntlm = new NtlmClient({
      username: s.username,
      password: s.password,
      spn: `HTTP/${s.url.hostname}`,
      channelBindings,
    });
    const path = s.url.pathname || "/wsman";
    const common = { "User-Agent": "Microsoft WinRM Client", "Connection": "Keep-Alive", "Content-Type": SOAP_TYPE };
    this.client.stats.handshakes++;
    this.client.stats.requests++;
    const r1 = await http.request(
      "POST",
      path,
      { ...common, Authorization: `Negotiate ${b64(ntlm.negotiate())}` },
      new Uint8Array(),
      timeoutMs,
      PREAUTH,
    );
    const token = /Negotiate\s+([A-Za-z0-9+/=]+)/i.exec(r1.headers.get("www-authenticate") ?? "")?.[1];
    if (r1.status !== 401 || !token) {
      if (r1.status === 401) {
        throw new TransportError(`${s.url.host} does not offer Negotiate authentication`, {
          layer: "auth",
          hint: `the host offers: ${
            r1.headers.get("www-authenticate") || "nothing"
          }; try --authentication Basic over https`,
        });
      }
      throw new TransportError(`${s.url.host} answered the NTLM negotiation with HTTP ${r1.status}`, {
        layer: "protocol",
      });
    }
    let auth: { message: Uint8Array; session: NtlmSession };
    try {
      auth = ntlm.authenticate(unb64(token));
    } catch (e) {
      throw new TransportError(`NTLM with ${s.url.host} failed: ${(e as Error).message}`, { layer: "auth", cause: e });
    }
    this.client.stats.requests++;
    const r2 = await http.request(
      "POST",
      path,
      { ...common, Authorization: `Negotiate ${b64(auth.message)}` },
      new Uint8Array(),
      timeoutMs,
      PREAUTH,
    );
    if (r2.status === 401) throw this.client.accessDenied();
    if (r2.status >= 300) {
      throw new TransportError(`${s.url.host} answered the NTLM authentication with HTTP ${r2.status}`, {
        layer: "protocol",
      });
    }
    this.#authed = true;
    if (!https) this.#session = auth.session;
  }
}

const PREAUTH = { maxHeader: MAX_HEADER, maxBody: MAX_PREAUTH_BODY };

function b64(b: Uint8Array): string {
  return btoa(String.fromCharCode(...b));
}

function unb64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/**
 * The `tls-server-end-point` channel binding (RFC 5929) as MS-NLMP's MsvAvChannelBindings wants it:
 * MD5 of a gss_channel_bindings_struct whose application data is the prefix and the certificate hash
 * (SHA-256 unless the certificate is signed with SHA-384 or SHA-512).
 */
export function tlsChannelBindings(certDer: Uint8Array): Uint8Array {
  const alg = signatureHash(certDer);
  const hash = new Uint8Array(createHash(alg).update(certDer).digest());
  const app = concat(te.encode("tls-server-end-point:"), hash);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, app.length, true);
  return new Uint8Array(createHash("md5").update(concat(new Uint8Array(16), len, app)).digest());
}

function signatureHash(der: Uint8Array): "sha256" | "sha384" | "sha512" {
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID, … }, signature }
  const hdr = (o: number): [number, number] => {
    let len = der[o + 1];
    let h = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[o + 2 + i];
      h += n;
    }
    return [h, len];
  };
  try {
    const [oh] = hdr(0);
    const tbs = oh;
    const [th, tl] = hdr(tbs);
    const alg = tbs + th + tl;
    const [ah] = hdr(alg);
    const oid = alg + ah;
    const [idh, idl] = hdr(oid);
    const hex = Array.from(der.subarray(oid + idh, oid + idh + idl), (b) => b.toString(16).padStart(2, "0")).join("");
    if (hex === "2a864886f70d01010c" || hex === "2a8648ce3d040303") return "sha384";
    if (hex === "2a864886f70d01010d" || hex === "2a8648ce3d040304") return "sha512";
  } catch { /* malformed: fall back to the default */ }
  return "sha256";
}

/**
 * The largest envelope remote uses, whatever the host allows: replies are read whole (MAX_BODY in
 * http_connection.ts is 1 MiB) and Windows' own default since Server 2012 is 500 KiB.
 */
export const MAX_ENVELOPE_SIZE = 512_000;
/** Room kept free in an envelope beyond its measured skeleton (pypsrp keeps 256 bytes as well). */
const ENVELOPE_MARGIN = 256;

/**
 * How many payload bytes fit base64-encoded in an envelope of `maxEnvelopeSize` bytes whose
 * skeleton (the whole envelope with an empty payload) takes `skeletonBytes`: what a Send's stdin
 * chunk, or a PSRP fragment, may hold (MS-WSMV 2.2.4.10 MaxEnvelopeSizekb; DSP0226 6.2).
 */
export function payloadRoom(maxEnvelopeSize: number, skeletonBytes: number): number {
  return Math.max(0, Math.floor((maxEnvelopeSize - skeletonBytes - ENVELOPE_MARGIN) / 4) * 3);
}

/** A w:TimedOut reply to a Receive: nothing happened within OperationTimeout. */
export const RECEIVE_TIMED_OUT = Symbol("receive timed out");

/**
 * A client for one WinRM endpoint: shell operations, each one HTTP request.
 *
 * @example Run a command
 * ```ts ignore
 * import { WinrmClient } from "./client.ts";
 * const c = new WinrmClient(settings);
 * const shell = await c.createShell({});
 * const cmd = await c.command(shell, "ipconfig");
 * ```
 */
export class WinrmClient {
  readonly settings: WinrmSettings;
  readonly sessionId = `uuid:${randomUUID().toUpperCase()}`;
  readonly stats: WinrmStats = { requests: 0, handshakes: 0, connections: 0, byAction: {} };
  #idle: WsmanConnection[] = [];
  #all = new Set<WsmanConnection>();
  #redirects = 0;
  #closed = false;
  #maxEnvelope = DEFAULT_MAX_ENVELOPE_SIZE;
  #envelopeRead?: Promise<number>;

  constructor(settings: WinrmSettings) {
    this.settings = { ...settings, url: new URL(settings.url) };
  }

  /** the error for rejected credentials */
  accessDenied(): TransportError {
    const s = this.settings;
    const charset = s.basicCharset ?? DEFAULT_BASIC_CHARSET;
    return new TransportError(`access denied for ${s.username} at ${s.url.host}`, {
      layer: "auth",
      hint: s.auth === "basic" && !isAscii(`${s.username}${s.password}`)
        ? `the credentials are not ASCII and were sent in ${charset}; Windows decodes Basic credentials in its ` +
          "ANSI code page: pass --basic-charset with the host's (e.g. windows-1251), or use --authentication Negotiate"
        : "check the user name and password (--credential DOMAIN\\user), and that the account may use WinRM",
    });
  }

  /**
   * `user:password` in the Basic charset.
   *
   * @throws {UsageError} when a character has no code in it (the message never shows the password)
   */
  basicCredentials(): Uint8Array {
    const s = this.settings;
    const charset = s.basicCharset ?? DEFAULT_BASIC_CHARSET;
    const bytes = encodeBasic(`${s.username}:${s.password}`, charset);
    if (bytes) return bytes;
    const which = encodeBasic(s.username, charset) ? "password" : "user name";
    throw new UsageError(`the ${which} has characters that ${charset} cannot encode for Basic authentication`, {
      hint: "pass --basic-charset with the host's ANSI code page (e.g. windows-1251 for Cyrillic), " +
        "or use --authentication Negotiate, which sends Unicode",
    });
  }

  /** Create: a cmd shell with UTF-8 code page; returns the ShellId */
  async createShell(o: { env?: Readonly<Record<string, string>>; workingDirectory?: string }): Promise<string> {
    return await this.#invoke(Action.create, createShellBody(o), {
      options: { WINRS_NOPROFILE: "FALSE", WINRS_CODEPAGE: "65001" },
    }, parseCreateResponse);
  }

  /** Command: starts `commandLine` in the shell; returns the CommandId */
  async command(shellId: string, commandLine: string): Promise<string> {
    return await this.#invoke(Action.command, commandBody(commandLine), {
      selectors: { ShellId: shellId },
      options: { WINRS_CONSOLEMODE_STDIN: "TRUE", WINRS_SKIP_CMD_SHELL: "FALSE" },
    }, parseCommandResponse);
  }

  /**
   * The envelope size in use: {@linkcode DEFAULT_MAX_ENVELOPE_SIZE} until
   * {@linkcode WinrmClient.readMaxEnvelopeSize} has read the host's.
   */
  get maxEnvelopeSize(): number {
    return this.#maxEnvelope;
  }

  /**
   * Reads the host's MaxEnvelopeSizekb with a WS-Transfer Get of the config resource, once, and uses
   * it (up to {@linkcode MAX_ENVELOPE_SIZE}) for every later request. Only administrators may read
   * the configuration: any fault, Access denied for everyone else, keeps the 150 KiB default, as
   * pypsrp and pywinrm do. Returns the size in use, in bytes; a PSRP fragment size follows from it
   * with {@linkcode payloadRoom}.
   */
  readMaxEnvelopeSize(): Promise<number> {
    this.#envelopeRead ??= (async () => {
      try {
        const size = await this.#invoke(Action.get, "", { resourceUri: CONFIG_RESOURCE }, parseConfigMaxEnvelope);
        // below 32 KiB is not a value Windows accepts (MS-WSMV 2.2.4.10); none at all: keep the default
        if (size !== undefined && size >= 32 * 1024) this.#maxEnvelope = Math.min(size, MAX_ENVELOPE_SIZE);
      } catch (e) {
        if (!(e instanceof WinrmFaultError)) throw e;
      }
      return this.#maxEnvelope;
    })();
    return this.#envelopeRead;
  }

  /** Send: stdin bytes, split to fit MaxEnvelopeSize; `end` closes the command's stdin */
  async send(shellId: string, commandId: string, data: Uint8Array, end: boolean): Promise<void> {
    const CHUNK = this.sendRoom(shellId, commandId);
    let off = 0;
    do {
      const part = data.subarray(off, off + CHUNK);
      off += part.length;
      await this.#invoke(Action.send, sendBody(commandId, part, end && off >= data.length), {
        selectors: { ShellId: shellId },
      });
    } while (off < data.length);
  }

  /** How many stdin bytes one Send to this command can carry within the envelope size in use. */
  sendRoom(shellId: string, commandId: string): number {
    const skeleton = this.#envelope(Action.send, "uuid:00000000-0000-0000-0000-000000000000", {
      selectors: { ShellId: shellId },
    }, sendBody(commandId, new Uint8Array(), true));
    return payloadRoom(this.#maxEnvelope, te.encode(skeleton).length);
  }

  /** Receive: one long poll; {@linkcode RECEIVE_TIMED_OUT} when the host had nothing within OperationTimeout */
  async receive(shellId: string, commandId: string): Promise<ReceiveResult | typeof RECEIVE_TIMED_OUT> {
    try {
      return await this.#invoke(Action.receive, receiveBody(commandId), {
        selectors: { ShellId: shellId },
        options: { WSMAN_CMDSHELL_OPTION_KEEPALIVE: "TRUE" },
      }, (env) => parseReceiveResponse(env, commandId));
    } catch (e) {
      if (e instanceof WinrmFaultError && e.fault.code === FaultCode.operationTimeout) return RECEIVE_TIMED_OUT;
      throw e;
    }
  }

  /** Signal: ctrl_c, ctrl_break or terminate */
  async signal(shellId: string, commandId: string, code: string): Promise<void> {
    await this.#invoke(Action.signal, signalBody(commandId, code), { selectors: { ShellId: shellId } });
  }

  /** Delete: ends the shell and every command in it */
  async deleteShell(shellId: string): Promise<void> {
    await this.#invoke(Action.delete, "", { selectors: { ShellId: shellId } });
  }

  /**
   * One WS-Man operation on any resource (the PowerShell shells use it with their configuration's URI).
   * With `o.operation` it is a robust-connection operation (MS-WSMV 3.1.4.1.39, see {@linkcode RobustOperation}):
   * `parse` is called for each of the operation's replies not seen before, in order, and the last result returned.
   *
   * @throws {WinrmFaultError} for a SOAP fault; {@linkcode TransportError} for a broken reply or connection (a
   * robust operation's reply cut short is a broken connection: layer `channel`)
   */
  async request<T>(
    action: string,
    body: string,
    o: {
      resourceUri?: string;
      selectors?: Record<string, string>;
      options?: Record<string, string | { value: string; mustComply: boolean }>;
      operation?: RobustOperation;
    },
    parse: (env: XmlElement) => T,
  ): Promise<T> {
    return await this.#invoke(action, body, o, parse);
  }

  /** closes every connection; safe to call twice */
  close(): void {
    this.#closed = true;
    for (const c of this.#all) c.close();
    this.#all.clear();
    this.#idle = [];
  }

  /** one operation; `parse` reads the reply, and a reply it cannot read is the host breaking the protocol */
  async #invoke<T = XmlElement>(
    action: string,
    body: string,
    o: EnvelopeParts,
    parse: (env: XmlElement) => T = (env) => env as T,
  ): Promise<T> {
    const s = this.settings;
    const robust = o.operation;
    for (;;) {
      // a retransmission is the same request again (MS-WSMV 3.2.5.3), so the replies kept for it relate to it
      const messageId = robust
        ? (robust.messageId ??= `uuid:${randomUUID().toUpperCase()}`)
        : `uuid:${randomUUID().toUpperCase()}`;
      const soap = this.#envelope(action, messageId, o, body);
      const op = action.slice(action.lastIndexOf("/") + 1);
      this.stats.byAction[op] = (this.stats.byAction[op] ?? 0) + 1;
      const r = await this.#post(soap, op, !!robust);
      if (r.status >= 300 && r.status < 400 && r.headers.has("location")) {
        this.#redirect(r.headers.get("location")!);
        continue;
      }
      if (r.status === 401) throw this.accessDenied();
      if (r.status === 413) {
        throw new TransportError(
          `${s.url.host} refused ${op}: the request is larger than its MaxEnvelopeSizekb allows (HTTP 413)`,
          {
            layer: "protocol",
            hint: 'raise MaxEnvelopeSizekb on the host (winrm set winrm/config @{MaxEnvelopeSizekb="500"})',
          },
        );
      }
      if (r.status !== 200 && !r.text.trim()) {
        throw new TransportError(`${s.url.host} answered ${op} with HTTP ${r.status} and no body`, {
          layer: "protocol",
        });
      }
      const badReply = (e: unknown) => {
        if (!(e instanceof WsmanXmlError)) return e;
        return new TransportError(`bad reply to ${op} from ${s.url.host}: ${e.message}`, {
          layer: "protocol",
          hint: NOT_WINRM_HINT,
          cause: e,
        });
      };
      if (robust) {
        // one envelope per chunk (MS-WSMV 3.2.4.2.1); chunks that are not whole envelopes are one reply together
        const texts = r.texts.length > 1 && !r.texts.every((t) => /<\/([\w-]+:)?Envelope>\s*$/.test(t))
          ? [r.text]
          : r.texts;
        return this.#robustReplies(op, texts, messageId, robust, parse, badReply);
      }
      let env: XmlElement;
      try {
        env = parseEnvelope(r.text);
      } catch (e) {
        throw badReply(e);
      }
      const fault = parseFault(env);
      try {
        checkRelatesTo(env, messageId);
      } catch (e) {
        // a fault raised before the request was understood may carry no RelatesTo
        if (!fault) throw badReply(e);
      }
      if (fault) throw new WinrmFaultError(op, s.url.host, fault);
      if (r.status !== 200) {
        throw new TransportError(`${s.url.host} answered ${op} with HTTP ${r.status}`, { layer: "protocol" });
      }
      try {
        return parse(env);
      } catch (e) {
        throw badReply(e);
      }
    }
  }

  /**
   * The replies of a robust operation (MS-WSMV 3.1.4.1.39, 3.2.7): the host's Acknowledge, KeepAlive and
   * AcknowledgeRequest messages are skipped; a reply whose wsmv:SequenceID the client already has is a repeat and
   * skipped; one past the next expected means replies were lost, which ends the operation.
   */
  #robustReplies<T>(
    op: string,
    texts: string[],
    messageId: string,
    robust: RobustOperation,
    parse: (env: XmlElement) => T,
    badReply: (e: unknown) => unknown,
  ): T {
    const host = this.settings.url.host;
    let last: { value: T } | undefined;
    for (const text of texts) {
      if (!text.trim()) continue;
      let env: XmlElement;
      try {
        env = parseEnvelope(text);
      } catch (e) {
        throw badReply(e);
      }
      const h = robustHeaders(env);
      if (h.operationId !== undefined) this.robustHost = true;
      if (h.control) continue;
      if (h.sequenceId !== undefined) {
        if (h.sequenceId <= robust.received) continue;
        if (h.sequenceId !== robust.received + 1) {
          throw new TransportError(
            `${host} lost replies to ${op}: reply ${h.sequenceId} came after ${robust.received}`,
            { layer: "protocol" },
          );
        }
        robust.received = h.sequenceId;
      }
      const fault = parseFault(env);
      try {
        checkRelatesTo(env, messageId);
      } catch (e) {
        if (!fault) throw badReply(e);
      }
      if (fault) throw new WinrmFaultError(op, host, fault);
      try {
        last = { value: parse(env) };
      } catch (e) {
        throw badReply(e);
      }
    }
    if (!last) throw badReply(new WsmanXmlError(`the ${op.toLowerCase()} reply holds no reply of its own`));
    return last.value;
  }

  /**
   * true once a reply carried wsmv:OperationID: the host keeps replies for retransmission (MS-WSMV 1.7, 3.1.4.1.39;
   * Windows 8 and Server 2012 onwards, <99>)
   */
  robustHost = false;

  #envelope(action: string, messageId: string, o: EnvelopeParts, body: string): string {
    const s = this.settings;
    return buildEnvelope({
      action,
      to: s.url.href,
      messageId,
      sessionId: this.sessionId,
      operationTimeout: `PT${(s.operationTimeoutMs / 1000).toFixed(3)}S`,
      resourceUri: o.resourceUri,
      selectors: o.selectors,
      options: o.options,
      body,
      maxEnvelopeSize: this.#maxEnvelope,
      operation: o.operation ? { id: o.operation.id, retransmit: o.operation.retransmit } : undefined,
    });
  }

  #redirect(location: string): void {
    const s = this.settings;
    if (!s.allowRedirection) {
      throw new TransportError(`${s.url.host} redirects to ${location}`, {
        layer: "protocol",
        hint: "pass --allow-redirection to follow it",
      });
    }
    if (++this.#redirects > MAX_REDIRECTS) {
      throw new TransportError(`more than ${MAX_REDIRECTS} redirections from ${s.url.host}`, { layer: "protocol" });
    }
    const next = new URL(location, s.url);
    if (next.protocol !== "http:" && next.protocol !== "https:") {
      throw new TransportError(`${s.url.host} redirects to a non-http location`, { layer: "protocol" });
    }
    if (s.auth === "basic" && next.protocol === "http:" && s.url.protocol === "https:") {
      throw new TransportError(`${s.url.host} redirects from https to http, which would expose the password`, {
        layer: "protocol",
      });
    }
    for (const c of this.#all) c.close();
    this.#all.clear();
    this.#idle = [];
    s.url = next;
  }

  async #post(soap: string, op: string, robust = false): Promise<HttpResponse & { text: string; texts: string[] }> {
    if (this.#closed) throw new TransportError("the winrm client is closed", { layer: "channel" });
    let conn = this.#idle.pop();
    while (conn && !conn.usable) {
      this.#all.delete(conn);
      conn = this.#idle.pop();
    }
    if (!conn) {
      conn = new WsmanConnection(this);
      this.#all.add(conn);
    }
    const timeout = replyTimeoutMs(this.settings.operationTimeoutMs);
    try {
      const r = await conn.post(soap, timeout, robust);
      if (conn.usable && this.#all.has(conn)) this.#idle.push(conn);
      return r;
    } catch (e) {
      conn.close();
      this.#all.delete(conn);
      if (e instanceof HttpError) {
        const host = this.settings.url.host;
        if (e.kind === "timeout") {
          throw new TransportError(`${host} did not answer ${op} within ${Math.round(timeout / 1000)}s`, {
            layer: "timeout",
            hint: "the host or the network is stuck; try again, or check the WinRM service on the host",
            cause: e,
          });
        }
        // a robust operation's reply cut short is a connection that broke: the host kept the reply (3.1.6.5)
        const broken = e.kind === "closed" || (robust && e.cut);
        throw new TransportError(`${op} to ${host} failed: ${e.message}`, {
          layer: broken ? "channel" : "protocol",
          hint: broken ? undefined : NOT_WINRM_HINT,
          cause: e,
        });
      }
      throw e;
    }
  }
}

/** What varies between the headers of two requests. */
interface EnvelopeParts {
  resourceUri?: string;
  selectors?: Record<string, string>;
  /** w:Option values; `{ value, mustComply }` marks one MustComply (MS-WSMV 2.2.4.23) */
  options?: Record<string, string | { value: string; mustComply: boolean }>;
  operation?: RobustOperation;
}

/**
 * One robust-connection operation (MS-WSMV 3.1.4.1.39): the host keeps the replies to a request that carries
 * wsmv:OperationID, numbered by wsmv:SequenceID, until the client has them; when the connection breaks, the client
 * sends the same request again with `retransmit` (OperationID mustUnderstand="true", 3.2.5.3) and the host answers
 * with an Acknowledge and the kept replies; the client skips those it has (3.2.7).
 */
export interface RobustOperation {
  /** wsmv:OperationID, `uuid:…` */
  id: string;
  /** the request's MessageID, set by the first transmission and kept for the retransmissions */
  messageId?: string;
  /** the request is a retransmission */
  retransmit: boolean;
  /** the SequenceID of the last reply received (ReceiveSequenceID − 1 in 3.2.1), 0 before the first */
  received: number;
}

/** A SOAP fault turned into a user-facing error; the WSManFault code stays readable in `fault`. */
export class WinrmFaultError extends TransportError {
  readonly fault: WsmanFault;

  constructor(op: string, host: string, fault: WsmanFault) {
    const { message, hint, code } = describeFault(op, host, fault);
    super(message, { layer: code === "timeout" ? "timeout" : "server", code, hint });
    this.name = "WinrmFaultError";
    this.fault = fault;
  }
}

function describeFault(op: string, host: string, f: WsmanFault): {
  message: string;
  hint?: string;
  code: RemoteError["code"];
} {
  const codeText = f.code !== undefined
    ? ` (${f.source ?? "WSManFault"} ${f.code}, 0x${f.code.toString(16)})`
    : ` (${f.subcode})`;
  const text = f.message ? `: ${f.message.replace(/[.\s]+$/, "")}` : "";
  const sub = f.subcode.replace(/^.*:/, "");
  if (f.code === FaultCode.accessDenied || sub === "AccessDenied") {
    return {
      message: `${host} denied access to ${op}${codeText}${text}`,
      hint: "the account needs to be an administrator or in Remote Management Users on the host",
      code: "auth",
    };
  }
  if (f.code === FaultCode.shellQuota || sub === "QuotaLimit") {
    return {
      message: `${host} refused a new shell: the shell quota is used up${codeText}${text}`,
      hint: "close other shells of this user, or raise MaxShellsPerUser on the host",
      code: "remoteFault",
    };
  }
  if (f.code === FaultCode.invalidSelectors || sub === "InvalidSelectors") {
    return {
      message: `${host} no longer knows the shell or command (invalid selectors)${codeText}${text}`,
      hint: "the shell ended on the host (idle timeout or service restart); start a new session",
      code: "remoteFault",
    };
  }
  if (f.code === FaultCode.operationTimeout || sub === "TimedOut") {
    return {
      message: `${op} timed out on ${host}${codeText}${text}`,
      hint: "the host is slow to answer; try again",
      code: "timeout",
    };
  }
  return { message: `${host} answered ${op} with a fault${codeText}${text}`, code: "remoteFault" };
}
