/**
 * The `ssm` transport: AWS Systems Manager Session Manager without the AWS CLI or the
 * session-manager-plugin. `open()` starts an interactive shell (`SSM-SessionManagerRunShell` or
 * `--document-name`) or runs a command (`AWS-StartNonInteractiveCommand`), `forward()` forwards a local
 * port (`AWS-StartPortForwardingSession[ToRemoteHost]`), `sessions` keeps sessions on the service
 * (`remote new`, `disconnect`, `connect`, `receive`, `remove`).
 *
 * Layers: `client_message.ts` and `sequencing.ts` (framing and ordering, no I/O), `aws.ts`
 * (credentials and region through AWS's SDK, loaded on first use), `names.ts` (targets by Name
 * tag), `control_plane.ts`, `data_channel.ts` (WebSocket, acks, resume), `session.ts` (handshake),
 * `channel.ts` (a session as a Channel), `commands.ts`, `sessions.ts` and `session_state.ts` (the
 * lifecycle), `smux.ts` and `port_forward.ts`.
 *
 * @example Opening a shell
 * ```ts ignore
 * import { open } from "./mod.ts";
 * await using ch = await open(ctx, { kind: "shell", pty: { term: "xterm", columns: 80, rows: 24 } });
 * ```
 *
 * @module
 */
import { type Channel, type OpenContext, type OpenRequest, UnsupportedError } from "../../plugins/mod.ts";
import { sessionChannel } from "./channel.ts";
import { resolveConnection } from "./connection.ts";
import { commandInput } from "./commands.ts";
import { SsmSession } from "./session.ts";
export { manifest } from "./manifest.ts";
export { forward } from "./port_forward.ts";
export { sessions } from "./sessions.ts";
export { OUTPUT_HIGH_WATER_BYTES } from "./channel.ts";
export { dialer } from "./dial.ts";

/**
 * Opens an interactive shell on the target, or runs one command (`exec`) as Session Manager runs a
 * non-interactive command (`commands.ts`). Ctrl-C and friends are plain bytes (0x03) on stdin; window
 * size changes go as Size messages.
 *
 * @throws {TransportError} for configuration, credentials, AWS errors and handshake failures
 * @throws {UnsupportedError} for subsystems
 */
export async function open(ctx: OpenContext, request: OpenRequest): Promise<Channel> {
  if (request.kind === "subsystem") {
    throw new UnsupportedError("ssm", "subsystems", {
      hint: "open a shell with: remote enter ssm://<instance-id>",
    });
  }
  const connection = await resolveConnection(ctx);
  const input = request.kind === "exec"
    ? commandInput(connection.input, request.command, request.pty !== undefined)
    : connection.input;
  return await sessionChannel(
    ctx,
    (handlers) =>
      SsmSession.start({
        control: connection.control,
        input,
        notice: (line) => ctx.notice(line),
        signal: ctx.signal,
        handlers,
      }),
    { pty: request.pty, newlineAsReturn: request.kind === "shell" },
  );
}
