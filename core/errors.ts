/**
 * remote's own errors and the one table of its exit codes. They belong to the plugin contract (a plugin
 * raises them, and their codes travel in the protocol's `error` reply), so they are defined in the SDK,
 * plugins/errors.ts; the core's modules import them from here.
 *
 * @example Raising one
 * ```ts
 * import { RemoteError } from "./errors.ts";
 * const err = new RemoteError("notFound", "no session named ITTask", { hint: "list sessions with: remote get" });
 * console.assert(err.exitCode === 233);
 * ```
 *
 * @module
 */
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
} from "../plugins/mod.ts";
