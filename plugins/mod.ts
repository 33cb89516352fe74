/**
 * The SDK for writing a `remote` transport plugin: the contract's types, the errors a plugin raises,
 * and `serve()` to run the same plugin module as an out-of-process `remote-transport-<name>`
 * executable, with the conformance suite to test it.
 *
 * The SDK is the bottom layer: nothing here imports the core, a transport or a test. What travels on
 * the wire or in the contract lives here (types, errors and the exit-code table, catalog types,
 * manifest validation, the stdio protocol), and the core imports it through this module only
 * (tests/architecture_test.ts).
 *
 * @example A minimal manifest
 * ```ts
 * import { SDK_VERSION, type TransportManifest } from "./mod.ts";
 * export const manifest: TransportManifest = {
 *   id: "echo",
 *   sdk: SDK_VERSION,
 *   version: "1.0.0",
 *   summary: "Echoes stdin back",
 *   capabilities: ["exec"],
 *   parameters: [],
 * };
 * ```
 *
 * @module
 */
export * from "./types.ts";
export {
  type CredentialValue,
  type DeclaredParameters,
  declareParameters,
  exampleOf,
  expectedOf,
  type ParameterKey,
  parameterKey,
  type ParameterValue,
  type ParameterValues,
} from "./parameters.ts";
export {
  ExitCode,
  type ExitCodeName,
  PluginError,
  RemoteError,
  type RemoteErrorOptions,
  TransportError,
  type TransportLayer,
  UnsupportedError,
  UsageError,
} from "./errors.ts";
export type { TransportEntry, TransportOrigin } from "./transport_catalog.ts";
export { flagOf, kebabCase } from "./parameter_flag.ts";
export {
  describeOrigin,
  mergeCatalog,
  type ReservedParameters,
  validateManifest,
  type ValidateOptions,
  validateTransportModule,
} from "./validate.ts";
export {
  type Call,
  type CallOp,
  DATA_CHUNK,
  encodeMessage,
  exitStatusToWire,
  FrameDecoder,
  FrameType,
  type FrameTypeName,
  HEADER_SIZE,
  MAX_PAYLOAD,
  type Message,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  readMessages,
  type WireExitStatus,
} from "./protocol.ts";
export {
  encodeFrame,
  FRAME_HEADER_SIZE,
  type FrameChecks,
  FrameSplitter,
  type FramingOptions,
  type RawFrame,
} from "./framing.ts";
export { killGroup, settlesWithin } from "./process.ts";
export { sha256, sha256Into, sha256Midstate } from "./sha256.ts";
export { GATHER_LIMIT, GatheringWriter, type GatheringWriterOptions, type GatherSink } from "./gathering_writer.ts";
export { serve, type ServeOptions } from "./serve.ts";
export { parseCopyOperand } from "./copy_operand.ts";
export { shellQuote, type ShellQuoteOptions } from "./shell_quote.ts";
export { hasWildcard, matchWildcard, type WildcardOptions, wildcardToRegExp } from "./wildcard.ts";
export {
  conformance,
  type ConformanceCase,
  conformanceCases,
  type ConformanceCommands,
  type ConformanceOptions,
  type ConformanceReport,
  type MalformedCase,
  POSIX_COMMANDS,
  runConformance,
  WINDOWS_CMD_COMMANDS,
} from "./conformance.ts";
export { cellWidth, EchoFilter, LineEditor, type LineEvent } from "./line_editor.ts";
