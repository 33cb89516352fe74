/**
 * An authenticated SSH connection: ssh_config resolved, TCP (or a ProxyJump chain) connected, every
 * hop's host key verified, the user authenticated. Channels (exec, shell, subsystem) are opened on it;
 * the persistent-session code reuses it to run tmux commands.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import * as os from "node:os";
import type { Duplex } from "node:stream";
import type { Client, ClientChannel, ConnectConfig, PseudoTtyOptions } from "ssh2";
import {
  type Channel,
  matchWildcard,
  type OpenContext,
  type Prompter,
  type PtyRequest,
  RemoteError,
  TransportError,
  UsageError,
} from "../../plugins/mod.ts";
import { CIPHERS, HOST_KEYS, hostKeyAlgorithmsPreferring, KEX, MACS } from "./algorithms.ts";
import { toChannel } from "./channel.ts";
import { decoupledStream, dialedSocket, dialFailure } from "./hop_stream.ts";
import { verifyHostKey } from "./host_key_policy.ts";
import type { Identity } from "./auth.ts";
import { keyTypeOf } from "./fingerprint.ts";
import { commandLineOptions, compressionWarning } from "./command_line.ts";
import { type AuthTrace, type DebugLog, debugLog, translateSsh2Debug } from "./debug_log.ts";
import { batchWritesPerRead, connectSocket, hostPort, raceAbort } from "./socket.ts";
import { parameters } from "./manifest.ts";
import { resolveSshConfig, type SshHostConfig } from "./ssh_config.ts";

/** Used when neither --connecting-timeout nor ConnectTimeout is set, so a silent server cannot hang us. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/** Keepalive used when ServerAliveInterval is unset, so a dead link ends as `lost` in bounded time. */
export const DEFAULT_ALIVE_INTERVAL_MS = 15_000;

/** Options of a channel opened on an {@linkcode SshConnection}. */
export interface ChannelOptions {
  pty?: PtyRequest;
  /** variables to send (the server keeps only those its AcceptEnv allows) */
  env?: Readonly<Record<string, string>>;
  /** where SendEnv takes values from; default this process's environment (the reuse master passes its client's) */
  localEnv?: Readonly<Record<string, string>>;
}

/** An authenticated connection; dispose to close it (and every hop under it). */
export interface SshConnection extends AsyncDisposable {
  /** the ssh2 client of the final hop */
  readonly client: Client;
  readonly config: SshHostConfig;
  /** `user@host:port` */
  readonly display: string;
  /** resolves with the error once the connection is lost or closed */
  readonly lost: Promise<Error>;
  exec(command: string, options?: ChannelOptions): Promise<Channel>;
  shell(options?: ChannelOptions): Promise<Channel>;
  subsystem(name: string): Promise<Channel>;
  /** runs `command` with no PTY, feeding `stdin`, and collects its output */
  run(
    command: string,
    options?: { stdin?: Uint8Array },
  ): Promise<{ stdout: Uint8Array; stderr: Uint8Array; code: number }>;
}

/** The local user and home; HOME wins, as OpenSSH reads the password database but tests isolate via HOME. */
export function localIdentity(): { user: string; home: string } {
  const info = os.userInfo();
  return { user: info.username, home: Deno.env.get("HOME") || info.homedir };
}

/** -o options that describe the final target only, so jump hosts do not inherit them. */
const TARGET_OPTIONS = new Set(["user", "port", "hostname", "hostkeyalias", "proxyjump", "proxycommand"]);

/** One hop: where to go and as whom, with its resolved config. */
interface Hop {
  host: string;
  port: number;
  user: string;
  config: SshHostConfig;
}

/** Parses a ProxyJump list: `[user@]host[:port]` or `ssh://[user@]host[:port]`, comma-separated. */
export function parseProxyJump(text: string): { host: string; port?: number; user?: string }[] {
  return text.split(",").map((raw) => {
    let s = raw.trim().replace(/^ssh:\/\//, "");
    let user: string | undefined;
    const at = s.lastIndexOf("@");
    if (at >= 0) {
      user = s.slice(0, at);
      s = s.slice(at + 1);
    }
    let host = s;
    let port: number | undefined;
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
    if (m) {
      host = m[1];
      port = m[2] ? Number(m[2]) : undefined;
    }
    if (!host || (port !== undefined && (port < 1 || port > 65535))) {
      throw new UsageError(`malformed jump host '${raw.trim()}'`, { hint: "write -J as user@host:port[,user@host2]" });
    }
    return { host, port, user };
  });
}

/** Where a connection for `ctx` goes, from the target, parameters and ssh_config as they read now. */
async function planRoute(
  ctx: OpenContext,
  debug?: (level: 1 | 2 | 3, line: string) => void,
): Promise<{ config: SshHostConfig; final: Hop; hops: Hop[]; home: string }> {
  const { user: localUser, home } = localIdentity();
  const params = parameters.read(ctx.parameters);
  const options = commandLineOptions(ctx);
  const user = ctx.target.user ?? params.userName;
  const port = ctx.target.port ?? params.port;
  // user@host:port and -p/-l win over -o User=/Port=, which would otherwise come first in ssh_config order
  for (const key of Object.keys(options)) {
    if ((user !== undefined && key.toLowerCase() === "user") || (port !== undefined && key.toLowerCase() === "port")) {
      delete options[key];
    }
  }
  if (user !== undefined) options.User = user;
  if (port !== undefined) options.Port = String(port);
  if (params.proxyJump !== undefined) options.ProxyJump = params.proxyJump;
  const configFile = params.configFile;
  const config = await resolveSshConfig(ctx.target.host, { configFile, options, localUser, home, debug });
  // --send-env adds to ssh_config's SendEnv, as repeated SendEnv lines accumulate
  for (const name of params.sendEnv ?? []) {
    if (!config.sendEnv.includes(name)) config.sendEnv.push(name);
  }
  const final: Hop = { host: config.hostName, port: config.port ?? 22, user: config.user ?? localUser, config };

  const hops: Hop[] = [];
  if (config.proxyJump) {
    for (const j of parseProxyJump(config.proxyJump)) {
      // -o options apply along the whole route (known_hosts files, host key policy), except the ones naming the target
      const hopOptions: Record<string, string> = Object.fromEntries(
        Object.entries(options).filter(([k]) => !TARGET_OPTIONS.has(k.toLowerCase())),
      );
      if (j.user) hopOptions.User = j.user;
      if (j.port) hopOptions.Port = String(j.port);
      // a jump host's own ProxyJump is not followed: the chain given here is the whole route
      hopOptions.ProxyJump = "none";
      debug?.(1, `jump host ${j.host}: reading its configuration`);
      const hc = await resolveSshConfig(j.host, { configFile, options: hopOptions, localUser, home, debug });
      hops.push({ host: hc.hostName, port: hc.port ?? 22, user: hc.user ?? localUser, config: hc });
    }
  }
  hops.push(final);
  return { config, final, hops, home };
}

/**
 * What decides where and as whom a connection for `ctx` logs in, as ssh_config reads now: the connection-reuse
 * master keys held connections on it, so an edited ~/.ssh/config takes effect at once, as with ssh.
 */
export async function routeFingerprint(ctx: OpenContext): Promise<string> {
  const { hops } = await planRoute(ctx);
  return JSON.stringify(hops);
}

/**
 * Connects and authenticates, following ctx.target (which wins), then the bound parameters, then
 * ssh_config.
 *
 * @throws {RemoteError} with the codes of core/errors.ts: dns 240, refused 241, timeout 242,
 * unreachable 243, protocol 244, auth 245, hostKey 246, keyFile 247, passphrase 248, agent 249
 */
export async function connectSsh(ctx: OpenContext): Promise<SshConnection> {
  // the config's lines wait for the config's own LogLevel, as ssh_config's LogLevel DEBUG means the same as -v
  const configLines: [1 | 2 | 3, string][] = [];
  const { config, final, hops, home } = await planRoute(ctx, (level, line) => configLines.push([level, line]));
  const log = debugLog(ctx, config.other?.loglevel?.[0]);
  for (const [level, line] of configLines) log[`debug${level}`](line);
  if (hops.length > 1) {
    log.debug1(`ProxyJump: ${hops.map((h) => `${h.user}@${hostPort(h.host, h.port)}`).join(" -> ")}`);
  }
  const compression = compressionWarning(ctx);
  if (compression) ctx.notice(compression);
  for (const w of config.warnings ?? []) ctx.notice(`warning: ${w}`);
  // --via (OpenContext.dial) is the route to the first hop, as a ProxyCommand would be; it wins, as -J does
  if (config.proxyCommand && !ctx.dial) {
    // the commonest ProxyCommand of all is SSH over Session Manager, which remote speaks itself
    const ssm = /\baws\b.*\bssm\s+start-session\b/.test(config.proxyCommand);
    throw new TransportError("ProxyCommand is not supported by remote's ssh transport", {
      layer: "config",
      hint: ssm
        ? `remote speaks Session Manager itself: remote enter ${final.user}@${ctx.target.host} --via ssm`
        : "use ProxyJump (-J) or --via instead, or ProxyCommand none",
    });
  }

  const params = parameters.read(ctx.parameters);
  const timeoutMs = params.connectingTimeout ?? config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const keyFiles = params.keyFilePath ?? [];
  const forwardAgent = params.forwardAgent ?? config.forwardAgent;
  const clients: Client[] = [];
  const closeAll = () => {
    for (const c of clients.toReversed()) c.end();
  };
  try {
    const dial = ctx.dial;
    let openSock: (() => Promise<Duplex>) | undefined = dial
      ? async () => dialedSocket(await dial({ kind: "tcp", host: hops[0].host, port: hops[0].port }))
      : undefined;
    for (let i = 0; i < hops.length; i++) {
      const hop = hops[i];
      const last = i === hops.length - 1;
      const client = await connectHop(ctx, hop, {
        openSock,
        timeoutMs,
        home,
        keyFiles, // -i serves the jump hosts too, sparing a config entry per hop
        forwardAgent: last && forwardAgent,
        explicitAgentForward: last && params.forwardAgent === true,
        log,
        via: i > 0 ? `${hops[i - 1].user}@${hostPort(hops[i - 1].host, hops[i - 1].port)}` : undefined,
      });
      clients.push(client);
      if (!last) {
        const next = hops[i + 1];
        openSock = () =>
          new Promise<Duplex>((resolve, reject) => {
            client.forwardOut("127.0.0.1", 0, next.host, next.port, (err, stream) => {
              if (err) {
                reject(
                  new TransportError(
                    `jump host ${hostPort(hop.host, hop.port)} cannot reach ${
                      hostPort(next.host, next.port)
                    }: ${err.message}`,
                    {
                      layer: "socket",
                      code: "unreachable",
                      hint: "check the host name, and AllowTcpForwarding on the jump host",
                    },
                  ),
                );
              } else resolve(decoupledStream(stream));
            });
          });
      }
    }
  } catch (err) {
    closeAll();
    throw err;
  }
  return makeConnection(ctx, clients, final);
}

function makeConnection(ctx: OpenContext, clients: Client[], final: Hop): SshConnection {
  const client = clients[clients.length - 1];
  const display = `${final.user}@${hostPort(final.host, final.port)}`;
  let closing = false;
  const lost = new Promise<Error>((resolve) => {
    const onGone = (err?: Error & { level?: string }) => {
      if (closing) return resolve(new TransportError(`connection to ${display} closed`, { layer: "channel" }));
      const why = err?.level === "client-timeout" || /keepalive/i.test(err?.message ?? "")
        ? "the server stopped answering keepalives"
        : err?.message ?? "the server closed the connection";
      resolve(
        new TransportError(`connection to ${display} lost: ${why}`, {
          layer: "channel",
          code: "lost",
          hint: "reconnect; persistent sessions (remote new) survive a lost link",
          cause: err,
        }),
      );
    };
    for (const c of clients) {
      c.on("error", onGone);
      c.once("close", () => onGone());
    }
  });
  let gone: Error | undefined;
  lost.then((e) => gone = e);
  const onAbort = () => void dispose();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  let disposed: Promise<void> | undefined;
  function dispose(): Promise<void> {
    disposed ??= (async () => {
      closing = true;
      ctx.signal.removeEventListener("abort", onAbort);
      for (const c of clients.toReversed()) {
        const closed = new Promise<void>((r) => c.once("close", () => r()));
        c.end();
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([closed, new Promise<void>((r) => timer = setTimeout(r, 2000))]);
        clearTimeout(timer);
      }
    })();
    return disposed;
  }

  const open = (
    how: (cb: (err: Error | undefined, ch: ClientChannel) => void) => void,
    what: string,
    pty: boolean,
  ): Promise<Channel> =>
    new Promise<Channel>((resolve, reject) => {
      how((err, ch) => {
        if (err && gone) return reject(gone);
        if (err && what.startsWith("subsystem ")) {
          const name = what.slice("subsystem ".length);
          reject(
            new RemoteError("hostMissing", `${display} has no ${name} subsystem (the server refused it)`, {
              hint: name === "powershell"
                ? "add to the host's sshd_config: Subsystem powershell /usr/bin/pwsh -sshs -NoLogo"
                : `add a Subsystem ${name} line to the host's sshd_config`,
              cause: err,
            }),
          );
          return;
        }
        if (err) {
          reject(
            new TransportError(`${display} refused to start ${what}: ${err.message}`, {
              layer: "server",
              hint: "check the server's sshd_config and logs",
              cause: err,
            }),
          );
          return;
        }
        resolve(toChannel(ch, { pty, lost }));
      });
    });
  const ptyOptions = (p: PtyRequest): PseudoTtyOptions => ({ rows: p.rows, cols: p.columns, term: p.term });
  const sendEnv = (env?: Readonly<Record<string, string>>, localEnv?: Readonly<Record<string, string>>) => {
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(localEnv ?? Deno.env.toObject())) {
      if (final.config.sendEnv.some((p) => matchWildcard(p, name))) out[name] = value;
    }
    return { ...out, ...(env ?? {}) };
  };

  const connection: SshConnection = {
    client,
    config: final.config,
    display,
    lost,
    exec(command, options = {}) {
      return open(
        (cb) =>
          client.exec(command, {
            pty: options.pty ? ptyOptions(options.pty) : undefined,
            env: sendEnv(options.env, options.localEnv),
          }, cb),
        "the command",
        options.pty !== undefined,
      );
    },
    shell(options = {}) {
      const env = sendEnv(options.env, options.localEnv);
      return open(
        (cb) => client.shell(options.pty ? ptyOptions(options.pty) : false, { env }, cb),
        "a shell",
        options.pty !== undefined,
      );
    },
    subsystem(name) {
      return open((cb) => client.subsys(name, cb), `subsystem ${name}`, false);
    },
    async run(command, options = {}) {
      await using ch = await connection.exec(command);
      const writer = (async () => {
        const w = ch.stdin.getWriter();
        if (options.stdin) await w.write(options.stdin);
        await w.close();
      })();
      const [stdout, stderr] = await Promise.all([collect(ch.stdout), collect(ch.stderr), writer]);
      const status = await ch.exit;
      if (status.kind === "lost") throw status.error;
      const code = status.kind === "exited" || status.kind === "signaled" ? status.code : 0;
      return { stdout, stderr, code };
    },
    [Symbol.asyncDispose]: dispose,
  };
  return connection;
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const c of stream) {
    chunks.push(c);
    size += c.length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

interface HopOptions {
  /** opens the stream to this hop through the previous one; absent for a direct TCP connection */
  openSock?: () => Promise<Duplex>;
  timeoutMs: number;
  home: string;
  keyFiles: string[];
  forwardAgent: boolean;
  explicitAgentForward: boolean;
  log: DebugLog;
  /** the jump host this hop is reached through, for the debug lines */
  via?: string;
}

/** Finds the agent socket: IdentityAgent, else SSH_AUTH_SOCK. */
async function findAgent(config: SshHostConfig): Promise<{ socket?: string; note?: string }> {
  const configured = config.identityAgent;
  if (configured?.toLowerCase() === "none") return {};
  const explicit = configured !== undefined && configured !== "SSH_AUTH_SOCK";
  const socket = explicit ? configured : Deno.env.get("SSH_AUTH_SOCK");
  if (!socket) return {};
  try {
    const info = await Deno.stat(socket);
    if (info.isSocket) return { socket };
  } catch {
    // reported below
  }
  if (explicit) {
    throw new RemoteError("agent", `IdentityAgent ${socket} is not an agent socket`, {
      hint: "start ssh-agent, or fix IdentityAgent in your ssh_config",
    });
  }
  return { note: `SSH_AUTH_SOCK names no agent socket (${socket})` };
}

/**
 * The connect timeout of one hop. It runs while remote waits for the network, stops while a person is asked
 * something (people take their time), and starts again, in full, once they answered: a link that dies after a
 * prompt still ends in bounded time, before keepalives (which start once logged in) can take over.
 */
class ConnectDeadline implements Disposable {
  readonly #timer = new AbortController();
  readonly #ms: number;
  #handle: ReturnType<typeof setTimeout> | undefined;
  #asking = 0;
  /** a prompt was answered: the server has stopped answering since */
  answered = false;
  /** aborts on the timeout or with `outer` (Ctrl-C, SIGTERM) */
  readonly signal: AbortSignal;

  constructor(outer: AbortSignal, ms: number) {
    this.#ms = ms;
    this.signal = AbortSignal.any([outer, this.#timer.signal]);
    this.#start();
  }

  #start() {
    clearTimeout(this.#handle);
    this.#handle = setTimeout(() => this.#timer.abort(new DOMException("connect timeout", "TimeoutError")), this.#ms);
  }

  /** a question is on the terminal */
  pause(): void {
    this.#asking++;
    clearTimeout(this.#handle);
  }

  /** the question was answered (or given up) */
  resume(): void {
    this.answered = true;
    if (--this.#asking === 0 && !this.#timer.signal.aborted) this.#start();
  }

  [Symbol.dispose](): void {
    clearTimeout(this.#handle);
  }
}

/** AddressFamily (ssh -4, -6): 4, 6, or undefined for any. */
function addressFamily(config: SshHostConfig): 4 | 6 | undefined {
  const value = config.other?.addressfamily?.[0]?.toLowerCase();
  return value === "inet" ? 4 : value === "inet6" ? 6 : undefined;
}

/** The error for a connection stopped by `signal`: Ctrl-C (130) or SIGTERM (143), as its reason says. */
function stoppedWhileConnecting(signal: AbortSignal, cause?: unknown): RemoteError {
  const reason = signal.reason;
  if (reason instanceof RemoteError) {
    return new RemoteError(reason.code, `${reason.message} while connecting`, { cause });
  }
  return new RemoteError("interrupted", "interrupted while connecting", { cause });
}

async function connectHop(ctx: OpenContext, hop: Hop, options: HopOptions, preferKeyTypes?: string[]): Promise<Client> {
  const where = hostPort(hop.host, hop.port);
  const display = `${hop.user}@${where}`;
  const log = options.log;
  if (options.via) log.debug1(`Connecting to ${where} through the jump host ${options.via} (direct-tcpip)`);
  using connectDeadline = new ConnectDeadline(ctx.signal, options.timeoutMs);
  const deadline = connectDeadline.signal;
  // Connect before loading ssh2 (~60 ms, with auth.ts): sshd forks and re-executes itself before it answers,
  // which then overlaps the load (see BENCHMARKS.md, cold first byte). The socket is awaited only after the
  // keys are read, so a bad key file is still reported before a connection error.
  const sockPromise: Promise<Duplex> = options.openSock
    ? raceAbort(options.openSock(), deadline)
    : connectSocket(hop.host, hop.port, { deadline, family: addressFamily(hop.config), log });
  sockPromise.catch(() => {});
  const dropSocket = (err: unknown) => {
    sockPromise.then((s) => s.destroy(), () => {});
    throw err;
  };
  const [{ createAuthHandler, loadIdentities }, { Client: SshClient }, { installChaChaPoly }] = await Promise.all([
    import("./auth.ts"),
    import("ssh2"),
    import("./ssh2_chacha_poly.ts"),
  ]).catch(dropSocket);
  installChaChaPoly(); // chacha20-poly1305 packets through WebAssembly, not ssh2's per-packet objects
  const explicitFiles = options.keyFiles.map((path) => ({ path, explicit: true }));
  const configFiles = hop.config.identityFiles.map((path) => ({ path, explicit: false }));
  const wanted = explicitFiles.length && hop.config.defaultIdentityFiles
    ? explicitFiles
    : [...explicitFiles, ...configFiles];
  const identities = await loadIdentities(wanted, options.home).catch(dropSocket);
  // ssh marks the keys the user named (-i, IdentityFile) "explicit" in its -v lines; its default list is not
  if (!hop.config.defaultIdentityFiles || explicitFiles.length) {
    for (const identity of identities) identity.userProvided = true;
  }
  const agentInfo = await findAgent(hop.config).catch(dropSocket);
  if (options.explicitAgentForward && !agentInfo.socket) {
    dropSocket(
      new RemoteError("agent", agentInfo.note ?? "agent forwarding needs an agent, and SSH_AUTH_SOCK is not set", {
        hint: "start ssh-agent and ssh-add your key, or leave out -A",
      }),
    );
  }
  // the connect deadline stops while someone is asked something, and starts over once they answered
  const prompt: Prompter = {
    get interactive() {
      return ctx.prompt.interactive;
    },
    async ask(question, opts) {
      connectDeadline.pause();
      try {
        return await ctx.prompt.ask(question, opts);
      } finally {
        connectDeadline.resume();
      }
    },
  };
  const trace: AuthTrace = {};
  const auth = createAuthHandler({
    log,
    trace,
    username: hop.user,
    display,
    agentSocket: agentInfo.socket,
    agentNote: agentInfo.note,
    identities,
    identitiesOnly: hop.config.identitiesOnly,
    prompt,
  });
  let sock: Duplex;
  try {
    sock = await sockPromise;
  } catch (err) {
    // the deadline also carries Ctrl-C and SIGTERM: report them as such (130, 143), not as a timeout (242)
    if (ctx.signal.aborted) throw stoppedWhileConnecting(ctx.signal, err);
    throw err;
  }
  // after "Connection established.", as ssh orders them
  if (log.level > 0) {
    logIdentityFiles(log, wanted, identities, options.home);
    log.debug2(
      agentInfo.socket
        ? `agent socket ${agentInfo.socket}${
          hop.config.identitiesOnly ? " (IdentitiesOnly: only the files' keys)" : ""
        }`
        : agentInfo.note
        ? `no agent: ${agentInfo.note}`
        : "no agent (SSH_AUTH_SOCK unset or IdentityAgent none)",
    );
  }

  const client = new SshClient();
  let hostKeyError: unknown;
  let retryKeyTypes: string[] | undefined;
  let handshakeSeen = false; // the server's host key arrived
  const ready = new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      const seconds = Math.round(options.timeoutMs / 100) / 10;
      reject(
        ctx.signal.aborted
          ? stoppedWhileConnecting(ctx.signal)
          : connectDeadline.answered
          ? new TransportError(`timed out logging in to ${where}: not logged in ${seconds} s after the answer`, {
            layer: "timeout",
            hint: "the link or the server stopped answering; connect again (--connecting-timeout sets the wait)",
          })
          : new TransportError(
            handshakeSeen
              ? `timed out logging in to ${where}`
              : `timed out waiting for the ssh handshake with ${where}`,
            { layer: "timeout", hint: "is an SSH server listening on that port? raise --connecting-timeout" },
          ),
      );
      client.end();
      sock.destroy();
    };
    deadline.addEventListener("abort", onAbort, { once: true });
    const settle = () => deadline.removeEventListener("abort", onAbort);
    client.once("ready", () => {
      settle();
      if (log.level > 0) {
        const at = options.openSock
          ? "via proxy"
          : `[${(sock as { remoteAddress?: string }).remoteAddress}]:${hop.port}`;
        log.verbose(`Authenticated to ${hop.host} (${at}) using "${trace.method ?? "none"}".`);
      }
      resolve();
    });
    client.once("error", (err: Error & { level?: string }) => {
      settle();
      if (hostKeyError) return reject(hostKeyError);
      const viaError = dialFailure(sock); // --via: the stream under the connection broke, and says why
      if (viaError) return reject(viaError);
      if (retryKeyTypes) return reject(new RetryWithKeyTypes(retryKeyTypes));
      if (err.level === "client-authentication") return reject(auth.failure());
      if (err.level === "client-socket") {
        return reject(
          new TransportError(`connection to ${where} failed: ${err.message}`, { layer: "protocol", cause: err }),
        );
      }
      reject(
        new TransportError(`ssh handshake with ${where} failed: ${err.message}`, {
          layer: "handshake",
          hint: "is this an SSH server? -v (or -vvv) shows the exchange",
          cause: err,
        }),
      );
    });
    client.once("close", () => {
      settle();
      reject(
        hostKeyError ?? new TransportError(`${where} closed the connection during the ssh handshake`, {
          layer: "handshake",
          hint: "is this an SSH server, and does it allow you (MaxStartups, AllowUsers, tcp wrappers)?",
        }),
      );
    });
  });
  ready.catch(() => {});

  const alive = hop.config.serverAliveIntervalMs ?? DEFAULT_ALIVE_INTERVAL_MS;
  /** the host key verified at the first key exchange; a re-key must show the same */
  let trustedKey: Uint8Array | undefined;
  const connectConfig: ConnectConfig = {
    sock: sock as ConnectConfig["sock"],
    username: hop.user,
    readyTimeout: 0,
    keepaliveInterval: alive,
    keepaliveCountMax: hop.config.serverAliveCountMax,
    algorithms: {
      kex: [...KEX] as NonNullable<ConnectConfig["algorithms"]>["kex"],
      cipher: [...CIPHERS] as NonNullable<ConnectConfig["algorithms"]>["cipher"],
      hmac: [...MACS] as NonNullable<ConnectConfig["algorithms"]>["hmac"],
      serverHostKey: (preferKeyTypes ? hostKeyAlgorithmsPreferring(preferKeyTypes) : [...HOST_KEYS]) as NonNullable<
        ConnectConfig["algorithms"]
      >["serverHostKey"],
      // no zlib: ssh2 compresses through a Node.js zlib binding Deno does not provide (see command_line.ts)
      compress: ["none"],
    },
    hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
      handshakeSeen = true;
      if (trustedKey) {
        // A re-key: the server must show the key trusted at the start (as OpenSSH's client requires), and the answer
        // is given at once. ssh2 1.17.0, answered later, takes the server's NEWKEYS first and then lets channel
        // writes through before its own NEWKEYS with its packet writer still set for queueing: their payload lands
        // on the packet's header (an upload across a re-key broke the connection).
        verify(sameBytes(trustedKey, key));
        return;
      }
      verifyHostKey({
        host: hop.host,
        port: hop.port,
        // through a jump host there is no address of our own to name, as with ssh's proxy connections
        address: options.openSock ? undefined : (sock as { remoteAddress?: string }).remoteAddress,
        alias: hop.config.hostKeyAlias,
        key: new Uint8Array(key),
        strict: hop.config.strictHostKeyChecking,
        userKnownHostsFiles: hop.config.userKnownHostsFiles,
        globalKnownHostsFiles: hop.config.globalKnownHostsFiles,
        hashKnownHosts: hop.config.hashKnownHosts,
        log,
        prompt,
        notice: ctx.notice,
        home: options.home,
      }, preferKeyTypes !== undefined).then((verdict) => {
        if (verdict.kind === "retry") retryKeyTypes = verdict.keyTypes;
        if (verdict.kind === "trusted") trustedKey = new Uint8Array(key);
        verify(verdict.kind === "trusted");
      }, (err) => {
        hostKeyError = err;
        verify(false);
      });
    },
    authHandler: auth.handler,
  };
  if (options.forwardAgent && auth.agent) {
    connectConfig.agent = auth.agent;
    connectConfig.agentForward = true;
  }
  if (log.level > 0) {
    log.debug1(`Authenticating to ${where} as '${hop.user}'`);
    connectConfig.debug = (line: string) => translateSsh2Debug(log, line, trace);
  }
  if (Deno.env.get("REMOTE_DEBUG") === "ssh") connectConfig.debug = (line: string) => console.error(line);
  client.connect(connectConfig);
  try {
    await raceAbort(ready, ctx.signal);
  } catch (err) {
    client.end();
    sock.destroy();
    if (err instanceof RetryWithKeyTypes) {
      log.debug1(`known_hosts holds ${err.keyTypes.join(", ")} keys for ${where}: connecting again preferring them`);
      return await connectHop(ctx, hop, options, err.keyTypes);
    }
    if (ctx.signal.aborted) throw stoppedWhileConnecting(ctx.signal, err);
    throw err;
  }
  // ssh2's 'data' listener is in place once it is ready
  batchWritesPerRead(sock as unknown as Parameters<typeof batchWritesPerRead>[0]);
  return client;
}

/** ssh's numbers for key types in its `identity file` lines (sshkey.h `enum sshkey_types`). */
const SSH_KEY_TYPE_NUMBERS: Readonly<Record<string, number>> = {
  "ssh-rsa": 0,
  "ssh-dss": 1,
  "ecdsa-sha2-nistp256": 2,
  "ecdsa-sha2-nistp384": 2,
  "ecdsa-sha2-nistp521": 2,
  "ssh-ed25519": 3,
  "sk-ecdsa-sha2-nistp256@openssh.com": 10,
  "sk-ssh-ed25519@openssh.com": 12,
};

/** ssh's `identity file <path> type <n>` lines: -1 for a file that is missing, or encrypted with no `.pub`. */
function logIdentityFiles(
  log: DebugLog,
  wanted: { path: string; explicit: boolean }[],
  loaded: Identity[],
  home: string,
): void {
  for (const { path } of wanted) {
    const full = path === "~" || path.startsWith("~/") ? home + path.slice(1) : path;
    const identity = loaded.find((i) => i.path === full);
    const type = identity?.publicBlob ? SSH_KEY_TYPE_NUMBERS[keyTypeOf(identity.publicBlob)] ?? -1 : -1;
    log.debug1(`identity file ${full} type ${type}`);
  }
}

class RetryWithKeyTypes extends Error {
  constructor(readonly keyTypes: string[]) {
    super(`retry preferring ${keyTypes.join(",")}`);
  }
}

/** True when `a` and `b` hold the same bytes. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
