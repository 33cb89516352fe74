/**
 * remote's own errors and the one table of its exit codes. They belong to the contract: a plugin
 * raises them, and their names travel in the protocol's `error` reply. The core re-exports them from
 * core/errors.ts.
 *
 * `enter` and `invoke` pass the remote command's status through, so remote's own failures use codes
 * from 230 up, which ordinary commands rarely use (ssh keeps 255 for itself in the same way). The
 * table is documented in docs/exit-codes.md; a test keeps the two in step.
 *
 * @module
 */

/** Every exit code remote itself can produce, by meaning. */
export const ExitCode = {
  ok: 0,
  /** an unexpected failure: a bug, printed with its stack */
  bug: 1,
  /** the terminal hung up (SIGHUP) while remote asked something, as a shell reports 128 + 1 */
  hangup: 129,
  /** interrupted by Ctrl-C */
  interrupted: 130,
  /** the reader of stdout went away (`remote help enter | head -1`), as a tool killed by SIGPIPE */
  brokenPipe: 141,
  /** stopped by SIGTERM (`kill`), as a shell reports 128 + 15 */
  terminated: 143,
  /** bad arguments: unknown option, no parameter set fits, missing mandatory parameter */
  usage: 230,
  /** a bad user config file or plugin list */
  config: 231,
  /** the session registry cannot be used: corrupt, newer, unsafe (owner, mode, symlink) or unwritable; kept untouched */
  state: 232,
  /** no such session, host entry or plugin */
  notFound: 233,
  /** the transport lacks the capability the verb needs */
  unsupported: 234,
  /** a plugin broke the contract: bad manifest, crash, garbage on its stream */
  plugin: 235,
  /** the host name does not resolve */
  dns: 240,
  /** the port refused the connection */
  refused: 241,
  /** connecting or an operation timed out */
  timeout: 242,
  /** no route to the host or network */
  unreachable: 243,
  /** the server closed the connection during the handshake, or broke the protocol at any time */
  protocol: 244,
  /** every authentication method was rejected */
  auth: 245,
  /** the host key is unknown, changed or revoked, and was refused */
  hostKey: 246,
  /** a key file cannot be read or parsed */
  keyFile: 247,
  /** the passphrase of a key file was wrong */
  passphrase: 248,
  /** SSH_AUTH_SOCK names no usable agent socket */
  agent: 249,
  /** an established connection was lost */
  lost: 250,
  /** the server answered with an error (a SOAP fault, an AWS error) */
  remoteFault: 251,
  /** a needed program is missing on the host (e.g. tmux) */
  hostMissing: 252,
  /** a file cannot be read or written: no such file or directory, permission denied, no space left */
  file: 253,
} as const;

/** A name from {@linkcode ExitCode}. */
export type ExitCodeName = keyof typeof ExitCode;

/** Options every {@linkcode RemoteError} takes. */
export interface RemoteErrorOptions {
  /** one line telling the user what to do */
  hint?: string;
  cause?: unknown;
}

/**
 * A failure the user can act on: printed as `remote: <message>` and `hint: <hint>`, no stack, and
 * the process exits with `exitCode`.
 *
 * @example Raising one
 * ```ts
 * import { RemoteError } from "./errors.ts";
 * const err = new RemoteError("notFound", "no session named ITTask", { hint: "list sessions with: remote get" });
 * console.assert(err.exitCode === 233);
 * ```
 */
export class RemoteError extends Error {
  readonly code: ExitCodeName;
  readonly hint?: string;

  constructor(code: ExitCodeName, message: string, options: RemoteErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "RemoteError";
    this.code = code;
    this.hint = options.hint;
  }

  /** the process exit code for this error */
  get exitCode(): number {
    return ExitCode[this.code];
  }
}

/** Bad arguments (exit 230). */
export class UsageError extends RemoteError {
  constructor(message: string, options: RemoteErrorOptions = {}) {
    super("usage", message, options);
    this.name = "UsageError";
  }
}

/** Which stage of a connection failed, as in ssh2's `level`. */
export type TransportLayer =
  | "config"
  | "dns"
  | "socket"
  | "timeout"
  | "handshake"
  | "protocol"
  | "host-key"
  | "auth"
  | "channel"
  | "server";

/** A failure in a transport, tagged with the stage it happened at. */
export class TransportError extends RemoteError {
  readonly layer: TransportLayer;

  constructor(
    message: string,
    options: RemoteErrorOptions & { layer: TransportLayer; code?: ExitCodeName },
  ) {
    super(options.code ?? defaultCodeForLayer(options.layer), message, options);
    this.name = "TransportError";
    this.layer = options.layer;
  }
}

function defaultCodeForLayer(layer: TransportLayer): ExitCodeName {
  switch (layer) {
    case "config":
      return "usage";
    case "dns":
      return "dns";
    case "socket":
      return "refused";
    case "timeout":
      return "timeout";
    case "handshake":
    case "protocol":
      return "protocol";
    case "host-key":
      return "hostKey";
    case "auth":
      return "auth";
    case "channel":
      return "lost";
    case "server":
      return "remoteFault";
  }
}

/** A plugin that broke the contract (exit 235); the message names the plugin. */
export class PluginError extends RemoteError {
  readonly plugin: string;

  constructor(plugin: string, message: string, options: RemoteErrorOptions = {}) {
    super("plugin", `plugin ${plugin}: ${message}`, options);
    this.name = "PluginError";
    this.plugin = plugin;
  }
}

/** The transport lacks what the verb needs (exit 234). */
export class UnsupportedError extends RemoteError {
  constructor(transport: string, capability: string, options: RemoteErrorOptions = {}) {
    super("unsupported", `transport ${transport} does not support ${capability}`, options);
    this.name = "UnsupportedError";
  }
}
