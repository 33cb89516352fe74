/**
 * PowerShell remoting over WinRM: the `psrp` capability's `{ kind: "subsystem" }` channel, which speaks
 * PSRP's out-of-process framing to the core (plugins/psrp drives it exactly as it drives the SSH subsystem)
 * and WS-Man to the host, as MS-PSRP 3.1.5.3 maps one onto the other:
 *
 * | from the core (packet line)                    | to the host                                                      |
 * | ---------------------------------------------- | ---------------------------------------------------------------- |
 * | Data SESSION_CAPABILITY + INIT_RUNSPACEPOOL     | Create on the configuration's resource URI: creationXml, the      |
 * |                                                | client's ShellId (= the pool id), protocolversion MustComply      |
 * | Command PSGuid=p, then its first Data          | Command, CommandId = p, the fragments in rsp:Arguments            |
 * | Data (Default / PromptResponse)                | Send on stdin / pr (with CommandId for a pipeline)                |
 * | Signal PSGuid=p                                | Signal `http://schemas.microsoft.com/powershell/signal/crtl_c`    |
 * | Close PSGuid=p                                 | nothing once Receive saw Done, else Signal terminate              |
 * | Close of the pool                              | Delete                                                            |
 *
 * Receive (stdout, with the CommandId of each running pipeline, and without one for the pool while the pool
 * waits for a reply) brings fragments back as Data lines; the acks the out-of-process framing wants are made
 * here. Several fragments go in one Send, up to what fits MaxEnvelopeSize.
 *
 * @module
 */
import { type Channel, type ExitStatus, RemoteError, TransportError } from "../../plugins/mod.ts";
import {
  decodeFragments,
  decodeMessage,
  Defragmenter,
  Destination,
  encodeFragment,
  encodeMessage,
  encodePacket,
  Fragmenter,
  guidToBytes,
  MessageType,
  NIL_GUID,
  type Packet,
  PacketParser,
  psBag,
  RunspacePoolState,
  serialize,
} from "../../plugins/psrp/mod.ts";
import { connectShell, disconnectShell, reconnectShell } from "./psrp_sessions.ts";
import { type RobustOperation, type WinrmClient, WinrmFaultError } from "./client.ts";
import { concat } from "./ntlm.ts";
import {
  Action,
  DEFAULT_MAX_ENVELOPE_SIZE,
  FaultCode,
  parseCreateResponse,
  parsePsrpReceiveResponse,
  PS_RESOURCE_PREFIX,
  PS_SIGNAL_CTRL_C,
  psrpCommandBody,
  psrpReceiveBody,
  type PsrpReceiveResult,
  psrpSendBody,
  psrpShellBody,
  SignalCode,
} from "./wsman_xml.ts";

/**
 * The resource URI of a PowerShell configuration: a name gets PowerShell's prefix
 * (`Microsoft.PowerShell` → `http://schemas.microsoft.com/powershell/Microsoft.PowerShell`), `powershell`
 * names Windows PowerShell's default endpoint (so one `--configuration-name powershell` serves SSH and
 * WinRM hosts alike), and a full URI is kept.
 */
export function psrpResourceUri(configuration: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(configuration)) return configuration;
  const name = configuration.toLowerCase() === "powershell" ? "Microsoft.PowerShell" : configuration;
  return PS_RESOURCE_PREFIX + name;
}

/** The most fragment bytes one Send carries: the envelope less its header, in base64 (MS-PSRP 3.1.5.1.1). */
export function maxSendPayload(maxEnvelope: number = DEFAULT_MAX_ENVELOPE_SIZE): number {
  return Math.floor((maxEnvelope - 4096) / 4) * 3;
}

/** Counters for tests and the benchmark. */
export interface PsrpChannelStats {
  creates: number;
  commands: number;
  sends: number;
  receives: number;
  signals: number;
  /** Receives asked again after a broken connection */
  reconnects: number;
}

interface Outgoing {
  items: { stream: "stdin" | "pr"; data: Uint8Array }[];
  /** bytes queued and not yet sent */
  bytes: number;
  /** acks held back while more than a Send's worth waits */
  owed: (() => void)[];
  flushing?: Promise<void>;
}

interface PipelineState {
  /** rsp:Command sent (or being sent) */
  started: boolean;
  /** settles once rsp:Command is answered */
  commanded?: Promise<void>;
  done: boolean;
  receiving: boolean;
}

/**
 * Opens the PSRP channel on `client` for the configuration at `resourceUri`. Nothing is sent until the core
 * writes its SESSION_CAPABILITY and INIT_RUNSPACEPOOL, which go into the Create.
 */
export function openPsrpChannel(
  client: WinrmClient,
  resourceUri: string,
  signal: AbortSignal,
  options: PsrpChannelOptions = {},
): PsrpChannel {
  return new PsrpChannel(client, resourceUri, signal, options);
}

/** Options of {@linkcode openPsrpChannel}. */
export interface PsrpChannelOptions {
  /** the shell's Name (New-PSSession -Name), which the host lists */
  name?: string;
  /**
   * connect to this disconnected shell instead of creating one (MS-PSRP 3.1.5.3.14): the pool's open becomes a
   * Connect with connectXml, and the replies the core's pool waits for are what the host sends for a connect
   * (SESSION_CAPABILITY, RUNSPACEPOOL_INIT_DATA, APPLICATION_PRIVATE_DATA) followed by the Opened state
   */
  connect?: { shellId: string };
  /**
   * false: pipelines are started but their output is not received, so the host keeps all of it for whoever
   * connects later (`invoke --in-disconnected-session`)
   */
  receivePipelines?: boolean;
}

/** The channel; see the module documentation. */
export class PsrpChannel implements Channel {
  readonly stdin: WritableStream<Uint8Array>;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array> = new ReadableStream({ start: (c) => c.close() });
  readonly exit: Promise<ExitStatus>;
  readonly stats: PsrpChannelStats = {
    creates: 0,
    commands: 0,
    sends: 0,
    receives: 0,
    signals: 0,
    reconnects: 0,
  };
  #client: WinrmClient;
  #resourceUri: string;
  #out!: ReadableStreamDefaultController<Uint8Array>;
  #parser = new PacketParser();
  #encoder = new TextEncoder();
  #creation: Uint8Array[] = [];
  #creationDefrag = new Defragmenter();
  #watch = new Map<string, Defragmenter>();
  #shellId?: string;
  #created?: Promise<void>;
  #outgoing = new Map<string, Outgoing>();
  #pipelines = new Map<string, PipelineState>();
  #poolReceiving = false;
  #poolWaiting = false;
  #finished = false;
  #deleted?: Promise<void>;
  #settle!: (s: ExitStatus) => void;
  #failure?: Error;
  /** Send room at the envelope size known so far: 150 KiB, or the host's once read */
  get #payload(): number {
    return maxSendPayload(this.#client.maxEnvelopeSize);
  }

  #options: PsrpChannelOptions;
  /** the shell's pool id, as message headers carry it (connect mode: every message is rewritten to it) */
  #rpid?: Uint8Array;
  #keep = false;

  constructor(client: WinrmClient, resourceUri: string, signal: AbortSignal, options: PsrpChannelOptions = {}) {
    this.#client = client;
    this.#resourceUri = resourceUri;
    this.#options = options;
    this.exit = new Promise((resolve) => this.#settle = resolve);
    this.stdout = new ReadableStream({ start: (c) => void (this.#out = c) });
    this.stdin = new WritableStream<Uint8Array>({
      write: (chunk) => {
        if (this.#finished) return;
        let packets: Packet[];
        try {
          packets = this.#parser.push(chunk);
        } catch (e) {
          this.#fail(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        for (const p of packets) this.#packet(p);
      },
      close: () => void this.#finish({ kind: "exited", code: 0 }),
      abort: () => void this.#finish({ kind: "exited", code: 0 }),
    });
    const onAbort = () => void this[Symbol.asyncDispose]();
    signal.addEventListener("abort", onAbort, { once: true });
    this.exit.finally(() => signal.removeEventListener("abort", onAbort));
  }

  /** INT stops the running pipelines (the core normally sends the stop itself, as a Signal packet). */
  async signal(name: string): Promise<void> {
    if (name.toUpperCase().replace(/^SIG/, "") !== "INT") return;
    await Promise.all([...this.#pipelines].filter(([, p]) => !p.done).map(([id]) => this.#stop(id)));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#finish({ kind: "exited", code: 0 });
  }

  #emit(p: Packet): void {
    if (this.#finished && p.kind !== "CloseAck") return;
    try {
      this.#out.enqueue(this.#encoder.encode(encodePacket(p)));
    } catch { /* the reader went away */ }
  }

  #packet(p: Packet): void {
    const guid = p.guid.toLowerCase();
    switch (p.kind) {
      case "Data":
        if (!this.#created) return this.#creationData(guid, p.data);
        return this.#data(guid, p.stream === "PromptResponse" ? "pr" : "stdin", p.data);
      case "Command":
        this.#pipelines.set(guid, { started: false, done: false, receiving: false });
        this.#emit({ kind: "CommandAck", guid });
        return;
      case "Signal":
        this.#background(this.#stop(guid).then(() => this.#emit({ kind: "SignalAck", guid })));
        return;
      case "Close":
        if (guid === NIL_GUID) {
          this.#background(
            this.#delete().then(() => {
              this.#emit({ kind: "CloseAck", guid });
              void this.#finish({ kind: "exited", code: 0 });
            }),
          );
        } else this.#background(this.#closePipeline(guid).then(() => this.#emit({ kind: "CloseAck", guid })));
        return;
    }
    this.#fail(
      new TransportError(`powershell remoting: the client sent a server packet (${p.kind})`, {
        layer: "protocol",
      }),
    );
  }

  /** SESSION_CAPABILITY and INIT_RUNSPACEPOOL: gathered for creationXml; Create once the second is whole */
  #creationData(guid: string, data: Uint8Array): void {
    if (guid !== NIL_GUID) {
      return this.#fail(
        new TransportError("powershell remoting: pipeline data before the pool", { layer: "protocol" }),
      );
    }
    this.#creation.push(data);
    let init: { rpid: string; version: string } | undefined;
    for (const f of decodeFragments(data)) {
      const whole = this.#creationDefrag.push(f);
      if (!whole) continue;
      const m = decodeMessage(whole);
      if (m.type === MessageType.SESSION_CAPABILITY) {
        this.#capabilityMessage = whole;
        this.#protocolVersion = /<Version N="protocolversion">([\d.]+)<\/Version>/.exec(m.data)?.[1] ?? "2.3";
      }
      if (m.type === MessageType.INIT_RUNSPACEPOOL) init = { rpid: m.rpid, version: this.#protocolVersion };
    }
    if (!init) return this.#emit({ kind: "DataAck", guid });
    const shellId = init.rpid.toUpperCase();
    this.#created = this.#options.connect
      ? this.#connect(this.#options.connect.shellId, init.version)
      : this.#create(shellId, concat(...this.#creation), init.version);
    this.#background(this.#created.then(() => this.#emit({ kind: "DataAck", guid })));
  }

  #protocolVersion = "2.3";

  async #create(shellId: string, creationXml: Uint8Array, version: string): Promise<void> {
    this.stats.creates++;
    try {
      this.#shellId = await this.#client.request(
        Action.create,
        psrpShellBody(shellId, creationXml, this.#options.name),
        {
          resourceUri: this.#resourceUri,
          options: { protocolversion: { value: version, mustComply: true } },
        },
        parseCreateResponse,
      );
    } catch (e) {
      // Windows answers an unregistered configuration with w:InvalidResourceURI (WSManFault 2150858752)
      if (e instanceof WinrmFaultError && /InvalidResourceURI$/.test(e.fault.subcode)) {
        const name = this.#resourceUri.startsWith(PS_RESOURCE_PREFIX)
          ? this.#resourceUri.slice(PS_RESOURCE_PREFIX.length)
          : this.#resourceUri;
        throw new RemoteError(
          "hostMissing",
          `${this.#client.settings.url.host} has no PowerShell session configuration ${name}`,
          {
            hint:
              "list the host's configurations with Get-PSSessionConfiguration; the default is Microsoft.PowerShell, " +
              "and --configuration-name cmd opens the WinRS command shell",
            cause: e,
          },
        );
      }
      throw e;
    }
    this.#creation = [];
    this.#receivePool();
  }

  /** connect mode: Connect with the core's SESSION_CAPABILITY and a CONNECT_RUNSPACEPOOL, on the shell's pool id */
  async #connect(shellId: string, version: string): Promise<void> {
    this.#rpid = guidToBytes(shellId.toLowerCase());
    const frag = new Fragmenter(maxSendPayload(this.#client.maxEnvelopeSize));
    const capability = this.#capabilityMessage;
    if (!capability) {
      throw new TransportError("powershell remoting: no SESSION_CAPABILITY to connect with", { layer: "protocol" });
    }
    const xml = concat(
      ...frag.fragment(withRpid(capability, this.#rpid)),
      ...frag.fragment(encodeMessage({
        destination: Destination.server,
        type: MessageType.CONNECT_RUNSPACEPOOL,
        rpid: shellId.toLowerCase(),
        pid: NIL_GUID,
        data: "<S />",
      })),
    );
    this.stats.creates++;
    const reply = await connectShell(this.#client, this.#resourceUri, shellId, xml, version);
    this.#shellId = shellId;
    this.#creation = [];
    this.#emit({ kind: "Data", stream: "Default", guid: NIL_GUID, data: reply });
    this.#receivePool();
  }

  #capabilityMessage?: Uint8Array;

  #data(guid: string, stream: "stdin" | "pr", data: Uint8Array): void {
    if (this.#rpid) data = rewriteRpid(data, this.#rpid);
    const pipeline = guid === NIL_GUID ? undefined : this.#pipelines.get(guid);
    if (pipeline && !pipeline.started) {
      // the first data after <Command> is CREATE_PIPELINE: it rides in rsp:Command (MS-PSRP 3.1.5.3.3)
      pipeline.started = true;
      pipeline.commanded = this.#command(guid, data);
      this.#background(pipeline.commanded.then(() => {
        this.#emit({ kind: "DataAck", guid });
        if (this.#options.receivePipelines !== false) this.#receivePipeline(guid, pipeline);
      }));
      return;
    }
    let q = this.#outgoing.get(guid);
    if (!q) this.#outgoing.set(guid, q = { items: [], bytes: 0, owed: [] });
    q.items.push({ stream, data });
    q.bytes += data.length;
    const ack = () => this.#emit({ kind: "DataAck", guid });
    if (q.bytes <= this.#payload) ack();
    else q.owed.push(ack);
    this.#flush(guid, q);
  }

  #flush(guid: string, q: Outgoing): void {
    if (q.flushing) return;
    q.flushing = (async () => {
      await this.#pipelines.get(guid)?.commanded;
      // more than one Send's worth waits: worth one Get of the host's MaxEnvelopeSizekb, as for WinRS stdin
      if (q.bytes > maxSendPayload()) await this.#client.readMaxEnvelopeSize();
      while (q.items.length && !this.#finished) {
        // one Send carries consecutive fragments of one stream, as many as fit the envelope
        const stream = q.items[0].stream;
        const batch: Uint8Array[] = [];
        let size = 0;
        while (
          q.items.length && q.items[0].stream === stream &&
          (batch.length === 0 || size + q.items[0].data.length <= this.#payload)
        ) {
          const item = q.items.shift()!;
          batch.push(item.data);
          size += item.data.length;
        }
        this.stats.sends++;
        await this.#client.request(Action.send, psrpSendBody(commandIdOf(guid), stream, concat(...batch)), {
          resourceUri: this.#resourceUri,
          selectors: { ShellId: this.#shellId! },
        }, () => undefined);
        q.bytes -= size;
        while (q.owed.length && q.bytes <= this.#payload) q.owed.shift()!();
      }
    })().finally(() => {
      q.flushing = undefined;
      if (q.items.length && !this.#finished) this.#flush(guid, q);
    });
    this.#background(q.flushing);
    // data for the pool after it opened (a host response, a key exchange) may be answered: listen for it
    if (guid === NIL_GUID) {
      this.#poolWaiting = true;
      this.#receivePool();
    }
  }

  async #command(guid: string, fragments: Uint8Array): Promise<void> {
    this.stats.commands++;
    await this.#client.request(Action.command, psrpCommandBody(guid.toUpperCase(), fragments), {
      resourceUri: this.#resourceUri,
      selectors: { ShellId: this.#shellId! },
    }, () => undefined);
  }

  async #stop(guid: string): Promise<void> {
    const p = this.#pipelines.get(guid);
    await p?.commanded?.catch(() => {});
    if (!p?.started || p.done || this.#finished) return;
    this.stats.signals++;
    try {
      await this.#client.request(Action.signal, signalBody(guid, PS_SIGNAL_CTRL_C), {
        resourceUri: this.#resourceUri,
        selectors: { ShellId: this.#shellId! },
      }, () => undefined);
    } catch (e) {
      // the pipeline ended meanwhile: the host no longer knows its CommandId
      if (!(e instanceof WinrmFaultError && e.fault.code === FaultCode.invalidSelectors)) throw e;
    }
  }

  async #closePipeline(guid: string): Promise<void> {
    const p = this.#pipelines.get(guid);
    this.#pipelines.delete(guid);
    this.#outgoing.delete(guid);
    if (!p?.started || p.done || this.#finished) return;
    await p.commanded?.catch(() => {});
    this.stats.signals++;
    await this.#client.request(Action.signal, signalBody(guid, SignalCode.terminate), {
      resourceUri: this.#resourceUri,
      selectors: { ShellId: this.#shellId! },
    }, () => undefined).catch(() => {});
  }

  #receivePool(): void {
    if (this.#poolReceiving || this.#finished || !this.#shellId) return;
    this.#poolReceiving = true;
    this.#background((async () => {
      try {
        // until the pool is open, and again while the pool waits for an answer to data it sent
        while (!this.#finished && !this.#detaching && (this.#poolWaiting || !this.#poolOpen)) {
          const before = this.#poolMessages;
          await this.#receive(undefined);
          if (this.#poolMessages > before) this.#poolWaiting = false;
        }
      } finally {
        this.#poolReceiving = false;
      }
    })());
  }

  #poolOpen = false;
  #poolMessages = 0;

  #receivePipeline(guid: string, p: PipelineState): void {
    if (p.receiving) return;
    p.receiving = true;
    this.#background((async () => {
      while (!this.#finished && !this.#detaching && !p.done && this.#pipelines.get(guid) === p) {
        if (await this.#receive(guid)) p.done = true;
      }
    })());
  }

  /**
   * One Receive; the fragments go to the core as Data lines. Returns whether the command is Done.
   *
   * Each Receive is a robust-connection operation (MS-WSMV 3.1.4.1.39): when the connection breaks before its reply
   * is whole, whether the host had not answered yet, had sent the reply or was sending it, the Receive goes again on
   * a new connection as a retransmission of the same operation (3.2.5.3), after a Reconnect (3.1.4.16, which the
   * host ignores for a shell that is still connected and needs after it disconnected the shell itself, 3.1.5.6);
   * the host answers with the replies it kept and the client takes each once, in order (3.2.7). A host that keeps
   * no replies (no wsmv:OperationID in its answers: before Windows 8 and Server 2012, <99>) gets a new Receive
   * instead, which loses nothing only when the host had not answered.
   */
  async #receive(guid: string | undefined): Promise<boolean> {
    const commandId = guid === undefined ? undefined : guid.toUpperCase();
    const operation: RobustOperation = {
      id: `uuid:${crypto.randomUUID().toUpperCase()}`,
      retransmit: false,
      received: 0,
    };
    const replies: PsrpReceiveResult[] = [];
    let lost: TransportError | undefined;
    let timedOut = false;
    for (let attempt = 1;; attempt++) {
      this.stats.receives++;
      let asked: Promise<unknown> | undefined;
      try {
        asked = this.#client.request(
          Action.receive,
          psrpReceiveBody(commandId),
          {
            resourceUri: this.#resourceUri,
            selectors: { ShellId: this.#shellId! },
            options: { WSMAN_CMDSHELL_OPTION_KEEPALIVE: "TRUE" },
            operation,
          },
          (env) => replies.push(parsePsrpReceiveResponse(env, commandId)),
        );
        this.#inflight.add(asked);
        await asked;
        this.#inflight.delete(asked);
        break;
      } catch (e) {
        if (asked) this.#inflight.delete(asked);
        if (this.#detaching) return true;
        if (e instanceof WinrmFaultError && e.fault.code === FaultCode.operationTimeout) {
          timedOut = true;
          break;
        }
        // the connection broke before the reply was whole: the shell and its output are still there, so take it
        // back (Reconnect, same client) on a new connection and ask again; when that fails too, the break is what
        // the user is told
        const broken = e instanceof TransportError && e.layer === "channel";
        if (lost === undefined) {
          if (!broken || this.#finished) throw e;
          lost = e as TransportError;
        } else if (!broken) throw lost;
        if (attempt > RECONNECT_ATTEMPTS || this.#finished) throw lost;
        this.stats.reconnects++;
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** (attempt - 1)));
        await reconnectShell(this.#client, this.#resourceUri, this.#shellId!).catch(() => {});
        // the same operation again if the host keeps replies; otherwise a new one (a retransmission with
        // mustUnderstand="true" is for hosts that understand it, MS-WSMV 1.7)
        if (this.#client.robustHost) operation.retransmit = true;
        else Object.assign(operation, { id: `uuid:${crypto.randomUUID().toUpperCase()}`, messageId: undefined });
      }
    }
    const target = guid ?? NIL_GUID;
    for (const data of replies.flatMap((r) => r.data)) {
      this.#emit({ kind: "Data", stream: "Default", guid: target, data });
      if (target === NIL_GUID) this.#watchPool(data);
    }
    return !timedOut && replies.some((r) => r.done);
  }

  /** notes the pool messages passing by: the pool Receive stops once RUNSPACEPOOL_STATE came */
  #watchPool(data: Uint8Array): void {
    let d = this.#watch.get(NIL_GUID);
    if (!d) this.#watch.set(NIL_GUID, d = new Defragmenter());
    for (const f of decodeFragments(data)) {
      const whole = d.push(f);
      if (!whole) continue;
      this.#poolMessages++;
      const type = new DataView(whole.buffer, whole.byteOffset, whole.byteLength).getUint32(4, true);
      if (type === MessageType.RUNSPACEPOOL_STATE) this.#poolOpen = true;
      if (type === MessageType.APPLICATION_PRIVATE_DATA && this.#options.connect && !this.#poolOpen) {
        // a connect ends with APPLICATION_PRIVATE_DATA; the core's pool waits for Opened, as after an open
        this.#poolOpen = true;
        const blob = encodeMessage({
          destination: Destination.client,
          type: MessageType.RUNSPACEPOOL_STATE,
          rpid: this.#options.connect.shellId.toLowerCase(),
          pid: NIL_GUID,
          data: serialize(psBag({ RunspaceState: RunspacePoolState.Opened })),
        });
        const objectId = SYNTHETIC_OBJECT_ID;
        this.#emit({
          kind: "Data",
          stream: "Default",
          guid: NIL_GUID,
          data: encodeFragment({ objectId, fragmentId: 0n, start: true, end: true, blob }),
        });
      }
    }
  }

  #background(p: Promise<unknown>): void {
    p.catch((e) => this.#fail(e instanceof Error ? e : new Error(String(e))));
  }

  #fail(e: Error): void {
    if (this.#finished) return;
    this.#failure ??= e;
    try {
      this.#out.error(e); // the core's pool fails with this error (plugins/psrp connectOutOfProc)
    } catch { /* already closed */ }
    void this.#finish({ kind: "lost", error: e });
  }

  /**
   * `~&`: Disconnect (MS-PSRP 3.1.5.3.16) and leave the session running on the host; `remote connect` takes it
   * back.
   */
  async detach(): Promise<void> {
    this.#detaching = true;
    if (this.#shellId && !this.#finished) {
      await disconnectShell(this.#client, this.#resourceUri, this.#shellId);
      // a Receive the host answered before the Disconnect carries output that is the client's now: it is passed on
      // before the channel ends (the host keeps only what it had not sent)
      await Promise.allSettled([...this.#inflight]);
    }
    await this.abandon();
  }

  /** `~&` under way: no new Receive, and one the Disconnect cut short is no failure */
  #detaching = false;
  #inflight = new Set<Promise<unknown>>();

  /**
   * Ends the channel and leaves the shell on the host (disconnected sessions: `remote new` creates a pool,
   * disconnects it, and leaves).
   */
  async abandon(): Promise<void> {
    this.#keep = true;
    await this.#finish({ kind: "detached" });
  }

  /** the shell's id, once created or connected */
  get shellId(): string | undefined {
    return this.#shellId;
  }

  #delete(): Promise<void> {
    this.#deleted ??= (async () => {
      const created = this.#created?.catch(() => {});
      await created;
      if (!this.#shellId || this.#keep) return;
      try {
        await this.#client.request(Action.delete, "", {
          resourceUri: this.#resourceUri,
          selectors: { ShellId: this.#shellId },
        }, () => undefined);
      } catch { /* the shell may be gone already; nothing more can be done */ }
    })();
    return this.#deleted;
  }

  async #finish(status: ExitStatus): Promise<void> {
    if (this.#finished) return await this.exit.then(() => {});
    await this.#delete();
    this.#finished = true;
    this.#client.close();
    try {
      this.#out.close();
    } catch { /* errored or closed */ }
    this.#settle(this.#failure ? { kind: "lost", error: this.#failure } : status);
  }
}

/** how often a Receive is asked again after its connection broke (0.25 s, 0.5 s, 1 s apart) */
const RECONNECT_ATTEMPTS = 3;

/** a fragment object id the host's own counter never reaches, for the state message made here */
const SYNTHETIC_OBJECT_ID = 0x7fff_ffff_0000_0001n;

/** a message with its RPID (header bytes 8–24) replaced */
function withRpid(message: Uint8Array, rpid: Uint8Array): Uint8Array {
  const out = message.slice();
  out.set(rpid, 8);
  return out;
}

/** fragments with the RPID of every message they start replaced (a connected pool keeps the host's id) */
function rewriteRpid(fragments: Uint8Array, rpid: Uint8Array): Uint8Array {
  const out = fragments.slice();
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let o = 0; o + 21 <= out.length;) {
    const length = view.getUint32(o + 17);
    if (out[o + 16] & 1 && length >= 24) out.set(rpid, o + 21 + 8);
    o += 21 + length;
  }
  return out;
}

function signalBody(guid: string, code: string): string {
  return `<rsp:Signal CommandId="${guid.toUpperCase()}"><rsp:Code>${code}</rsp:Code></rsp:Signal>`;
}

function commandIdOf(guid: string): string | undefined {
  return guid === NIL_GUID ? undefined : guid.toUpperCase();
}
