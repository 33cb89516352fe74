/**
 * The PowerShell shells of the WinRM test server answer with the shapes real Windows sends, and the winrm
 * transport asks with the shapes real clients send. The reference is pypsrp's recordings against Windows
 * PowerShell 5.1 over WinRM (jborean93/pypsrp tests/tests_pypsrp/responses/test_psrp_multiple_invocations.yml
 * and test_psrp_nested_command.yml): the skeletons below (element names with their namespace, attribute
 * names, children in order, a run of equal siblings written once) were read from those recordings, and the
 * PSRP messages inside their base64 streams were decoded into message types and CLIXML skeletons.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startWinrmServer } from "./winrm_server.ts";
import { WinrmClient, type WinrmSettings } from "../transports/winrm/client.ts";
import { openPsrpChannel } from "../transports/winrm/psrp.ts";
import { Action, child, NS, parseEnvelope, type XmlElement } from "../transports/winrm/wsman_xml.ts";
import {
  connectOutOfProc,
  decodeFragments,
  Defragmenter,
  invokeScript,
  MessageType,
  NIL_GUID,
  RunspacePool,
} from "../plugins/psrp/mod.ts";
import {
  disconnectShell,
  enumerateShells,
  receiveShellOutput,
  reconnectShell,
} from "../transports/winrm/psrp_sessions.ts";

const PREFIX: Record<string, string> = {
  [NS.s]: "s",
  [NS.a]: "a",
  [NS.x]: "x",
  [NS.w]: "w",
  [NS.rsp]: "rsp",
  [NS.p]: "p",
  "http://schemas.microsoft.com/powershell": "ps",
  "http://schemas.xmlsoap.org/ws/2004/09/enumeration": "n",
};

/** `prefix:name[attrs]{children}`, a run of equal sibling skeletons written once */
function skeleton(e: XmlElement): string {
  const attrs = Object.keys(e.attrs).filter((a) => a !== "lang").sort();
  const kids: string[] = [];
  for (const c of e.children.map(skeleton)) if (kids.at(-1) !== c) kids.push(c);
  return `${PREFIX[e.ns] ?? e.ns}:${e.name}${attrs.length ? `[${attrs.join(",")}]` : ""}${
    kids.length ? `{${kids.join(",")}}` : ""
  }`;
}

/** the same for CLIXML, which has no namespaces */
function clixmlSkeleton(xml: string): string {
  type Node = { name: string; attrs: string[]; kids: Node[] };
  const root: Node = { name: "", attrs: [], kids: [] };
  const stack = [root];
  for (const m of xml.matchAll(/<(\/?)([A-Za-z_][\w.:-]*)([^>]*?)(\/?)>/g)) {
    if (m[1]) {
      stack.pop();
      continue;
    }
    const node: Node = { name: m[2], attrs: [...m[3].matchAll(/([\w:]+)=/g)].map((a) => a[1]).sort(), kids: [] };
    stack.at(-1)!.kids.push(node);
    if (!m[4]) stack.push(node);
  }
  const show = (n: Node): string => {
    const kids: string[] = [];
    for (const c of n.kids.map(show)) if (kids.at(-1) !== c) kids.push(c);
    return `${n.name}${n.attrs.length ? `[${n.attrs.join(",")}]` : ""}${kids.length ? `{${kids.join(",")}}` : ""}`;
  };
  return root.kids.map(show).join(",");
}

const HEADER = "s:Header{a:Action,a:MessageID,a:To,a:RelatesTo}";
/**
 * Receive, Send, Command and Signal are robust-connection operations (their requests carry wsmv:OperationID, which
 * pypsrp's do not): their replies add wsmv:OperationID and wsmv:SequenceID to the recorded header (MS-WSMV
 * 3.1.4.1.39, 3.1.6.6)
 */
const ROBUST_HEADER = "s:Header{a:Action,a:MessageID,a:To,a:RelatesTo,p:OperationID,p:SequenceID}";
const headerOf = (e: Exchange) => e.robust ? ROBUST_HEADER : HEADER;
const CAPTURED_REPLIES = {
  Create: "s:Body{x:ResourceCreated{a:Address,a:ReferenceParameters{w:ResourceURI,w:SelectorSet{w:Selector[Name]}}}," +
    "rsp:Shell{rsp:ShellId,rsp:ResourceUri,rsp:Owner,rsp:ClientIP,rsp:ProcessId,rsp:IdleTimeOut,rsp:InputStreams," +
    "rsp:OutputStreams,rsp:MaxIdleTimeOut,rsp:Locale,rsp:DataLocale,rsp:CompressionMode,rsp:ProfileLoaded," +
    "rsp:Encoding,rsp:BufferMode,rsp:State,rsp:ShellRunTime,rsp:ShellInactivity}}",
  ReceivePool: "s:Body{rsp:ReceiveResponse{rsp:Stream[Name]}}",
  Command: "s:Body{rsp:CommandResponse{rsp:CommandId}}",
  ReceiveDone:
    "s:Body{rsp:ReceiveResponse{rsp:Stream[CommandId,Name],rsp:CommandState[CommandId,State]{rsp:ExitCode}}}",
  Signal: "s:Body{rsp:SignalResponse}",
  Delete: "s:Body",
};
const CAPTURED_REQUESTS = {
  Create: "s:Body{rsp:Shell[ShellId]{rsp:InputStreams,rsp:OutputStreams,ps:creationXml}}",
  ReceivePool: "s:Body{rsp:Receive{rsp:DesiredStream}}",
  Command: "s:Body{rsp:CommandLine[CommandId]{rsp:Command,rsp:Arguments}}",
  ReceiveCommand: "s:Body{rsp:Receive{rsp:DesiredStream[CommandId]}}",
  Signal: "s:Body{rsp:Signal[CommandId]{rsp:Code}}",
};

interface Exchange {
  op: string;
  action: string;
  request: XmlElement;
  reply: XmlElement;
  /** the request was a robust-connection operation */
  robust: boolean;
}

/** a client that keeps every request body and reply envelope */
class TapClient extends WinrmClient {
  log: Exchange[] = [];

  override request<T>(
    action: string,
    body: string,
    o: Parameters<WinrmClient["request"]>[2],
    parse: (env: XmlElement) => T,
  ): Promise<T> {
    const request = parseEnvelope(
      `<s:Envelope xmlns:s="${NS.s}" xmlns:rsp="${NS.rsp}" xmlns:w="${NS.w}"><s:Body>${body}</s:Body></s:Envelope>`,
    );
    return super.request(action, body, o, (reply) => {
      this.log.push({ op: action.slice(action.lastIndexOf("/") + 1), action, request, reply, robust: !!o.operation });
      return parse(reply);
    });
  }
}

async function run(script: string, stopAfterMs?: number): Promise<{ log: Exchange[]; output: string }> {
  await using server = await startWinrmServer({ allowUnencrypted: true, auth: ["basic"] });
  const settings: WinrmSettings = {
    url: new URL(server.url),
    auth: "basic",
    username: "alice",
    password: "Secr3t-pässword",
    tls: { verifyCa: true, verifyHost: true },
    allowRedirection: false,
    operationTimeoutMs: 20_000,
    connectTimeoutMs: 5_000,
  };
  const client = new TapClient(settings);
  await using channel = openPsrpChannel(
    client,
    "http://schemas.microsoft.com/powershell/Microsoft.PowerShell",
    new AbortController().signal,
  );
  const out = new TransformStream<Uint8Array, Uint8Array>();
  const text = new Response(out.readable).text();
  const stop = new AbortController();
  if (stopAfterMs !== undefined) setTimeout(() => stop.abort(), stopAfterMs);
  await invokeScript({
    readable: channel.stdout,
    writable: channel.stdin,
    script,
    format: "json",
    stdout: out.writable,
    stderr: new WritableStream(),
    signal: stop.signal,
  });
  await out.writable.close().catch(() => {});
  await channel.exit;
  assertEquals(server.shells(), []);
  return { log: client.log, output: await text };
}

function one(log: Exchange[], op: string, which: (e: Exchange) => boolean = () => true): Exchange {
  const e = log.find((x) => x.op === op && which(x));
  assert(e, `no ${op} in ${log.map((x) => x.op).join(" ")}`);
  return e;
}

const commandIdOf = (e: Exchange) =>
  child(child(child(e.request, NS.s, "Body"), NS.rsp, "Receive"), NS.rsp, "DesiredStream")?.attrs.CommandId;

Deno.test("the PowerShell test server answers Create, Receive, Command and Delete with the shapes Windows sends", async () => {
  const { log, output } = await run("1+1");
  assertEquals(output, "2\n");
  const replies = {
    Create: one(log, "Create"),
    ReceivePool: one(log, "Receive", (e) => commandIdOf(e) === undefined),
    Command: one(log, "Command"),
    ReceiveDone: one(
      log,
      "Receive",
      (e) => commandIdOf(e) !== undefined && skeleton(child(e.reply, NS.s, "Body")!).includes("CommandState"),
    ),
    Delete: one(log, "Delete"),
  };
  for (const [name, e] of Object.entries(replies)) {
    assertEquals(skeleton(child(e.reply, NS.s, "Header")!), headerOf(e), name);
    assertEquals(child(child(e.reply, NS.s, "Header"), NS.a, "Action")?.text, `${e.action}Response`, name);
    assertEquals(
      skeleton(child(e.reply, NS.s, "Body")!),
      CAPTURED_REPLIES[name as keyof typeof CAPTURED_REPLIES],
      name,
    );
  }
  // the client's requests have the recorded shapes too
  assertEquals(skeleton(child(replies.Create.request, NS.s, "Body")!), CAPTURED_REQUESTS.Create);
  assertEquals(skeleton(child(replies.ReceivePool.request, NS.s, "Body")!), CAPTURED_REQUESTS.ReceivePool);
  assertEquals(skeleton(child(replies.Command.request, NS.s, "Body")!), CAPTURED_REQUESTS.Command);
  assertEquals(skeleton(child(replies.ReceiveDone.request, NS.s, "Body")!), CAPTURED_REQUESTS.ReceiveCommand);
  // the ShellId the client chose is the one the host keeps, and the pipeline id is the CommandId
  const created = child(child(child(replies.Create.reply, NS.s, "Body"), NS.rsp, "Shell"), NS.rsp, "ShellId")?.text;
  assertEquals(created, child(child(replies.Create.request, NS.s, "Body"), NS.rsp, "Shell")?.attrs.ShellId);

  // inside the streams: the messages of test_psrp_multiple_invocations.yml, each with a UTF-8 BOM, the
  // SESSION_CAPABILITY with an all-zero RPID, and the recorded CLIXML skeletons
  const messages = (filter: (e: Exchange) => boolean) => {
    const d = new Defragmenter();
    const out: { type: number; rpid: Uint8Array; data: Uint8Array }[] = [];
    for (const e of log.filter((x) => x.op === "Receive" && filter(x))) {
      const rr = child(child(e.reply, NS.s, "Body"), NS.rsp, "ReceiveResponse");
      for (const s of rr?.children.filter((c) => c.name === "Stream") ?? []) {
        for (const f of decodeFragments(Uint8Array.from(atob(s.text), (c) => c.charCodeAt(0)))) {
          const m = d.push(f);
          if (m) {
            out.push({
              type: new DataView(m.buffer, m.byteOffset).getUint32(4, true),
              rpid: m.subarray(8, 24),
              data: m.subarray(40),
            });
          }
        }
      }
    }
    return out;
  };
  const pool = messages((e) => commandIdOf(e) === undefined);
  assertEquals(pool.map((m) => m.type), [
    MessageType.SESSION_CAPABILITY,
    MessageType.APPLICATION_PRIVATE_DATA,
    MessageType.RUNSPACEPOOL_STATE,
  ]);
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  for (const m of pool) assertEquals([...m.data.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
  assertEquals(pool[0].rpid.every((b) => b === 0), true);
  assertEquals(pool[2].rpid.every((b) => b === 0), false);
  assertEquals(clixmlSkeleton(decoder.decode(pool[0].data.subarray(3))), "Obj[RefId]{MS{Version[N]}}");
  assertEquals(clixmlSkeleton(decoder.decode(pool[2].data.subarray(3))), "Obj[RefId]{MS{I32[N]}}");
  const apd = clixmlSkeleton(decoder.decode(pool[1].data.subarray(3)));
  assert(apd.startsWith("Obj[RefId]{MS{Obj[N,RefId]{TN[RefId]{T},DCT{En{S[N],Obj[N,RefId]{"), apd);
  const first = one(log, "Command");
  const pid = child(child(first.request, NS.s, "Body"), NS.rsp, "CommandLine")?.attrs.CommandId;
  const pipeline = messages((e) => commandIdOf(e) === pid);
  // the script's output, then the status statement's string (invoke reads `$?` in the same pipeline), then the state
  assertEquals(pipeline.map((m) => m.type), [
    MessageType.PIPELINE_OUTPUT,
    MessageType.PIPELINE_OUTPUT,
    MessageType.PIPELINE_STATE,
  ]);
  assertEquals(clixmlSkeleton(decoder.decode(pipeline[0].data.subarray(3))), "I32");
  assertEquals(clixmlSkeleton(decoder.decode(pipeline[1].data.subarray(3))), "S");
  assertEquals(clixmlSkeleton(decoder.decode(pipeline[2].data.subarray(3))), "Obj[RefId]{MS{I32[N]}}");
  assertEquals(NIL_GUID.length, 36);
});

Deno.test("the PowerShell test server answers a stop (Signal crtl_c) with the SignalResponse Windows sends", async () => {
  const { log } = await run("Start-Sleep 100", 500);
  const signal = one(log, "Signal");
  assertEquals(skeleton(child(signal.request, NS.s, "Body")!), CAPTURED_REQUESTS.Signal);
  assertEquals(
    child(child(child(signal.request, NS.s, "Body"), NS.rsp, "Signal"), NS.rsp, "Code")?.text,
    "http://schemas.microsoft.com/powershell/signal/crtl_c",
  );
  assertEquals(signal.robust, true, "a stop is a robust-connection operation (MS-WSMV 3.1.4.1.39)");
  assertEquals(skeleton(child(signal.reply, NS.s, "Header")!), ROBUST_HEADER);
  assertEquals(skeleton(child(signal.reply, NS.s, "Body")!), CAPTURED_REPLIES.Signal);
  assertEquals(skeleton(child(one(log, "Delete").reply, NS.s, "Body")!), CAPTURED_REPLIES.Delete);
});

const CAPTURED_LIFECYCLE = {
  // pypsrp tests/tests_pypsrp/responses/test_psrp_disconnected_commands.yml
  Disconnect: "s:Body",
  Reconnect: "s:Body",
  EnumerateShells: "s:Body{n:EnumerateResponse{n:EnumerationContext,w:Items{rsp:Shell{rsp:ShellId,rsp:ResourceUri," +
    "rsp:Owner,rsp:ClientIP,rsp:ProcessId,rsp:IdleTimeOut,rsp:InputStreams,rsp:OutputStreams,rsp:MaxIdleTimeOut," +
    "rsp:Locale,rsp:DataLocale,rsp:CompressionMode,rsp:ProfileLoaded,rsp:Encoding,rsp:BufferMode,rsp:State," +
    "rsp:ShellRunTime,rsp:ShellInactivity,rsp:MemoryUsed,rsp:ChildProcesses}},w:EndOfSequence}}",
  EnumerateCommands:
    "s:Body{n:EnumerateResponse{n:EnumerationContext,w:Items{rsp:Command{rsp:CommandId,rsp:CommandLine,rsp:CommandState}},w:EndOfSequence}}",
  ConnectPool: "s:Body{rsp:ConnectResponse{rsp:InputStreams,rsp:OutputStreams,ps:connectResponseXml}}",
  ConnectCommand: "s:Body{rsp:ConnectResponse}",
};

Deno.test("the PowerShell test server's Disconnect, Reconnect, Enumerate and Connect replies have the recorded shapes", async () => {
  await using server = await startWinrmServer({ allowUnencrypted: true, auth: ["basic"] });
  const settings = (operationTimeoutMs: number): WinrmSettings => ({
    url: new URL(server.url),
    auth: "basic",
    username: "alice",
    password: "Secr3t-pässword",
    tls: { verifyCa: true, verifyHost: true },
    allowRedirection: false,
    operationTimeoutMs,
    connectTimeoutMs: 5_000,
  });
  const uri = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell";
  const a = new TapClient(settings(20_000));
  const channel = openPsrpChannel(a, uri, new AbortController().signal, { receivePipelines: false });
  const conn = connectOutOfProc({ readable: channel.stdout, writable: channel.stdin });
  const pool = new RunspacePool({ wire: conn.wire });
  conn.wire.attach(pool);
  await pool.open();
  const p = pool.createPipeline({ commands: [{ cmd: "Start-Sleep 5", isScript: true }] });
  p.done.catch(() => {});
  await conn.wire.drained(p.pid, 0);
  const shellId = channel.shellId!;
  await disconnectShell(a, uri, shellId);
  await reconnectShell(a, uri, shellId);
  await disconnectShell(a, uri, shellId);
  await channel.abandon();
  const b = new TapClient(settings(1_000));
  try {
    await enumerateShells(b);
    await receiveShellOutput(b, uri, shellId); // Enumerate of its commands, Connect, Connect with the CommandId
    await b.request(Action.delete, "", { resourceUri: uri, selectors: { ShellId: shellId } }, () => undefined);
  } finally {
    b.close();
  }
  const body = (e: Exchange) => skeleton(child(e.reply, NS.s, "Body")!);
  const log = [...a.log, ...b.log];
  const enumerations = log.filter((e) => e.op === "Enumerate").map(body);
  const connects = log.filter((e) => e.op === "Connect").map(body);
  assertEquals(body(one(log, "Disconnect")), CAPTURED_LIFECYCLE.Disconnect);
  assertEquals(body(one(log, "Reconnect")), CAPTURED_LIFECYCLE.Reconnect);
  assertEquals(enumerations, [CAPTURED_LIFECYCLE.EnumerateShells, CAPTURED_LIFECYCLE.EnumerateCommands]);
  assertEquals(connects, [CAPTURED_LIFECYCLE.ConnectPool, CAPTURED_LIFECYCLE.ConnectCommand]);
  for (const e of log) assertEquals(skeleton(child(e.reply, NS.s, "Header")!), headerOf(e), e.op);
  assertEquals(server.shells(), []);
});
