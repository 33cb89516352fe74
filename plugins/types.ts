/**
 * The transport contract, version 1: what a transport plugin declares (its manifest) and what it does
 * (open a channel of byte streams, and optionally host persistent sessions).
 *
 * Built-in transports use exactly this contract; so do in-process plugins (`--plugin file.ts`) and
 * out-of-process plugins (`remote-transport-<name>` executables, see `plugins/serve.ts`).
 *
 * @module
 */

/** The contract version this SDK speaks. The core refuses a manifest with any other `sdk`. */
export const SDK_VERSION = 1;

/**
 * What a transport can do. Nothing unadvertised is ever called: the core checks the manifest first and
 * tells the user which transport lacks which capability.
 */
export type Capability =
  /** an interactive shell */
  | "shell"
  /** one command with separate stdout and stderr and an exit code */
  | "exec"
  /** a pseudo-terminal for shell or exec */
  | "pty"
  /** window-size changes after start (needs "pty") */
  | "pty-resize"
  /** signals sent to the remote process (`Channel.signal`) */
  | "signals"
  /** `SessionHost.disconnect` and `SessionHost.attach` of a disconnected session */
  | "disconnect"
  /** `SessionHost.list`: sessions discovered on the host itself */
  | "list"
  /** `SessionHost.receive`: output produced while disconnected, without attaching */
  | "receive"
  /** `SessionHost.remove` */
  | "remove"
  /** `Transport.forward`: local port forwarding */
  | "forward"
  /** `Transport.copy`: file copy between this computer and the target (`remote copy`) */
  | "copy"
  /**
   * PowerShell remoting: the subsystem request `{ kind: "subsystem", name: "powershell" }` opens a channel
   * carrying PSRP's out-of-process framing (`pwsh -sshs`, `pwsh -s`), which the core drives through
   * `plugins/psrp` for `--configuration-name powershell`
   */
  | "psrp"
  /**
   * `Transport.dialer`: byte streams to a unix socket path or a `host:port` as the target sees them, over the
   * transport's authenticated connection (SSH: `direct-streamlocal@openssh.com`, `direct-tcpip`), so another
   * transport can reach something through this one (`--via`)
   */
  | "dial"
  /**
   * `open` (and `forward`, `copy`, `targets`) connect through `OpenContext.dial` when the core hands one
   * (`--via`), instead of opening their own socket
   */
  | "via";

/** Every capability name, for validation of manifests. */
export const CAPABILITIES: readonly Capability[] = [
  "shell",
  "exec",
  "pty",
  "pty-resize",
  "signals",
  "disconnect",
  "list",
  "receive",
  "remove",
  "forward",
  "copy",
  "psrp",
  "dial",
  "via",
];

/**
 * The parameter set of a bare or `scheme://` target (`remote enter db1`, `remote enter ssm://i-0abc`).
 * A transport that claims a scheme lists here the options it accepts with such a target.
 */
export const HOST_SET = "SSHHost";

/** The value type of a parameter; the resolver converts and validates argv text into it. */
export type ParameterType =
  | { kind: "string" }
  | { kind: "int"; min?: number; max?: number }
  /** a flag with no value */
  | { kind: "switch" }
  /** a flag with no value that may be repeated, `-v -v` or `-vv` (ssh's verbosity); bound as how often it was given */
  | { kind: "count" }
  /** a URL with a scheme; bound as a `URL`, in-process and out-of-process alike */
  | { kind: "uri" }
  | { kind: "guid" }
  /** `90s`, `15m`, `15h`, `2d` or a number of seconds; bound as milliseconds */
  | { kind: "duration" }
  /** repeatable `key=value`; bound as `Record<string, string>` */
  | { kind: "map" }
  /** a user name (`DOMAIN\user`, `user@domain`); the secret is prompted for separately, without echo */
  | { kind: "credential" }
  | { kind: "enum"; values: readonly string[] }
  /**
   * repeatable, or comma-separated; bound as `string[]`. `split: false` takes each argument whole, as given
   * (file names, which may hold commas and spaces)
   */
  | { kind: "list"; split?: boolean };

/** Where a parameter stands in one parameter set. */
export interface ParameterInSet {
  /** position among bare arguments (0 first); absent means named only */
  position?: number;
  mandatory?: boolean;
}

/**
 * One parameter, declared as data: PowerShell's name, its CLI spelling, type, and the parameter sets
 * it belongs to.
 */
export interface ParameterSpec {
  /** PowerShell name, e.g. `ComputerName`; the key in bound values */
  name: string;
  /** long CLI spelling without dashes; defaults to the kebab-case of `name` (`computer-name`) */
  flag?: string;
  /** one-letter short flag, as ssh's `-p`, `-l`, `-i`, `-J` */
  short?: string;
  /** other long spellings, e.g. `cn` for `--cn` */
  aliases?: readonly string[];
  type: ParameterType;
  /** the sets it belongs to, by set name; absent means every set of the verb */
  sets?: Readonly<Record<string, ParameterInSet>>;
  /** one line for help */
  help: string;
  /** shown in help; applied by the code that uses the value, not by the resolver */
  default?: string;
  /** never echoed, logged, or stored */
  secret?: boolean;
  /** shown in help beside the flag, e.g. `<user@host:port>` */
  valueName?: string;
}

/** How a `psrp` transport maps `--configuration-name` (see `TransportManifest.powershell`). */
export interface PowerShellConfigurations {
  /** the configuration used when none is given */
  default?: string;
  /** configuration names (compared without case) that are the transport's own shell, not PSRP */
  native?: readonly string[];
}

/** A transport's declaration: pure data, so listing transports loads none of their code. */
export interface TransportManifest {
  /** the ID, which is also its main URL scheme: `ssh`, `winrm`, `ssm` */
  id: string;
  /** the contract version; must equal {@linkcode SDK_VERSION} */
  sdk: number;
  /** the plugin's own version */
  version: string;
  /** one line for `remote plugin list` */
  summary: string;
  /** URL schemes it claims besides its ID, e.g. `["http", "https"]` for winrm */
  schemes?: readonly string[];
  /**
   * What it can do. As declared (JSON from an executable) a name may carry a leading `*`, marking it
   * mandatory, and names this SDK does not know are ignored unless mandatory (git's remote-helper
   * convention); validation returns only known names, without `*`.
   */
  capabilities: readonly Capability[];
  /**
   * Parameters it adds to the connecting verbs (`enter`, `new`, `invoke`, `connect`, `forward`), with
   * the parameter sets they form (e.g. `SSHHost`, `ComputerName`, `Target`). A set a transport names
   * belongs to it: choosing that set chooses the transport.
   */
  parameters: readonly ParameterSpec[];
  /** the set of `parameters` used when only a bare target was given */
  defaultSet?: string;
  /** the port a target without one gets */
  defaultPort?: number;
  /**
   * What the host part of its targets names: `"dns"` (the default) a host name of DNS labels (RFC 1123, 63
   * characters a label) or an IP address; `"name"` the name of an object it reaches, such as a container (a
   * 64-character ID, `web.1`): letters, digits, `_`, `.`, `-`, up to 255 characters, starting with a letter or digit.
   */
  targetHost?: "dns" | "name";
  /**
   * The objects it reaches can be listed as potential targets: `remote get --<option>` (e.g. `--container`) calls
   * the module's `targets()` with the bound values of `parameters` (its own, e.g. `DockerHost`).
   */
  targets?: TargetsListing;
  /** why a capability is absent, shown to a user whose verb needs it */
  unsupportedReasons?: Readonly<Partial<Record<Capability, string>>>;
  /**
   * With the `psrp` capability, how `--configuration-name` chooses PowerShell remoting: `default` is the
   * configuration `enter` and `invoke` open when none is given (WinRM: `Microsoft.PowerShell`, as
   * Enter-PSSession does), and `native` names the configurations that select the transport's own shell
   * instead of PSRP (WinRM: `cmd`, the WinRS command shell). Without it, PSRP only when a name is given.
   */
  powershell?: PowerShellConfigurations;
  /**
   * one-letter options users of this transport's native client type from habit (ssh's -X, -f…) that it does
   * not take: letter → the hint shown instead of "unknown option" alone
   */
  letterHints?: Readonly<Record<string, string>>;
}

/** How `remote get` lists a transport's potential targets (see `TransportManifest.targets`). */
export interface TargetsListing {
  /** the switch of `remote get` that asks for the listing, PascalCase (`Container` is `--container`) */
  option: string;
  /** one line for `remote get --help` */
  help: string;
  /** the transport's parameters the listing reads, which `remote get` then takes too */
  parameters: readonly string[];
}

/** Potential targets, as `remote get --container` prints them: columns in order, one record per row. */
export interface TargetRows {
  columns: readonly string[];
  rows: readonly Readonly<Record<string, string>>[];
}

/** Where to connect, parsed from the target string and the bound parameters. */
export interface Target {
  /** the transport ID chosen */
  transport: string;
  host: string;
  port?: number;
  user?: string;
  /** path of a URL target (`https://h:5986/wsman`), if any */
  path?: string;
  /** the target as the user typed it, for messages */
  display: string;
}

/** Terminal size in character cells. */
export interface WindowSize {
  columns: number;
  rows: number;
}

/** A pseudo-terminal request. */
export interface PtyRequest extends WindowSize {
  /** TERM for the far side */
  term: string;
}

/** What to run once the connection is open. */
export type OpenRequest =
  | { kind: "shell"; pty?: PtyRequest; env?: Readonly<Record<string, string>> }
  | { kind: "exec"; command: string; pty?: PtyRequest; env?: Readonly<Record<string, string>> }
  | { kind: "subsystem"; name: string };

/** Asks the user something on the controlling terminal. */
export interface Prompter {
  /** true when a person can answer (stdin and stderr are a TTY) */
  readonly interactive: boolean;
  /**
   * Asks and returns the answer; `secret` turns echo off. Throws a usage error naming `what` when
   * nobody can answer.
   */
  ask(question: string, options?: { secret?: boolean; what?: string }): Promise<string>;
}

/** Everything a transport is handed to open a connection. */
export interface OpenContext {
  target: Target;
  /**
   * bound values by PowerShell name (`Port`, `KeyFilePath`, `Credential`…), already type-converted (see
   * {@linkcode ParameterType}); never one of remote's own parameters
   */
  parameters: Readonly<Record<string, unknown>>;
  /** cancels connecting and, once open, closes the channel */
  signal: AbortSignal;
  prompt: Prompter;
  /** receives one-line notices for the user (e.g. "warning: permanently added …") */
  notice(line: string): void;
  /**
   * true when the core allows sharing an already authenticated connection to the same target and
   * identity (connection reuse, as OpenSSH's ControlMaster); transports without reuse ignore it
   */
  reuse?: boolean;
  /**
   * present when the user asked to go through another transport (`--via admin@host`), and only for a transport
   * with the `via` capability: opens a byte stream to `to` as the via target sees it, on the via transport's one
   * connection (opened on the first call, closed by the core after this transport's channel). A transport that
   * takes it uses it for every socket it would open itself.
   */
  dial?(to: DialAddress): Promise<DialStream>;
}

/** Where a dialled stream goes, as the dialling transport's target sees it. */
export type DialAddress =
  /** a TCP port: `direct-tcpip` over SSH (RFC 4254 §7.2) */
  | { kind: "tcp"; host: string; port: number }
  /** a unix socket path: `direct-streamlocal@openssh.com` over SSH (OpenSSH's PROTOCOL, §2.4) */
  | { kind: "unix"; path: string };

/**
 * A dialled byte stream. Closing `writable` sends end-of-file while `readable` goes on (a half-close); `readable`
 * ends when the far side closes; disposing closes both ways. An error on either stream means the stream broke.
 */
export interface DialStream extends AsyncDisposable {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
}

/**
 * An open connection of a transport with the `dial` capability (`Transport.dialer`): many streams, one
 * connection. Disposing it closes the connection and every stream on it.
 */
export interface Dialer extends AsyncDisposable {
  /**
   * Opens a stream to `to` as the target sees it.
   *
   * @throws {RemoteError} `refused` (241) when nothing listens at `to`, `unsupported` (234) when the target's
   * server forbids forwarding there, `lost` (250) when the connection is gone
   */
  dial(to: DialAddress): Promise<DialStream>;
}

/** What a transport's background helper (`remote __transport-background <id> ...`) is handed. */
export interface BackgroundContext {
  /** aborts on SIGTERM or SIGINT to the helper */
  signal: AbortSignal;
}

/** How a remote process ended. A remote command's status is data, not an error. */
export type ExitStatus =
  | { kind: "exited"; code: number }
  | { kind: "signaled"; signal: string; code: number; coreDumped?: boolean }
  /** the user detached; the session keeps running on the host */
  | { kind: "detached" }
  /** the link broke; `error` says why */
  | { kind: "lost"; error: Error };

/** An open remote process: byte streams in and out, plus control. */
export interface Channel extends AsyncDisposable {
  stdin: WritableStream<Uint8Array>;
  stdout: ReadableStream<Uint8Array>;
  /** empty, and closed at once, where the transport merges stderr into stdout (a PTY) */
  stderr: ReadableStream<Uint8Array>;
  /** settles once the process has ended and stdout/stderr have been fully delivered */
  exit: Promise<ExitStatus>;
  /** only with the `pty-resize` capability */
  resize?(size: WindowSize): void | Promise<void>;
  /** only with the `signals` capability; `name` without `SIG`: `INT`, `TERM`, `KILL` */
  signal?(name: string): void | Promise<void>;
  /** only with `disconnect`: leave the remote session running and end this channel as `detached` */
  detach?(): void | Promise<void>;
}

/** A session kept on the host, as the host reports it. */
export interface HostSession {
  name: string;
  /** as the host reports it */
  state: "Opened" | "Disconnected";
  /** Busy while some client is attached */
  availability: "Available" | "Busy" | "None";
  instanceId?: string;
  createdAt?: string;
  /** last time a client attached or detached, ISO 8601 */
  lastSeenAt?: string;
  configurationName?: string;
  /** made on the host by someone else, not by remote: listed, but never recorded, attached to or removed */
  foreign?: boolean;
}

/** Options of `remote disconnect`. */
export interface DisconnectOptions {
  /** milliseconds the disconnected session may stay idle before the host ends it */
  idleTimeoutMs?: number;
  /** what happens to output while nobody is attached */
  outputBufferingMode?: "block" | "drop";
}

/** Options of `remote receive`. */
export interface ReceiveOptions {
  /**
   * "text" (default): as the session printed it; "json" (a PowerShell session): one JSON line per output object
   * (`{"stream":"output","data":…}`) and per error or warning (`{"stream":"stderr","data":"…"}`), in order
   */
  format?: "text" | "json";
}

/** Operations on sessions that live on the host: PowerShell's disconnected sessions. */
export interface SessionHost {
  list(ctx: OpenContext): Promise<HostSession[]>;
  /** creates a named session on the host and leaves it running, not attached */
  create(
    ctx: OpenContext,
    name: string,
    options: {
      instanceId: string;
      pty: PtyRequest;
      /**
       * Invoke-Command -InDisconnectedSession: the session runs this command (as the user's shell runs an
       * `exec` command) instead of starting with an interactive shell, and is Disconnected at once, so
       * `receive` returns everything the command prints. When the command ends the session stays, with an
       * interactive shell, until removed, as a PSSession does. A host that cannot do this throws.
       */
      command?: string;
    },
  ): Promise<HostSession>;
  /** attaches to a session; `force` takes over a session another client has */
  attach(ctx: OpenContext, name: string, options: { force: boolean; pty: PtyRequest }): Promise<Channel>;
  disconnect(ctx: OpenContext, name: string, options: DisconnectOptions): Promise<void>;
  /** output since the last detach, without attaching (`options.format` "json": see {@linkcode ReceiveOptions}) */
  receive(ctx: OpenContext, name: string, options?: ReceiveOptions): Promise<Uint8Array>;
  /** ends the session and every process in it */
  remove(ctx: OpenContext, name: string): Promise<void>;
}

/**
 * A port forward (the `forward` capability): `remotePort` reached through `localPort`; with no `remotePort`,
 * the forwardings the transport's own parameters describe (ssh's -L/-R/-D and ssh_config's), held until
 * `ctx.signal` aborts (`remote forward host -L …`, `remote enter host -N`). A transport with no forwarding
 * of its own throws a UsageError when `remotePort` is missing.
 */
export interface ForwardRequest {
  /** local port to listen on; 0 or absent picks a free one */
  localPort?: number;
  remotePort?: number;
  /** forward to this host as seen from the target, instead of the target itself */
  remoteHost?: string;
  /** resolves once listening; reports the bound local port (useful with 0) */
  onListening?(localPort: number): void;
}

/** Progress of the file being copied (the `copy` capability), reported often and once when the file is done. */
export interface CopyProgress {
  /** the source as the user would write it (`host:path` for remote ones) */
  path: string;
  /** bytes of this file in place so far, including a resumed prefix */
  bytes: number;
  size: number;
  /** bytes per second moved by this run for this file */
  rate: number;
  /** seconds left at that rate; undefined before the rate is known */
  etaSeconds: number | undefined;
  /** bytes moved by this run so far, all files */
  totalBytes: number;
  done: boolean;
}

/**
 * A file copy between this computer and `ctx.target` (the `copy` capability), as scp: every source on one
 * side, the destination on the other. Remote paths are as the user wrote them after `host:` (relative ones
 * start at the login directory; globs are the transport's to expand); local ones are local paths.
 */
export interface CopyRequest {
  /** "upload": the sources are local, the destination remote; "download": the reverse */
  direction: "upload" | "download";
  sources: readonly string[];
  destination: string;
  /** copy folders and their contents (scp -r) */
  recursive?: boolean;
  /** keep modes and times (scp -p) */
  preserve?: boolean;
  /** continue a partial destination file that is a prefix of its source; keep partial files on failure */
  resume?: boolean;
  /** how the remote side is shown in messages and progress (the host as the user typed it) */
  remoteName: string;
  progress?(p: CopyProgress): void;
}

/** What a copy did. */
export interface CopyResult {
  files: number;
  /** bytes moved by this run */
  bytes: number;
  /** bytes kept from partial files by `resume` */
  resumedBytes: number;
}

/**
 * What shell completion (`remote completions`) asks a transport for, quickly and without a question to
 * the user: the host names it knows of (ssh_config's `Host` names, say), or the paths under `path` on
 * `ctx.target` when a connection to it is already open (the SSH reuse master's): never a new connection.
 */
export type CompletionRequest =
  | { kind: "hosts"; signal: AbortSignal }
  | { kind: "paths"; ctx: OpenContext; path: string };

/** A transport plugin module: its manifest, `open`, and optional session-host and forwarding parts. */
export interface Transport {
  manifest: TransportManifest;
  /** opens a connection and starts `request` on it */
  open(ctx: OpenContext, request: OpenRequest): Promise<Channel>;
  /** present with any of the `disconnect`, `list`, `receive`, `remove` capabilities */
  sessions?: SessionHost;
  /** present with the `forward` capability; resolves when `ctx.signal` aborts or the link ends */
  forward?(ctx: OpenContext, request: ForwardRequest): Promise<void>;
  /**
   * present with the `copy` capability; rejects with a RemoteError (`file`, 253, for a missing or unwritable
   * file) and stops at once when `ctx.signal` aborts
   */
  copy?(ctx: OpenContext, request: CopyRequest): Promise<CopyResult>;
  /**
   * A long-lived helper process the transport starts for itself (e.g. the SSH connection-reuse master),
   * run by the hidden verb `remote __transport-background <id> ...args` so it works from the compiled
   * binary too; resolves with the helper's exit code. Built-in and compiled-in transports only: protocol
   * 1 carries no background helper for an executable plugin.
   */
  background?(args: readonly string[], ctx: BackgroundContext): Promise<number>;
  /**
   * Present when the manifest declares `targets`: lists the objects the transport reaches (running containers),
   * with `ctx.parameters` holding the listing's parameters. Built-in and compiled-in transports only: protocol 1
   * carries no listing for an executable plugin.
   */
  targets?(ctx: OpenContext): Promise<TargetRows>;
  /**
   * Words for shell completion (see {@linkcode CompletionRequest}): host names, or remote paths (a folder
   * ends with `/`); resolves `[]` when it has nothing cheap to offer. Built-in and compiled-in transports
   * only: protocol 1 carries no completion for an executable plugin.
   */
  complete?(request: CompletionRequest): Promise<string[]>;
  /**
   * present with the `dial` capability: connects and authenticates to `ctx.target` once and returns a
   * {@linkcode Dialer} on that connection, which the core hands another transport as `OpenContext.dial`
   * (`--via`). Built-in and compiled-in transports only: protocol 1 carries no byte streams besides a channel's.
   */
  dialer?(ctx: OpenContext): Promise<Dialer>;
}

/** The signals `Channel.signal` may carry, as RFC 4254 §6.10 lists them (without `SIG`). */
export const SIGNAL_NAMES: ReadonlySet<string> = new Set([
  "ABRT",
  "ALRM",
  "FPE",
  "HUP",
  "ILL",
  "INT",
  "KILL",
  "PIPE",
  "QUIT",
  "SEGV",
  "TERM",
  "USR1",
  "USR2",
]);
