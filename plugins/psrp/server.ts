/**
 * The server role of a runspace pool (MS-PSRP §3.2): what a PowerShell endpoint answers to a client's
 * SESSION_CAPABILITY, INIT_RUNSPACEPOOL, CREATE_PIPELINE, pipeline input and stop. Like the client side it
 * owns no socket, process or timer: messages in through {@linkcode RunspacePoolServer.receive}, messages out
 * through the `send` callback, and each pipeline's work is the caller's `run` function. Test servers use it
 * (the WinRM test server hosts it behind the PowerShell resource URI), so the fragment, message and CLIXML
 * layers are exercised in both directions.
 *
 * Replies have the shapes Windows PowerShell 5.1 sends over WinRM (pypsrp's recorded responses,
 * tests/tests_pypsrp/responses/test_psrp_*.yml): every message starts with a UTF-8 BOM, SESSION_CAPABILITY
 * comes with an all-zero RPID, then APPLICATION_PRIVATE_DATA with a PSPrimitiveDictionary holding
 * PSVersionTable, then RUNSPACEPOOL_STATE Opened.
 *
 * @module
 */
import { deserialize, PSObject, PSPrimitive, type PSValue, serialize } from "./clixml.ts";
import {
  Destination,
  HostMethod,
  type HostMethodName,
  MessageType,
  messageTypeName,
  NIL_GUID,
  PipelineState,
  PS_VERSION,
  RunspacePoolState,
  SERIALIZATION_VERSION,
  VOID_CALL_ID,
} from "./constants.ts";
import { PsrpError } from "./errors.ts";
import type { Message } from "./message.ts";
import { errorRecordObject } from "./records.ts";

/** One command of a pipeline as the client sent it (MS-PSRP §2.2.3.11). */
export interface ServerCommand {
  cmd: string;
  isScript: boolean;
  /** parameters by name, positional values with `name` null */
  args: { name: string | null; value: PSValue }[];
}

/** What a pipeline's `run` function gets: the commands, input, and the streams to write. */
export interface ServerPipeline {
  readonly id: string;
  /** the statements: one list of commands each (the first, and any `ExtraCmds` after it) */
  readonly statements: ServerCommand[][];
  /** whether the client sends input (`NoInput` false) */
  readonly hasInput: boolean;
  /** aborted when the client asks to stop the pipeline (Signal, or a WS-Man crtl_c) */
  readonly signal: AbortSignal;
  /** the input objects, until END_OF_PIPELINE_INPUT */
  input(): AsyncIterable<PSValue>;
  output(value: PSValue): void;
  error(record: PSObject): void;
  warning(message: string): void;
  /** a void host call (`ci` -100), e.g. SetShouldExit for `exit N` */
  hostCall(method: HostMethodName, args: PSValue[]): void;
}

/** How `run` ended: Completed, or Failed with the terminating error. */
export type ServerPipelineOutcome = { state: "Completed" } | { state: "Failed"; error: PSObject };

/** Options of {@linkcode RunspacePoolServer}. */
export interface RunspacePoolServerOptions {
  /** a message for the client, in order */
  send(message: Message): void;
  /** runs a pipeline; a rejection is a Failed pipeline with that message */
  run(pipeline: ServerPipeline): Promise<ServerPipelineOutcome>;
  /** the protocol version answered when the client offers a newer one; default 2.3 (Windows PowerShell 5.1) */
  protocolVersion?: string;
  /** PSVersionTable entries sent in APPLICATION_PRIVATE_DATA */
  psVersionTable?: Record<string, PSValue>;
}

interface PipelineState_ {
  pipeline: ServerPipeline;
  inputs: PSValue[];
  inputEnded: boolean;
  wake?: () => void;
  stop: AbortController;
  done: boolean;
}

const BOM = "\uFEFF";

/**
 * A runspace pool's server side.
 *
 * @example Answering an open
 * ```ts
 * import { RunspacePoolServer } from "./server.ts";
 * const out: number[] = [];
 * const server = new RunspacePoolServer({ send: (m) => out.push(m.type), run: async () => ({ state: "Completed" }) });
 * console.assert(server.state === 0 && out.length === 0);
 * ```
 */
export class RunspacePoolServer {
  readonly #o: RunspacePoolServerOptions;
  readonly #pipelines = new Map<string, PipelineState_>();
  /** RunspacePoolState: BeforeOpen until INIT_RUNSPACEPOOL, then Opened */
  state: number = RunspacePoolState.BeforeOpen;
  rpid: string = NIL_GUID;
  /** the client's INIT_RUNSPACEPOOL (its HostInfo, ApplicationArguments), once received */
  init?: PSObject;

  constructor(options: RunspacePoolServerOptions) {
    this.#o = options;
  }

  /** Ids of the pipelines not yet finished. */
  get running(): string[] {
    return [...this.#pipelines].filter(([, p]) => !p.done).map(([id]) => id);
  }

  /**
   * Takes one message from the client.
   *
   * @throws {PsrpError} for a message a server does not take or cannot read
   */
  receive(message: Message): void {
    if (message.destination !== Destination.server) throw new PsrpError("a client message is addressed to the client");
    const value = message.data === "" ? null : deserialize(message.data);
    if (message.pid !== NIL_GUID && message.type >= 0x00041000) return this.#pipelineMessage(message, value);
    switch (message.type) {
      case MessageType.SESSION_CAPABILITY:
        this.rpid = message.rpid;
        return this.#capability(value);
      case MessageType.INIT_RUNSPACEPOOL:
        this.rpid = message.rpid;
        if (value instanceof PSObject) this.init = value;
        this.#send(MessageType.APPLICATION_PRIVATE_DATA, NIL_GUID, this.#privateData());
        this.state = RunspacePoolState.Opened;
        this.#send(MessageType.RUNSPACEPOOL_STATE, NIL_GUID, bag({ RunspaceState: RunspacePoolState.Opened }));
        return;
      case MessageType.CONNECT_RUNSPACEPOOL:
        // pypsrp's test_psrp_disconnected_commands.yml: a client connecting to a pool that
        // exists gets RUNSPACEPOOL_INIT_DATA, then APPLICATION_PRIVATE_DATA, and no state message
        if (this.state !== RunspacePoolState.Opened) {
          throw new PsrpError("CONNECT_RUNSPACEPOOL for a pool never opened");
        }
        this.#send(MessageType.RUNSPACEPOOL_INIT_DATA, NIL_GUID, bag({ MinRunspaces: 1, MaxRunspaces: 1 }));
        this.#send(MessageType.APPLICATION_PRIVATE_DATA, NIL_GUID, this.#privateData());
        return;
      case MessageType.CREATE_PIPELINE:
        return this.#createPipeline(message.pid, value);
      case MessageType.GET_AVAILABLE_RUNSPACES:
      case MessageType.SET_MAX_RUNSPACES:
      case MessageType.SET_MIN_RUNSPACES:
      case MessageType.RESET_RUNSPACE_STATE: {
        const ci = value instanceof PSObject ? value.get("ci") : undefined;
        const answer = message.type === MessageType.GET_AVAILABLE_RUNSPACES ? 1n : true;
        this.#send(MessageType.RUNSPACE_AVAILABILITY, NIL_GUID, bag({ SetMinMaxRunspacesResponse: answer, ci }));
        return;
      }
      case MessageType.RUNSPACEPOOL_HOST_RESPONSE:
        return;
    }
    throw new PsrpError(`a server does not take ${messageTypeName(message.type) ?? message.type} for the pool`);
  }

  /** Stops a running pipeline (out-of-process `<Signal>`, WS-Man `crtl_c`); it ends Stopped. */
  stopPipeline(pid: string): void {
    const p = this.#pipelines.get(pid.toLowerCase());
    if (p && !p.done) {
      p.stop.abort();
      p.wake?.();
    }
  }

  /** Stops every pipeline and marks the pool Closed (WS-Man Delete, out-of-process `<Close>` of the pool). */
  close(): void {
    for (const id of this.running) this.stopPipeline(id);
    this.state = RunspacePoolState.Closed;
  }

  #capability(value: PSValue): void {
    if (!(value instanceof PSObject)) throw new PsrpError("SESSION_CAPABILITY is not an object");
    const offered = String(primitive(value.get("protocolversion")) ?? "");
    const [major, minor] = offered.split(".").map(Number);
    const mine = this.#o.protocolVersion ?? "2.3";
    const [, myMinor] = mine.split(".").map(Number);
    if (major !== 2) throw new PsrpError(`the client offers protocol ${offered.slice(0, 20)}, not 2.x`);
    // MS-PSRP §3.2.5.3.1 and serverremotesession.cs: an older 2.x is echoed, a newer one gets the server's
    const answer = minor <= myMinor ? offered : mine;
    // Windows PowerShell 5.1 answers with an all-zero RPID (pypsrp's test_psrp_open_runspace.yml)
    this.#o.send({
      destination: Destination.client,
      type: MessageType.SESSION_CAPABILITY,
      rpid: NIL_GUID,
      pid: NIL_GUID,
      data: BOM + serialize(bag({
        protocolversion: new PSPrimitive("Version", answer),
        PSVersion: new PSPrimitive("Version", PS_VERSION),
        SerializationVersion: new PSPrimitive("Version", SERIALIZATION_VERSION),
      })),
    });
  }

  #privateData(): PSObject {
    const table = new Map<PSValue, PSValue>(Object.entries(
      this.#o.psVersionTable ?? {
        PSVersion: new PSPrimitive("Version", "5.1.20348.2340"),
        PSEdition: "Desktop",
        PSRemotingProtocolVersion: new PSPrimitive("Version", this.#o.protocolVersion ?? "2.3"),
        SerializationVersion: new PSPrimitive("Version", SERIALIZATION_VERSION),
      },
    ));
    const dictTypes = [
      "System.Management.Automation.PSPrimitiveDictionary",
      "System.Collections.Hashtable",
      "System.Object",
    ];
    const inner = new PSObject({ typeNames: dictTypes, dict: table });
    const outer = new PSObject({ typeNames: dictTypes, dict: new Map<PSValue, PSValue>([["PSVersionTable", inner]]) });
    return bag({ ApplicationPrivateData: outer });
  }

  #createPipeline(pid: string, value: PSValue): void {
    if (!(value instanceof PSObject)) throw new PsrpError("CREATE_PIPELINE is not an object");
    if (this.state !== RunspacePoolState.Opened) throw new PsrpError("CREATE_PIPELINE before the pool is open");
    const ps = value.get("PowerShell");
    if (!(ps instanceof PSObject)) throw new PsrpError("CREATE_PIPELINE has no PowerShell");
    const extra = listOf(ps.get("ExtraCmds"));
    const statements = extra.length
      ? extra.map((s) => listOf(s instanceof PSObject ? s.get("Cmds") : null).map(command))
      : [listOf(ps.get("Cmds")).map(command)];
    const id = pid.toLowerCase();
    const stop = new AbortController();
    const state: PipelineState_ = {
      inputs: [],
      inputEnded: value.get("NoInput") !== false,
      stop,
      done: false,
      pipeline: undefined as unknown as ServerPipeline,
    };
    const send = (type: number, data: PSValue) => {
      if (!state.done) this.#send(type, pid, data);
    };
    state.pipeline = {
      id: pid,
      statements,
      hasInput: value.get("NoInput") === false,
      signal: stop.signal,
      input: () => this.#input(state),
      output: (v) => send(MessageType.PIPELINE_OUTPUT, v),
      error: (record) => send(MessageType.ERROR_RECORD, record),
      warning: (message) =>
        send(
          MessageType.WARNING_RECORD,
          new PSObject({
            typeNames: [
              "System.Management.Automation.WarningRecord",
              "System.Management.Automation.InformationalRecord",
              "System.Object",
            ],
            toStringText: message,
            extended: { InformationalRecord_Message: message, InformationalRecord_SerializeInvocationInfo: false },
          }),
        ),
      hostCall: (method, args) =>
        send(
          MessageType.PIPELINE_HOST_CALL,
          bag({
            ci: VOID_CALL_ID,
            mi: new PSObject({
              typeNames: [
                "System.Management.Automation.Remoting.RemoteHostMethodId",
                "System.Enum",
                "System.ValueType",
                "System.Object",
              ],
              toStringText: method,
              value: HostMethod[method],
            }),
            mp: new PSObject({ typeNames: ["System.Collections.ArrayList", "System.Object"], items: args }),
          }),
        ),
    };
    this.#pipelines.set(id, state);
    const finish = (s: number, reason?: PSObject) => {
      if (state.done) return;
      this.#send(
        MessageType.PIPELINE_STATE,
        pid,
        bag(reason ? { PipelineState: s, ExceptionAsErrorRecord: reason } : { PipelineState: s }),
      );
      state.done = true;
      state.wake?.();
    };
    Promise.resolve().then(() => this.#o.run(state.pipeline)).then(
      (outcome) => {
        if (stop.signal.aborted) finish(PipelineState.Stopped, stopped());
        else if (outcome.state === "Failed") finish(PipelineState.Failed, outcome.error);
        else finish(PipelineState.Completed);
      },
      (error) => {
        if (stop.signal.aborted) finish(PipelineState.Stopped, stopped());
        else {
          finish(
            PipelineState.Failed,
            errorRecordObject({
              message: error instanceof Error ? error.message : String(error),
              fullyQualifiedErrorId: "RuntimeException",
              exceptionType: "System.Management.Automation.RuntimeException",
            }),
          );
        }
      },
    );
  }

  async *#input(state: PipelineState_): AsyncGenerator<PSValue> {
    for (;;) {
      if (state.inputs.length) {
        yield state.inputs.shift();
        continue;
      }
      if (state.inputEnded || state.stop.signal.aborted) return;
      await new Promise<void>((resolve) => state.wake = resolve);
      state.wake = undefined;
    }
  }

  #pipelineMessage(message: Message, value: PSValue): void {
    const state = this.#pipelines.get(message.pid.toLowerCase());
    switch (message.type) {
      case MessageType.PIPELINE_INPUT:
        if (state && !state.inputEnded) state.inputs.push(value);
        break;
      case MessageType.END_OF_PIPELINE_INPUT:
        if (state) state.inputEnded = true;
        break;
      case MessageType.PIPELINE_HOST_RESPONSE:
        return;
      default:
        throw new PsrpError(`a server does not take ${messageTypeName(message.type) ?? message.type} for a pipeline`);
    }
    state?.wake?.();
  }

  #send(type: number, pid: string, value: PSValue): void {
    this.#o.send({ destination: Destination.client, type, rpid: this.rpid, pid, data: BOM + serialize(value) });
  }
}

function bag(props: Record<string, PSValue>): PSObject {
  return new PSObject({ extended: props });
}

function primitive(v: PSValue): PSValue {
  return v instanceof PSPrimitive ? v.value : v instanceof PSObject && v.value !== undefined ? v.value : v;
}

function listOf(v: PSValue): PSValue[] {
  if (Array.isArray(v)) return v;
  if (v instanceof PSObject && v.items) return v.items;
  return [];
}

function command(c: PSValue): ServerCommand {
  if (!(c instanceof PSObject)) throw new PsrpError("a command of CREATE_PIPELINE is not an object");
  const args = listOf(c.get("Args")).map((a) => {
    const name = a instanceof PSObject ? a.get("N") : null;
    return { name: typeof name === "string" ? name : null, value: a instanceof PSObject ? a.get("V") ?? null : null };
  });
  return { cmd: String(c.get("Cmd") ?? ""), isScript: c.get("IsScript") === true, args };
}

/** The PipelineStoppedException record a stopped pipeline carries (MS-PSRP §2.2.2.21). */
function stopped(): PSObject {
  return errorRecordObject({
    message: "The pipeline has been stopped.",
    fullyQualifiedErrorId: "PipelineStopped",
    category: 14, // OperationStopped
    exceptionType: "System.Management.Automation.PipelineStoppedException",
  });
}
