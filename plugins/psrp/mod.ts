/**
 * PowerShell remoting (MS-PSRP) as a library that owns no socket: bytes or messages in, events out, as
 * ssh2's Protocol. The SSH, WinRM and local transports and plugin authors use it through this module only;
 * it imports nothing from the core, a transport or the tests (docs/psrp.md, docs/architecture.md).
 *
 * Layers, bottom up: the out-of-process packet lines ({@linkcode PacketParser}, {@linkcode encodePacket}),
 * fragments ({@linkcode Fragmenter}, {@linkcode Defragmenter}), messages ({@linkcode encodeMessage},
 * {@linkcode decodeMessage}), CLIXML ({@linkcode serialize}, {@linkcode deserialize}), then the runspace pool
 * and its pipelines ({@linkcode RunspacePool}) over a {@linkcode PsrpWire} ({@linkcode OutOfProcWire} for
 * `pwsh -s` and the SSH `powershell` subsystem), with host calls answered by a {@linkcode PSHost}.
 *
 * @example Running `1+1` in a local `pwsh -s`
 * ```ts ignore
 * import { connectOutOfProc, RunspacePool } from "./mod.ts";
 * const child = new Deno.Command("pwsh", { args: ["-NoLogo", "-s"], stdin: "piped", stdout: "piped" }).spawn();
 * const conn = connectOutOfProc({ readable: child.stdout, writable: child.stdin });
 * const pool = new RunspacePool({ wire: conn.wire });
 * conn.wire.attach(pool);
 * await pool.open();
 * const p = pool.createPipeline({ commands: [{ cmd: "1+1", isScript: true }], output: (v) => console.log(v) });
 * await p.done;
 * await pool.close();
 * child.kill();
 * ```
 *
 * @module
 */
export {
  DEFAULT_FRAGMENT_SIZE,
  DEFAULT_MAX_OBJECT_SIZE,
  Destination,
  type DestinationValue,
  HostMethod,
  type HostMethodName,
  hostMethodName,
  MessageType,
  type MessageTypeName,
  messageTypeName,
  NIL_GUID,
  PipelineResultTypes,
  PipelineState,
  type PipelineStateName,
  PROTOCOL_VERSION,
  PS_VERSION,
  RemoteStreamOptions,
  RunspacePoolState,
  SERIALIZATION_VERSION,
  VOID_CALL_ID,
} from "./constants.ts";
export { PsrpError } from "./errors.ts";
export { guidFromBytes, guidToBytes, isGuid, newGuid } from "./guid.ts";
export {
  base64Decode,
  base64Encode,
  type ControlPacketKind,
  encodePacket,
  type Packet,
  PacketParser,
  type PacketParserOptions,
  type PacketStream,
  parsePacketLine,
} from "./packet.ts";
export {
  decodeFragments,
  Defragmenter,
  type DefragmenterOptions,
  encodeFragment,
  type Fragment,
  FRAGMENT_HEADER_SIZE,
  Fragmenter,
} from "./fragment.ts";
export { decodeMessage, encodeMessage, type Message, MESSAGE_HEADER_SIZE } from "./message.ts";
export {
  type ContainerKind,
  decodeString,
  deserialize,
  deserializeAll,
  type DeserializeOptions,
  encodeString,
  PLAIN_SESSION_KEY,
  type PrimitiveTag,
  psBag,
  psEnum,
  PSObject,
  type PSObjectInit,
  PSPrimitive,
  PSSecureString,
  type PSValue,
  serialize,
  serializeDocument,
  type SerializeOptions,
  type SessionKey,
} from "./clixml.ts";
export {
  type ErrorRecord,
  type ErrorRecordInit,
  errorRecordObject,
  type InformationalRecord,
  type InformationRecord,
  type ProgressRecord,
  readErrorRecord,
  readInformationalRecord,
  readInformationRecord,
  readProgressRecord,
} from "./records.ts";
export {
  type Choice,
  decodeHostCall,
  dispatchHostCall,
  type HostAnswer,
  type HostBufferCell,
  type HostCall,
  type HostCoordinates,
  hostInfoObject,
  type HostInfoOptions,
  type HostKeyInfo,
  type HostRawUI,
  type HostRectangle,
  hostResponseObject,
  type HostSize,
  type PromptField,
  type PSHost,
} from "./host.ts";
export {
  type CommandMetadataQuery,
  type CommandSpec,
  Pipeline,
  type PipelineHandlers,
  type PipelineOptions,
  type PipelineResult,
  type PsrpWire,
  RunspacePool,
  type RunspacePoolOptions,
  type ServerCapability,
} from "./runspace_pool.ts";
export { aesSessionKey, KeyExchange } from "./session_key.ts";
export {
  connectOutOfProc,
  type ConnectOutOfProcOptions,
  type OutOfProcConnection,
  OutOfProcWire,
  type OutOfProcWireOptions,
} from "./out_of_proc.ts";
export { formatError, invokeScript, type InvokeScriptOptions, toJson } from "./invoke.ts";
export {
  RunspacePoolServer,
  type RunspacePoolServerOptions,
  type ServerCommand,
  type ServerPipeline,
  type ServerPipelineOutcome,
} from "./server.ts";
