/**
 * PSRP wire numbers in one place, each table citing where it is defined: MS-PSRP (Microsoft's
 * PowerShell Remoting Protocol specification) sections and PowerShell's own source
 * (src/System.Management.Automation/engine/remoting).
 *
 * @module
 */

/** Message destination (MS-PSRP §2.2.1): little-endian uint32 at offset 0 of a message. */
export const Destination = { client: 1, server: 2 } as const;

/** A {@linkcode Destination} value. */
export type DestinationValue = typeof Destination[keyof typeof Destination];

/** Message types (MS-PSRP §2.2.1; values as in PowerShell's RemotingDataType enum). */
export const MessageType = {
  SESSION_CAPABILITY: 0x00010002,
  INIT_RUNSPACEPOOL: 0x00010004,
  PUBLIC_KEY: 0x00010005,
  ENCRYPTED_SESSION_KEY: 0x00010006,
  PUBLIC_KEY_REQUEST: 0x00010007,
  CONNECT_RUNSPACEPOOL: 0x00010008,
  SET_MAX_RUNSPACES: 0x00021002,
  SET_MIN_RUNSPACES: 0x00021003,
  RUNSPACE_AVAILABILITY: 0x00021004,
  RUNSPACEPOOL_STATE: 0x00021005,
  CREATE_PIPELINE: 0x00021006,
  GET_AVAILABLE_RUNSPACES: 0x00021007,
  USER_EVENT: 0x00021008,
  APPLICATION_PRIVATE_DATA: 0x00021009,
  GET_COMMAND_METADATA: 0x0002100a,
  RUNSPACEPOOL_INIT_DATA: 0x0002100b,
  RESET_RUNSPACE_STATE: 0x0002100c,
  RUNSPACEPOOL_HOST_CALL: 0x00021100,
  RUNSPACEPOOL_HOST_RESPONSE: 0x00021101,
  PIPELINE_INPUT: 0x00041002,
  END_OF_PIPELINE_INPUT: 0x00041003,
  PIPELINE_OUTPUT: 0x00041004,
  ERROR_RECORD: 0x00041005,
  PIPELINE_STATE: 0x00041006,
  DEBUG_RECORD: 0x00041007,
  VERBOSE_RECORD: 0x00041008,
  WARNING_RECORD: 0x00041009,
  PROGRESS_RECORD: 0x00041010,
  INFORMATION_RECORD: 0x00041011,
  PIPELINE_HOST_CALL: 0x00041100,
  PIPELINE_HOST_RESPONSE: 0x00041101,
} as const;

/** A {@linkcode MessageType} name. */
export type MessageTypeName = keyof typeof MessageType;

const messageTypeNames = new Map<number, MessageTypeName>(
  Object.entries(MessageType).map(([k, v]) => [v, k as MessageTypeName]),
);

/**
 * The name of a message type number, or `undefined` for one PSRP does not define.
 *
 * @example Naming a type
 * ```ts
 * import { messageTypeName } from "./constants.ts";
 * console.assert(messageTypeName(0x00041004) === "PIPELINE_OUTPUT");
 * ```
 */
export function messageTypeName(value: number): MessageTypeName | undefined {
  return messageTypeNames.get(value);
}

/**
 * RunspacePoolState as PowerShell sends it (the .NET enum; MS-PSRP §2.2.3.4 numbers 6 and up differently,
 * real servers follow .NET).
 */
export const RunspacePoolState = {
  BeforeOpen: 0,
  Opening: 1,
  Opened: 2,
  Closed: 3,
  Closing: 4,
  Broken: 5,
  Disconnecting: 6,
  Disconnected: 7,
  Connecting: 8,
} as const;

/** PSInvocationState (MS-PSRP §2.2.3.5). */
export const PipelineState = {
  NotStarted: 0,
  Running: 1,
  Stopping: 2,
  Stopped: 3,
  Completed: 4,
  Failed: 5,
  Disconnected: 6,
} as const;

/** A {@linkcode PipelineState} name. */
export type PipelineStateName = keyof typeof PipelineState;

/** PipelineResultTypes (MS-PSRP §2.2.3.31), used by a command's Merge* settings. */
export const PipelineResultTypes = {
  None: 0,
  Output: 1,
  Error: 2,
  Warning: 3,
  Verbose: 4,
  Debug: 5,
  Information: 6,
  All: 7,
  Null: 8,
} as const;

/** RemoteStreamOptions flags (MS-PSRP §2.2.3.12). */
export const RemoteStreamOptions = {
  None: 0,
  AddInvocationInfoToErrorRecord: 1,
  AddInvocationInfoToWarningRecord: 2,
  AddInvocationInfoToDebugRecord: 4,
  AddInvocationInfoToVerboseRecord: 8,
  AddInvocationInfo: 15,
} as const;

/**
 * RemoteHostMethodId (MS-PSRP §2.2.3.17; PowerShell RemoteHostMethodInfo.cs). Void methods are sent with
 * call id -100 and get no response.
 */
export const HostMethod = {
  GetName: 1,
  GetVersion: 2,
  GetInstanceId: 3,
  GetCurrentCulture: 4,
  GetCurrentUICulture: 5,
  SetShouldExit: 6,
  EnterNestedPrompt: 7,
  ExitNestedPrompt: 8,
  NotifyBeginApplication: 9,
  NotifyEndApplication: 10,
  ReadLine: 11,
  ReadLineAsSecureString: 12,
  Write1: 13,
  Write2: 14,
  WriteLine1: 15,
  WriteLine2: 16,
  WriteLine3: 17,
  WriteErrorLine: 18,
  WriteDebugLine: 19,
  WriteProgress: 20,
  WriteVerboseLine: 21,
  WriteWarningLine: 22,
  Prompt: 23,
  PromptForCredential1: 24,
  PromptForCredential2: 25,
  PromptForChoice: 26,
  GetForegroundColor: 27,
  SetForegroundColor: 28,
  GetBackgroundColor: 29,
  SetBackgroundColor: 30,
  GetCursorPosition: 31,
  SetCursorPosition: 32,
  GetWindowPosition: 33,
  SetWindowPosition: 34,
  GetCursorSize: 35,
  SetCursorSize: 36,
  GetBufferSize: 37,
  SetBufferSize: 38,
  GetWindowSize: 39,
  SetWindowSize: 40,
  GetWindowTitle: 41,
  SetWindowTitle: 42,
  GetMaxWindowSize: 43,
  GetMaxPhysicalWindowSize: 44,
  GetKeyAvailable: 45,
  ReadKey: 46,
  FlushInputBuffer: 47,
  SetBufferContents1: 48,
  SetBufferContents2: 49,
  GetBufferContents: 50,
  ScrollBufferContents: 51,
  PushRunspace: 52,
  PopRunspace: 53,
  GetIsRunspacePushed: 54,
  GetRunspace: 55,
  PromptForChoiceMultipleSelection: 56,
} as const;

/** A {@linkcode HostMethod} name. */
export type HostMethodName = keyof typeof HostMethod;

const hostMethodNames = new Map<number, HostMethodName>(
  Object.entries(HostMethod).map(([k, v]) => [v, k as HostMethodName]),
);

/**
 * The name of a host method id, or `undefined`.
 *
 * @example
 * ```ts
 * import { hostMethodName } from "./constants.ts";
 * console.assert(hostMethodName(11) === "ReadLine");
 * ```
 */
export function hostMethodName(id: number): HostMethodName | undefined {
  return hostMethodNames.get(id);
}

/** The call id of a void host call, which gets no response (PowerShell DispatchTable.cs). */
export const VOID_CALL_ID = -100n;

/** The pool's own GUID slot in packets and message headers. */
export const NIL_GUID = "00000000-0000-0000-0000-000000000000";

/**
 * Protocol versions (PowerShell EncodeAndDecode.cs): 2.0 Windows 7 RC, 2.1 Windows 7, 2.2 Windows 8
 * (disconnect), 2.3 Windows 10 (information stream), 2.4 PowerShell 7.6 (no session-key exchange; secure
 * strings travel as plain base64 of UTF-16LE).
 */
export const PROTOCOL_VERSION = "2.4";
/** PSVersion sent in SESSION_CAPABILITY; every PowerShell sends 2.0. */
export const PS_VERSION = "2.0";
/** SerializationVersion sent in SESSION_CAPABILITY. */
export const SERIALIZATION_VERSION = "1.1.0.1";

/** Default fragment size including the 21-byte header (PowerShell BaseTransportManager.cs: 32 KiB). */
export const DEFAULT_FRAGMENT_SIZE = 32 * 1024;
/** Largest object PowerShell accepts, which this library also enforces on receive (10 MiB). */
export const DEFAULT_MAX_OBJECT_SIZE = 10 * 1024 * 1024;
