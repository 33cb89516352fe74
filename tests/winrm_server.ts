/**
 * A WS-Management / WinRS test server: the peer the winrm transport is tested against, since no
 * Windows host can run here. It follows, as closely as the project's reference allows:
 *
 * - [MS-WSMV] Web Services Management Protocol Extensions for Windows Vista: 3.1.4.1 (Create shell),
 *   3.1.4.2 (Delete), 3.1.4.11 (Command), 3.1.4.12 (Signal), 3.1.4.13 (Send), 3.1.4.14 (Receive),
 *   2.2.9.1 (HTTP-SPNEGO-session-encrypted message framing: requests of one part or, as pywinrm
 *   frames CredSSP in 2.2.9.1.3.2, of several 16 KiB parts under multipart/x-multi-encrypted; replies
 *   of one part, as Windows sends them for Negotiate), 2.2.4.10 (the config resource's
 *   MaxEnvelopeSizekb, read with WS-Transfer Get by administrators only; a request past it is HTTP
 *   413), WSManFault codes 2150858793 (w:TimedOut),
 *   2150858843 (w:InvalidSelectors), 2150859173 (shell quota), 2147942405 (access denied), 2150858767
 *   (wsa:InvalidMessageInformationHeader: ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER in wsmerror.h).
 * - [MS-WSMV] robust connections, on the PowerShell configurations' resource URIs (Custom Remote Shells):
 *   3.1.4.1.39 (a request with wsmv:OperationID starts an operation whose replies are kept, numbered by
 *   wsmv:SequenceID from 1; SequenceId other than 1, or a reused OperationID without mustUnderstand, is
 *   wsa:InvalidMessageInformationHeader; a new request on a connection ends the operations it carried; a
 *   retransmission, OperationID mustUnderstand="true", of a kept operation is answered on its new connection with an
 *   Acknowledge and every kept reply, in a chunked reply, once the operation has them; one the host no longer
 *   knows is a new request), 3.1.1 (OperationMessages, RobustConnection), 3.1.2 and 3.1.6.5 (the Response
 *   Retention Timer, 3 min 15 s: a kept reply survives the connection that broke), 3.1.6.6 and 3.2.4.2.1 (each
 *   reply a whole envelope in its own HTTP chunk, sealed on its own). Not done: KeepAlive messages (3.1.5.5),
 *   AcknowledgeRequest and the client's Acknowledge (3.1.4.18 specifies what a server does with it for enhanced CIM
 *   operations only; a Receive, Send, Command or Signal has one reply, far from the 3 MB list of <44>), the
 *   Connection AutoDisconnect Timer (3.1.5.6). `breakReceiveReply` breaks a connection after (or while)
 *   the host sends a Receive reply with output, as a network drop does; `breakReply` one carrying a Send, Command
 *   or Signal, before the host reads it or after it answered; `outage` keeps the host out of reach for some
 *   requests after such a break.
 * - DMTF DSP0226 WS-Management 1.x and SOAP 1.2 (faults, RelatesTo), WS-Transfer Create/Delete.
 * - [MS-NLMP] NT LAN Manager Authentication Protocol: 2.2.1 (messages), 3.2.5 (server: CHALLENGE with
 *   target info and MsvAvTimestamp, verification of the NTLMv2 response and the MIC), 3.4 (sealing
 *   with per-direction RC4 and sequence numbers). Crypto primitives are shared with the client
 *   (transports/winrm/ntlm.ts), which is held to MS-NLMP 4.2.4's published vectors; message layout
 *   is parsed here independently.
 * - RFC 9112 HTTP/1.1 (keep-alive, Content-Length), RFC 7617 Basic, RFC 4559 Negotiate headers.
 * - Reply shapes from public captures of real Windows replies: pywinrm's tests (diyan/pywinrm
 *   winrm/tests), pypsrp's recorded responses (jborean93/pypsrp tests/tests_pypsrp/responses), WinRb's
 *   spec fixtures (WinRb/WinRM, e.g. wmi_error_v2.xml) and masterzen/winrm fixture_test.go.
 *
 * A scripted Windows stands behind the shell. Each Command's command line (as cmd /c sees it) maps to:
 *
 * | command line | behaviour |
 * |---|---|
 * | `echo <text>` | `<text>\r\n` on stdout, exit 0 |
 * | `ipconfig` | a canned "Windows IP Configuration" listing, exit 0 |
 * | `chcp` | `Active code page: <WINRS_CODEPAGE>`, exit 0 |
 * | `set <NAME>` | `<NAME>=<value>` from the shell's Environment, or stderr `Environment variable <NAME> not defined`, exit 1 |
 * | `type con` | copies stdin to stdout until stdin ends, exit 0 |
 * | `exit /b <n>` | exit n |
 * | `timeout /t <n>` | silent for n seconds, exit 0 (ctrl_c ends it) |
 * | `ping -t <host>` | a reply line every 100 ms until ctrl_c or terminate; ctrl_c exits 0xC000013A |
 * | `cmd` | interactive: banner, prompt, echoes each stdin line as cmd does on a pipe, runs it; `exit` ends |
 * | `powershell.exe … -EncodedCommand <b64>` | decodes; `Write-Output <text>` prints text |
 * | `>&2 echo <text>` | `<text>\r\n` on stderr, exit 0 (cmd takes a redirection before the command) |
 * | `ping -n <n> <host> >nul` | the classic cmd sleep: silent for n-1 seconds, exit 0; ctrl_c exits 0xC000013A |
 * | `powershell.exe -NoProfile -NonInteractive -Command "$i = [Console]::OpenStandardInput(); …CopyTo($o)…"` | copies stdin to stdout byte for byte until stdin ends, exit 0 |
 * | `powershell.exe -NoProfile -NonInteractive -Command "[Console]::OpenStandardOutput().Write([byte[]]::new(<n>), 0, <n>)"` | n zero bytes on stdout, exit 0 |
 * | anything else | cmd's "is not recognized" on stderr, exit 9009 |
 *
 * The `>&2 echo`, `ping -n` and `powershell.exe -Command` rows are the conformance suite's cmd.exe
 * recipes (plugins/conformance.ts `WINDOWS_CMD_COMMANDS`). Their binary output waits while 256 KiB
 * are not yet received, as a writer to a full pipe does. A ReceiveResponse carries as much output as
 * fits the w:MaxEnvelopeSize of its request (DSP0226 6.2; at most MaxEnvelopeSizekb, 500) and the rest
 * goes with the next one; Done comes with the last.
 *
 * Faults have the shapes of the captures: an unknown ShellId or CommandId is s:Sender/w:InvalidSelectors
 * with w:FaultDetail UnexpectedSelectors (pypsrp tests/tests_pypsrp/responses/test_winrs_bad_cmd_id.yml),
 * the shell quota s:Sender/w:QuotaLimit with an MSFT_WmiError detail and no RelatesTo (WinRb/WinRM
 * spec/stubs/responses/wmi_error_v2.xml). Basic credentials are decoded in the host's ANSI code page
 * (`basicCharset`). pywinrm 0.3.0 (Basic, and NTLM with message encryption) runs commands against it and
 * reads both faults as it reads Windows'.
 *
 * Hostile modes (for tests) replace the reply to one operation: a DOCTYPE/entity bomb, a truncated
 * body, garbage, a wrong RelatesTo, a reply without its payload, 200,000 empty elements, floods (no
 * length, endless header, huge Content-Length), or no answer at all.
 *
 * @module
 */
import { createHash, type Hash, randomBytes, randomUUID } from "node:crypto";
import {
  AvId,
  concat,
  decodeAvPairs,
  decodeNegotiate,
  encodeAvPairs,
  fileTimeNow,
  fromUtf16le,
  hmacMd5,
  NtlmFlag,
  NtlmSession,
  ntowfv2,
  utf16le,
} from "../transports/winrm/ntlm.ts";
import { Rc4 } from "../transports/winrm/rc4.ts";
import { tlsChannelBindings } from "../transports/winrm/client.ts";
import {
  decryptMessage,
  encryptMessage,
  encryptMultipart,
  isEncrypted,
  MULTI_ENCRYPTED_CONTENT_TYPE,
} from "../transports/winrm/encryption.ts";
import { child, fromBase64, NS, parseEnvelope, toBase64, type XmlElement } from "../transports/winrm/wsman_xml.ts";
import { PS_RESOURCE_PREFIX, PsShell, type PsShellContext, unb64 } from "./winrm_psrp_shell.ts";

/** Ways the server misbehaves on purpose. */
export type HostileMode =
  | "doctype"
  | "entity-bomb"
  | "truncated"
  | "garbage"
  | "bad-relates-to"
  | "silent"
  /** a well-formed reply of the right action that lacks its payload: no ShellId, CommandId or ReceiveResponse */
  | "no-payload"
  /** a sealed, well-formed envelope holding 200,000 empty elements (800 KB) */
  | "many-elements"
  /** floods (`floodBytes`): a 200 reply without a length, header lines without end, a huge Content-Length */
  | "flood-no-length"
  | "flood-header"
  | "flood-elements"
  /** a sealed reply in multipart/x-multi-encrypted whose second part's boundary is garbled */
  | "garbled-multipart";

/** Options of {@linkcode startWinrmServer}. */
export interface WinrmServerOptions {
  https?: boolean;
  /** mechanisms offered; default both */
  auth?: ("basic" | "negotiate")[];
  /** user name as the client sends it (NTLM: user and domain) and the password */
  user?: { name: string; domain: string; password: string };
  /**
   * the host's ANSI code page, which the WinRM service decodes Basic credentials with (see
   * transports/winrm/basic_charset.ts); a WHATWG Encoding label, default windows-1252 (en-US Windows)
   */
  basicCharset?: string;
  /** AllowUnencrypted on the service: Basic and unsealed traffic over http */
  allowUnencrypted?: boolean;
  maxShellsPerUser?: number;
  /** misbehave on this operation (`Create`, `Command`, `Receive`, …), or `auth`: the first request of a connection */
  hostile?: { mode: HostileMode; on: string };
  /** how many bytes a flood sends at most; default 32 MiB */
  floodBytes?: number;
  /** answer every POST with a redirect to this URL */
  redirectTo?: string;
  /** the user is authenticated but not allowed to use WinRM */
  denyAccess?: boolean;
  /**
   * MaxEnvelopeSizekb of the service (default 500, as Windows Server 2012 and later): the largest
   * request it takes and reply it sends; a Get of the config resource reports it
   */
  maxEnvelopeSizeKb?: number;
  /** the user is not an administrator: a Get of the config resource is refused with Access denied */
  notAdmin?: boolean;
  /**
   * seal replies in parts of this many bytes under multipart/x-multi-encrypted: CredSSP's framing
   * (MS-WSMV 2.2.9.1.3.2), not what Windows sends with Negotiate; for checking that clients read it
   */
  replyPartSize?: number;
  /**
   * PowerShell session configurations served on `http://schemas.microsoft.com/powershell/<name>`
   * (tests/winrm_psrp_shell.ts); default Microsoft.PowerShell, PowerShell.7 and a JEA endpoint JEA.Maintenance
   */
  configurations?: string[];
  /** configurations the user may not use (a JEA endpoint's RoleDefinitions without them): access denied */
  deniedConfigurations?: string[];
  /** fragments a disconnected PowerShell command holds before Block suspends it or Drop discards (default 1000) */
  disconnectedBufferFragments?: number;
  /** the nth Receive (counted from 1) is answered by closing its connection: a network drop while the host holds it */
  dropReceive?: number;
  /**
   * the nth Receive (counted from 1) whose reply carries a pipeline's output breaks its connection after the host
   * sent the reply (the output is taken from the pipeline, and kept when the Receive is a robust operation):
   * `lost`, none of the reply reaches the client; `middle`, half of its bytes do; `end`, all but its end (the
   * envelope whole, the HTTP reply not: a chunked reply without its last chunk, a reply with a length without its
   * last byte). `held`: the nth Receive of a pipeline's output breaks its connection as soon as it arrives, and the
   * host, which has not noticed, answers it later with the output that comes meanwhile, into the broken connection
   */
  breakReceiveReply?: { nth: number; at: "lost" | "middle" | "end" | "held" };
  /**
   * the nth request of `op` (counted from 1) breaks its connection as a network drop does: `unread`, before the host
   * reads it (nothing is done); `lost`, after the host did what it asked and sent its reply, none of which reaches
   * the client (the reply is kept when the request is a robust operation)
   */
  breakReply?: { op: "Send" | "Command" | "Signal"; nth: number; at: "unread" | "lost" };
  /**
   * after a connection is broken on purpose (`dropReceive`, `breakReceiveReply`, `breakReply`), the host cannot be
   * reached for this many requests: each closes its connection unanswered and undone, as a client sees a network that
   * is down
   */
  outage?: number;
}

/** Counters the tests and the benchmark read. */
export interface WinrmServerStats {
  connections: number;
  requests: number;
  handshakes: number;
  byAction: Record<string, number>;
  timedOut: number;
  signals: string[];
  /** PowerShell shells created */
  psrpCreates: number;
  /** PowerShell shells disconnected */
  disconnects: number;
  /** Receives answered by closing the connection (`dropReceive`) */
  droppedReceives: number;
  /** replies to Receives broken on purpose (`breakReceiveReply`), and the output fragments they held */
  brokenReplies: { at: string; fragments: number }[];
  /** requests whose connection `breakReply` broke, by op and where */
  brokenRequests: { op: string; at: string }[];
  /** requests whose connection was closed unanswered while the host could not be reached (`outage`) */
  refusedRequests: number;
  /** PowerShell pipelines started (rsp:Command carried out), by CommandId */
  psrpPipelines: string[];
  /** robust-connection requests (wsmv:OperationID) by op, retransmissions among them, and what those were answered with */
  robust: { operations: number; retransmissions: number; replayed: number; unknownRetransmissions: number };
  /** rsp:Connect with connectXml: a client took a disconnected pool */
  connects: number;
  /** what each PowerShell Create carried */
  psrpShells: {
    shellId: string;
    resourceUri: string;
    protocolVersion: string;
    mustComply: boolean;
    sessionId: string;
  }[];
  encryptedRequests: number;
  plainRequests: number;
  /** sealed requests that came as multipart/x-multi-encrypted */
  multipartRequests: number;
  /** the largest request envelope (plaintext bytes) */
  largestRequest: number;
  /** SHA-256 (hex) of all the stdin each command received, added when its stdin ends */
  stdinSha256: string[];
  /** the last flood: bytes written, and whether all of them were (false: the client hung up first) */
  flood?: { sent: number; finished: boolean };
}

/** A running server. */
export interface WinrmServer extends AsyncDisposable {
  url: string;
  port: number;
  /** PEM of the CA that signed the HTTPS certificate */
  caPem?: string;
  stats: WinrmServerStats;
  /** ShellIds alive on the server */
  shells(): string[];
  /** the PowerShell shells alive on the server, by ShellId */
  psShells: Map<string, PsShell>;
  close(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";
const RUNNING = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running";
const MACHINE = "win01.test.example";
const CONTROL_C_EXIT = 3221225786;
const CONFIG_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/config";

interface Process {
  id: string;
  out: { stream: "stdout" | "stderr"; data: Uint8Array }[];
  done: boolean;
  exitCode: number;
  stdin: Uint8Array[];
  stdinEnded: boolean;
  stdinHash: Hash;
  interrupted: number;
  terminated: boolean;
  wake: Set<() => void>;
}

interface Shell {
  id: string;
  owner: string;
  env: Record<string, string>;
  codepage: string;
  commands: Map<string, Process>;
}

interface Conn {
  /** breaks the TCP connection */
  hangUp: () => void;
  ntlm?: { negotiate: Uint8Array; challenge: Uint8Array; serverChallenge: Uint8Array };
  session?: NtlmSession;
  user?: string;
}

async function makeCert(): Promise<{ cert: string; key: string; ca: string }> {
  const dir = await Deno.makeTempDir({ prefix: "winrm-cert-" });
  const run = async (args: string[]) => {
    const r = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" }).output();
    if (!r.success) throw new Error(`openssl ${args[0]} failed: ${dec.decode(r.stderr)}`);
  };
  try {
    await run([
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=winrm test CA",
    ]);
    await run([
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "leaf.key",
      "-out",
      "leaf.csr",
      "-subj",
      "/CN=localhost",
    ]);
    await Deno.writeTextFile(
      `${dir}/ext.cnf`,
      "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    );
    await run([
      "x509",
      "-req",
      "-in",
      "leaf.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "leaf.pem",
      "-days",
      "2",
      "-extfile",
      "ext.cnf",
    ]);
    return {
      cert: await Deno.readTextFile(`${dir}/leaf.pem`),
      key: await Deno.readTextFile(`${dir}/leaf.key`),
      ca: await Deno.readTextFile(`${dir}/ca.pem`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Starts the server on 127.0.0.1 (an ephemeral port). */
export async function startWinrmServer(opts: WinrmServerOptions = {}): Promise<WinrmServer> {
  const user = opts.user ?? { name: "alice", domain: "WIN01", password: "Secr3t-pässword" };
  const auth = opts.auth ?? ["basic", "negotiate"];
  const stats: WinrmServerStats = {
    connections: 0,
    requests: 0,
    handshakes: 0,
    byAction: {},
    timedOut: 0,
    signals: [],
    psrpCreates: 0,
    droppedReceives: 0,
    brokenReplies: [],
    brokenRequests: [],
    refusedRequests: 0,
    psrpPipelines: [],
    robust: { operations: 0, retransmissions: 0, replayed: 0, unknownRetransmissions: 0 },
    disconnects: 0,
    connects: 0,
    psrpShells: [],
    encryptedRequests: 0,
    plainRequests: 0,
    multipartRequests: 0,
    largestRequest: 0,
    stdinSha256: [],
  };
  const maxEnvelopeBytes = (opts.maxEnvelopeSizeKb ?? 500) * 1024;
  const shells = new Map<string, Shell>();
  const psShells = new Map<string, PsShell>();
  let receives = 0;
  /** connections still to refuse (`outage`) */
  let down = 0;
  /** requests of `breakReply`'s op so far */
  let breakable = 0;
  let outputReceives = 0;
  let pipelineReceives = 0;
  /** MS-WSMV 3.1.1 OperationMessages: the replies kept for each robust operation, by OperationID */
  const operations = new Map<string, RobustOp>();
  const configurations = opts.configurations ?? ["Microsoft.PowerShell", "PowerShell.7", "JEA.Maintenance"];
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let caPem: string | undefined;
  let listener: Deno.Listener;
  let cbt: Uint8Array | undefined;
  if (opts.https) {
    const c = await makeCert();
    caPem = c.ca;
    const der = c.cert.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
    cbt = tlsChannelBindings(Uint8Array.from(atob(der), (ch) => ch.charCodeAt(0)));
    listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: c.cert, key: c.key });
  } else {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  }
  const port = (listener.addr as Deno.NetAddr).port;
  const url = `${opts.https ? "https" : "http"}://127.0.0.1:${port}/wsman`;
  let closing = false;

  const accept = (async () => {
    for (;;) {
      let c: Deno.Conn;
      try {
        c = await listener.accept();
      } catch {
        return;
      }
      conns.add(c);
      stats.connections++;
      const t = serveConn(c).catch(() => {}).finally(() => {
        conns.delete(c);
        try {
          c.close();
        } catch { /* closed */ }
      });
      tasks.add(t);
      t.finally(() => tasks.delete(t));
    }
  })();

  async function serveConn(c: Deno.Conn): Promise<void> {
    const reader = new RequestReader(c);
    const state: Conn = {
      hangUp: () => {
        try {
          c.close();
        } catch { /* closed */ }
      },
    };
    for (;;) {
      const req = await reader.next();
      if (!req) return;
      if (down > 0) {
        // the host is out of reach: the request breaks its connection, new or kept open
        down--;
        stats.refusedRequests++;
        return;
      }
      stats.requests++;
      const reply = await handle(req, state);
      if (typeof reply === "function") {
        await reply(c);
        return;
      }
      if (reply === "silent") {
        await new Promise<void>((r) => {
          const i = setInterval(() => closing && (clearInterval(i), r()), 20);
        });
        return;
      }
      await writeAll(c, reply);
      if (reply.closeAfter) return;
    }
  }

  type Reply = Uint8Array & { closeAfter?: boolean };
  /** a reply written by the function itself, after which the connection closes */
  type Streamed = (c: Deno.Conn) => Promise<void>;

  function flood(mode: "flood-no-length" | "flood-header" | "flood-elements"): Streamed {
    const total = opts.floodBytes ?? 32 * 1024 * 1024;
    const unit = mode === "flood-header" ? `X-Flood: ${"a".repeat(90)}\r\n` : "<a/>";
    const head = mode === "flood-header"
      ? "HTTP/1.1 200 OK\r\n"
      : `HTTP/1.1 200 OK\r\nServer: Microsoft-HTTPAPI/2.0\r\nContent-Type: application/soap+xml;charset=UTF-8\r\n` +
        (mode === "flood-elements" ? `Content-Length: ${total}\r\n` : "") +
        `\r\n<s:Envelope xmlns:s="${NS.s}"><s:Body>`;
    const block = enc.encode(unit.repeat(Math.ceil(65536 / unit.length)));
    return async (c) => {
      const f = { sent: 0, finished: false };
      stats.flood = f;
      try {
        await writeAll(c, enc.encode(head));
        while (f.sent < total) {
          await writeAll(c, block);
          f.sent += block.length;
        }
        f.finished = true;
      } catch { /* the client hung up */ }
    };
  }

  function http(status: number, headers: [string, string][], body: Uint8Array = new Uint8Array()): Reply {
    const reason: Record<number, string> = {
      200: "OK",
      307: "Temporary Redirect",
      400: "Bad Request",
      413: "Request Entity Too Large",
      401: "Unauthorized",
      500: "Internal Server Error",
    };
    let head = `HTTP/1.1 ${status} ${reason[status] ?? "Status"}\r\nServer: Microsoft-HTTPAPI/2.0\r\n`;
    for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
    head += `Content-Length: ${body.length}\r\n\r\n`;
    return concat(enc.encode(head), body);
  }

  function unauthorized(token?: string): Reply {
    const h: [string, string][] = [];
    if (auth.includes("negotiate")) h.push(["WWW-Authenticate", token ? `Negotiate ${token}` : "Negotiate"]);
    if (auth.includes("basic") && !token) h.push(["WWW-Authenticate", 'Basic realm="WSMAN"']);
    return http(401, h);
  }

  async function handle(req: Req, conn: Conn): Promise<Reply | Streamed | "silent"> {
    const authz = req.headers.get("authorization") ?? "";
    if (opts.hostile?.on === "auth" && !conn.user && !conn.ntlm && opts.hostile.mode.startsWith("flood-")) {
      return flood(opts.hostile.mode as "flood-no-length");
    }
    // authentication (the connection stays authenticated once NTLM completes, MS-NLMP 3.2.5)
    if (/^Negotiate /i.test(authz) && auth.includes("negotiate")) {
      const tok = Uint8Array.from(atob(authz.slice(10).trim()), (ch) => ch.charCodeAt(0));
      const type = tok.length >= 12 ? new DataView(tok.buffer).getUint32(8, true) : 0;
      if (type === 1) {
        stats.handshakes++;
        const { flags } = decodeNegotiate(tok);
        const challenge = buildChallenge(flags);
        conn.ntlm = { negotiate: tok, challenge: challenge.message, serverChallenge: challenge.serverChallenge };
        return unauthorized(btoa(String.fromCharCode(...challenge.message)));
      }
      if (type === 3 && conn.ntlm) {
        const key = verifyAuthenticate(tok, conn.ntlm, user, cbt);
        conn.ntlm = undefined;
        if (!key) return unauthorized();
        conn.user = user.name;
        conn.session = opts.https ? undefined : new NtlmSession(key, "server");
        if (!req.body.length) return http(200, []);
      } else return unauthorized();
    } else if (/^Basic /i.test(authz) && auth.includes("basic")) {
      if (!opts.https && !opts.allowUnencrypted) return unauthorized();
      const bytes = Uint8Array.from(atob(authz.slice(6).trim()), (ch) => ch.charCodeAt(0));
      const [name, ...pw] = new TextDecoder(opts.basicCharset ?? "windows-1252").decode(bytes).split(":");
      const pass = pw.join(":");
      const bare = name.replace(/^.*\\/, "").replace(/@.*$/, "");
      if (bare.toLowerCase() !== user.name.toLowerCase() || pass !== user.password) return unauthorized();
      conn.user = user.name;
    } else if (!conn.user) return unauthorized();

    let soap: string;
    if (conn.session) {
      if (!isEncrypted(req.headers.get("content-type") ?? "")) {
        if (!opts.allowUnencrypted) return http(400, []);
        stats.plainRequests++;
        soap = dec.decode(req.body);
      } else {
        stats.encryptedRequests++;
        if (/^multipart\/x-multi-encrypted/i.test(req.headers.get("content-type") ?? "")) stats.multipartRequests++;
        try {
          soap = dec.decode(decryptMessage(conn.session, req.body));
        } catch {
          return http(400, []); // as HTTP.sys answers a body it cannot read
        }
      }
    } else {
      if (!opts.https && !opts.allowUnencrypted) return http(400, []);
      stats.plainRequests++;
      soap = dec.decode(req.body);
    }
    if (opts.redirectTo) return http(307, [["Location", opts.redirectTo]]);
    const soapBytes = enc.encode(soap).length;
    stats.largestRequest = Math.max(stats.largestRequest, soapBytes);
    // Windows answers a request past MaxEnvelopeSizekb with HTTP 413 and no envelope (pypsrp and
    // masterzen/winrm users report "Code: 413"; the WinRM client shows it as HRESULT 0x80338111)
    if (soapBytes > maxEnvelopeBytes) return http(413, []);

    const env = parseEnvelope(soap);
    const header = child(env, NS.s, "Header")!;
    const action = child(header, NS.a, "Action")?.text ?? "";
    const messageId = child(header, NS.a, "MessageID")?.text ?? "";
    const op = action.slice(action.lastIndexOf("/") + 1);
    stats.byAction[op] = (stats.byAction[op] ?? 0) + 1;
    const timeoutMs = parseDuration(child(header, NS.w, "OperationTimeout")?.text ?? "PT60S");
    // a reply stays within the w:MaxEnvelopeSize asked for (DSP0226 6.2), and within MaxEnvelopeSizekb
    const maxEnvelope = Math.min(Number(child(header, NS.w, "MaxEnvelopeSize")?.text) || 153_600, maxEnvelopeBytes);
    const resourceUri = child(header, NS.w, "ResourceURI")?.text ?? "";
    const selectors = Object.fromEntries(
      (child(header, NS.w, "SelectorSet")?.children ?? []).map((s) => [s.attrs.Name, s.text]),
    );
    const options = Object.fromEntries(
      (child(header, NS.w, "OptionSet")?.children ?? []).map((s) => [s.attrs.Name, s.text]),
    );
    const body = child(env, NS.s, "Body")!;

    if (op === "Receive" && ++receives === opts.dropReceive) {
      stats.droppedReceives++;
      down = opts.outage ?? 0;
      return async () => {}; // the connection closes with the Receive unanswered; nothing was taken from the shell
    }
    const breaking = opts.breakReply?.op === op && ++breakable === opts.breakReply.nth ? opts.breakReply : undefined;
    if (breaking?.at === "unread") {
      stats.brokenRequests.push({ op, at: breaking.at });
      down = opts.outage ?? 0;
      return async () => {}; // the request never reached the host: nothing was done
    }
    if (opts.hostile && opts.hostile.on === op) {
      const mode = opts.hostile.mode;
      if (mode === "flood-no-length" || mode === "flood-header" || mode === "flood-elements") return flood(mode);
      if (mode === "garbled-multipart" && conn.session) {
        // a real reply sealed in 16 KiB parts, then one byte of the second part's boundary changed
        const real = envelope(`${action}Response`, messageId, `<rsp:${op}Response/>${" ".repeat(40_000)}`);
        const body = encryptMultipart(conn.session, enc.encode(real));
        const second = new TextDecoder("latin1").decode(body).indexOf(
          "--Encrypted Boundary\r\n\tContent-Type: application/HTTP",
          1,
        );
        body[second + 2] ^= 0x20;
        return http(200, [["Content-Type", MULTI_ENCRYPTED_CONTENT_TYPE]], body);
      }
      const h = hostileReply(mode as Exclude<HostileMode, "garbled-multipart" | `flood-${string}`>, messageId, action);
      if (h === "silent") return "silent";
      if (h.truncated) {
        const full = conn.session ? encryptMessage(conn.session, h.bytes) : h.bytes;
        const head = enc.encode(
          `HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: ${full.length}\r\n\r\n`,
        );
        const r: Reply = concat(head, full.subarray(0, Math.floor(full.length / 3)));
        r.closeAfter = true;
        return r;
      }
      return soapReply(conn, 200, h.bytes);
    }

    // MS-WSMV 3.1.4.1.39: robust connections on the PowerShell configurations (Custom Remote Shells)
    const opEl = child(header, NS.p, "OperationID") ?? child(header, NS.p, "OperationId");
    let robust: RobustOp | undefined;
    if (opEl && resourceUri.startsWith(PS_RESOURCE_PREFIX)) {
      const id = opEl.text.trim();
      const retransmit = /^(true|1)$/i.test(opEl.attrs.mustUnderstand ?? "");
      const seq = (child(header, NS.p, "SequenceId") ?? child(header, NS.p, "SequenceID"))?.text.trim();
      for (const [k, o] of operations) if (o.expires < Date.now()) operations.delete(k);
      const kept = operations.get(id);
      stats.robust.operations++;
      if (retransmit) stats.robust.retransmissions++;
      const badHeader = (why: string) =>
        soapReply(
          conn,
          500,
          enc.encode(envelope(
            "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
            messageId,
            faultBody(fault("s:Sender", "a:InvalidMessageInformationHeader", 2150858767, why)),
          )),
        );
      if (retransmit && kept) {
        // the client lost the replies: this connection becomes the operation's, and the host sends an
        // Acknowledge and every reply it kept, once the operation has them (3.1.4.1.39, 8 and 9)
        if (seq !== "1") return badHeader("The SequenceId of a retransmitted request must be 1. ");
        kept.primary = conn;
        kept.expires = Infinity;
        await kept.finished;
        kept.expires = Date.now() + RESPONSE_RETENTION_MS;
        stats.robust.replayed += kept.messages.length;
        const ack = envelope(
          "http://schemas.microsoft.com/wbem/wsman/1/wsman/Acknowledge",
          undefined,
          `<p:Acknowledge><p:LastSequenceIdReceived>1</p:LastSequenceIdReceived></p:Acknowledge>`,
          `<p:OperationID>${id}</p:OperationID>`,
        );
        return chunkedReply(conn, 200, [enc.encode(ack), ...kept.messages]);
      }
      if (kept) return badHeader("The OperationID of the request is already in use. ");
      if (seq !== "1") return badHeader("The SequenceId of the first request of an operation must be 1. ");
      if (retransmit) stats.robust.unknownRetransmissions++;
      // a new request on a connection ends the operations that connection carried (3.1.4.1.39 step 3)
      for (const [k, o] of operations) if (o.primary === conn) operations.delete(k);
      let settle!: () => void;
      robust = { id, messages: [], primary: conn, expires: Infinity, finished: new Promise((r) => settle = r), settle };
      operations.set(id, robust);
    }

    const b = opts.breakReceiveReply;
    let held = false;
    const desired = child(child(body, NS.rsp, "Receive"), NS.rsp, "DesiredStream");
    if (b?.at === "held" && op === "Receive" && desired?.attrs.CommandId && ++pipelineReceives === b.nth) {
      held = true;
      down = opts.outage ?? 0;
      conn.hangUp();
    }

    let result: { status: number; xml: string; relatesTo?: string };
    try {
      if (opts.denyAccess) throw fault("s:Sender", "w:AccessDenied", 2147942405, "Access is denied. ");
      result = {
        status: 200,
        xml: op === "Get" && resourceUri === CONFIG_RESOURCE
          ? getConfig()
          : await dispatch(op, body, selectors, options, timeoutMs, maxEnvelope, conn, resourceUri, header),
        relatesTo: messageId,
      };
    } catch (e) {
      if (!(e instanceof Fault)) throw e;
      if (e.wsmanCode === 2150858793) stats.timedOut++;
      result = { status: 500, xml: faultBody(e), relatesTo: e.shape.noRelatesTo ? undefined : messageId };
    }
    const responseAction = result.status === 200
      ? `${action}Response`
      : "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault";
    let reply: Reply;
    if (robust) {
      // the reply is kept with its OperationID and SequenceID and sent in a chunked reply (3.1.6.6); the
      // retention timer runs from when it leaves (3.1.6.5 starts it when the connection breaks)
      const message = enc.encode(envelope(
        responseAction,
        result.relatesTo,
        result.xml,
        `<p:OperationID>${robust.id}</p:OperationID><p:SequenceID>${robust.messages.length + 1}</p:SequenceID>`,
      ));
      robust.messages.push(message);
      robust.expires = Date.now() + RESPONSE_RETENTION_MS;
      robust.settle();
      reply = chunkedReply(conn, result.status, [message]);
    } else reply = soapReply(conn, result.status, enc.encode(envelope(responseAction, result.relatesTo, result.xml)));
    if (breaking?.at === "lost") {
      stats.brokenRequests.push({ op, at: breaking.at });
      down = opts.outage ?? 0;
      return async () => {}; // done, and the reply (kept when robust) never reaches the client
    }
    const withOutput = op === "Receive" && result.status === 200 &&
      /<rsp:Stream [^>]*CommandId="[^"]+"[^>]*>[^<]/.test(result.xml);
    if (held) stats.brokenReplies.push({ at: "held", fragments: (result.xml.match(/<rsp:Stream /g) ?? []).length });
    if (b && b.at !== "held" && withOutput) {
      if (++outputReceives === b.nth) {
        stats.brokenReplies.push({ at: b.at, fragments: (result.xml.match(/<rsp:Stream /g) ?? []).length });
        down = opts.outage ?? 0;
        const chunked = !!robust;
        return async (c) => {
          let upTo = 0;
          if (b.at === "middle") upTo = Math.floor(reply.length / 2);
          if (b.at === "end") upTo = chunked ? reply.length - LAST_CHUNK.length : reply.length - 1;
          await writeAll(c, reply.subarray(0, upTo));
        };
      }
    }
    return reply;
  }

  /**
   * a reply of several envelopes, one per chunk, each sealed on its own on a sealed connection (MS-WSMV 3.1.6.6,
   * 3.2.4.2.1)
   */
  function chunkedReply(conn: Conn, status: number, messages: Uint8Array[]): Reply {
    const type = conn.session
      ? 'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"'
      : "application/soap+xml;charset=UTF-8";
    const reason = status === 200 ? "OK" : "Internal Server Error";
    const parts: Uint8Array[] = [
      enc.encode(
        `HTTP/1.1 ${status} ${reason}\r\nServer: Microsoft-HTTPAPI/2.0\r\nContent-Type: ${type}\r\n` +
          `Transfer-Encoding: chunked\r\n\r\n`,
      ),
    ];
    for (const m of messages) {
      const body = conn.session ? encryptMessage(conn.session, m) : m;
      parts.push(enc.encode(`${body.length.toString(16)}\r\n`), body, enc.encode("\r\n"));
    }
    parts.push(LAST_CHUNK);
    return concat(...parts);
  }

  /**
   * WS-Transfer Get of the config resource (MS-WSMV 2.2.4.10 ConfigType), in the shape of pypsrp's
   * recording against Windows (tests/tests_pypsrp/responses/test_wsman_update_envelope_size_500.yml).
   * Only administrators may read it (pypsrp and pywinrm fall back to defaults "if not running under
   * an admin"); anyone else gets s:Sender/w:AccessDenied with WSManFault code 5 (ERROR_ACCESS_DENIED)
   */
  function getConfig(): string {
    if (opts.notAdmin) throw fault("s:Sender", "w:AccessDenied", 5, "Access is denied. ");
    return `<cfg:Config xmlns:cfg="${CONFIG_RESOURCE}"><cfg:MaxEnvelopeSizekb>${
      maxEnvelopeBytes / 1024
    }</cfg:MaxEnvelopeSizekb>` +
      `<cfg:MaxTimeoutms>60000</cfg:MaxTimeoutms><cfg:MaxBatchItems>32000</cfg:MaxBatchItems>` +
      `<cfg:MaxProviderRequests>4294967295</cfg:MaxProviderRequests><cfg:Client><cfg:NetworkDelayms>5000</cfg:NetworkDelayms>` +
      `<cfg:URLPrefix>wsman</cfg:URLPrefix><cfg:AllowUnencrypted>false</cfg:AllowUnencrypted><cfg:Auth><cfg:Basic>true</cfg:Basic>` +
      `<cfg:Digest>true</cfg:Digest><cfg:Kerberos>true</cfg:Kerberos><cfg:Negotiate>true</cfg:Negotiate>` +
      `<cfg:Certificate>true</cfg:Certificate><cfg:CredSSP>false</cfg:CredSSP></cfg:Auth><cfg:DefaultPorts>` +
      `<cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts><cfg:TrustedHosts></cfg:TrustedHosts></cfg:Client>` +
      `<cfg:Service><cfg:RootSDDL>O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)</cfg:RootSDDL>` +
      `<cfg:MaxConcurrentOperations>4294967295</cfg:MaxConcurrentOperations>` +
      `<cfg:MaxConcurrentOperationsPerUser>1500</cfg:MaxConcurrentOperationsPerUser>` +
      `<cfg:EnumerationTimeoutms>240000</cfg:EnumerationTimeoutms><cfg:MaxConnections>300</cfg:MaxConnections>` +
      `<cfg:MaxPacketRetrievalTimeSeconds>120</cfg:MaxPacketRetrievalTimeSeconds>` +
      `<cfg:AllowUnencrypted>${opts.allowUnencrypted ? "true" : "false"}</cfg:AllowUnencrypted><cfg:Auth>` +
      `<cfg:Basic>${auth.includes("basic")}</cfg:Basic><cfg:Kerberos>true</cfg:Kerberos>` +
      `<cfg:Negotiate>${auth.includes("negotiate")}</cfg:Negotiate><cfg:Certificate>false</cfg:Certificate>` +
      `<cfg:CredSSP>false</cfg:CredSSP><cfg:CbtHardeningLevel>Relaxed</cfg:CbtHardeningLevel></cfg:Auth>` +
      `<cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts>` +
      `<cfg:IPv4Filter>*</cfg:IPv4Filter><cfg:IPv6Filter>*</cfg:IPv6Filter>` +
      `<cfg:EnableCompatibilityHttpListener>false</cfg:EnableCompatibilityHttpListener>` +
      `<cfg:EnableCompatibilityHttpsListener>false</cfg:EnableCompatibilityHttpsListener>` +
      `<cfg:CertificateThumbprint></cfg:CertificateThumbprint><cfg:AllowRemoteAccess>true</cfg:AllowRemoteAccess>` +
      `</cfg:Service><cfg:Winrs><cfg:AllowRemoteShellAccess>true</cfg:AllowRemoteShellAccess>` +
      `<cfg:IdleTimeout>7200000</cfg:IdleTimeout><cfg:MaxConcurrentUsers>2147483647</cfg:MaxConcurrentUsers>` +
      `<cfg:MaxShellRunTime>2147483647</cfg:MaxShellRunTime><cfg:MaxProcessesPerShell>2147483647</cfg:MaxProcessesPerShell>` +
      `<cfg:MaxMemoryPerShellMB>2147483647</cfg:MaxMemoryPerShellMB>` +
      `<cfg:MaxShellsPerUser>${opts.maxShellsPerUser ?? 5}</cfg:MaxShellsPerUser></cfg:Winrs></cfg:Config>`;
  }

  function soapReply(conn: Conn, status: number, bytes: Uint8Array): Reply {
    if (conn.session && opts.replyPartSize) {
      return http(
        status,
        [["Content-Type", MULTI_ENCRYPTED_CONTENT_TYPE]],
        encryptMultipart(conn.session, bytes, opts.replyPartSize),
      );
    }
    if (conn.session) {
      return http(status, [[
        "Content-Type",
        'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"',
      ]], encryptMessage(conn.session, bytes));
    }
    return http(status, [["Content-Type", "application/soap+xml;charset=UTF-8"]], bytes);
  }

  async function dispatch(
    op: string,
    body: XmlElement,
    sel: Record<string, string>,
    options: Record<string, string>,
    timeoutMs: number,
    maxEnvelope: number,
    conn: Conn,
    resourceUri: string,
    header: XmlElement,
  ): Promise<string> {
    const psShell = psShells.get((sel.ShellId ?? "").toUpperCase());
    if (op === "Enumerate" && resourceUri === "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command") {
      // the commands of one shell, by a SelectorFilter on its ShellId (test_psrp_disconnected_commands.yml)
      const filter = child(
        child(body, "http://schemas.xmlsoap.org/ws/2004/09/enumeration", "Enumerate"),
        NS.w,
        "Filter",
      );
      const id = child(child(filter, NS.w, "SelectorSet"), NS.w, "Selector")?.text ?? "";
      const shell = psShells.get(id.toUpperCase());
      const items = shell && shell.owner === conn.user ? shell.describeCommands() : "";
      return `<n:EnumerateResponse xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration">` +
        `<n:EnumerationContext></n:EnumerationContext>${items ? `<w:Items>${items}</w:Items>` : ""}<w:EndOfSequence/>` +
        `</n:EnumerateResponse>`;
    }
    if (op === "Enumerate" && resourceUri === "http://schemas.microsoft.com/wbem/wsman/1/windows/shell") {
      // MS-WSMV 3.1.4.7: the user's shells, in one page (pypsrp's test_psrp_disconnect_runspaces.yml)
      const mine = [...psShells.values()].filter((s) => s.owner === conn.user);
      return `<n:EnumerateResponse xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration">` +
        `<n:EnumerationContext></n:EnumerationContext><w:Items>${mine.map((s) => s.describe("WIN01")).join("")}` +
        `</w:Items><w:EndOfSequence/></n:EnumerateResponse>`;
    }
    if (op === "Create" && resourceUri.startsWith(PS_RESOURCE_PREFIX)) quota(conn);
    if (op === "Create" && resourceUri.startsWith(PS_RESOURCE_PREFIX)) {
      return createPsShell(body, options, conn, resourceUri, header);
    }
    if (psShell) return await psDispatch(psShell, op, body, timeoutMs, maxEnvelope);
    if (op === "Create") {
      quota(conn);
      const shellEl = child(body, NS.rsp, "Shell");
      const env: Record<string, string> = {};
      for (const v of child(shellEl, NS.rsp, "Environment")?.children ?? []) env[v.attrs.Name] = v.text;
      const id = randomUUID().toUpperCase();
      shells.set(id, { id, owner: conn.user!, env, codepage: options.WINRS_CODEPAGE ?? "437", commands: new Map() });
      return `<x:ResourceCreated><a:Address>http://${MACHINE}:5985/wsman</a:Address><a:ReferenceParameters>` +
        `<w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>` +
        `<w:SelectorSet><w:Selector Name="ShellId">${id}</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>` +
        `<rsp:Shell xmlns:rsp="${NS.rsp}"><rsp:ShellId>${id}</rsp:ShellId>` +
        `<rsp:ResourceUri>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</rsp:ResourceUri>` +
        `<rsp:Owner>${conn.user}</rsp:Owner><rsp:ClientIP>127.0.0.1</rsp:ClientIP>` +
        `<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin</rsp:InputStreams>` +
        `<rsp:OutputStreams>stdout stderr</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>` +
        `<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>`;
    }
    const shell = shells.get(sel.ShellId ?? "");
    if (!shell) {
      throw fault(
        "s:Sender",
        "w:InvalidSelectors",
        2150858843,
        `The request for the Windows Remote Shell with ShellId ${sel.ShellId} failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a new shell and retry the operation. `,
        { reason: INVALID_SELECTORS_REASON, faultDetail: UNEXPECTED_SELECTORS },
      );
    }
    const cmdOf = (id: string | undefined) => {
      const p = shell.commands.get(id ?? "");
      if (!p) {
        // pypsrp tests/tests_pypsrp/responses/test_winrs_bad_cmd_id.yml (a Receive for an unknown CommandId)
        throw fault(
          "s:Sender",
          "w:InvalidSelectors",
          2150858843,
          "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. Either the command has completed execution or the client specified an invalid command identifier. ",
          { reason: INVALID_SELECTORS_REASON, faultDetail: UNEXPECTED_SELECTORS },
        );
      }
      return p;
    };
    switch (op) {
      case "Delete":
        for (const p of shell.commands.values()) {
          p.terminated = true;
          notify(p);
        }
        shells.delete(shell.id);
        return "";
      case "Command": {
        const line = child(child(body, NS.rsp, "CommandLine"), NS.rsp, "Command")?.text ?? "";
        const args = (child(body, NS.rsp, "CommandLine")?.children ?? []).filter((c) => c.name === "Arguments").map((
          c,
        ) => c.text);
        const p: Process = {
          id: randomUUID().toUpperCase(),
          out: [],
          done: false,
          exitCode: 0,
          stdin: [],
          stdinEnded: false,
          stdinHash: createHash("sha256"),
          interrupted: 0,
          terminated: false,
          wake: new Set(),
        };
        shell.commands.set(p.id, p);
        void runScripted(shell, p, [line, ...args].join(" ").trim());
        return `<rsp:CommandResponse><rsp:CommandId>${p.id}</rsp:CommandId></rsp:CommandResponse>`;
      }
      case "Send": {
        const s = child(child(body, NS.rsp, "Send"), NS.rsp, "Stream")!;
        const p = cmdOf(s.attrs.CommandId);
        const data = fromBase64(s.text);
        if (data.length) p.stdin.push(data);
        p.stdinHash.update(data);
        if (/^true$/i.test(s.attrs.End ?? "") && !p.stdinEnded) stats.stdinSha256.push(p.stdinHash.digest("hex"));
        if (/^true$/i.test(s.attrs.End ?? "")) p.stdinEnded = true;
        notify(p);
        return `<rsp:SendResponse/>`;
      }
      case "Signal": {
        const sig = child(body, NS.rsp, "Signal")!;
        const p = cmdOf(sig.attrs.CommandId);
        const code = child(sig, NS.rsp, "Code")?.text ?? "";
        const name = code.slice(code.lastIndexOf("/") + 1).toLowerCase();
        stats.signals.push(name);
        if (name === "ctrl_c" || name === "ctrl_break") p.interrupted++;
        else if (name === "terminate") p.terminated = true;
        notify(p);
        return `<rsp:SignalResponse/>`;
      }
      case "Receive": {
        const ds = child(child(body, NS.rsp, "Receive"), NS.rsp, "DesiredStream")!;
        const p = cmdOf(ds.attrs.CommandId);
        const deadline = Date.now() + timeoutMs;
        while (!p.out.length && !p.done) {
          const left = deadline - Date.now();
          if (left <= 0 || closing || !shells.has(shell.id)) {
            throw fault(
              "s:Receiver",
              "w:TimedOut",
              2150858793,
              "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ",
            );
          }
          await new Promise<void>((r) => {
            const t = setTimeout(() => (p.wake.delete(w), r()), Math.min(left, 200));
            const w = () => (clearTimeout(t), p.wake.delete(w), r());
            p.wake.add(w);
          });
        }
        // real hosts gather output for a moment before answering
        if (!p.done) await new Promise((r) => setTimeout(r, 5));
        // as much output as fits the envelope (the header and the closing CommandState take under 2 KB);
        // the rest waits for the next Receive, and Done is not reported while output remains
        let room = maxEnvelope - 2048;
        let xml = `<rsp:ReceiveResponse>`;
        while (p.out.length) {
          const c = p.out[0];
          const stream = (data: Uint8Array) =>
            `<rsp:Stream Name="${c.stream}" CommandId="${p.id}">${toBase64(data)}</rsp:Stream>`;
          const cost = 100 + Math.ceil(c.data.length / 3) * 4;
          if (cost <= room) {
            xml += stream(c.data);
            room -= cost;
            p.out.shift();
            continue;
          }
          const fits = Math.floor((room - 100) / 4) * 3;
          if (fits > 0) {
            xml += stream(c.data.subarray(0, fits));
            c.data = c.data.subarray(fits);
          }
          break;
        }
        if (p.done && !p.out.length) {
          xml += `<rsp:Stream Name="stdout" CommandId="${p.id}" End="true"></rsp:Stream>` +
            `<rsp:Stream Name="stderr" CommandId="${p.id}" End="true"></rsp:Stream>` +
            `<rsp:CommandState CommandId="${p.id}" State="${DONE}"><rsp:ExitCode>${p.exitCode}</rsp:ExitCode></rsp:CommandState>`;
        } else xml += `<rsp:CommandState CommandId="${p.id}" State="${RUNNING}"></rsp:CommandState>`;
        return xml + `</rsp:ReceiveResponse>`;
      }
      default:
        throw fault(
          "s:Sender",
          "a:ActionNotSupported",
          2150858754,
          `The action ${op} is not supported by the service. `,
        );
    }
  }

  function quota(conn: Conn): void {
    const mine = [...shells.values(), ...psShells.values()].filter((s) => s.owner === conn.user).length;
    const max = opts.maxShellsPerUser ?? 5;
    if (mine >= max) {
      // WinRb/WinRM spec/stubs/responses/wmi_error_v2.xml: s:Sender/w:QuotaLimit, an MSFT_WmiError, no RelatesTo
      throw fault(
        "s:Sender",
        "w:QuotaLimit",
        2150859173,
        `The WS-Management service cannot process the request. This user is allowed a maximum number of ${max} concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. `,
        {
          reason:
            "The WS-Management service cannot process the request. The maximum number of concurrent shells for this user has been exceeded. Close existing shells or raise the quota for this user. ",
          wmiError: true,
          noRelatesTo: true,
        },
      );
    }
  }

  const psContext = (shell: PsShell): PsShellContext => ({
    timedOut: () =>
      fault(
        "s:Receiver",
        "w:TimedOut",
        2150858793,
        "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ",
      ),
    unknownCommand: () =>
      fault(
        "s:Sender",
        "w:InvalidSelectors",
        2150858843,
        "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. Either the command has completed execution or the client specified an invalid command identifier. ",
        { reason: INVALID_SELECTORS_REASON, faultDetail: UNEXPECTED_SELECTORS },
      ),
    gone: () => closing || !psShells.has(shell.id),
  });

  /** MS-PSRP 3.1.5.3.1: Create on a PowerShell configuration, with creationXml and protocolversion */
  function createPsShell(
    body: XmlElement,
    options: Record<string, string>,
    conn: Conn,
    resourceUri: string,
    header: XmlElement,
  ): string {
    const name = resourceUri.slice(PS_RESOURCE_PREFIX.length);
    if (!configurations.some((c) => c.toLowerCase() === name.toLowerCase())) {
      throw fault(
        "s:Sender",
        "w:InvalidResourceURI",
        2150858752,
        `The WS-Management service cannot process the request. Cannot find the ${name} session configuration in the WSMan: drive on the ${MACHINE} computer. `,
      );
    }
    if (opts.deniedConfigurations?.some((c) => c.toLowerCase() === name.toLowerCase())) {
      throw fault("s:Sender", "w:AccessDenied", 2147942405, "Access is denied. ");
    }
    const version = options.protocolversion ?? "";
    if (!/^2\.\d+$/.test(version)) {
      throw fault(
        "s:Sender",
        "w:InvalidOptions",
        2150858880,
        `The WS-Management service cannot process the request because the protocolversion option ${version} is not supported. `,
      );
    }
    const shellEl = child(body, NS.rsp, "Shell");
    const id = (shellEl?.attrs.ShellId ?? randomUUID()).toUpperCase();
    const creation = shellEl?.children.find((c) =>
      c.name === "creationXml" && c.ns === "http://schemas.microsoft.com/powershell"
    );
    if (!creation) throw fault("s:Sender", "w:InvalidParameter", 2150858882, "The creationXml is missing. ");
    const shell = new PsShell(id, conn.user!, resourceUri, version, opts.disconnectedBufferFragments);
    psShells.set(id, shell);
    shell.name = shellEl?.attrs.Name;
    shell.feed(unb64(creation.text));
    stats.psrpCreates++;
    const option = (child(header, NS.w, "OptionSet")?.children ?? []).find((o) => o.attrs.Name === "protocolversion");
    stats.psrpShells.push({
      shellId: id,
      resourceUri,
      protocolVersion: version,
      mustComply: /^true$/i.test(option?.attrs.MustComply ?? ""),
      sessionId: child(header, NS.p, "SessionId")?.text ?? "",
    });
    // pypsrp tests/tests_pypsrp/responses/test_psrp_multiple_invocations.yml: the CreateResponse
    return `<x:ResourceCreated><a:Address>http://${MACHINE}:5985/wsman</a:Address><a:ReferenceParameters>` +
      `<w:ResourceURI>${resourceUri}</w:ResourceURI>` +
      `<w:SelectorSet><w:Selector Name="ShellId">${id}</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>` +
      `<rsp:Shell xmlns:rsp="${NS.rsp}"><rsp:ShellId>${id}</rsp:ShellId><rsp:ResourceUri>${resourceUri}</rsp:ResourceUri>` +
      `<rsp:Owner>${conn.user}</rsp:Owner><rsp:ClientIP>127.0.0.1</rsp:ClientIP><rsp:ProcessId>${Deno.pid}</rsp:ProcessId>` +
      `<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin pr</rsp:InputStreams>` +
      `<rsp:OutputStreams>stdout</rsp:OutputStreams><rsp:MaxIdleTimeOut>PT2147483.647S</rsp:MaxIdleTimeOut>` +
      `<rsp:Locale>en-US</rsp:Locale><rsp:DataLocale>en-US</rsp:DataLocale><rsp:CompressionMode>NoCompression</rsp:CompressionMode>` +
      `<rsp:ProfileLoaded>Yes</rsp:ProfileLoaded><rsp:Encoding>UTF8</rsp:Encoding><rsp:BufferMode>Block</rsp:BufferMode>` +
      `<rsp:State>Connected</rsp:State><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>` +
      `<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>`;
  }

  async function psDispatch(
    shell: PsShell,
    op: string,
    body: XmlElement,
    timeoutMs: number,
    maxEnvelope: number,
  ): Promise<string> {
    const ctx = psContext(shell);
    switch (op) {
      case "Delete":
        shell.delete();
        psShells.delete(shell.id);
        return "";
      case "Disconnect": {
        const d = child(body, NS.rsp, "Disconnect");
        const idle = child(d, NS.rsp, "IdleTimeOut")?.text;
        shell.disconnect(
          idle === undefined ? undefined : parseDuration(idle),
          child(d, NS.rsp, "BufferMode")?.text,
          () => {
            shell.delete();
            psShells.delete(shell.id);
          },
        );
        stats.disconnects++;
        return "";
      }
      case "Reconnect":
        shell.reconnect();
        return "";
      case "Connect": {
        const c = child(body, NS.rsp, "Connect");
        if (c?.attrs.CommandId) return shell.connectCommand(c.attrs.CommandId, ctx);
        const xml = c?.children.find((x) =>
          x.name === "connectXml" && x.ns === "http://schemas.microsoft.com/powershell"
        );
        if (!xml) throw fault("s:Sender", "w:InvalidParameter", 2150858882, "The connectXml is missing. ");
        stats.connects++;
        return shell.connect(unb64(xml.text));
      }
      case "Command": {
        const line = child(body, NS.rsp, "CommandLine");
        const args = child(line, NS.rsp, "Arguments")?.text ?? "";
        const id = line?.attrs.CommandId ?? randomUUID();
        stats.psrpPipelines.push(id.toUpperCase());
        return shell.command(id, unb64(args));
      }
      case "Send": {
        for (const s of child(body, NS.rsp, "Send")?.children ?? []) {
          if (s.attrs.CommandId && !shell.commands.has(s.attrs.CommandId.toUpperCase())) throw ctx.unknownCommand();
          shell.feed(unb64(s.text));
        }
        return `<rsp:SendResponse/>`;
      }
      case "Signal": {
        const sig = child(body, NS.rsp, "Signal")!;
        const code = child(sig, NS.rsp, "Code")?.text ?? "";
        stats.signals.push(code);
        return shell.signal(sig.attrs.CommandId ?? "", code, ctx);
      }
      case "Receive": {
        const ds = child(child(body, NS.rsp, "Receive"), NS.rsp, "DesiredStream");
        return await shell.receive(ds?.attrs.CommandId, timeoutMs, maxEnvelope, ctx);
      }
    }
    throw fault("s:Sender", "a:ActionNotSupported", 2150858754, `The action ${op} is not supported by the service. `);
  }

  function notify(p: Process) {
    for (const w of [...p.wake]) w();
  }

  async function runScripted(shell: Shell, p: Process, line: string): Promise<void> {
    const io = new ProcessIo(p, () => notify(p));
    try {
      p.exitCode = await scripted(shell, io, line, false);
    } catch (e) {
      if (!(e instanceof Ended)) throw e;
      p.exitCode = e.code;
    }
    p.done = true;
    notify(p);
  }

  const server: WinrmServer = {
    url,
    port,
    caPem,
    stats,
    shells: () => [...shells.keys(), ...psShells.keys()],
    psShells,
    async close() {
      if (closing) return;
      closing = true;
      for (const s of shells.values()) for (const p of s.commands.values()) (p.terminated = true, notify(p));
      for (const s of psShells.values()) s.delete();
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accept;
      await Promise.allSettled([...tasks]);
    },
    async [Symbol.asyncDispose]() {
      await server.close();
    },
  };
  return server;
}

class Ended extends Error {
  constructor(readonly code: number) {
    super(`ended ${code}`);
  }
}

/** The scripted process's view: write output, read stdin, sleep, notice signals. */
class ProcessIo {
  #seenInterrupts = 0;
  constructor(readonly p: Process, readonly notify: () => void) {}

  write(stream: "stdout" | "stderr", text: string) {
    if (text) this.p.out.push({ stream, data: enc.encode(text) });
    this.notify();
  }

  /** queues binary stdout; waits while 256 KiB are not yet received, as a writer to a full pipe does */
  async writeBytes(data: Uint8Array): Promise<void> {
    while (this.p.out.reduce((n, c) => n + c.data.length, 0) >= 256 * 1024) await this.wait(5);
    this.p.out.push({ stream: "stdout", data: data.slice() });
    this.notify();
  }

  /** true once per ctrl_c received */
  takeInterrupt(): boolean {
    if (this.p.interrupted > this.#seenInterrupts) {
      this.#seenInterrupts = this.p.interrupted;
      return true;
    }
    return false;
  }

  check() {
    if (this.p.terminated) throw new Ended(1);
  }

  async wait(ms: number): Promise<void> {
    this.check();
    await new Promise<void>((r) => {
      const t = setTimeout(() => (this.p.wake.delete(w), r()), ms);
      const w = () => (clearTimeout(t), this.p.wake.delete(w), r());
      this.p.wake.add(w);
    });
    this.check();
  }

  /** the next stdin bytes, or undefined at end of input */
  async read(): Promise<Uint8Array | undefined> {
    for (;;) {
      this.check();
      const d = this.p.stdin.shift();
      if (d) return d;
      if (this.p.stdinEnded) return undefined;
      if (this.p.interrupted > this.#seenInterrupts) return new Uint8Array();
      await this.wait(1000);
    }
  }
}

async function scripted(shell: Shell, io: ProcessIo, line: string, inCmd: boolean): Promise<number> {
  const m = (re: RegExp) => re.exec(line);
  let r: RegExpExecArray | null;
  if ((r = m(/^echo(?:\s(.*)|\.)$/i))) {
    io.write("stdout", `${r[1] ?? ""}\r\n`);
    return 0;
  }
  if (/^ipconfig$/i.test(line)) {
    io.write(
      "stdout",
      "\r\nWindows IP Configuration\r\n\r\n\r\nEthernet adapter Ethernet:\r\n\r\n   Connection-specific DNS Suffix  . : test.example\r\n" +
        "   IPv4 Address. . . . . . . . . . . : 192.0.2.10\r\n   Subnet Mask . . . . . . . . . . . : 255.255.255.0\r\n" +
        "   Default Gateway . . . . . . . . . : 192.0.2.1\r\n",
    );
    return 0;
  }
  if (/^chcp$/i.test(line)) {
    io.write("stdout", `Active code page: ${shell.codepage}\r\n`);
    return 0;
  }
  if ((r = m(/^set\s+(\S+)$/i))) {
    const k = Object.keys(shell.env).find((x) => x.toLowerCase() === r![1].toLowerCase());
    if (k === undefined) {
      io.write("stderr", `Environment variable ${r[1]} not defined\r\n`);
      return 1;
    }
    io.write("stdout", `${k}=${shell.env[k]}\r\n`);
    return 0;
  }
  if ((r = m(/^exit(?:\s+\/b)?(?:\s+(-?\d+))?$/i))) throw new Ended(Number(r[1] ?? 0));
  if (/^type con$/i.test(line)) {
    for (;;) {
      const d = await io.read();
      if (d === undefined) return 0;
      if (io.takeInterrupt()) return CONTROL_C_EXIT;
      io.p.out.push({ stream: "stdout", data: d });
      io.notify();
    }
  }
  if ((r = m(/^timeout \/t (\d+)$/i))) {
    const until = Date.now() + Number(r[1]) * 1000;
    while (Date.now() < until) {
      await io.wait(Math.min(100, until - Date.now()));
      if (io.takeInterrupt()) return CONTROL_C_EXIT;
    }
    return 0;
  }
  if ((r = m(/^ping -t (\S+)$/i))) {
    io.write("stdout", `\r\nPinging ${r[1]} with 32 bytes of data:\r\n`);
    for (;;) {
      io.write("stdout", `Reply from ${r[1]}: bytes=32 time<1ms TTL=128\r\n`);
      await io.wait(100);
      if (io.takeInterrupt()) {
        io.write("stdout", "Control-C\r\n^C");
        return CONTROL_C_EXIT;
      }
    }
  }
  if ((r = m(/^powershell\.exe\s.*-EncodedCommand\s+(\S+)$/i))) {
    const script = fromUtf16le(Uint8Array.from(atob(r[1]), (c) => c.charCodeAt(0)));
    const w = /^Write-Output\s+'?([^']*)'?$/i.exec(script.trim());
    if (w) {
      io.write("stdout", `${w[1]}\r\n`);
      return 0;
    }
    io.write("stderr", `${script.split(/\s/)[0]} : The term '${script.split(/\s/)[0]}' is not recognized\r\n`);
    return 1;
  }
  if ((r = m(/^>&2 echo(?:\s(.*)|\.)$/i))) {
    io.write("stderr", `${r[1] ?? ""}\r\n`);
    return 0;
  }
  if ((r = m(/^ping -n (\d+) \S+ >nul$/i))) {
    // ping waits a second between echo requests, so n requests take n-1 seconds
    const until = Date.now() + Math.max(0, Number(r[1]) - 1) * 1000;
    while (Date.now() < until) {
      await io.wait(Math.min(100, until - Date.now()));
      if (io.takeInterrupt()) return CONTROL_C_EXIT;
    }
    return 0;
  }
  if (
    m(/^powershell\.exe -NoProfile -NonInteractive -Command "\$i = \[Console\]::OpenStandardInput\(\); \$o = \[Console\]::OpenStandardOutput\(\); \$i\.CopyTo\(\$o\); \$o\.Flush\(\)"$/)
  ) {
    for (;;) {
      const d = await io.read();
      if (d === undefined) return 0;
      if (io.takeInterrupt()) return CONTROL_C_EXIT;
      await io.writeBytes(d);
    }
  }
  if (
    (r = m(
      /^powershell\.exe -NoProfile -NonInteractive -Command "\[Console\]::OpenStandardOutput\(\)\.Write\(\[byte\[\]\]::new\((\d+)\), 0, (\d+)\)"$/,
    )) && r[1] === r[2]
  ) {
    for (let left = Number(r[1]); left > 0; left -= 65536) await io.writeBytes(new Uint8Array(Math.min(left, 65536)));
    return 0;
  }
  if (/^cmd$/i.test(line) && !inCmd) return await interactiveCmd(shell, io);
  const word = line.split(/\s+/)[0];
  io.write(
    "stderr",
    `'${word}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n`,
  );
  return 9009;
}

async function interactiveCmd(shell: Shell, io: ProcessIo): Promise<number> {
  const prompt = `C:\\Users\\${shell.owner}>`;
  io.write(
    "stdout",
    `Microsoft Windows [Version 10.0.20348.2340]\r\n(c) Microsoft Corporation. All rights reserved.\r\n\r\n${prompt}`,
  );
  let pending = "";
  let last = 0;
  for (;;) {
    const d = await io.read();
    if (d === undefined) return last;
    if (io.takeInterrupt()) continue;
    pending += dec.decode(d);
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const cmdLine = pending.slice(0, nl).replace(/\r$/, "");
      pending = pending.slice(nl + 1);
      // on a pipe, cmd echoes the command it read after the prompt
      io.write("stdout", `${cmdLine}\r\n`);
      if (cmdLine.trim()) {
        try {
          last = await scripted(shell, io, cmdLine.trim(), true);
        } catch (e) {
          if (e instanceof Ended && !io.p.terminated) return e.code;
          throw e;
        }
        io.takeInterrupt();
      }
      io.write("stdout", `\r\n${prompt}`);
    }
  }
}

/** How a fault differs from the plain shape (s:Reason and f:WSManFault/f:Message carrying the same text). */
interface FaultShape {
  /** s:Reason text when it differs from the detail message */
  reason?: string;
  /** w:FaultDetail URI before the WSManFault (DSP0226 14.6) */
  faultDetail?: string;
  /** the detail is an MSFT_WmiError instance instead of a WSManFault */
  wmiError?: boolean;
  /** the reply carries no a:RelatesTo (faults raised before the request was matched to a message) */
  noRelatesTo?: boolean;
}

class Fault extends Error {
  constructor(
    readonly code: string,
    readonly subcode: string,
    readonly wsmanCode: number,
    readonly text: string,
    readonly shape: FaultShape = {},
  ) {
    super(text);
  }
}

function fault(code: string, subcode: string, wsmanCode: number, text: string, shape?: FaultShape): Fault {
  return new Fault(code, subcode, wsmanCode, text, shape);
}

/** DSP0226 faultDetail URI of a selector the resource does not have */
const UNEXPECTED_SELECTORS = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors";
const INVALID_SELECTORS_REASON =
  "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. ";

function faultBody(f: Fault): string {
  const head = `<s:Fault><s:Code><s:Value>${f.code}</s:Value><s:Subcode><s:Value>${f.subcode}</s:Value></s:Subcode>` +
    `</s:Code><s:Reason><s:Text xml:lang="en-US">${f.shape.reason ?? f.text}</s:Text></s:Reason><s:Detail>`;
  if (f.shape.wmiError) {
    // as WinRb/WinRM spec/stubs/responses/wmi_error_v2.xml records the shell quota fault
    const cim = "http://schemas.dmtf.org/wbem/wscim/1/common";
    const t = (name: string, type: string, value: string | undefined) =>
      value === undefined
        ? `<p:${name} xsi:nil="true" xsi:type="cim:${type}"/>`
        : `<p:${name} xsi:type="cim:${type}">${value}</p:${name}>`;
    return head +
      `<p:MSFT_WmiError b:IsCIM_Error="true" xmlns:b="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" ` +
      `xmlns:cim="${cim}" xmlns:p="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError" ` +
      `xsi:type="p:MSFT_WmiError_Type" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` +
      t("CIMStatusCode", "cimUnsignedInt", "27") + t("CIMStatusCodeDescription", "cimString", undefined) +
      t("ErrorSource", "cimString", undefined) + t("ErrorSourceFormat", "cimUnsignedShort", "0") +
      t("ErrorType", "cimUnsignedShort", "0") + t("Message", "cimString", f.text) +
      t("MessageID", "cimString", `HRESULT 0x${f.wsmanCode.toString(16)}`) +
      t("OtherErrorSourceFormat", "cimString", undefined) + t("OtherErrorType", "cimString", undefined) +
      t("OwningEntity", "cimString", undefined) + t("PerceivedSeverity", "cimUnsignedShort", "0") +
      t("ProbableCause", "cimUnsignedShort", "0") + t("ProbableCauseDescription", "cimString", undefined) +
      t("error_Category", "cimUnsignedInt", "30") + t("error_Code", "cimUnsignedInt", String(f.wsmanCode)) +
      t("error_Type", "cimString", "HRESULT") + t("error_WindowsErrorMessage", "cimString", f.text) +
      `</p:MSFT_WmiError></s:Detail></s:Fault>`;
  }
  const detail = f.shape.faultDetail ? `<w:FaultDetail>${f.shape.faultDetail}</w:FaultDetail>` : "";
  return head + detail +
    `<f:WSManFault xmlns:f="${NS.f}" Code="${f.wsmanCode}" Machine="${MACHINE}"><f:Message>${f.text}</f:Message></f:WSManFault></s:Detail></s:Fault>`;
}

function envelope(action: string, relatesTo: string | undefined, body: string, extraHeaders = ""): string {
  return `<s:Envelope xml:lang="en-US" xmlns:s="${NS.s}" xmlns:a="${NS.a}" xmlns:x="${NS.x}" xmlns:w="${NS.w}" ` +
    `xmlns:rsp="${NS.rsp}" xmlns:p="${NS.p}"><s:Header><a:Action>${action}</a:Action>` +
    `<a:MessageID>uuid:${randomUUID().toUpperCase()}</a:MessageID>` +
    `<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>` +
    (relatesTo === undefined ? "" : `<a:RelatesTo>${relatesTo}</a:RelatesTo>`) + extraHeaders +
    `</s:Header><s:Body>${body}</s:Body></s:Envelope>`;
}

/** the zero-length chunk that ends a chunked reply */
const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");
/** MS-WSMV 3.1.2 Response Retention Timer: kept replies go 3 minutes 15 seconds after the client was last seen */
const RESPONSE_RETENTION_MS = 195_000;

/** A row of MS-WSMV 3.1.1 OperationMessages with its RobustConnection. */
interface RobustOp {
  id: string;
  /** the replies sent so far; the nth has SequenceID n */
  messages: Uint8Array[];
  /** the connection the operation's replies go to (PrimaryConnection) */
  primary: Conn;
  /** when the kept replies go (the retention timer), Infinity while a client waits for them */
  expires: number;
  /** settles once the operation has its reply */
  finished: Promise<void>;
  settle: () => void;
}

function hostileReply(
  mode: Exclude<HostileMode, "garbled-multipart" | `flood-${string}`>,
  messageId: string,
  action: string,
): { bytes: Uint8Array; truncated?: boolean } | "silent" {
  switch (mode) {
    case "no-payload": {
      const op = action.slice(action.lastIndexOf("/") + 1);
      const body = op === "Create" ? "<x:ResourceCreated/>" : op === "Command" ? "<rsp:CommandResponse/>" : "";
      return { bytes: enc.encode(envelope(`${action}Response`, messageId, body)) };
    }
    case "many-elements":
      return { bytes: enc.encode(envelope(`${action}Response`, messageId, "<a/>".repeat(200_000))) };
    case "silent":
      return "silent";
    case "doctype":
      return {
        bytes: enc.encode(
          `<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY id "${messageId}">]>` +
            envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse", "&id;", ""),
        ),
      };
    case "entity-bomb": {
      let ents = `<!ENTITY a0 "lol">`;
      for (let i = 1; i < 10; i++) ents += `<!ENTITY a${i} "${`&a${i - 1};`.repeat(10)}">`;
      return { bytes: enc.encode(`<?xml version="1.0"?><!DOCTYPE lolz [${ents}]><lolz>&a9;</lolz>`) };
    }
    case "garbage":
      return { bytes: concat(enc.encode("<s:Envelope \u0000\u0001"), new Uint8Array(randomBytes(64))) };
    case "truncated":
      return {
        bytes: enc.encode(
          envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse", messageId, "<x:ResourceCreated/>"),
        ),
        truncated: true,
      };
    case "bad-relates-to":
      return {
        bytes: enc.encode(
          envelope(
            "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
            "uuid:00000000-0000-0000-0000-000000000000",
            "",
          ),
        ),
      };
  }
}

function parseDuration(s: string): number {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?$/.exec(s.trim());
  if (!m) return 60_000;
  return ((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000;
}

/** The server side of MS-NLMP 3.2.5.1.1: a CHALLENGE with target info and a timestamp. */
function buildChallenge(clientFlags: number): { message: Uint8Array; serverChallenge: Uint8Array } {
  const serverChallenge = new Uint8Array(randomBytes(8));
  const flags = ((clientFlags & (NtlmFlag.sign | NtlmFlag.seal | NtlmFlag.alwaysSign | NtlmFlag.keyExch |
    NtlmFlag.n128 | NtlmFlag.n56 | NtlmFlag.extendedSessionSecurity | NtlmFlag.version)) |
    NtlmFlag.unicode | NtlmFlag.ntlm | NtlmFlag.targetInfo | NtlmFlag.requestTarget |
    0x00020000 /* target type server */) >>> 0;
  const targetName = utf16le("WIN01");
  const info = encodeAvPairs([
    { id: AvId.nbDomainName, value: utf16le("WIN01") },
    { id: AvId.nbComputerName, value: utf16le("WIN01") },
    { id: AvId.dnsDomainName, value: utf16le("win01.test.example") },
    { id: AvId.dnsComputerName, value: utf16le("win01.test.example") },
    { id: AvId.timestamp, value: fileTimeNow() },
  ]);
  const head = new Uint8Array(56);
  const dv = new DataView(head.buffer);
  head.set(enc.encode("NTLMSSP\0"));
  dv.setUint32(8, 2, true);
  dv.setUint16(12, targetName.length, true);
  dv.setUint16(14, targetName.length, true);
  dv.setUint32(16, 56, true);
  dv.setUint32(20, flags, true);
  head.set(serverChallenge, 24);
  dv.setUint16(40, info.length, true);
  dv.setUint16(42, info.length, true);
  dv.setUint32(44, 56 + targetName.length, true);
  head.set([10, 0, 0x54, 0x4f, 0, 0, 0, 15], 48); // Windows Server 2022 (20308), NTLM revision 15
  return { message: concat(head, targetName, info), serverChallenge };
}

/** Verifies an AUTHENTICATE_MESSAGE (MS-NLMP 3.2.5.1.2); returns the exported session key or undefined. */
function verifyAuthenticate(
  msg: Uint8Array,
  ctx: { negotiate: Uint8Array; challenge: Uint8Array; serverChallenge: Uint8Array },
  user: { name: string; domain: string; password: string },
  cbt: Uint8Array | undefined,
): Uint8Array | undefined {
  const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const field = (at: number) => {
    const len = dv.getUint16(at, true);
    const off = dv.getUint32(at + 4, true);
    return msg.slice(off, off + len);
  };
  const nt = field(20);
  const domain = fromUtf16le(field(28));
  const name = fromUtf16le(field(36));
  const encKey = field(52);
  const flags = dv.getUint32(60, true);
  if (nt.length < 48) return undefined;
  // a UPN arrives as the user name with an empty domain
  const okName = name.toLowerCase() === user.name.toLowerCase() ||
    name.toLowerCase() === `${user.name}@${user.domain}`.toLowerCase();
  if (!okName) return undefined;
  const key = ntowfv2(user.password, name, domain);
  const proof = nt.slice(0, 16);
  const temp = nt.slice(16);
  // over TLS the client must bind the response to this certificate (MsvAvChannelBindings, MS-NLMP 2.2.2.1)
  if (cbt) {
    const bound = decodeAvPairs(temp.slice(28)).find((p) => p.id === AvId.channelBindings)?.value;
    if (!bound || !bound.every((b, i) => b === cbt[i])) return undefined;
  }
  const expected = hmacMd5(key, ctx.serverChallenge, temp);
  if (!expected.every((b, i) => b === proof[i])) return undefined;
  const sessionBaseKey = hmacMd5(key, proof);
  const exported = flags & NtlmFlag.keyExch && encKey.length === 16
    ? new Rc4(sessionBaseKey).update(encKey)
    : sessionBaseKey;
  // MIC over the three messages with the MIC field zeroed (MS-NLMP 3.2.5.1.2)
  const zeroed = msg.slice();
  const mic = msg.slice(72, 88);
  zeroed.fill(0, 72, 88);
  const want = hmacMd5(exported, ctx.negotiate, ctx.challenge, zeroed);
  if (!want.every((b, i) => b === mic[i])) return undefined;
  return exported;
}

interface Req {
  method: string;
  path: string;
  headers: Map<string, string>;
  body: Uint8Array;
}

/** Reads HTTP/1.1 requests (Content-Length bodies) from one connection. */
class RequestReader {
  #buf: Uint8Array = new Uint8Array(0);
  constructor(readonly conn: Deno.Conn) {}

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(65536);
    const n = await this.conn.read(chunk).catch(() => null);
    if (n === null) return false;
    this.#buf = concat(this.#buf, chunk.subarray(0, n));
    return true;
  }

  async next(): Promise<Req | undefined> {
    let end: number;
    while ((end = findCrlfCrlf(this.#buf)) < 0) if (!(await this.#fill())) return undefined;
    const head = dec.decode(this.#buf.subarray(0, end)).split("\r\n");
    this.#buf = this.#buf.slice(end + 4);
    const [method, path] = head[0].split(" ");
    const headers = new Map<string, string>();
    for (const h of head.slice(1)) {
      const i = h.indexOf(":");
      headers.set(h.slice(0, i).trim().toLowerCase(), h.slice(i + 1).trim());
    }
    const len = Number(headers.get("content-length") ?? 0);
    while (this.#buf.length < len) if (!(await this.#fill())) return undefined;
    const body = this.#buf.slice(0, len);
    this.#buf = this.#buf.slice(len);
    return { method, path, headers, body };
  }
}

function findCrlfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

async function writeAll(c: Deno.Conn, data: Uint8Array): Promise<void> {
  let o = 0;
  while (o < data.length) o += await c.write(data.subarray(o));
}
