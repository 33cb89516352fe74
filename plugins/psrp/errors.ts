/**
 * The error every PSRP layer raises for a peer that breaks the protocol: a {@linkcode TransportError} at
 * layer "protocol", so the CLI exits 244 with a one-line message.
 *
 * @module
 */
import { type RemoteErrorOptions, TransportError } from "../errors.ts";

/**
 * Corrupt or unexpected PSRP input (a bad packet line, fragment, message or CLIXML), or a limit exceeded.
 *
 * @example
 * ```ts
 * import { PsrpError } from "./errors.ts";
 * const err = new PsrpError("fragment 3 of object 7 arrived before fragment 2");
 * console.assert(err.exitCode === 244);
 * ```
 */
export class PsrpError extends TransportError {
  constructor(message: string, options: RemoteErrorOptions = {}) {
    super(`powershell remoting: ${message}`, { ...options, layer: "protocol" });
    this.name = "PsrpError";
  }
}
