/**
 * Disconnected PowerShell sessions on the WinRM test server, at the WS-Man level: a first client creates a pool,
 * starts a pipeline, takes part of its output and disconnects; a second client (its own WS-Man SessionId, as
 * another machine) connects with connectXml (MS-PSRP 3.1.5.3.14), connects the pipeline by its CommandId
 * (3.1.5.3.15) and receives the rest. With BufferMode Block nothing is lost or repeated, the pipeline waiting
 * while its buffer is full; with Drop the pipeline runs on and the oldest output is discarded. The messages
 * are the library's own (plugins/psrp), the shapes those of pypsrp's test_psrp_disconnected_commands.yml.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startWinrmServer, type WinrmServer } from "./winrm_server.ts";
import { WinrmClient } from "../transports/winrm/client.ts";
import {
  Action,
  child,
  NS,
  parseCreateResponse,
  parsePsrpReceiveResponse,
  psrpCommandBody,
  psrpReceiveBody,
  psrpShellBody,
} from "../transports/winrm/wsman_xml.ts";
import { connectCommand, connectShell, disconnectShell } from "../transports/winrm/psrp_sessions.ts";
import {
  decodeFragments,
  decodeMessage,
  Defragmenter,
  Destination,
  encodeMessage,
  Fragmenter,
  type Message,
  MessageType,
  newGuid,
  NIL_GUID,
  psBag,
  PSPrimitive,
  type PSValue,
  serialize,
} from "../plugins/psrp/mod.ts";

const URI = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell";

function clientOf(server: WinrmServer): WinrmClient {
  return new WinrmClient({
    url: new URL(server.url),
    auth: "negotiate",
    username: "WIN01\\alice",
    password: "Secr3t-pässword",
    tls: { verifyCa: true, verifyHost: true },
    allowRedirection: false,
    operationTimeoutMs: 2_000,
    connectTimeoutMs: 5_000,
  });
}

/** a client's side of PSRP, message by message, on the library's fragment/message/CLIXML layers */
class RawPsrp {
  readonly frag = new Fragmenter();
  readonly defrag = new Defragmenter();
  constructor(readonly rpid: string) {}

  bytes(type: number, pid: string, value: PSValue): Uint8Array[] {
    const data = value === null ? "" : serialize(value);
    return this.frag.fragment(encodeMessage({ destination: Destination.server, type, rpid: this.rpid, pid, data }));
  }

  capability(): Uint8Array[] {
    return this.bytes(
      MessageType.SESSION_CAPABILITY,
      NIL_GUID,
      psBag({
        protocolversion: new PSPrimitive("Version", "2.3"),
        PSVersion: new PSPrimitive("Version", "2.0"),
        SerializationVersion: new PSPrimitive("Version", "1.1.0.1"),
      }),
    );
  }

  read(chunks: Uint8Array[]): Message[] {
    const out: Message[] = [];
    for (const c of chunks) {
      for (const f of decodeFragments(c)) {
        const m = this.defrag.push(f);
        if (m) out.push(decodeMessage(m));
      }
    }
    return out;
  }
}

const join = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
  return out;
};

async function receive(client: WinrmClient, shellId: string, commandId?: string) {
  try {
    return await client.request(Action.receive, psrpReceiveBody(commandId), {
      resourceUri: URI,
      selectors: { ShellId: shellId },
    }, (env) => parsePsrpReceiveResponse(env, commandId));
  } catch {
    return { data: [], done: false }; // w:TimedOut: nothing yet
  }
}

const lines = (messages: Message[]) =>
  messages.filter((m) => m.type === MessageType.PIPELINE_OUTPUT).map((m) => /<S>(.*)<\/S>/.exec(m.data)?.[1] ?? "?");

/** client A starts `count` lines, takes some, disconnects; client B connects and takes the rest */
async function scenario(bufferMode: "Block" | "Drop", count: number, buffer: number) {
  await using server = await startWinrmServer({ disconnectedBufferFragments: buffer });
  const a = clientOf(server);
  const b = clientOf(server);
  try {
    const rpid = newGuid();
    const pa = new RawPsrp(rpid);
    const creation = join([
      ...pa.capability(),
      ...pa.bytes(
        MessageType.INIT_RUNSPACEPOOL,
        NIL_GUID,
        psBag({ MinRunspaces: 1, MaxRunspaces: 1, ApplicationArguments: null }),
      ),
    ]);
    const shellId = await a.request(Action.create, psrpShellBody(rpid.toUpperCase(), creation), {
      resourceUri: URI,
      options: { protocolversion: { value: "2.3", mustComply: true } },
    }, parseCreateResponse);
    const opened: Message[] = [];
    while (!opened.some((m) => m.type === MessageType.RUNSPACEPOOL_STATE)) {
      opened.push(...pa.read((await receive(a, shellId)).data));
    }
    const pid = newGuid();
    const create = psBag({
      NoInput: true,
      PowerShell: psBag({
        Cmds: [psBag({ Cmd: `1..${count} | % { "line $_"; Start-Sleep -Milliseconds 5 }`, IsScript: true, Args: [] })],
      }),
    });
    await a.request(
      Action.command,
      psrpCommandBody(pid.toUpperCase(), join(pa.bytes(MessageType.CREATE_PIPELINE, pid, create))),
      {
        resourceUri: URI,
        selectors: { ShellId: shellId },
      },
      () => undefined,
    );
    const before: Message[] = [];
    while (lines(before).length === 0) before.push(...pa.read((await receive(a, shellId, pid.toUpperCase())).data));
    await disconnectShell(a, URI, shellId, { bufferMode });
    // with nobody connected the pipeline runs on: until its buffer is full (Block), or to its end (Drop)
    const held = server.psShells.get(shellId)!.commands.get(pid.toUpperCase())!;
    const settled = () => held.done || (bufferMode === "Block" && held.out.length >= buffer);
    for (const until = Date.now() + 20_000; !settled() && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 200)); // a Block pipeline stays suspended, not just slow
    const whileAway = { done: held.done, queued: held.out.length };
    const pb = new RawPsrp(rpid);
    const reply = pb.read([
      await connectShell(
        b,
        URI,
        shellId,
        join([
          ...pb.capability(),
          ...pb.bytes(MessageType.CONNECT_RUNSPACEPOOL, NIL_GUID, ""),
        ]),
      ),
    ]);
    assertEquals(reply.map((m) => m.type), [MessageType.SESSION_CAPABILITY, MessageType.RUNSPACEPOOL_INIT_DATA]);
    const pool: Message[] = [];
    while (!pool.some((m) => m.type === MessageType.APPLICATION_PRIVATE_DATA)) {
      pool.push(...pb.read((await receive(b, shellId)).data));
    }
    await connectCommand(b, URI, shellId, pid.toUpperCase());
    const after: Message[] = [];
    for (let done = false; !done;) {
      const r = await receive(b, shellId, pid.toUpperCase());
      after.push(...pb.read(r.data));
      done = r.done;
    }
    assertEquals(after.at(-1)?.type, MessageType.PIPELINE_STATE);
    await b.request(Action.delete, "", { resourceUri: URI, selectors: { ShellId: shellId } }, () => undefined);
    assertEquals(server.shells(), []);
    return { before: lines(before), after: lines(after), connects: server.stats.connects, whileAway };
  } finally {
    a.close();
    b.close();
  }
}

Deno.test("a second client connects to a disconnected PowerShell session and receives, with Block, all output once", async () => {
  const { before, after, connects, whileAway } = await scenario("Block", 60, 8);
  // Block suspended the pipeline at the buffer's size instead of letting it run to its end
  assertEquals(whileAway, { done: false, queued: 8 });
  const all = [...before, ...after];
  assertEquals(all, Array.from({ length: 60 }, (_, i) => `line ${i + 1}`), "no line lost or repeated");
  assert(after.length > 0);
  assertEquals(connects, 1);
});

Deno.test("with Drop a disconnected PowerShell pipeline runs on and the oldest output is discarded", async () => {
  const { before, after, whileAway } = await scenario("Drop", 60, 8);
  assertEquals(whileAway.done, true, "Drop does not suspend the pipeline");
  const all = [...before, ...after];
  assertEquals(after.at(-1), "line 60", "the pipeline ran to its end while disconnected");
  assert(all.length < 60, `nothing was dropped: ${all.length} lines`);
  // what is kept is in order and ends with the newest
  const numbers = all.map((l) => Number(l.slice(5)));
  assertEquals([...numbers].sort((x, y) => x - y), numbers);
});

Deno.test("the connect replies have the shapes of pypsrp's test_psrp_disconnected_commands.yml", async () => {
  await using server = await startWinrmServer({});
  const a = clientOf(server);
  const b = clientOf(server);
  try {
    const rpid = newGuid();
    const p = new RawPsrp(rpid);
    const creation = join([
      ...p.capability(),
      ...p.bytes(MessageType.INIT_RUNSPACEPOOL, NIL_GUID, psBag({ MinRunspaces: 1, MaxRunspaces: 1 })),
    ]);
    const shellId = await a.request(Action.create, psrpShellBody(rpid.toUpperCase(), creation), {
      resourceUri: URI,
      options: { protocolversion: { value: "2.3", mustComply: true } },
    }, parseCreateResponse);
    await receive(a, shellId);
    let disconnectBody = "";
    await a.request(
      "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Disconnect",
      "<rsp:Disconnect/>",
      { resourceUri: URI, selectors: { ShellId: shellId } },
      (env) => void (disconnectBody = JSON.stringify(child(env, NS.s, "Body"))),
    );
    assertEquals(JSON.parse(disconnectBody).children, [], "DisconnectResponse has an empty body");
    const pb = new RawPsrp(rpid);
    const connectXml = join([...pb.capability(), ...pb.bytes(MessageType.CONNECT_RUNSPACEPOOL, NIL_GUID, "")]);
    let names: string[] = [];
    await b.request(
      "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Connect",
      `<rsp:Connect><connectXml xmlns="http://schemas.microsoft.com/powershell">${
        btoa(String.fromCharCode(...connectXml))
      }</connectXml></rsp:Connect>`,
      {
        resourceUri: URI,
        selectors: { ShellId: shellId },
        options: { protocolversion: { value: "2.3", mustComply: true } },
      },
      (env) => {
        const r = child(child(env, NS.s, "Body"), NS.rsp, "ConnectResponse");
        names = r?.children.map((c) => `${c.ns === NS.rsp ? "rsp" : c.ns}:${c.name}`) ?? [];
      },
    );
    assertEquals(names, [
      "rsp:InputStreams",
      "rsp:OutputStreams",
      "http://schemas.microsoft.com/powershell:connectResponseXml",
    ]);
    await b.request(Action.delete, "", { resourceUri: URI, selectors: { ShellId: shellId } }, () => undefined);
  } finally {
    a.close();
    b.close();
  }
});
