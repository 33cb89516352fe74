/**
 * WS-Management SOAP envelopes for WinRS (MS-WSMV 3.1.4; header values as the reference clients send
 * them) and the parsing of replies — pure functions, no I/O. Replies are parsed with fast-xml-parser
 * after refusing any `<!DOCTYPE` (the parser expands internal entities by default), and element
 * names are resolved through their `xmlns` declarations rather than trusted prefixes.
 *
 * @module
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";

/** XML namespaces (MS-WSMV 2.2.1). */
export const NS = {
  s: "http://www.w3.org/2003/05/soap-envelope",
  a: "http://schemas.xmlsoap.org/ws/2004/08/addressing",
  w: "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
  p: "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
  rsp: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
  x: "http://schemas.xmlsoap.org/ws/2004/09/transfer",
  f: "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
  xml: "http://www.w3.org/XML/1998/namespace",
  /** the CIM class Windows puts in s:Detail for some faults instead of a WSManFault (e.g. the shell quota) */
  wmiError: "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError",
} as const;

/** WS-Addressing actions of the WinRS operations. */
export const Action = {
  create: "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
  delete: "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete",
  command: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command",
  send: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send",
  receive: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
  signal: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal",
  get: "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get",
  fault: "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
} as const;

/** The resource URI of the text-based command shell. */
export const CMD_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";

/** Signal codes (MS-WSMV 2.2.4.38). */
export const SignalCode = {
  ctrlC: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c",
  ctrlBreak: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_break",
  terminate: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate",
} as const;

/** The CommandState URI that ends a Receive loop. */
export const COMMAND_DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";

/** WSManFault codes a client acts on (MS-WSMV 2.2.5; values from captures cited in the reference). */
export const FaultCode = {
  /** w:TimedOut on a Receive long poll: normal, poll again */
  operationTimeout: 2150858793,
  /** the ShellId (or CommandId) names nothing on the server */
  invalidSelectors: 2150858843,
  /** E_ACCESSDENIED */
  accessDenied: 2147942405,
  /** MaxShellsPerUser reached */
  shellQuota: 2150859173,
} as const;

/** A reply that is not a usable SOAP envelope (garbage, truncated, hostile). */
export class WsmanXmlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WsmanXmlError";
  }
}

/** Escapes text for XML content and attribute values. */
export function xmlEscape(s: string): string {
  const named: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };
  return s.replace(/[&<>"']/g, (c) => named[c]);
}

/** What goes into one request's header and body. */
export interface EnvelopeOptions {
  action: string;
  /** endpoint URL for a:To */
  to: string;
  messageId: string;
  sessionId: string;
  resourceUri?: string;
  /** ISO 8601 duration, e.g. `PT20S` */
  operationTimeout: string;
  selectors?: Readonly<Record<string, string>>;
  /** w:Option values; `{ value, mustComply }` marks one MustComply (MS-WSMV 2.2.4.23) */
  options?: Readonly<Record<string, string | { value: string; mustComply: boolean }>>;
  /** inner XML of s:Body, already escaped */
  body: string;
  /** w:MaxEnvelopeSize: the largest reply wanted, in bytes; default {@linkcode DEFAULT_MAX_ENVELOPE_SIZE} */
  maxEnvelopeSize?: number;
  /**
   * a robust-connection operation (MS-WSMV 3.1.4.1.39): wsmv:OperationID (`uuid:…`) and wsmv:SequenceId 1, as
   * Windows' own client sends them; `retransmit` sets OperationID's mustUnderstand, which asks the host for the
   * replies it kept for this operation (3.2.5.3)
   */
  operation?: { id: string; retransmit: boolean };
}

/** Robust-connection actions and resource (MS-WSMV 2.2.2.1, 2.2.2.4, 3.1.4.18, 3.1.5.5, 3.1.6.6). */
export const RobustAction = {
  /** the host's count of the client's messages, first in a reply to a retransmission (3.1.4.1.39 step 8) */
  acknowledge: "http://schemas.microsoft.com/wbem/wsman/1/wsman/Acknowledge",
  /** the host's buffer of replies is full (3.1.6.6 step 10) */
  acknowledgeRequest: "http://schemas.microsoft.com/wbem/wsman/1/wsman/AcknowledgeRequest",
  /** sent while a long operation has no output (3.1.5.5) */
  keepAlive: "http://schemas.microsoft.com/wbem/wsman/1/wsman/KeepAlive",
} as const;

/** The resource URI of robust-connection control messages (MS-WSMV 3.1.4.18, 3.1.6.6). */
export const ROBUST_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/wsman/RobustConnection";

/**
 * A reply's wsmv:OperationID and wsmv:SequenceID (MS-WSMV 2.2.4.45–46; the schema spells SequenceID, Windows'
 * client SequenceId: both are read), and whether it is a robust-connection control message rather than the
 * operation's own reply.
 */
export function robustHeaders(env: XmlElement): { operationId?: string; sequenceId?: number; control: boolean } {
  const header = child(env, NS.s, "Header");
  const operationId = (child(header, NS.p, "OperationID") ?? child(header, NS.p, "OperationId"))?.text.trim();
  const seq = (child(header, NS.p, "SequenceID") ?? child(header, NS.p, "SequenceId"))?.text.trim() ?? "";
  const action = (child(header, NS.a, "Action")?.text ?? "").trim();
  const control = Object.values(RobustAction).some((a) => a.toLowerCase() === action.toLowerCase());
  return { operationId, sequenceId: /^\d{1,15}$/.test(seq) ? Number(seq) : undefined, control };
}

/**
 * The envelope size every client assumes until it knows better: MaxEnvelopeSizekb's default of 150
 * (MS-WSMV 2.2.4.10; Windows Server 2008 R2), which pywinrm, pypsrp, WinRb and masterzen/winrm send.
 */
export const DEFAULT_MAX_ENVELOPE_SIZE = 153_600;

/** The WS-Man service configuration resource (MS-WSMV 2.2.4.10 ConfigType), read with WS-Transfer Get. */
export const CONFIG_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/config";

/**
 * `cfg:Config/cfg:MaxEnvelopeSizekb` of a GetResponse on {@linkcode CONFIG_RESOURCE}, in bytes;
 * undefined when the reply has no such number.
 */
export function parseConfigMaxEnvelope(env: XmlElement): number | undefined {
  const config = child(child(env, NS.s, "Body"), CONFIG_RESOURCE, "Config");
  const kb = child(config, CONFIG_RESOURCE, "MaxEnvelopeSizekb")?.text.trim() ?? "";
  return /^\d{1,10}$/.test(kb) ? Number(kb) * 1024 : undefined;
}

/** Builds a SOAP 1.2 envelope with the WS-Man header every WinRS request carries (reference A.2). */
export function buildEnvelope(o: EnvelopeOptions): string {
  const selectors = o.selectors
    ? `<w:SelectorSet>${
      Object.entries(o.selectors).map(([k, v]) => `<w:Selector Name="${xmlEscape(k)}">${xmlEscape(v)}</w:Selector>`)
        .join("")
    }</w:SelectorSet>`
    : "";
  const option = ([k, v]: [string, string | { value: string; mustComply: boolean }]) =>
    typeof v === "string"
      ? `<w:Option Name="${xmlEscape(k)}">${xmlEscape(v)}</w:Option>`
      : `<w:Option Name="${xmlEscape(k)}"${v.mustComply ? ' MustComply="true"' : ""}>${xmlEscape(v.value)}</w:Option>`;
  const options = o.options
    ? `<w:OptionSet${
      Object.values(o.options).some((v) => typeof v !== "string" && v.mustComply) ? ' s:mustUnderstand="true"' : ""
    }>${Object.entries(o.options).map(option).join("")}</w:OptionSet>`
    : "";
  return `<?xml version="1.0" encoding="UTF-8"?>` +
    `<s:Envelope xmlns:s="${NS.s}" xmlns:a="${NS.a}" xmlns:w="${NS.w}" xmlns:p="${NS.p}" xmlns:rsp="${NS.rsp}">` +
    `<s:Header>` +
    `<a:To>${xmlEscape(o.to)}</a:To>` +
    `<a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>` +
    `<w:MaxEnvelopeSize s:mustUnderstand="true">${o.maxEnvelopeSize ?? DEFAULT_MAX_ENVELOPE_SIZE}</w:MaxEnvelopeSize>` +
    `<a:MessageID>${xmlEscape(o.messageId)}</a:MessageID>` +
    `<w:Locale xml:lang="en-US" s:mustUnderstand="false"/>` +
    `<p:DataLocale xml:lang="en-US" s:mustUnderstand="false"/>` +
    `<p:SessionId s:mustUnderstand="false">${xmlEscape(o.sessionId)}</p:SessionId>` +
    (o.operation
      ? `<p:OperationID s:mustUnderstand="${o.operation.retransmit}">${xmlEscape(o.operation.id)}</p:OperationID>` +
        `<p:SequenceId s:mustUnderstand="false">1</p:SequenceId>`
      : "") +
    `<w:OperationTimeout>${o.operationTimeout}</w:OperationTimeout>` +
    `<w:ResourceURI s:mustUnderstand="true">${xmlEscape(o.resourceUri ?? CMD_RESOURCE)}</w:ResourceURI>` +
    `<a:Action s:mustUnderstand="true">${xmlEscape(o.action)}</a:Action>` +
    selectors + options +
    `</s:Header><s:Body>${o.body}</s:Body></s:Envelope>`;
}

/** Body of Create for a cmd shell (reference A.3 step 1). */
export function createShellBody(opts: { env?: Readonly<Record<string, string>>; workingDirectory?: string }): string {
  const env = opts.env && Object.keys(opts.env).length
    ? `<rsp:Environment>${
      Object.entries(opts.env).map(([k, v]) => `<rsp:Variable Name="${xmlEscape(k)}">${xmlEscape(v)}</rsp:Variable>`)
        .join("")
    }</rsp:Environment>`
    : "";
  const wd = opts.workingDirectory
    ? `<rsp:WorkingDirectory>${xmlEscape(opts.workingDirectory)}</rsp:WorkingDirectory>`
    : "";
  return `<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>${wd}${env}</rsp:Shell>`;
}

/** Body of Command: the whole command line goes in rsp:Command, as cmd /c would see it. */
export function commandBody(commandLine: string): string {
  return `<rsp:CommandLine><rsp:Command>${xmlEscape(commandLine)}</rsp:Command></rsp:CommandLine>`;
}

/** Body of Send (stdin bytes, base64; `end` closes the child's stdin). */
export function sendBody(commandId: string, data: Uint8Array, end: boolean): string {
  return `<rsp:Send><rsp:Stream Name="stdin" CommandId="${xmlEscape(commandId)}"${end ? ' End="true"' : ""}>${
    toBase64(data)
  }</rsp:Stream></rsp:Send>`;
}

/** Body of Receive for stdout and stderr of one command. */
export function receiveBody(commandId: string): string {
  return `<rsp:Receive><rsp:DesiredStream CommandId="${
    xmlEscape(commandId)
  }">stdout stderr</rsp:DesiredStream></rsp:Receive>`;
}

/** Body of Signal. */
export function signalBody(commandId: string, code: string): string {
  return `<rsp:Signal CommandId="${xmlEscape(commandId)}"><rsp:Code>${xmlEscape(code)}</rsp:Code></rsp:Signal>`;
}

/** Base64 of bytes. */
export function toBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Bytes of base64 text; throws {@linkcode WsmanXmlError} on bad input. */
export function fromBase64(s: string): Uint8Array {
  try {
    const bin = atob(s.replace(/\s+/g, ""));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    throw new WsmanXmlError("stream data is not base64");
  }
}

/** An element with its namespace resolved. Attributes are keyed by local name. */
export interface XmlElement {
  ns: string;
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: true,
  htmlEntities: true, // decodes numeric character references such as &#xD;
  trimValues: true,
});

type Ordered = Record<string, unknown>;

function build(node: Ordered, scope: Map<string, string>): XmlElement | undefined {
  const tag = Object.keys(node).find((k) => k !== ":@");
  if (!tag || tag === "#text" || tag.startsWith("?")) return undefined;
  const rawAttrs = (node[":@"] ?? {}) as Record<string, string>;
  const inner = new Map(scope);
  for (const [k, v] of Object.entries(rawAttrs)) {
    if (k === "xmlns") inner.set("", v);
    else if (k.startsWith("xmlns:")) inner.set(k.slice(6), v);
  }
  const [prefix, local] = tag.includes(":") ? tag.split(":", 2) : ["", tag];
  const ns = inner.get(prefix);
  if (ns === undefined && prefix !== "") throw new WsmanXmlError(`undeclared namespace prefix ${prefix}`);
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(rawAttrs)) {
    if (k === "xmlns" || k.startsWith("xmlns:")) continue;
    attrs[k.includes(":") ? k.split(":", 2)[1] : k] = String(v);
  }
  const el: XmlElement = { ns: ns ?? "", name: local, attrs, children: [], text: "" };
  const kids = node[tag];
  if (Array.isArray(kids)) {
    for (const k of kids as Ordered[]) {
      if ("#text" in k) el.text += String(k["#text"]);
      else {
        const c = build(k, inner);
        if (c) el.children.push(c);
      }
    }
  }
  return el;
}

/**
 * The most elements one reply may hold. A ReceiveResponse within the 153,600 bytes the client asks
 * for holds fewer than 2,000 (each rsp:Stream takes 80 bytes or more); the parser needs hundreds of
 * bytes per element, so a reply of nothing but `<a/>` must be refused before it is parsed.
 */
export const MAX_ELEMENTS = 10_000;
/** The deepest nesting one reply may have; a SOAP fault with an MSFT_WmiError detail needs 6. */
export const MAX_DEPTH = 32;

/**
 * Counts start tags and nesting in one pass without building anything, so that a reply of many or
 * deeply nested elements is refused before the parser allocates for it. Markup inside comments,
 * CDATA and quoted attribute values is skipped as XML 1.0 section 2 defines them.
 */
function checkShape(xml: string): void {
  let elements = 0;
  let depth = 0;
  let i = xml.indexOf("<");
  const skipTo = (end: string, from: number) => {
    const j = xml.indexOf(end, from);
    return j < 0 ? xml.length : j + end.length;
  };
  while (i >= 0 && i < xml.length) {
    const next = xml.charCodeAt(i + 1);
    if (xml.startsWith("<!--", i)) i = skipTo("-->", i + 4);
    else if (xml.startsWith("<![CDATA[", i)) i = skipTo("]]>", i + 9);
    else if (next === 0x3f /* ? */) i = skipTo("?>", i + 2);
    else if (next === 0x21 /* ! */) i = skipTo(">", i + 2);
    else if (next === 0x2f /* / */) {
      depth--;
      i = skipTo(">", i + 2);
    } else {
      if (++elements > MAX_ELEMENTS) {
        throw new WsmanXmlError(`the reply holds more than ${MAX_ELEMENTS} elements; refused`);
      }
      let j = i + 1;
      let quote = 0;
      for (; j < xml.length; j++) {
        const c = xml.charCodeAt(j);
        if (quote) {
          if (c === quote) quote = 0;
        } else if (c === 0x22 || c === 0x27) quote = c;
        else if (c === 0x3e /* > */) break;
      }
      if (xml.charCodeAt(j - 1) !== 0x2f && ++depth > MAX_DEPTH) {
        throw new WsmanXmlError(`the reply nests elements deeper than ${MAX_DEPTH}; refused`);
      }
      i = j + 1;
    }
    i = xml.indexOf("<", i);
  }
}

/**
 * Parses a reply into its s:Envelope element. Refuses DOCTYPE (entity expansion, external
 * references), more than {@linkcode MAX_ELEMENTS} elements or {@linkcode MAX_DEPTH} levels, malformed
 * or truncated XML, and anything that is not a SOAP 1.2 envelope.
 */
export function parseEnvelope(xml: string): XmlElement {
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) {
    throw new WsmanXmlError("the reply carries a DOCTYPE, which a WS-Man reply never has; refused");
  }
  if (!xml.trim()) throw new WsmanXmlError("the reply is empty");
  checkShape(xml);
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new WsmanXmlError(`the reply is not well-formed XML (${valid.err.msg})`);
  let doc: Ordered[];
  try {
    doc = parser.parse(xml) as Ordered[];
  } catch (e) {
    throw new WsmanXmlError(`the reply is not well-formed XML (${(e as Error).message})`);
  }
  const roots = doc.map((n) => build(n, new Map([["xml", NS.xml]]))).filter((e): e is XmlElement => !!e);
  const env = roots[0];
  if (!env || env.ns !== NS.s || env.name !== "Envelope") throw new WsmanXmlError("the reply is not a SOAP envelope");
  return env;
}

/** The first child named `name` in namespace `ns`. */
export function child(el: XmlElement | undefined, ns: string, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.ns === ns && c.name === name);
}

/** Every child named `name` in namespace `ns`. */
export function childrenOf(el: XmlElement | undefined, ns: string, name: string): XmlElement[] {
  return el?.children.filter((c) => c.ns === ns && c.name === name) ?? [];
}

/** Every descendant named `name` in namespace `ns`, depth first. */
export function descendants(el: XmlElement, ns: string, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement) => {
    for (const c of e.children) {
      if (c.ns === ns && c.name === name) out.push(c);
      walk(c);
    }
  };
  walk(el);
  return out;
}

/**
 * A SOAP fault with the WSManFault details (parsed as PYPSRP `_parse_wsman_fault` does), or those of
 * an MSFT_WmiError detail (as PYWINRM reads `error_Code`).
 */
export interface WsmanFault {
  /** the s:Subcode value (or s:Code value), e.g. `w:TimedOut` */
  subcode: string;
  /** f:WSManFault/@Code, or MSFT_WmiError/error_Code */
  code?: number;
  /** present when the details came from an MSFT_WmiError rather than a WSManFault */
  source?: "MSFT_WmiError";
  machine?: string;
  message: string;
}

/** The fault in `env`, if its body holds one. */
export function parseFault(env: XmlElement): WsmanFault | undefined {
  const fault = child(child(env, NS.s, "Body"), NS.s, "Fault");
  if (!fault) return undefined;
  const code = child(fault, NS.s, "Code");
  const subcode = child(child(code, NS.s, "Subcode"), NS.s, "Value")?.text ?? child(code, NS.s, "Value")?.text ?? "";
  const detail = child(fault, NS.s, "Detail");
  const wsmanFault = child(detail, NS.f, "WSManFault");
  const reason = child(child(fault, NS.s, "Reason"), NS.s, "Text")?.text || "";
  const flatten = (e: XmlElement | undefined): string => e ? [e.text, ...e.children.map(flatten)].join(" ") : "";
  const tidy = (t: string) => t.replace(/\s+/g, " ").trim();
  const wmi = wsmanFault ? undefined : child(detail, NS.wmiError, "MSFT_WmiError");
  if (wmi) {
    const n = Number(child(wmi, NS.wmiError, "error_Code")?.text.trim() || NaN);
    return {
      subcode,
      code: Number.isFinite(n) ? n : undefined,
      source: "MSFT_WmiError",
      message: tidy(child(wmi, NS.wmiError, "Message")?.text || reason),
    };
  }
  const message = tidy(flatten(child(wsmanFault, NS.f, "Message")) || reason);
  const n = wsmanFault?.attrs.Code !== undefined ? Number(wsmanFault.attrs.Code) : NaN;
  return { subcode, code: Number.isFinite(n) ? n : undefined, machine: wsmanFault?.attrs.Machine, message };
}

/** Checks a:RelatesTo against the MessageID sent (reference A.1). */
export function checkRelatesTo(env: XmlElement, messageId: string): void {
  const rel = child(child(env, NS.s, "Header"), NS.a, "RelatesTo")?.text;
  if (rel === undefined) throw new WsmanXmlError("the reply has no RelatesTo");
  if (rel.toLowerCase() !== messageId.toLowerCase()) {
    throw new WsmanXmlError(`the reply relates to ${rel}, not to the request ${messageId}`);
  }
}

function body(env: XmlElement): XmlElement {
  const b = child(env, NS.s, "Body");
  if (!b) throw new WsmanXmlError("the reply has no body");
  return b;
}

/** The ShellId of a CreateResponse: the first Selector named ShellId, wherever it is (as pywinrm looks for it). */
export function parseCreateResponse(env: XmlElement): string {
  const sel = descendants(body(env), NS.w, "Selector").find((s) => s.attrs.Name === "ShellId")?.text ??
    child(child(body(env), NS.rsp, "Shell"), NS.rsp, "ShellId")?.text;
  if (!sel) throw new WsmanXmlError("the create reply names no ShellId");
  return sel;
}

/** The CommandId of a CommandResponse. */
export function parseCommandResponse(env: XmlElement): string {
  const id = child(child(body(env), NS.rsp, "CommandResponse"), NS.rsp, "CommandId")?.text;
  if (!id) throw new WsmanXmlError("the command reply names no CommandId");
  return id;
}

/** One rsp:Stream of a ReceiveResponse. */
export interface StreamChunk {
  name: "stdout" | "stderr";
  data: Uint8Array;
  end: boolean;
}

/** A parsed ReceiveResponse. */
export interface ReceiveResult {
  chunks: StreamChunk[];
  done: boolean;
  exitCode?: number;
}

/** Parses a ReceiveResponse (reference A.3 step 4). */
export function parseReceiveResponse(env: XmlElement, commandId: string): ReceiveResult {
  const rr = child(body(env), NS.rsp, "ReceiveResponse");
  if (!rr) throw new WsmanXmlError("the receive reply has no ReceiveResponse");
  const chunks: StreamChunk[] = [];
  for (const s of childrenOf(rr, NS.rsp, "Stream")) {
    if (s.attrs.CommandId && s.attrs.CommandId.toLowerCase() !== commandId.toLowerCase()) continue;
    const name = s.attrs.Name;
    if (name !== "stdout" && name !== "stderr") continue;
    chunks.push({ name, data: fromBase64(s.text), end: /^true$/i.test(s.attrs.End ?? "") });
  }
  const state = child(rr, NS.rsp, "CommandState");
  const done = state?.attrs.State === COMMAND_DONE;
  let exitCode: number | undefined;
  if (done) {
    const t = child(state, NS.rsp, "ExitCode")?.text;
    exitCode = t !== undefined && /^-?\d+$/.test(t.trim()) ? Number(t) : undefined;
  }
  return { chunks, done, exitCode };
}

/** The namespace of creationXml and connectXml (MS-PSRP 3.1.5.3.1). */
export const PS_NS = "http://schemas.microsoft.com/powershell";

/** The resource URI prefix of PowerShell session configurations (MS-PSRP 3.1.5.1.1). */
export const PS_RESOURCE_PREFIX = "http://schemas.microsoft.com/powershell/";

/** The code that stops a PowerShell pipeline, spelt as MS-PSRP 3.1.5.3.9 and PowerShell's WSManPlugin.cs spell it. */
export const PS_SIGNAL_CTRL_C = "http://schemas.microsoft.com/powershell/signal/crtl_c";

/**
 * Body of Create for a PowerShell shell (MS-PSRP 3.1.5.3.1): the client's ShellId, streams stdin and pr in,
 * stdout out, and creationXml carrying the SESSION_CAPABILITY and INIT_RUNSPACEPOOL fragments.
 */
export function psrpShellBody(shellId: string, creationXml: Uint8Array, name?: string): string {
  const named = name === undefined ? "" : ` Name="${xmlEscape(name)}"`;
  return `<rsp:Shell ShellId="${xmlEscape(shellId)}"${named}><rsp:InputStreams>stdin pr</rsp:InputStreams>` +
    `<rsp:OutputStreams>stdout</rsp:OutputStreams><creationXml xmlns="${PS_NS}">${
      toBase64(creationXml)
    }</creationXml></rsp:Shell>`;
}

/** Body of Command for a pipeline (MS-PSRP 3.1.5.3.3): an empty rsp:Command, the first fragments as Arguments. */
export function psrpCommandBody(commandId: string, fragments: Uint8Array): string {
  return `<rsp:CommandLine CommandId="${xmlEscape(commandId)}"><rsp:Command/><rsp:Arguments>${
    toBase64(fragments)
  }</rsp:Arguments></rsp:CommandLine>`;
}

/** Body of Send for PSRP fragments on `stdin` or `pr` (host responses), of a pipeline or the pool. */
export function psrpSendBody(commandId: string | undefined, stream: "stdin" | "pr", fragments: Uint8Array): string {
  const id = commandId === undefined ? "" : ` CommandId="${xmlEscape(commandId)}"`;
  return `<rsp:Send><rsp:Stream Name="${stream}"${id}>${toBase64(fragments)}</rsp:Stream></rsp:Send>`;
}

/** Body of Receive on stdout, of a pipeline or (without a CommandId) the pool. */
export function psrpReceiveBody(commandId: string | undefined): string {
  const id = commandId === undefined ? "" : ` CommandId="${xmlEscape(commandId)}"`;
  return `<rsp:Receive><rsp:DesiredStream${id}>stdout</rsp:DesiredStream></rsp:Receive>`;
}

/** A ReceiveResponse of a PowerShell shell: the fragments of stdout in order, and whether the command is Done. */
export interface PsrpReceiveResult {
  data: Uint8Array[];
  done: boolean;
}

/** Parses a ReceiveResponse of a PowerShell shell; streams of other commands are refused as a broken reply. */
export function parsePsrpReceiveResponse(env: XmlElement, commandId: string | undefined): PsrpReceiveResult {
  const rr = child(body(env), NS.rsp, "ReceiveResponse");
  if (!rr) throw new WsmanXmlError("the receive reply has no ReceiveResponse");
  const want = commandId?.toLowerCase();
  const data: Uint8Array[] = [];
  for (const s of childrenOf(rr, NS.rsp, "Stream")) {
    if ((s.attrs.CommandId?.toLowerCase() ?? undefined) !== want) {
      throw new WsmanXmlError(`the receive reply carries stream ${s.attrs.Name} of another command`);
    }
    if (s.attrs.Name !== "stdout") continue;
    const d = fromBase64(s.text);
    if (d.length) data.push(d);
  }
  const state = child(rr, NS.rsp, "CommandState");
  return { data, done: state?.attrs.State === COMMAND_DONE };
}
