/**
 * The ssh transport: OpenSSH-compatible connections (ssh_config, known_hosts, agent, keys, ProxyJump)
 * through npm:ssh2, opening a shell, a command or a subsystem.
 *
 * @example Run one command
 * ```ts
 * import { open } from "./mod.ts";
 * import type { OpenContext } from "../../plugins/mod.ts";
 * declare const ctx: OpenContext;
 * await using ch = await open(ctx, { kind: "exec", command: "uname -a" });
 * await ch.stdout.pipeTo(new WritableStream({ write: (b) => void Deno.stdout.write(b) }));
 * console.log(await ch.exit);
 * ```
 *
 * @module
 */
// ssh2 costs ~75 ms to load, so the modules that use it (connection, tmux sessions, the reuse master)
// load on first use: a command sent through a running reuse master never pays for it.
import type {
  BackgroundContext,
  Channel,
  CompletionRequest,
  CopyRequest,
  CopyResult,
  Dialer,
  ForwardRequest,
  OpenContext,
  OpenRequest,
  SessionHost,
} from "../../plugins/mod.ts";
import { shellQuote } from "../../plugins/mod.ts";
import { commandLineOptions, withDiagnostics } from "./command_line.ts";
import { parameters } from "./manifest.ts";
import { debugLog } from "./debug_log.ts";
import { openReused, reuseBlocker } from "./reuse_client.ts";
export { manifest } from "./manifest.ts";
export type { ChannelOptions, SshConnection } from "./connection.ts";

/** Runs the connection-reuse master (`remote __transport-background ssh …`); see docs/invoke.md. */
export async function background(args: readonly string[], ctx: BackgroundContext): Promise<number> {
  const { background } = await import("./reuse_master.ts");
  return await background(args, ctx);
}

/**
 * Forwards ports (`remote forward`, `remote enter -N`): `-L`, `-R`, `-D` and ssh_config's forwardings, until
 * `ctx.signal` aborts; see docs/ssh.md.
 */
export async function forward(ctx: OpenContext, request: ForwardRequest): Promise<void> {
  const { forward } = await import("./forward_session.ts");
  await forward(withDiagnostics(ctx), request);
}

/** Most bytes of a remote listing read for a completion. */
const LISTING_BYTES = 256 * 1024;

/**
 * Words for shell completion: the `Host` names of ~/.ssh/config and the system file (not the wildcard
 * ones), or the entries under `request.path` on the target, listed by its shell (a folder ends with
 * `/`), only on a connection the reuse master holds already: never a new connection, nothing asked.
 */
export async function complete(request: CompletionRequest): Promise<string[]> {
  if (request.kind === "hosts") {
    const { configuredHosts } = await import("./ssh_config.ts");
    return await configuredHosts({ home: Deno.env.get("HOME") ?? "", localUser: Deno.env.get("USER") ?? "" });
  }
  const ctx = request.ctx;
  const slash = request.path.lastIndexOf("/");
  const dir = request.path.slice(0, slash + 1);
  const base = request.path.slice(slash + 1);
  // the glob (and a leading ~/, for the shell to expand) stays outside the quotes
  const home = dir.startsWith("~/") ? "~/" : "";
  const rest = dir.slice(home.length);
  const glob = `${home}${rest === "" ? "" : shellQuote(rest)}${base === "" ? "" : shellQuote(base)}*`;
  const command = `for f in ${glob}; do if [ -d "$f" ]; then printf '%s/\\n' "$f"; ` +
    `elif [ -e "$f" ] || [ -L "$f" ]; then printf '%s\\n' "$f"; fi; done 2>/dev/null | head -n 1000`;
  const channel = await openReused(ctx, { kind: "exec", command }, undefined, { heldOnly: true }).catch(() =>
    undefined
  );
  if (!channel) return [];
  await using _ = channel;
  await channel.stdin.close().catch(() => {});
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of channel.stdout) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > LISTING_BYTES) break;
  }
  const status = await channel.exit;
  if (status.kind !== "exited" || status.code !== 0) return [];
  const text = new TextDecoder().decode(await new Blob(chunks as BlobPart[]).arrayBuffer());
  return text.split("\n").filter((line) => line !== "");
}

/**
 * Connects and authenticates once, then opens streams to unix sockets and TCP ports as the host sees them (the
 * `dial` capability, for `--via`); see docs/ssh.md.
 */
export async function dialer(ctx: OpenContext): Promise<Dialer> {
  const { dialer } = await import("./dial.ts");
  return await dialer(withDiagnostics(ctx));
}

/** Copies files over SFTP (`remote copy`); see docs/copy.md. */
export async function copy(given: OpenContext, request: CopyRequest): Promise<CopyResult> {
  const ctx = withDiagnostics(given);
  const [{ connectSsh }, { copyFiles }] = await Promise.all([import("./connection.ts"), import("./sftp_copy.ts")]);
  await using connection = await connectSsh(ctx);
  const up = request.direction === "upload";
  return await copyFiles(
    connection,
    request.sources.map((path) => ({ side: up ? "local" : "remote", path })),
    { side: up ? "remote" : "local", path: request.destination },
    {
      recursive: request.recursive,
      preserve: request.preserve,
      resume: request.resume,
      progress: request.progress,
      notice: ctx.notice,
      signal: ctx.signal,
      remoteName: request.remoteName,
    },
  );
}

/**
 * Connects to `ctx.target` and starts `request` on the connection; disposing the channel closes the
 * connection too.
 *
 * @throws {RemoteError} for connection failures, with the codes listed in docs/ssh.md
 */
export async function open(outer: OpenContext, request: OpenRequest): Promise<Channel> {
  commandLineOptions(outer); // a bad -o fails before a reuse master or a connection is asked
  const ctx = withDiagnostics(outer);
  const blocker = ctx.dial
    ? "--via has a connection of its own"
    : hasForwards(ctx)
    ? "-L, -R and -D need a connection of their own"
    : reuseBlocker(ctx, request);
  if ((request.kind === "exec" || request.kind === "subsystem") && blocker === undefined) {
    const reused = await openReused(ctx, request);
    if (reused) return reused;
  } else if (blocker) {
    // for an interactive session reuse is never in question: ssh -v says nothing either, so only -vv does
    const log = debugLog(ctx);
    (request.kind === "exec" ? log.debug1 : log.debug2)(`reuse: not used: ${blocker}`);
  }
  // -L/-R/-D given: parsed before connecting, so a malformed one costs no connection
  const given = hasForwards(ctx) ? (await import("./forward_session.ts")).commandLineForwards(ctx) : [];
  const { connectSsh } = await import("./connection.ts");
  const connection = await connectSsh(ctx);
  let forwarding: AsyncDisposable | undefined;
  try {
    // the forwardings live as long as the session; ssh_config's join an interactive one (a shell, a command
    // on a PTY) only, so `remote invoke` on many hosts does not fight over one LocalForward port
    const interactive = request.kind === "shell" || (request.kind === "exec" && request.pty !== undefined);
    const configured = interactive && Boolean(connection.config.forwards?.length);
    if (request.kind !== "subsystem" && (given.length || configured)) {
      const { sessionForwards } = await import("./forward_session.ts");
      forwarding = await sessionForwards(connection, ctx, given, false, interactive);
    }
    const subsystem = request.kind === "subsystem" ? request.name : parameters.read(ctx.parameters).subsystem;
    const channel = subsystem !== undefined
      ? await connection.subsystem(subsystem)
      : request.kind === "exec"
      ? await connection.exec(request.command, { pty: request.pty, env: request.env })
      : request.kind === "shell"
      ? await connection.shell({ pty: request.pty, env: request.env })
      : await connection.shell();
    return {
      ...channel,
      async [Symbol.asyncDispose]() {
        await channel[Symbol.asyncDispose]();
        await forwarding?.[Symbol.asyncDispose]();
        await connection[Symbol.asyncDispose]();
      },
    };
  } catch (err) {
    await forwarding?.[Symbol.asyncDispose]();
    await connection[Symbol.asyncDispose]();
    throw err;
  }
}

function hasForwards(ctx: OpenContext): boolean {
  const p = parameters.read(ctx.parameters);
  return Boolean(p.localForward?.length || p.remoteForward?.length || p.dynamicForward?.length);
}

/** Persistent sessions hosted by tmux on the host (`tmux -L remote`); see docs/persistent-sessions.md. */
export const sessions: SessionHost = lazySessionHost(async () =>
  (await import("./tmux_sessions.ts")).tmuxSessionHost()
);

function lazySessionHost(make: () => Promise<SessionHost>): SessionHost {
  let host: Promise<SessionHost> | undefined;
  const get = () => host ??= make();
  return {
    list: async (ctx) => await (await get()).list(ctx),
    create: async (ctx, name, options) => await (await get()).create(ctx, name, options),
    attach: async (ctx, name, options) => await (await get()).attach(ctx, name, options),
    disconnect: async (ctx, name, options) => await (await get()).disconnect(ctx, name, options),
    receive: async (ctx, name) => await (await get()).receive(ctx, name),
    remove: async (ctx, name) => await (await get()).remove(ctx, name),
  };
}
