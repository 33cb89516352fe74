/**
 * PowerShell shells kept on a Windows host: listing them (WS-Enumeration of the shell resource, MS-WSMV
 * 3.1.4.7 and DSP0226 8), and disconnecting and reconnecting one (MS-WSMV 3.1.4.15–16, MS-PSRP
 * 3.1.5.3.16–18). The shapes follow pypsrp's recordings against Windows
 * (tests/tests_pypsrp/responses/test_psrp_disconnect_runspaces.yml, test_psrp_disconnected_commands.yml).
 *
 * `remote get --computer-name http://win01:5985` lists them; Connect (MS-PSRP 3.1.5.3.14–15) takes a
 * disconnected pool and its pipelines from another client, which `remote receive` and `remote connect` do
 * (the transport's `sessions` in mod.ts; docs/winrm.md).
 *
 * @module
 */
import { type HostSession, type OpenContext, type ReceiveOptions, RemoteError } from "../../plugins/mod.ts";
import {
  decodeFragments,
  decodeMessage,
  Defragmenter,
  deserialize,
  Destination,
  encodeMessage,
  formatError,
  Fragmenter,
  type Message,
  MessageType,
  NIL_GUID,
  psBag,
  PSObject,
  PSPrimitive,
  readErrorRecord,
  readInformationalRecord,
  serialize,
  toJson,
} from "../../plugins/psrp/mod.ts";
import type { WinrmClient } from "./client.ts";
import {
  againAfterBreak,
  backNotice,
  broken,
  DEFAULT_RETRY_CONNECTION_MS,
  lostNotice,
  newOperation,
  pause,
  retryDelay,
  type RetryOptions,
  unreachable,
} from "./_retry.ts";
import { concat } from "./ntlm.ts";
import {
  child,
  childrenOf,
  fromBase64,
  NS,
  parsePsrpReceiveResponse,
  PS_NS,
  PS_RESOURCE_PREFIX,
  psrpReceiveBody,
  type PsrpReceiveResult,
  toBase64,
  WsmanXmlError,
  type XmlElement,
  xmlEscape,
} from "./wsman_xml.ts";

/** The resource that enumerates every shell of the user (MS-WSMV 3.1.4.7). */
export const SHELL_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
const WSEN = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";
const ENUMERATE = `${WSEN}/Enumerate`;
const PULL = `${WSEN}/Pull`;
const DISCONNECT = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Disconnect";
const RECONNECT = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Reconnect";
const CONNECT = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Connect";
const RECEIVE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive";
/** more pages than any host of a user holds shells (MaxShellsPerUser is 30 at most by default) */
const MAX_PULLS = 100;

/** One shell as the host describes it. */
export interface RemoteShell {
  shellId: string;
  /** the shell's Name (New-PSSession -Name), when it has one */
  name?: string;
  resourceUri: string;
  owner: string;
  clientIp?: string;
  /** `Connected` or `Disconnected` */
  state: string;
  /** xs:duration, e.g. `PT7200.000S` */
  idleTimeOut?: string;
  bufferMode?: string;
  /** xs:duration since creation, e.g. `P0DT0H0M9S` */
  shellRunTime?: string;
  shellInactivity?: string;
}

/**
 * Every shell the host lists for this user: Enumerate, then Pull while the host has more.
 *
 * @throws {WinrmFaultError} for a fault; {@linkcode WsmanXmlError} (as a protocol error) for a reply without items
 */
export async function enumerateShells(client: WinrmClient): Promise<RemoteShell[]> {
  const out: RemoteShell[] = [];
  const page = (env: XmlElement, response: string) => {
    const r = child(child(env, NS.s, "Body"), WSEN, response);
    if (!r) throw new WsmanXmlError(`the enumeration reply has no ${response}`);
    const items = child(r, NS.w, "Items") ?? child(r, WSEN, "Items");
    for (const s of childrenOf(items, NS.rsp, "Shell")) out.push(shellOf(s));
    const end = child(r, NS.w, "EndOfSequence") ?? child(r, WSEN, "EndOfSequence");
    const context = child(r, WSEN, "EnumerationContext")?.text ?? "";
    return end || context === "" ? undefined : context;
  };
  let context = await client.request(
    ENUMERATE,
    `<wsen:Enumerate xmlns:wsen="${WSEN}"><w:OptimizeEnumeration/><w:MaxElements>32000</w:MaxElements></wsen:Enumerate>`,
    { resourceUri: SHELL_RESOURCE },
    (env) => page(env, "EnumerateResponse"),
  );
  for (let pulls = 0; context !== undefined; pulls++) {
    if (pulls >= MAX_PULLS) throw new WsmanXmlError(`the host kept the enumeration going past ${MAX_PULLS} pages`);
    const ctx: string = context;
    context = await client.request(
      PULL,
      `<wsen:Pull xmlns:wsen="${WSEN}"><wsen:EnumerationContext>${
        xmlEscape(ctx)
      }</wsen:EnumerationContext><w:MaxElements>32000</w:MaxElements></wsen:Pull>`,
      { resourceUri: SHELL_RESOURCE },
      (env) => page(env, "PullResponse"),
    );
  }
  return out;
}

function shellOf(s: XmlElement): RemoteShell {
  const text = (name: string) => child(s, NS.rsp, name)?.text || undefined;
  const shellId = text("ShellId");
  if (!shellId) throw new WsmanXmlError("an enumerated shell has no ShellId");
  return {
    shellId,
    name: text("Name"),
    resourceUri: text("ResourceUri") ?? "",
    owner: text("Owner") ?? "",
    clientIp: text("ClientIP"),
    state: text("State") ?? "Connected",
    idleTimeOut: text("IdleTimeOut"),
    bufferMode: text("BufferMode"),
    shellRunTime: text("ShellRunTime"),
    shellInactivity: text("ShellInactivity"),
  };
}

/** Options of {@linkcode disconnectShell} (MS-PSRP 3.1.5.3.16). */
export interface ShellDisconnectOptions {
  /** how long the host keeps the disconnected shell without a client */
  idleTimeoutMs?: number;
  /** Block suspends the pipelines when their output buffer is full; Drop discards the oldest output */
  bufferMode?: "Block" | "Drop";
}

/** Disconnect: the shell and its pipelines stay on the host with no client. */
export async function disconnectShell(
  client: WinrmClient,
  resourceUri: string,
  shellId: string,
  options: ShellDisconnectOptions = {},
): Promise<void> {
  const idle = options.idleTimeoutMs === undefined
    ? ""
    : `<rsp:IdleTimeOut>PT${(options.idleTimeoutMs / 1000).toFixed(3)}S</rsp:IdleTimeOut>`;
  const mode = options.bufferMode === undefined ? "" : `<rsp:BufferMode>${options.bufferMode}</rsp:BufferMode>`;
  await client.request(DISCONNECT, `<rsp:Disconnect>${idle}${mode}</rsp:Disconnect>`, {
    resourceUri,
    selectors: { ShellId: shellId },
  }, () => undefined);
}

/** Reconnect: the same client (same p:SessionId) takes its disconnected shell back (MS-WSMV 3.1.4.16). */
export async function reconnectShell(client: WinrmClient, resourceUri: string, shellId: string): Promise<void> {
  await client.request(RECONNECT, "", { resourceUri, selectors: { ShellId: shellId } }, () => undefined);
}

/**
 * Connect (MS-PSRP 3.1.5.3.14): a client that did not create the shell takes the disconnected pool. `connectXml`
 * holds the SESSION_CAPABILITY and CONNECT_RUNSPACEPOOL fragments; the reply's connectResponseXml (returned)
 * holds the server's SESSION_CAPABILITY and RUNSPACEPOOL_INIT_DATA. APPLICATION_PRIVATE_DATA then comes with the
 * pool's Receive.
 *
 * @throws {WsmanXmlError} (a protocol error) when the reply has no connectResponseXml
 */
export async function connectShell(
  client: WinrmClient,
  resourceUri: string,
  shellId: string,
  connectXml: Uint8Array,
  protocolVersion = "2.3",
): Promise<Uint8Array> {
  return await client.request(
    CONNECT,
    `<rsp:Connect><connectXml xmlns="${PS_NS}">${toBase64(connectXml)}</connectXml></rsp:Connect>`,
    {
      resourceUri,
      selectors: { ShellId: shellId },
      options: { protocolversion: { value: protocolVersion, mustComply: true } },
    },
    (env) => {
      const r = child(child(env, NS.s, "Body"), NS.rsp, "ConnectResponse");
      const xml = r?.children.find((c) => c.ns === PS_NS && c.name === "connectResponseXml");
      if (!xml) throw new WsmanXmlError("the connect reply has no connectResponseXml");
      return fromBase64(xml.text);
    },
  );
}

/** Connect with a CommandId (MS-PSRP 3.1.5.3.15): the connected client takes a pipeline that ran meanwhile. */
export async function connectCommand(
  client: WinrmClient,
  resourceUri: string,
  shellId: string,
  commandId: string,
): Promise<void> {
  await client.request(CONNECT, `<rsp:Connect CommandId="${xmlEscape(commandId)}"/>`, {
    resourceUri,
    selectors: { ShellId: shellId },
  }, () => undefined);
}

/** A command (pipeline) of a shell, as the host enumerates it. */
export interface RemoteCommand {
  commandId: string;
  /** `Running`, `Done`, … */
  state: string;
}

/** The commands of one shell: Enumerate on the Command resource, filtered by ShellId (MS-WSMV 3.1.4.7). */
export async function enumerateCommands(client: WinrmClient, shellId: string): Promise<RemoteCommand[]> {
  return await client.request(
    ENUMERATE,
    `<wsen:Enumerate xmlns:wsen="${WSEN}"><w:OptimizeEnumeration/><w:MaxElements>32000</w:MaxElements>` +
      `<w:Filter Dialect="http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter"><w:SelectorSet>` +
      `<w:Selector Name="ShellId">${xmlEscape(shellId)}</w:Selector></w:SelectorSet></w:Filter></wsen:Enumerate>`,
    { resourceUri: `${SHELL_RESOURCE}/Command` },
    (env) => {
      const r = child(child(env, NS.s, "Body"), WSEN, "EnumerateResponse");
      if (!r) throw new WsmanXmlError("the enumeration reply has no EnumerateResponse");
      const items = child(r, NS.w, "Items") ?? child(r, WSEN, "Items");
      return childrenOf(items, NS.rsp, "Command").map((c) => ({
        commandId: child(c, NS.rsp, "CommandId")?.text ?? "",
        state: child(c, NS.rsp, "CommandState")?.text ?? "",
      })).filter((c) => c.commandId !== "");
    },
  );
}

/**
 * Connects to a disconnected shell as a new client (MS-PSRP 3.1.5.3.14) and takes the pool's
 * APPLICATION_PRIVATE_DATA; returns the message reader and a Receive that answers `undefined` for w:TimedOut.
 */
export async function connectPool(
  client: WinrmClient,
  resourceUri: string,
  shellId: string,
  retry: RetryOptions = {},
) {
  const rpid = shellId.toLowerCase();
  const frag = new Fragmenter();
  const defrag = new Defragmenter();
  const message = (type: number, data: string) =>
    frag.fragment(encodeMessage({ destination: Destination.server, type, rpid, pid: NIL_GUID, data }));
  const connectXml = concat(
    ...message(
      MessageType.SESSION_CAPABILITY,
      serialize(psBag({
        protocolversion: new PSPrimitive("Version", "2.3"),
        PSVersion: new PSPrimitive("Version", "2.0"),
        SerializationVersion: new PSPrimitive("Version", "1.1.0.1"),
      })),
    ),
    ...message(MessageType.CONNECT_RUNSPACEPOOL, "<S />"),
  );
  const read = (chunks: Uint8Array[]): Message[] =>
    chunks.flatMap((c) =>
      decodeFragments(c).map((f) => defrag.push(f)).filter((m): m is Uint8Array => m !== undefined).map(decodeMessage)
    );
  // a robust-connection operation (MS-WSMV 3.1.4.1.39), asked again when the connection breaks before its reply is
  // whole, as the pipelines' Receives in psrp.ts are, within the same window: a reply the host kept comes again, once
  const host = client.settings.url.host;
  const window = Math.max(0, retry.windowMs ?? DEFAULT_RETRY_CONNECTION_MS);
  const receive = async (commandId?: string): Promise<PsrpReceiveResult | undefined> => {
    const operation = newOperation();
    const replies: PsrpReceiveResult[] = [];
    const merged = () => ({ data: replies.flatMap((r) => r.data), done: replies.some((r) => r.done) });
    let since: number | undefined;
    const back = () => {
      if (since !== undefined && window > 0) retry.notice?.(backNotice(host));
      since = undefined;
    };
    for (let attempt = 0;; attempt++) {
      try {
        await client.request(RECEIVE, psrpReceiveBody(commandId), {
          resourceUri,
          selectors: { ShellId: shellId },
          options: { WSMAN_CMDSHELL_OPTION_KEEPALIVE: "TRUE" },
          operation,
        }, (env) => replies.push(parsePsrpReceiveResponse(env, commandId)));
        back();
        return merged();
      } catch (e) {
        if (e instanceof Error && "fault" in e && (e as { fault: { code?: number } }).fault.code === 2150858793) {
          back();
          return replies.length ? merged() : undefined; // w:TimedOut: the host had nothing more
        }
        if (!(broken(e) || unreachable(e))) throw e;
        if (since === undefined) {
          since = Date.now();
          if (window > 0) retry.notice?.(lostNotice(host, window));
        }
        const left = since + window - Date.now();
        if (left <= 0 || !(await pause(Math.min(retryDelay(attempt), left), retry.signal))) throw e;
        againAfterBreak(operation, client.robustHost);
      }
    }
  };
  read([await connectShell(client, resourceUri, shellId, connectXml)]);
  for (let i = 0; i < 10; i++) {
    const r = await receive();
    if (r && read(r.data).some((m) => m.type === MessageType.APPLICATION_PRIVATE_DATA)) break;
  }
  return { read, receive };
}

/**
 * Receive-PSSession for one disconnected shell: Connect as a new client, connect each of its commands, take
 * the output the host kept (until a command is Done, or a Receive brings nothing more), and Disconnect again so
 * the session runs on. Returns the text: output strings as lines, errors as PowerShell's ConciseView shows them;
 * with `options.format` "json" one JSON line each, in order, as `invoke --json` writes them without the host:
 * `{"stream":"output","data":…}` for an object, `{"stream":"stderr","data":"…"}` for an error or warning.
 */
export async function receiveShellOutput(
  client: WinrmClient,
  resourceUri: string,
  shellId: string,
  options: ReceiveOptions = {},
  retry: RetryOptions = {},
): Promise<string> {
  const { read, receive } = await connectPool(client, resourceUri, shellId, retry);
  let text = "";
  for (const command of await enumerateCommands(client, shellId)) {
    await connectCommand(client, resourceUri, shellId, command.commandId);
    for (;;) {
      const r = await receive(command.commandId);
      if (!r) break;
      for (const m of read(r.data)) text += messageText(m, options.format ?? "text");
      if (r.done) break;
    }
  }
  await disconnectShell(client, resourceUri, shellId);
  return text;
}

function messageText(m: Message, format: "text" | "json"): string {
  if (format === "json" && m.type !== MessageType.PIPELINE_OUTPUT) {
    const said = messageText(m, "text");
    return said ? JSON.stringify({ stream: "stderr", data: said }) + "\n" : "";
  }
  const value = m.data === "" ? null : deserialize(m.data);
  switch (m.type) {
    case MessageType.PIPELINE_OUTPUT:
      if (format === "json") return JSON.stringify({ stream: "output", data: toJson(value) }) + "\n";
      return `${value instanceof PSObject ? value.toString() : String(value ?? "")}\n`;
    case MessageType.ERROR_RECORD:
      return formatError(readErrorRecord(value));
    case MessageType.WARNING_RECORD:
      return `WARNING: ${readInformationalRecord(value).message}\n`;
    case MessageType.PIPELINE_STATE: {
      const reason = value instanceof PSObject ? value.get("ExceptionAsErrorRecord") : undefined;
      return reason ? formatError(readErrorRecord(reason)) : "";
    }
  }
  return "";
}

/**
 * The host's PowerShell shells as sessions (`remote get --computer-name`): Get-PSSession's columns. remote
 * leaves no shell of its own on a Windows host yet, so each is reported as made by another client.
 */
export function hostSessions(shells: RemoteShell[]): HostSession[] {
  return shells.filter((s) => s.resourceUri.startsWith(PS_RESOURCE_PREFIX)).map((s) => ({
    name: s.name ?? s.shellId,
    state: s.state === "Disconnected" ? "Disconnected" : "Opened",
    // a connected shell has a client: another one (a session remote attaches to is reported Disconnected first)
    availability: s.state === "Disconnected" ? "None" : "Busy",
    instanceId: s.shellId,
    configurationName: s.resourceUri.slice(PS_RESOURCE_PREFIX.length),
    // a PSSession has a name (New-PSSession -Name, remote new --name); a shell without one is a client's own
    foreign: s.name === undefined,
  }));
}

/**
 * The PowerShell shell named `name` (its Name, or its ShellId).
 *
 * @throws {RemoteError} code `notFound` when the host has none
 */
export async function findShell(client: WinrmClient, name: string): Promise<RemoteShell> {
  const shells = (await enumerateShells(client)).filter((s) => s.resourceUri.startsWith(PS_RESOURCE_PREFIX));
  const found = shells.find((s) => s.name === name) ??
    shells.find((s) => s.shellId.toLowerCase() === name.toLowerCase());
  if (!found) {
    throw new RemoteError("notFound", `${client.settings.url.host} has no PowerShell session ${name}`, {
      hint: "see its sessions with: remote get --computer-name " + client.settings.url.origin,
    });
  }
  return found;
}

/** The context's client settings are resolved by mod.ts; this only lists. */
export type ClientFor = (ctx: OpenContext) => Promise<WinrmClient>;
