/**
 * The client side of a runspace pool and its pipelines (MS-PSRP §3.1): the state machine from
 * SESSION_CAPABILITY to RUNSPACEPOOL_STATE Opened, pipelines from CREATE_PIPELINE to a final
 * PIPELINE_STATE, their streams, and host calls. It speaks in messages: a {@linkcode PsrpWire} (the
 * out-of-process framing, or WS-Man later) carries them, and whoever reads the peer feeds
 * {@linkcode RunspacePool.receive}. It owns no socket and no timer.
 *
 * @module
 */
import {
  deserialize,
  PLAIN_SESSION_KEY,
  psBag,
  psEnum,
  PSObject,
  PSPrimitive,
  type PSValue,
  serialize,
  type SessionKey,
} from "./clixml.ts";
import {
  Destination,
  MessageType,
  messageTypeName,
  NIL_GUID,
  PipelineResultTypes,
  PipelineState,
  PROTOCOL_VERSION,
  PS_VERSION,
  RemoteStreamOptions,
  RunspacePoolState,
  SERIALIZATION_VERSION,
} from "./constants.ts";
import { PsrpError } from "./errors.ts";
import { TransportError } from "../errors.ts";
import { newGuid } from "./guid.ts";
import { KeyExchange } from "./session_key.ts";
import { decodeHostCall, dispatchHostCall, hostInfoObject, hostResponseObject, type PSHost } from "./host.ts";
import type { Message } from "./message.ts";
import type { PacketStream } from "./packet.ts";
import {
  type ErrorRecord,
  type InformationRecord,
  type ProgressRecord,
  readErrorRecord,
  readInformationalRecord,
  readInformationRecord,
  readProgressRecord,
} from "./records.ts";
import type { DeserializeOptions } from "./clixml.ts";

/**
 * What a runspace pool needs from a transport. The out-of-process framing implements it with packets;
 * WS-Man would with Create/Command/Send/Signal/Delete.
 */
export interface PsrpWire {
  /** sends one message (the wire fragments it) for the pool (`pid` nil) or a pipeline */
  send(message: Message, stream: PacketStream): void;
  /** announces a new pipeline before its CREATE_PIPELINE message (out-of-process: `<Command>`) */
  createPipeline(pid: string): void;
  /** asks the server to stop a pipeline (out-of-process: `<Signal>`) */
  stopPipeline(pid: string): void;
  /** releases a finished pipeline (out-of-process: `<Close>` with its id) */
  closePipeline(pid: string): void;
  /** closes the pool once every pipeline is closed; resolves when the server acknowledged */
  close(): Promise<void>;
  /** resolves once at most `highWaterMark` bytes wait to be sent for `pid`: input's backpressure */
  drained(pid: string, highWaterMark: number): Promise<void>;
  /** runs `fn`, whose sends may travel together (out-of-process: in one `<Data>` line, as PowerShell does) */
  batch?(fn: () => void): void;
}

/** One command of a pipeline (MS-PSRP §2.2.3.11). */
export interface CommandSpec {
  /** a command name, or script text when `isScript` */
  cmd: string;
  isScript?: boolean;
  useLocalScope?: boolean;
  /** parameters by name, or positional values (`name` absent) */
  args?: { name?: string; value: PSValue }[];
  /** merge this command's error stream into its output (MergeMyResult Error → Output, as `2>&1`) */
  mergeErrorToOutput?: boolean;
}

/** Handlers for a pipeline's streams; each optional. */
export interface PipelineHandlers {
  output?(value: PSValue): void;
  error?(record: ErrorRecord): void;
  warning?(message: string): void;
  verbose?(message: string): void;
  debug?(message: string): void;
  information?(record: InformationRecord): void;
  progress?(record: ProgressRecord): void;
  state?(state: number): void;
}

/** Options of {@linkcode RunspacePool.createPipeline}. */
export interface PipelineOptions extends PipelineHandlers {
  /** the commands of the first statement, piped into each other */
  commands: CommandSpec[];
  /** further statements, run after the first in the same pipeline (PowerShell's AddStatement) */
  moreStatements?: CommandSpec[][];
  /** true when the caller will send input with {@linkcode Pipeline.sendInput} */
  input?: boolean;
  addToHistory?: boolean;
  isNested?: boolean;
  /** the pipeline uses its own host info instead of the pool's (default: the pool's) */
  useRunspaceHost?: boolean;
}

/** What {@linkcode RunspacePool.getCommandMetadata} looks for. */
export interface CommandMetadataQuery {
  /** command names, wildcards allowed */
  names: string[];
  /** CommandTypes flags (default All: 383) */
  commandType?: number;
  /** module-qualified namespaces to search */
  namespaces?: string[];
  argumentList?: PSValue[];
}

/** CommandTypes.All: Alias, Function, Filter, Cmdlet, ExternalScript, Application, Script, Configuration. */
const COMMAND_TYPES_ALL = 383;

/** How a pipeline ended. */
export interface PipelineResult {
  /** Stopped (3), Completed (4) or Failed (5) */
  state: number;
  /** the reason it failed or stopped, from PIPELINE_STATE's ExceptionAsErrorRecord */
  reason?: ErrorRecord;
}

/** What the server said about itself in SESSION_CAPABILITY. */
export interface ServerCapability {
  protocolVersion: string;
  psVersion: string;
  serializationVersion: string;
}

/** Options of {@linkcode RunspacePool}. */
export interface RunspacePoolOptions {
  wire: PsrpWire;
  /** the host answering host calls; absent, the server is told there is none */
  host?: PSHost;
  /** opens secure strings below protocol 2.4 (default: 2.4's plain base64) */
  sessionKey?: SessionKey;
  minRunspaces?: number;
  maxRunspaces?: number;
  /** the protocol version offered (default 2.4, PowerShell 7.6's; 2.3 for older behaviour) */
  protocolVersion?: string;
  /** PSPrimitiveDictionary of application arguments ($PSSenderInfo.ApplicationArguments) */
  applicationArguments?: Map<PSValue, PSValue>;
  /** limits for incoming CLIXML */
  limits?: DeserializeOptions;
  rpid?: string;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // a failure nobody awaits is not an unhandled rejection; awaiting still throws
  return { promise, resolve, reject };
}

function versionValue(text: string): PSPrimitive {
  return new PSPrimitive("Version", text);
}

function version(v: PSValue): string {
  return v === null || v === undefined ? "" : String(v);
}

function parseVersion(v: string): [number, number] {
  const [a, b] = v.split(".").map(Number);
  return [a ?? 0, b ?? 0];
}

/**
 * A runspace pool seen from the client.
 *
 * @example Opening over some wire
 * ```ts ignore
 * const pool = new RunspacePool({ wire });
 * await pool.open();
 * const p = pool.createPipeline({ commands: [{ cmd: "1+1", isScript: true }], output: (v) => console.log(v) });
 * await p.done;
 * await pool.close();
 * ```
 */
export class RunspacePool {
  readonly rpid: string;
  /** a {@linkcode RunspacePoolState} value */
  state: number = RunspacePoolState.BeforeOpen;
  /** the server's SESSION_CAPABILITY, once received */
  server?: ServerCapability;
  /** the negotiated protocol version */
  protocolVersion?: string;
  /** the server's APPLICATION_PRIVATE_DATA (holds PSVersionTable) */
  applicationPrivateData?: PSValue;
  /** set when the pool failed; every later call rejects with it */
  failure?: Error;

  readonly #o: RunspacePoolOptions;
  readonly #pipelines = new Map<string, Pipeline>();
  #opened = deferred<void>();
  #failed = deferred<never>();
  #exchange?: Deferred<SessionKey> & { kx: Promise<KeyExchange> };
  #closing = false;

  constructor(options: RunspacePoolOptions) {
    this.#o = options;
    this.rpid = options.rpid ?? newGuid();
  }

  /** The session key used for secure strings. */
  get sessionKey(): SessionKey {
    if (this.#o.sessionKey) return this.#o.sessionKey;
    const [, minor] = parseVersion(this.protocolVersion ?? PROTOCOL_VERSION);
    if (minor >= 4) return PLAIN_SESSION_KEY;
    // below 2.4 the first secure string in either direction starts the key exchange
    return {
      encrypt: async (plain) => await (await this.exchangeSessionKey()).encrypt(plain),
      decrypt: async (cipher) => await (await this.exchangeSessionKey()).decrypt(cipher),
    };
  }

  /**
   * The session key for secure strings: protocol 2.4 needs none; below it the client sends PUBLIC_KEY and the
   * server answers ENCRYPTED_SESSION_KEY (MS-PSRP §3.1.4.3), once per pool.
   *
   * @throws {PsrpError} when the pool fails or the server's key is malformed
   */
  exchangeSessionKey(): Promise<SessionKey> {
    if (this.#o.sessionKey) return Promise.resolve(this.#o.sessionKey);
    const [, minor] = parseVersion(this.protocolVersion ?? PROTOCOL_VERSION);
    if (minor >= 4) return Promise.resolve(PLAIN_SESSION_KEY);
    if (this.failure) return Promise.reject(this.failure);
    if (!this.#exchange) {
      const d = deferred<SessionKey>();
      this.#exchange = { ...d, kx: KeyExchange.create() };
      this.#exchange.kx.then((kx) => {
        if (!this.failure) this.#sendPool(MessageType.PUBLIC_KEY, psBag({ PublicKey: kx.publicKey }));
      }).catch((err) => this.fail(err instanceof Error ? err : new Error(String(err))));
    }
    return this.#exchange.promise;
  }

  #sessionKeyArrived(value: PSValue): void {
    const exchange = this.#exchange;
    if (!exchange) throw new PsrpError("the server sent a session key nobody asked for");
    const blob = value instanceof PSObject ? value.get("EncryptedSessionKey") : undefined;
    if (typeof blob !== "string") throw new PsrpError("ENCRYPTED_SESSION_KEY holds no key");
    exchange.kx.then((kx) => kx.sessionKey(blob)).then(exchange.resolve, (err) => {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    });
  }

  /** The host answering host calls. */
  get host(): PSHost | undefined {
    return this.#o.host;
  }

  /**
   * Sends SESSION_CAPABILITY and INIT_RUNSPACEPOOL (together, as PowerShell does) and resolves once the
   * server reports the pool Opened.
   *
   * @throws {PsrpError} when the server refuses, breaks the pool, or speaks an incompatible version
   */
  open(signal?: AbortSignal): Promise<void> {
    if (this.state !== RunspacePoolState.BeforeOpen) throw new PsrpError("the runspace pool was opened already");
    this.state = RunspacePoolState.Opening;
    const done = this.#abortOn(signal, "opening");
    this.#opened.promise.then(done, done);
    const send = () => {
      this.#sendPool(
        MessageType.SESSION_CAPABILITY,
        psBag({
          protocolversion: versionValue(this.#o.protocolVersion ?? PROTOCOL_VERSION),
          PSVersion: versionValue(PS_VERSION),
          SerializationVersion: versionValue(SERIALIZATION_VERSION),
        }),
      );
      this.#sendPool(
        MessageType.INIT_RUNSPACEPOOL,
        psBag({
          MinRunspaces: this.#o.minRunspaces ?? 1,
          MaxRunspaces: this.#o.maxRunspaces ?? 1,
          PSThreadOptions: psEnum("System.Management.Automation.Runspaces.PSThreadOptions", "Default", 0),
          ApartmentState: psEnum("System.Threading.ApartmentState", "Unknown", 2),
          HostInfo: hostInfoObject(this.#o.host),
          ApplicationArguments: this.#o.applicationArguments ?? null,
        }),
      );
    };
    if (this.#o.wire.batch) this.#o.wire.batch(send);
    else send();
    return this.#opened.promise;
  }

  /**
   * Starts a pipeline: the wire announces it, then CREATE_PIPELINE goes out.
   *
   * @throws {PsrpError} when the pool is not open
   */
  createPipeline(options: PipelineOptions): Pipeline {
    return this.#start(options, MessageType.CREATE_PIPELINE, () => createPipelineObject(this, options));
  }

  /**
   * Asks for the metadata of commands (GET_COMMAND_METADATA, MS-PSRP §2.2.2.14): a pipeline whose first output
   * is an object with the `Count` of commands found, then one object per command (Name, CommandType,
   * Parameters, …). Enter-PSSession uses it to check that `Out-Default` and `Exit-PSSession` exist.
   *
   * @throws {PsrpError} when the pool is not open
   */
  getCommandMetadata(query: CommandMetadataQuery, handlers: PipelineHandlers = {}): Pipeline {
    return this.#start(handlers, MessageType.GET_COMMAND_METADATA, () =>
      psBag({
        Name: new PSObject({ typeNames: ["System.String[]", "System.Array", "System.Object"], items: query.names }),
        CommandType: psEnum("System.Management.Automation.CommandTypes", "All", query.commandType ?? COMMAND_TYPES_ALL),
        Namespace: query.namespaces
          ? new PSObject({ typeNames: ["System.String[]", "System.Array", "System.Object"], items: query.namespaces })
          : null,
        ArgumentList: query.argumentList ?? null,
      }));
  }

  #start(handlers: PipelineHandlers & { input?: boolean }, type: number, body: () => PSValue): Pipeline {
    if (this.failure) throw this.failure;
    if (this.state !== RunspacePoolState.Opened) throw new PsrpError("the runspace pool is not open");
    const pid = newGuid();
    const pipeline = new Pipeline(this, pid, handlers);
    this.#pipelines.set(pid, pipeline);
    this.#o.wire.createPipeline(pid);
    this.sendMessage(type, pid, body(), "Default");
    return pipeline;
  }

  /**
   * Closes the pool: waits for running pipelines to be released, then closes it on the wire.
   */
  async close(signal?: AbortSignal): Promise<void> {
    if (this.state === RunspacePoolState.Closed) return;
    if (this.failure) throw this.failure;
    this.#closing = true;
    const done = this.#abortOn(signal, "closing");
    try {
      const running = [...this.#pipelines.values()];
      for (const p of running) p.stop();
      await Promise.allSettled(running.map((p) => p.done));
      if (this.failure) throw this.failure;
      if (this.state !== RunspacePoolState.Closed) this.state = RunspacePoolState.Closing;
      await Promise.race([this.#o.wire.close(), this.#failed.promise]);
    } finally {
      done();
    }
    this.state = RunspacePoolState.Closed;
    for (const p of this.#pipelines.values()) p._fail(new PsrpError("the runspace pool was closed"));
  }

  /** Fails the pool when `signal` aborts; returns the function that stops watching it. */
  #abortOn(signal: AbortSignal | undefined, what: string): () => void {
    if (!signal) return () => {};
    const abort = () => {
      const reason = signal.reason;
      this.fail(
        reason instanceof Error && reason.name !== "AbortError" && reason.name !== "TimeoutError"
          ? reason
          : new TransportError(`powershell remoting: ${what} the runspace pool was cut short`, {
            layer: reason?.name === "TimeoutError" ? "timeout" : "channel",
            code: reason?.name === "TimeoutError" ? "timeout" : "interrupted",
          }),
      );
    };
    if (signal.aborted) abort();
    else signal.addEventListener("abort", abort, { once: true });
    return () => signal.removeEventListener("abort", abort);
  }

  /** Fails the pool and every pipeline with `err` (the wire calls this on a broken connection). */
  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.state = RunspacePoolState.Broken;
    this.#opened.reject(err);
    this.#failed.reject(err);
    this.#exchange?.reject(err);
    for (const p of this.#pipelines.values()) p._fail(err);
  }

  /**
   * Takes one message from the server.
   *
   * @throws {PsrpError} on a message that breaks the protocol; the pool is failed with it first
   */
  receive(message: Message): void {
    try {
      this.#receive(message);
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  #receive(message: Message): void {
    if (message.destination !== Destination.client) {
      throw new PsrpError("a message from the server is addressed to the server");
    }
    const value = message.data === "" ? null : deserialize(message.data, this.#o.limits);
    if (message.pid !== NIL_GUID && message.type >= 0x00041000) {
      const p = this.#pipelines.get(message.pid);
      if (!p) return; // a late message for a pipeline already released
      p._receive(message.type, value);
      return;
    }
    switch (message.type) {
      case MessageType.SESSION_CAPABILITY:
        return this.#capability(value);
      case MessageType.APPLICATION_PRIVATE_DATA:
        this.applicationPrivateData = value instanceof PSObject ? value.get("ApplicationPrivateData") : value;
        return;
      case MessageType.RUNSPACEPOOL_STATE:
        return this.#poolState(value);
      case MessageType.RUNSPACEPOOL_HOST_CALL:
        return this.#hostCall(value);
      case MessageType.PUBLIC_KEY_REQUEST:
        this.exchangeSessionKey().catch(() => {}); // a failure fails the pool
        return;
      case MessageType.ENCRYPTED_SESSION_KEY:
        return this.#sessionKeyArrived(value);
      case MessageType.USER_EVENT:
      case MessageType.RUNSPACE_AVAILABILITY:
      case MessageType.RUNSPACEPOOL_INIT_DATA:
        return;
    }
    throw new PsrpError(`unexpected ${messageTypeName(message.type)} for the runspace pool`);
  }

  #capability(value: PSValue): void {
    if (!(value instanceof PSObject)) throw new PsrpError("SESSION_CAPABILITY is not an object");
    const server = {
      protocolVersion: version(value.get("protocolversion")),
      psVersion: version(value.get("PSVersion")),
      serializationVersion: version(value.get("SerializationVersion")),
    };
    this.server = server;
    const offered = this.#o.protocolVersion ?? PROTOCOL_VERSION;
    const [sMajor, sMinor] = parseVersion(server.protocolVersion);
    const [oMajor, oMinor] = parseVersion(offered);
    // PowerShell's client accepts its own version or any 2.0–2.3 (clientremotesession.cs): negotiate down
    if (
      !(server.protocolVersion === offered || (sMajor === 2 && sMinor <= 3) || (sMajor === oMajor && sMinor < oMinor))
    ) {
      throw new PsrpError(`the server speaks protocol ${server.protocolVersion.slice(0, 20)}, this client ${offered}`);
    }
    if (parseVersion(server.psVersion)[0] !== 2 || parseVersion(server.serializationVersion)[0] !== 1) {
      throw new PsrpError(
        `the server's PSVersion ${server.psVersion.slice(0, 20)} / serialization ${
          server.serializationVersion.slice(0, 20)
        } is not supported`,
      );
    }
    this.protocolVersion = server.protocolVersion === offered || sMinor < oMinor ? server.protocolVersion : offered;
  }

  #poolState(value: PSValue): void {
    if (!(value instanceof PSObject)) throw new PsrpError("RUNSPACEPOOL_STATE is not an object");
    const state = Number(
      value.get("RunspaceState") instanceof PSObject
        ? (value.get("RunspaceState") as PSObject).value
        : value.get("RunspaceState"),
    );
    this.state = state;
    if (state === RunspacePoolState.Opened) {
      if (!this.server) throw new PsrpError("the pool opened before the server sent SESSION_CAPABILITY");
      this.#opened.resolve();
    } else if (
      state === RunspacePoolState.Broken ||
      (state === RunspacePoolState.Closed && !this.#closing)
    ) {
      const reason = value.get("ExceptionAsErrorRecord");
      const text = reason ? readErrorRecord(reason).message : state === RunspacePoolState.Broken ? "broken" : "closed";
      this.fail(
        new PsrpError(
          `the server ${state === RunspacePoolState.Broken ? "broke" : "closed"} the runspace pool: ${text}`,
        ),
      );
    }
  }

  #hostCall(value: PSValue, pipeline?: Pipeline): void {
    const call = decodeHostCall(value, pipeline?.pid);
    dispatchHostCall(this.#o.host, call, this.sessionKey).then((answer) => {
      if (!answer || this.failure || this.state === RunspacePoolState.Closed) return;
      const type = pipeline ? MessageType.PIPELINE_HOST_RESPONSE : MessageType.RUNSPACEPOOL_HOST_RESPONSE;
      this.sendMessage(type, pipeline?.pid ?? NIL_GUID, hostResponseObject(call, answer), "PromptResponse");
    }).catch((err) => this.fail(err instanceof Error ? err : new Error(String(err))));
  }

  /** @internal a pipeline's host call */
  _pipelineHostCall(pipeline: Pipeline, value: PSValue): void {
    this.#hostCall(value, pipeline);
  }

  /** @internal a finished pipeline */
  _release(pipeline: Pipeline): void {
    this.#pipelines.delete(pipeline.pid);
    if (!this.failure && this.state !== RunspacePoolState.Closed) this.#o.wire.closePipeline(pipeline.pid);
  }

  /** @internal */
  get _wire(): PsrpWire {
    return this.#o.wire;
  }

  /** Sends one message of this pool. */
  sendMessage(type: number, pid: string, data: PSValue | string, stream: PacketStream): void {
    const text = typeof data === "string" ? data : serialize(data);
    this.#o.wire.send({ destination: Destination.server, type, rpid: this.rpid, pid, data: text }, stream);
  }

  #sendPool(type: number, data: PSValue): void {
    this.sendMessage(type, NIL_GUID, data, "Default");
  }
}

/**
 * A running pipeline: its streams arrive at the handlers given to
 * {@linkcode RunspacePool.createPipeline}; `done` settles with its final state.
 */
export class Pipeline {
  readonly pid: string;
  /** a {@linkcode PipelineState} value */
  state: number = PipelineState.NotStarted;
  /** resolves when the pipeline stopped, completed or failed; rejects when the pool failed */
  readonly done: Promise<PipelineResult>;
  readonly #pool: RunspacePool;
  readonly #h: PipelineHandlers;
  readonly #done = deferred<PipelineResult>();
  #inputEnded = false;

  constructor(pool: RunspacePool, pid: string, options: PipelineHandlers & { input?: boolean }) {
    this.#pool = pool;
    this.pid = pid;
    this.#h = options;
    this.done = this.#done.promise;
    this.#inputEnded = !options.input;
  }

  /**
   * Sends one object of input (PIPELINE_INPUT). The promise resolves once less than 1 MiB of input waits for
   * the server's acknowledgements; awaiting it keeps memory bounded when input outruns the server.
   *
   * @throws {PsrpError} after {@linkcode endInput} or when the pipeline took no input
   */
  sendInput(value: PSValue): Promise<void> {
    if (this.#inputEnded) throw new PsrpError("the pipeline takes no more input");
    // pwsh 7.6 drops an input message whose data is a bare <S>; inside an <Obj> the string arrives
    const data = typeof value === "string" ? new PSObject({ value }) : value;
    this.#pool.sendMessage(MessageType.PIPELINE_INPUT, this.pid, data, "Default");
    return this.#pool._wire.drained(this.pid, INPUT_HIGH_WATER_MARK);
  }

  /** Ends the input (END_OF_PIPELINE_INPUT). Safe to call twice. */
  endInput(): void {
    if (this.#inputEnded) return;
    this.#inputEnded = true;
    this.#pool.sendMessage(MessageType.END_OF_PIPELINE_INPUT, this.pid, "", "Default");
  }

  /** Asks the server to stop the pipeline; `done` then settles with Stopped. */
  stop(): void {
    if (this.state >= PipelineState.Stopped) return;
    this.#pool._wire.stopPipeline(this.pid);
  }

  /** @internal */
  _fail(err: unknown): void {
    this.#done.reject(err);
  }

  /** @internal */
  _receive(type: number, value: PSValue): void {
    const h = this.#h;
    switch (type) {
      case MessageType.PIPELINE_OUTPUT:
        return h.output?.(value);
      case MessageType.ERROR_RECORD:
        return h.error?.(readErrorRecord(value));
      case MessageType.WARNING_RECORD:
        return h.warning?.(readInformationalRecord(value).message);
      case MessageType.VERBOSE_RECORD:
        return h.verbose?.(readInformationalRecord(value).message);
      case MessageType.DEBUG_RECORD:
        return h.debug?.(readInformationalRecord(value).message);
      case MessageType.INFORMATION_RECORD:
        return h.information?.(readInformationRecord(value));
      case MessageType.PROGRESS_RECORD:
        return h.progress?.(readProgressRecord(value));
      case MessageType.PIPELINE_HOST_CALL:
        return this.#pool._pipelineHostCall(this, value);
      case MessageType.PIPELINE_STATE: {
        if (!(value instanceof PSObject)) throw new PsrpError("PIPELINE_STATE is not an object");
        const raw = value.get("PipelineState");
        const state = Number(raw instanceof PSObject ? raw.value : raw);
        if (!Number.isInteger(state) || state < 0 || state > 6) throw new PsrpError(`unknown pipeline state ${state}`);
        this.state = state;
        h.state?.(state);
        if (state >= PipelineState.Stopped && state <= PipelineState.Failed) {
          const reason = value.get("ExceptionAsErrorRecord");
          this.#pool._release(this);
          this.#done.resolve({ state, reason: reason ? readErrorRecord(reason) : undefined });
        }
        return;
      }
    }
    throw new PsrpError(`unexpected ${messageTypeName(type)} for a pipeline`);
  }
}

const MERGE = "System.Management.Automation.Runspaces.PipelineResultTypes";
const INPUT_HIGH_WATER_MARK = 1024 * 1024;

function merge(name: keyof typeof PipelineResultTypes): PSObject {
  return psEnum(MERGE, name, PipelineResultTypes[name]);
}

function commandObject(c: CommandSpec, protocol: string): PSObject {
  const [, minor] = parseVersion(protocol);
  const extended: Record<string, PSValue> = {
    Cmd: c.cmd,
    IsScript: c.isScript ?? false,
    UseLocalScope: c.useLocalScope ?? null,
    MergeMyResult: merge(c.mergeErrorToOutput ? "Error" : "None"),
    MergeToResult: merge(c.mergeErrorToOutput ? "Output" : "None"),
    MergePreviousResults: merge("None"),
  };
  if (minor >= 2) {
    extended.MergeError = merge(c.mergeErrorToOutput ? "Output" : "None");
    extended.MergeWarning = merge("None");
    extended.MergeVerbose = merge("None");
    extended.MergeDebug = merge("None");
  }
  if (minor >= 3) extended.MergeInformation = merge("None");
  extended.Args = (c.args ?? []).map((a) => psBag({ N: a.name ?? null, V: a.value }));
  return psBag(extended);
}

function createPipelineObject(pool: RunspacePool, o: PipelineOptions): PSObject {
  const protocol = pool.protocolVersion ?? PROTOCOL_VERSION;
  const powershell: Record<string, PSValue> = {
    Cmds: o.commands.map((c) => commandObject(c, protocol)),
    IsNested: o.isNested ?? false,
    History: null,
    RedirectShellErrorOutputPipe: true,
  };
  if (o.moreStatements?.length) {
    // not in MS-PSRP: PowerShell batches statements as ExtraCmds holding every statement, the first included,
    // with Cmds repeating the first
    powershell.ExtraCmds = [o.commands, ...o.moreStatements].map((cmds) =>
      psBag({ Cmds: cmds.map((c) => commandObject(c, protocol)) })
    );
  }
  return psBag({
    PowerShell: psBag(powershell),
    NoInput: !o.input,
    ApartmentState: psEnum("System.Threading.ApartmentState", "Unknown", 2),
    RemoteStreamOptions: psEnum(
      "System.Management.Automation.RemoteStreamOptions",
      "AddInvocationInfo",
      RemoteStreamOptions.AddInvocationInfo,
    ),
    AddToHistory: o.addToHistory ?? false,
    HostInfo: hostInfoObject(pool.host, { useRunspaceHost: o.useRunspaceHost ?? true }),
    IsNested: o.isNested ?? false,
  });
}
