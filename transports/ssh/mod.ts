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
import type { Channel, OpenContext, OpenRequest, SessionHost } from "../../plugins/mod.ts";
import { connectSsh } from "./connection.ts";
import { tmuxSessionHost } from "./tmux_sessions.ts";
import { openReused, reusable } from "./reuse_client.ts";
export { manifest } from "./manifest.ts";
export { background } from "./reuse_master.ts";
export { type ChannelOptions, connectSsh, type SshConnection } from "./connection.ts";

/**
 * Connects to `ctx.target` and starts `request` on the connection; disposing the channel closes the
 * connection too.
 *
 * @throws {RemoteError} for connection failures, with the codes listed in docs/ssh.md
 */
export async function open(ctx: OpenContext, request: OpenRequest): Promise<Channel> {
  if (request.kind === "exec" && reusable(ctx, request)) return await openReused(ctx, request);
  const connection = await connectSsh(ctx);
  try {
    const subsystem = request.kind === "subsystem"
      ? request.name
      : typeof ctx.parameters.Subsystem === "string"
      ? ctx.parameters.Subsystem
      : undefined;
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
export const sessions: SessionHost = tmuxSessionHost();
