/**
 * The runspace pool and the out-of-process wire against a scripted server: lines in, lines out, no process.
 * The real pwsh is in tests/psrp_pwsh_test.ts; these pin the state machine, the flow control and the failures.
 */
import { deepStrictEqual as assertEquals, match, ok, rejects } from "node:assert/strict";
import { deserialize, psBag, type PSObject, type PSSecureString, serialize } from "./clixml.ts";
import { MessageType, NIL_GUID } from "./constants.ts";
import { decodeFragments, Defragmenter, Fragmenter } from "./fragment.ts";
import { decodeMessage, encodeMessage, type Message } from "./message.ts";
import { encodePacket, type Packet, parsePacketLine } from "./packet.ts";
import { OutOfProcWire } from "./out_of_proc.ts";
import { RunspacePool } from "./runspace_pool.ts";
import type { PSHost } from "./host.ts";
import { PsrpError } from "./errors.ts";
import { aesSessionKey } from "./session_key.ts";
import { serverEncrypt } from "./_test_helpers.ts";

/** A server played by the test: it sees the client's packets and messages and answers with lines. */
class Script {
  lines: string[] = [];
  wire: OutOfProcWire;
  pool: RunspacePool;
  #frag = new Fragmenter();
  #defrag = new Defragmenter();

  constructor(host?: PSHost, fragmentSize?: number) {
    this.wire = new OutOfProcWire({ write: (l) => void this.lines.push(l), fragmentSize });
    this.pool = new RunspacePool({ wire: this.wire, host });
    this.wire.attach(this.pool);
  }

  /** The client's packets written so far, consumed. */
  take(): Packet[] {
    const out = this.lines.map((l) => parsePacketLine(l)!);
    this.lines = [];
    return out;
  }

  /** The messages inside data packets. */
  messages(packets: Packet[]): Message[] {
    return packets.flatMap((p) =>
      p.kind === "Data"
        ? decodeFragments(p.data).map((f) => this.#defrag.push(f)).filter((m) => m).map((m) => decodeMessage(m!))
        : []
    );
  }

  send(text: string): void {
    this.wire.receive(new TextEncoder().encode(text));
  }

  data(type: number, pid: string, body: string | PSObject): void {
    const data = typeof body === "string" ? body : serialize(body);
    const m = encodeMessage({ destination: 1, type, rpid: this.pool.rpid, pid, data });
    for (const f of this.#frag.fragment(m)) {
      this.send(encodePacket({ kind: "Data", stream: "Default", guid: pid, data: f }));
    }
  }

  ack(kind: Packet["kind"], guid: string): void {
    this.send(encodePacket({ kind: kind as "DataAck", guid }));
  }

  async open(version = "2.4"): Promise<void> {
    const opened = this.pool.open();
    // SESSION_CAPABILITY and INIT_RUNSPACEPOOL (in one line, or two when the fragment size is small)
    const got: Message[] = [];
    for (let i = 0; i < 100 && got.length < 2; i++) {
      const packets = this.take();
      assertEquals(packets.length, 1, "one line in flight");
      got.push(...this.messages(packets));
      this.ack("DataAck", NIL_GUID);
    }
    assertEquals(got.map((m) => m.type), [MessageType.SESSION_CAPABILITY, MessageType.INIT_RUNSPACEPOOL]);
    this.data(MessageType.SESSION_CAPABILITY, NIL_GUID, capability(version));
    this.data(MessageType.APPLICATION_PRIVATE_DATA, NIL_GUID, psBag({ ApplicationPrivateData: null }));
    this.data(MessageType.RUNSPACEPOOL_STATE, NIL_GUID, psBag({ RunspaceState: 2 }));
    await opened;
  }
}

function capability(version: string): PSObject {
  const v = (t: string) => deserialize(`<Version>${t}</Version>`);
  return psBag({ protocolversion: v(version), PSVersion: v("2.0"), SerializationVersion: v("1.1.0.1") });
}

Deno.test("RunspacePool.open() sends SESSION_CAPABILITY 2.4 and INIT_RUNSPACEPOOL and resolves on Opened", async () => {
  const s = new Script();
  await s.open();
  assertEquals(s.pool.state, 2);
  assertEquals(s.pool.protocolVersion, "2.4");
});

Deno.test("RunspacePool.open() sends SESSION_CAPABILITY and INIT_RUNSPACEPOOL in one Data line, as PowerShell does", () => {
  const s = new Script();
  void s.pool.open();
  const packets = s.take();
  assertEquals(packets.map((p) => p.kind), ["Data"]);
  assertEquals(s.messages(packets).map((m) => m.type), [MessageType.SESSION_CAPABILITY, MessageType.INIT_RUNSPACEPOOL]);
});

Deno.test("Input queued behind a DataAck travels in one line up to the fragment size, and in order", async () => {
  const s = new Script();
  await s.open();
  const p = s.pool.createPipeline({ commands: [{ cmd: "process { $_ }", isScript: true }], input: true });
  for (let i = 0; i < 500; i++) void p.sendInput(`line ${i}`);
  p.endInput();
  s.take();
  s.ack("CommandAck", p.pid);
  const lines: Packet[][] = [];
  for (let i = 0; i < 1000 && s.lines.length; i++) {
    const packets = s.take();
    assertEquals(packets.length, 1, "one line in flight");
    lines.push(packets);
    s.ack("DataAck", p.pid);
  }
  const sent = lines.flatMap((l) => s.messages(l));
  assertEquals(sent.length, 502);
  assertEquals(
    sent.slice(1, 501).map((m) => (deserialize(m.data) as PSObject).value),
    [...Array(500).keys()].map((i) => `line ${i}`),
  );
  ok(lines.length <= 10, `${lines.length} lines for 502 small messages`);
  ok(lines.every(([d]) => d.kind === "Data" && d.data.length <= 32 * 1024));
});

Deno.test("RunspacePool.open() negotiates down to a server's 2.2 and refuses a 3.0 server with exit 244", async () => {
  const s = new Script();
  await s.open("2.2");
  assertEquals(s.pool.protocolVersion, "2.2");
  const t = new Script();
  await rejects(
    t.open("3.0"),
    (e: unknown) => e instanceof PsrpError && /protocol 3\.0/.test(e.message) && e.exitCode === 244,
  );
});

Deno.test("A pipeline: Command, CommandAck, CREATE_PIPELINE, output, state, then Close of its id", async () => {
  const s = new Script();
  await s.open();
  const out: unknown[] = [];
  const p = s.pool.createPipeline({
    commands: [{ cmd: "Get-Thing", args: [{ name: "Name", value: "x" }] }],
    output: (v) => out.push(v),
  });
  const [command] = s.take();
  assertEquals(command, { kind: "Command", guid: p.pid });
  s.ack("CommandAck", p.pid);
  const [create] = s.messages(s.take());
  assertEquals([create.type, create.pid, create.rpid], [MessageType.CREATE_PIPELINE, p.pid, s.pool.rpid]);
  const body = deserialize(create.data) as PSObject;
  const cmd = ((body.get("PowerShell") as PSObject).get("Cmds") as PSObject).items![0] as PSObject;
  assertEquals([cmd.get("Cmd"), cmd.get("IsScript"), body.get("NoInput")], ["Get-Thing", false, true]);
  assertEquals(((cmd.get("Args") as PSObject).items![0] as PSObject).get("N"), "Name");
  s.ack("DataAck", p.pid);
  s.data(MessageType.PIPELINE_OUTPUT, p.pid, "<S>hi</S>");
  s.data(MessageType.PIPELINE_STATE, p.pid, psBag({ PipelineState: 4 }));
  assertEquals(await p.done, { state: 4, reason: undefined });
  assertEquals(out, ["hi"]);
  assertEquals(s.take(), [{ kind: "Close", guid: p.pid }]);
});

Deno.test("RunspacePool.close() waits for the pipelines' CloseAck before closing the pool", async () => {
  const s = new Script();
  await s.open();
  const p = s.pool.createPipeline({ commands: [{ cmd: "1", isScript: true }] });
  s.ack("CommandAck", p.pid);
  s.ack("DataAck", p.pid);
  s.data(MessageType.PIPELINE_STATE, p.pid, psBag({ PipelineState: 4 }));
  await p.done;
  s.take();
  const closed = s.pool.close();
  await Promise.resolve();
  assertEquals(s.take(), [], "no pool Close while the pipeline's Close is unacknowledged");
  s.ack("CloseAck", p.pid);
  assertEquals(s.take(), [{ kind: "Close", guid: NIL_GUID }]);
  s.ack("CloseAck", NIL_GUID);
  await closed;
  assertEquals(s.pool.state, 3);
});

Deno.test("Pipeline.stop() sends Signal; input waits for each DataAck and keeps its order", async () => {
  const s = new Script(undefined, 21 + 30);
  await s.open();
  const p = s.pool.createPipeline({ commands: [{ cmd: "process { $_ }", isScript: true }], input: true });
  p.sendInput("a long enough string to need two fragments");
  p.endInput();
  assertEquals(s.take().map((x) => x.kind), ["Command"]);
  s.ack("CommandAck", p.pid);
  let sent: Message[] = [];
  for (let i = 0; i < 10_000 && s.lines.length; i++) {
    const packets = s.take();
    assertEquals(packets.length, 1, "one line in flight");
    sent = sent.concat(s.messages(packets));
    s.ack("DataAck", p.pid);
  }
  assertEquals(sent.map((m) => m.type), [
    MessageType.CREATE_PIPELINE,
    MessageType.PIPELINE_INPUT,
    MessageType.END_OF_PIPELINE_INPUT,
  ]);
  assertEquals((deserialize(sent[1].data) as PSObject).value, "a long enough string to need two fragments");
  p.stop();
  assertEquals(s.take(), [{ kind: "Signal", guid: p.pid }]);
  s.ack("SignalAck", p.pid);
  s.data(MessageType.PIPELINE_STATE, p.pid, psBag({ PipelineState: 3 }));
  assertEquals((await p.done).state, 3);
});

Deno.test("A pipeline host call is answered on the PromptResponse stream with the pipeline's id", async () => {
  const s = new Script({ readLine: () => Promise.resolve("typed") });
  await s.open();
  const p = s.pool.createPipeline({ commands: [{ cmd: "Read-Host" }] });
  s.ack("CommandAck", p.pid);
  s.ack("DataAck", p.pid);
  s.take();
  s.data(
    MessageType.PIPELINE_HOST_CALL,
    p.pid,
    `<Obj RefId="0"><MS><I64 N="ci">5</I64><Obj N="mi" RefId="1"><ToString>ReadLine</ToString><I32>11</I32></Obj><Obj N="mp" RefId="2"><LST /></Obj></MS></Obj>`,
  );
  await new Promise((r) => setTimeout(r, 0));
  const packets = s.take();
  assertEquals(packets.map((x) => [x.kind, x.guid, x.kind === "Data" ? x.stream : ""]), [[
    "Data",
    p.pid,
    "PromptResponse",
  ]]);
  const [response] = s.messages(packets);
  assertEquals(response.type, MessageType.PIPELINE_HOST_RESPONSE);
  const r = deserialize(response.data) as PSObject;
  assertEquals([r.get("ci"), r.get("mr"), (r.get("mi") as PSObject).value], [5n, "typed", 11]);
});

Deno.test("Garbage from the server fails the pool and every pending pipeline with exit 244, never a hang", async () => {
  const s = new Script();
  await s.open();
  const p = s.pool.createPipeline({ commands: [{ cmd: "1" }] });
  try {
    s.send("Welcome to my profile!\n");
  } catch { /* thrown to the reader too */ }
  await rejects(p.done, (e: unknown) => e instanceof PsrpError && e.exitCode === 244 && /not a packet/.test(e.message));
  ok(s.pool.failure);
  await rejects(s.pool.close(), PsrpError);
});

Deno.test("A corrupt fragment and corrupt CLIXML fail the pool with exit 244", async () => {
  for (const corrupt of ["fragment", "clixml"] as const) {
    const s = new Script();
    await s.open();
    const p = s.pool.createPipeline({ commands: [{ cmd: "1" }] });
    try {
      if (corrupt === "fragment") {
        s.send(encodePacket({ kind: "Data", stream: "Default", guid: p.pid, data: new Uint8Array(30).fill(1) }));
      } else s.data(MessageType.PIPELINE_OUTPUT, p.pid, "<Obj><LST><I32>1</LST></Obj>");
    } catch { /* also thrown */ }
    await rejects(p.done, (e: unknown) => e instanceof PsrpError && e.exitCode === 244);
  }
});

Deno.test("The server's stdout ending mid-session fails pending calls as a lost connection (exit 250)", async () => {
  const s = new Script();
  const opening = s.pool.open();
  s.wire.end();
  await rejects(opening, (e: unknown) => e instanceof Error && "exitCode" in e && e.exitCode === 250);
  match(String(s.pool.failure?.message), /ended the session/);
});

Deno.test("RUNSPACEPOOL_STATE Broken fails open() with the server's reason", async () => {
  const s = new Script();
  const opening = s.pool.open();
  s.take();
  s.data(
    MessageType.RUNSPACEPOOL_STATE,
    NIL_GUID,
    psBag({ RunspaceState: 5, ExceptionAsErrorRecord: psBag({ FullyQualifiedErrorId: "x" }) }),
  );
  await rejects(opening, /broke the runspace pool/);
});

Deno.test("RunspacePool.open(signal) rejects with exit 242 when the deadline passes, never waiting forever", async () => {
  const s = new Script();
  await rejects(
    s.pool.open(AbortSignal.timeout(10)),
    (e: unknown) => e instanceof Error && "exitCode" in e && e.exitCode === 242,
  );
  assertEquals(s.pool.state, 5);
});

Deno.test("Below protocol 2.4 a secure string first exchanges the session key (PUBLIC_KEY, ENCRYPTED_SESSION_KEY)", async () => {
  const s = new Script({ readLineAsSecureString: () => "secret" });
  await s.open("2.3");
  s.data(
    MessageType.RUNSPACEPOOL_HOST_CALL,
    NIL_GUID,
    `<Obj RefId="0"><MS><I64 N="ci">2</I64><Obj N="mi" RefId="1"><ToString>ReadLineAsSecureString</ToString><I32>12</I32></Obj><Obj N="mp" RefId="2"><LST /></Obj></MS></Obj>`,
  );
  let sent: Message[] = [];
  for (let i = 0; i < 500 && !sent.length; i++) {
    await new Promise((r) => setTimeout(r, 10));
    sent = s.messages(s.take());
  }
  assertEquals(sent.map((m) => m.type), [MessageType.PUBLIC_KEY]);
  s.ack("DataAck", NIL_GUID);
  const publicKey = (deserialize(sent[0].data) as PSObject).get("PublicKey") as string;
  const raw = crypto.getRandomValues(new Uint8Array(32));
  s.data(MessageType.ENCRYPTED_SESSION_KEY, NIL_GUID, psBag({ EncryptedSessionKey: serverEncrypt(publicKey, raw) }));
  let response: Message[] = [];
  for (let i = 0; i < 500 && !response.length; i++) {
    await new Promise((r) => setTimeout(r, 10));
    response = s.messages(s.take());
  }
  assertEquals(response.map((m) => m.type), [MessageType.RUNSPACEPOOL_HOST_RESPONSE]);
  const ss = (deserialize(response[0].data) as PSObject).get("mr") as PSSecureString;
  assertEquals(await ss.decrypt(await aesSessionKey(raw)), "secret");
});

Deno.test("Pipeline.sendInput() resolves only once less than 1 MiB of input waits for DataAcks", async () => {
  const s = new Script();
  await s.open();
  const p = s.pool.createPipeline({ commands: [{ cmd: "process { }", isScript: true }], input: true });
  s.ack("CommandAck", p.pid);
  let settled = false;
  const big = "y".repeat(300_000);
  const sends = [1, 2, 3, 4].map(() => p.sendInput(big));
  const last = sends[3].then(() => settled = true);
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(settled, false, "over the mark: the caller waits");
  for (let i = 0; i < 200 && !settled; i++) {
    s.take();
    s.ack("DataAck", p.pid);
    await new Promise((r) => setTimeout(r, 0));
  }
  await last;
  ok(s.wire.buffered === 0);
});

Deno.test("An open() signal that aborts after the pool opened leaves the pool alone", async () => {
  const s = new Script();
  const ac = new AbortController();
  const opening = s.pool.open(ac.signal);
  s.take();
  s.data(MessageType.SESSION_CAPABILITY, NIL_GUID, capability("2.4"));
  s.data(MessageType.RUNSPACEPOOL_STATE, NIL_GUID, psBag({ RunspaceState: 2 }));
  await opening;
  ac.abort();
  assertEquals([s.pool.state, s.pool.failure], [2, undefined]);
});
