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
import type { BackgroundContext, Channel, OpenContext, OpenRequest, SessionHost } from "../../plugins/mod.ts";
import { parameters } from "./manifest.ts";
import { openReused, reusable } from "./reuse_client.ts";
export { manifest } from "./manifest.ts";
export type { ChannelOptions, SshConnection } from "./connection.ts";

/** Runs the connection-reuse master (`remote __transport-background ssh …`); see docs/invoke.md. */
export async function background(args: readonly string[], ctx: BackgroundContext): Promise<number> {
  const { background } = await import("./reuse_master.ts");
  return await background(args, ctx);
}

/**
 * Connects to `ctx.target` and starts `request` on the connection; disposing the channel closes the
 * connection too.
 *
 * @throws {RemoteError} for connection failures, with the codes listed in docs/ssh.md
 */
export async function open(ctx: OpenContext, request: OpenRequest): Promise<Channel> {
  if (request.kind === "exec" && reusable(ctx, request)) {
    const reused = await openReused(ctx, request);
    if (reused) return reused;
  }
  const { connectSsh } = await import("./connection.ts");
  const connection = await connectSsh(ctx);
  try {
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
        await connection[Symbol.asyncDispose]();
      },
    };
  } catch (err) {
    await connection[Symbol.asyncDispose]();
    throw err;
  }
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
