/**
 * The SDK for writing a `remote` transport plugin: the contract's types, the errors a plugin raises,
 * and `serve()` to run the same plugin module as an out-of-process `remote-transport-<name>`
 * executable.
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
  flagOf,
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
} from "../core/errors.ts";
export { serve, type ServeOptions } from "./serve.ts";
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
