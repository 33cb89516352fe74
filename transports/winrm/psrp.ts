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
import { type WinrmClient, WinrmFaultError } from "./client.ts";
import {
  againAfterBreak,
  backNotice,
  broken,
  DEFAULT_RETRY_CONNECTION_MS,
  lostNotice,
  newOperation,
  pause,
  retryDelay,
  unreachable,
} from "./_retry.ts";
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
  type XmlElement,
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
  /** requests (Receive, Send, Command, Signal) sent again after a broken connection */
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
  /** the core has the DataAck of CREATE_PIPELINE */
  acked?: boolean;
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
  /**
   * how long to keep reconnecting after the connection breaks, in ms (default
   * {@linkcode DEFAULT_RETRY_CONNECTION_MS}, the 4 minutes PowerShell's own client announces); 0 gives up at once
   */
  maxRetryConnectionMs?: number;
  /** one-line notices for the user: reconnecting, and reconnected */
  notice?: (line: string) => void;
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
    this.#giveUp();
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
        // Ctrl-C while the connection is being taken back ends the wait: the run ends as lost (250); the stop still
        // goes if the host answered meanwhile
        this.#giveUp();
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
        if (!pipeline.acked) this.#emit({ kind: "DataAck", guid });
        pipeline.acked = true;
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
        await this.#robust(Action.send, psrpSendBody(commandIdOf(guid), stream, concat(...batch)), {}, () => {});
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
    await this.#robust(Action.command, psrpCommandBody(guid.toUpperCase(), fragments), {}, () => {});
  }

  async #stop(guid: string): Promise<void> {
    const p = this.#pipelines.get(guid);
    await p?.commanded?.catch(() => {});
    if (!p?.started || p.done || this.#finished) return;
    try {
      await this.#robust(Action.signal, signalBody(guid, PS_SIGNAL_CTRL_C), {}, () => {});
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
    await this.#robust(Action.signal, signalBody(guid, SignalCode.terminate), {}, () => {}).catch(() => {});
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

  /** One Receive; the fragments go to the core as Data lines. Returns whether the command is Done. */
  async #receive(guid: string | undefined): Promise<boolean> {
    const commandId = guid === undefined ? undefined : guid.toUpperCase();
    const replies: PsrpReceiveResult[] = [];
    let asked: Promise<unknown> | undefined;
    try {
      asked = this.#robust(
        Action.receive,
        psrpReceiveBody(commandId),
        { options: { WSMAN_CMDSHELL_OPTION_KEEPALIVE: "TRUE" } },
        (env) => void replies.push(parsePsrpReceiveResponse(env, commandId)),
      );
      this.#inflight.add(asked);
      await asked;
    } catch (e) {
      if (this.#detaching) return true;
      if (!(e instanceof WinrmFaultError && e.fault.code === FaultCode.operationTimeout)) throw e;
      return false;
    } finally {
      if (asked) this.#inflight.delete(asked);
    }
    const target = guid ?? NIL_GUID;
    for (const data of replies.flatMap((r) => r.data)) {
      this.#emit({ kind: "Data", stream: "Default", guid: target, data });
      if (target === NIL_GUID) this.#watchPool(data);
    }
    return replies.some((r) => r.done);
  }

  /**
   * One request on the shell (Receive, Send, Command or Signal) as a robust-connection operation (MS-WSMV
   * 3.1.4.1.39): when the connection breaks before the reply is whole, whether the host had not answered yet, had
   * sent the reply or was sending it, or a new connection cannot be made, the same request goes again as a
   * retransmission of the same operation (OperationID mustUnderstand="true", 3.2.5.3) once the host can be reached
   * again ({@linkcode PsrpChannel.#recover}); the host answers with the replies it kept and the client takes each
   * once, in order (3.2.7), so typed input, a new pipeline or a stop is applied once. A host that keeps no replies
   * (no wsmv:OperationID in its answers: before Windows 8 and Server 2012, <99>) gets a new request instead, which
   * is applied once only when the host had not read the first.
   */
  async #robust(
    action: string,
    body: string,
    o: { options?: Record<string, string> },
    parse: (env: XmlElement) => void,
  ): Promise<void> {
    const operation = newOperation();
    const op = action.slice(action.lastIndexOf("/") + 1);
    const stat = op === "Receive" ? "receives" : op === "Send" ? "sends" : op === "Command" ? "commands" : "signals";
    for (;;) {
      this.stats[stat]++;
      try {
        await this.#client.request(action, body, {
          resourceUri: this.#resourceUri,
          selectors: { ShellId: this.#shellId! },
          options: o.options,
          operation,
        }, parse);
        this.#back();
        return;
      } catch (e) {
        if (e instanceof WinrmFaultError) this.#back(); // a fault is an answer: the host is there
        if (!(broken(e) || unreachable(e)) || this.#finished || this.#detaching) throw e;
        await this.#recover(e as TransportError);
        this.stats.reconnects++;
        againAfterBreak(operation, this.#client.robustHost);
      }
    }
  }

  /**
   * After a break: one notice, then Reconnect (MS-WSMV 3.1.4.16, the same client and p:SessionId; the host ignores
   * it for a shell still connected and needs it after it disconnected the shell itself, 3.1.5.6) on a new connection,
   * again after 0.25 s, 0.5 s, 1 s… (doubling, at most 10 s apart) until it gets through,
   * for at most the retry window counted from the break. Every request that broke meanwhile waits for the same
   * attempts. Ctrl-C, the window's end, or the channel ending throws the break, with the hint that the shell is still
   * on the host.
   */
  #recover(lost: TransportError): Promise<void> {
    if (!this.#outage) {
      this.#outage = { since: Date.now(), lost, attempts: 0, stop: new AbortController() };
      // the core sends a pipeline's stop only once its CREATE_PIPELINE is acked: a Command waiting for the host must
      // not hold back the Ctrl-C that gives up
      for (const [guid, p] of this.#pipelines) {
        if (p.started && !p.acked) this.#emit({ kind: "DataAck", guid });
        p.acked = true;
      }
      if (this.#retryWindow > 0) {
        this.#options.notice?.(lostNotice(this.#host, this.#retryWindow));
      }
    }
    const outage = this.#outage;
    outage.recovering ??= this.#reconnect(outage).finally(() => outage.recovering = undefined);
    return outage.recovering;
  }

  async #reconnect(outage: Outage): Promise<void> {
    for (;;) {
      const left = outage.since + this.#retryWindow - Date.now();
      if (left <= 0 || outage.stop.signal.aborted || this.#finished) throw this.#lostError(outage.lost);
      if (await this.#attempt(retryDelay(outage.attempts++), left, outage.stop.signal)) return;
    }
  }

  /**
   * waits `delay`, then one Reconnect: true once the host answered it; false while it cannot be reached, and when
   * `left` ran out or Ctrl-C came first (the Reconnect under way is then left to fail with the client's close)
   */
  async #attempt(delay: number, left: number, stop: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + left;
    if (!(await pause(Math.min(delay, left), stop)) || this.#finished) return false;
    const answered = reconnectShell(this.#client, this.#resourceUri, this.#shellId!).then(
      () => true,
      // no answer in time counts as out of reach here; a fault is an answer: the retransmission tells what it means
      (e) => !(broken(e) || unreachable(e) || (e instanceof TransportError && e.layer === "timeout")),
    );
    const ended = new AbortController();
    try {
      return await Promise.race([
        answered,
        pause(deadline - Date.now(), AbortSignal.any([stop, ended.signal])).then(() => false),
      ]);
    } finally {
      ended.abort(); // the pause's timer goes with it
    }
  }

  /** the first answer after a break: the notice that the session is back */
  #back(): void {
    if (!this.#outage) return;
    this.#outage = undefined;
    if (this.#retryWindow > 0) this.#options.notice?.(backNotice(this.#host));
  }

  /** Ctrl-C while reconnecting: stop waiting; the requests waiting end with the break */
  #giveUp(): void {
    this.#outage?.stop.abort();
  }

  #lostError(lost: TransportError): TransportError {
    const name = this.#options.name;
    const hint = name
      ? `the session is still on ${this.#host}: remote receive --name ${name} shows what it printed, ` +
        `remote connect --name ${name} takes it back`
      : `the shell is still on ${this.#host} until its idle timeout ends it`;
    this.#keep = true; // the host cannot be reached to delete it, and a named session can be taken back
    return new TransportError(lost.message, { layer: "channel", hint, cause: lost });
  }

  #outage?: Outage;

  get #retryWindow(): number {
    return Math.max(0, this.#options.maxRetryConnectionMs ?? DEFAULT_RETRY_CONNECTION_MS);
  }

  get #host(): string {
    return this.#client.settings.url.host;
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
    this.#outage?.stop.abort();
    await this.#delete();
    this.#finished = true;
    this.#client.close();
    try {
      this.#out.close();
    } catch { /* errored or closed */ }
    this.#settle(this.#failure ? { kind: "lost", error: this.#failure } : status);
  }
}

/** A broken connection being taken back. */
interface Outage {
  /** when the connection broke: the retry window counts from here */
  since: number;
  /** the first break, which the user is told when the host cannot be reached again */
  lost: TransportError;
  /** Reconnects tried */
  attempts: number;
  /** Ctrl-C */
  stop: AbortController;
  /** the attempts under way, shared by every request waiting */
  recovering?: Promise<void>;
}

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
