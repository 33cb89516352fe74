/**
 * The `ssm` transport: AWS Systems Manager Session Manager without the AWS CLI or the
 * session-manager-plugin. `open()` starts an interactive shell (`SSM-SessionManagerRunShell` or
 * `--document-name`), `forward()` forwards a local port (`AWS-StartPortForwardingSession[ToRemoteHost]`).
 *
 * Layers: `client_message.ts` and `sequencing.ts` (framing and ordering, no I/O), `aws.ts`
 * (credentials and region through AWS's SDK, loaded on first use), `names.ts` (targets by Name
 * tag), `control_plane.ts`, `data_channel.ts` (WebSocket, acks, resume), `session.ts` (handshake),
 * `smux.ts` and `port_forward.ts`.
 *
 * @example Opening a shell
 * ```ts ignore
 * import { open } from "./mod.ts";
 * await using ch = await open(ctx, { kind: "shell", pty: { term: "xterm", columns: 80, rows: 24 } });
 * ```
 *
 * @module
 */
import {
  type Channel,
  type ExitStatus,
  type OpenContext,
  type OpenRequest,
  TransportError,
  UnsupportedError,
} from "../../plugins/mod.ts";
import { resolveConnection } from "./connection.ts";
import { SsmSession } from "./session.ts";
export { manifest } from "./manifest.ts";
export { forward } from "./port_forward.ts";
export { dialer } from "./dial.ts";

/**
 * Output bytes queued for the reader of stdout or stderr before remote stops reading the data channel.
 * The agent keeps what it cannot send and resends it, so nothing is lost while the reader is slow.
 */
export const OUTPUT_HIGH_WATER_BYTES = 1024 * 1024;

/**
 * Opens an interactive shell on the target. Ctrl-C and friends are plain bytes (0x03) on stdin;
 * window size changes go as Size messages.
 *
 * @throws {TransportError} for configuration, credentials, AWS errors and handshake failures
 * @throws {UnsupportedError} for `exec` and subsystems
 */
export async function open(ctx: OpenContext, request: OpenRequest): Promise<Channel> {
  if (request.kind !== "shell") {
    throw new UnsupportedError("ssm", request.kind === "exec" ? "exec" : "subsystems", {
      hint: "open a shell with: remote enter ssm://<instance-id>",
    });
  }
  const connection = await resolveConnection(ctx);
  let stdoutCtl!: ReadableStreamDefaultController<Uint8Array>;
  let stderrCtl!: ReadableStreamDefaultController<Uint8Array>;
  // backpressure: a queue over its high-water mark pauses the data channel, a pull resumes it
  const cancelled = new Set<ReadableStreamDefaultController<Uint8Array>>();
  // deno-lint-ignore prefer-const -- assigned once started; the stream callbacks defined before read it
  let session: SsmSession | undefined;
  const full = (c: ReadableStreamDefaultController<Uint8Array>) => !cancelled.has(c) && (c.desiredSize ?? 1) <= 0;
  const flow = () => {
    if (full(stdoutCtl) || full(stderrCtl)) session?.pauseOutput();
    else session?.resumeOutput();
  };
  const outputStream = (set: (c: ReadableStreamDefaultController<Uint8Array>) => void) => {
    let ctl: ReadableStreamDefaultController<Uint8Array>;
    return new ReadableStream<Uint8Array>({
      start: (c) => set(ctl = c),
      pull: flow,
      cancel: () => {
        cancelled.add(ctl);
        flow();
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: OUTPUT_HIGH_WATER_BYTES }));
  };
  const stdout = outputStream((c) => stdoutCtl = c);
  const stderr = outputStream((c) => stderrCtl = c);
  const { promise: exit, resolve: settle } = Promise.withResolvers<ExitStatus>();
  let settled = false;
  let exitCode: number | undefined;
  const finish = (status: ExitStatus) => {
    if (settled) return;
    settled = true;
    for (const c of [stdoutCtl, stderrCtl]) {
      try {
        c.close();
      } catch { /* already closed or cancelled by the reader */ }
    }
    settle(status);
  };
  const enqueue = (c: ReadableStreamDefaultController<Uint8Array>, data: Uint8Array) => {
    if (settled) return;
    try {
      c.enqueue(data);
    } catch { /* the reader cancelled */ }
    if (full(c)) session?.pauseOutput();
  };

  session = await SsmSession.start({
    control: connection.control,
    input: connection.input,
    notice: (line) => ctx.notice(line),
    signal: ctx.signal,
    handlers: {
      onOutput: (data) => enqueue(stdoutCtl, data),
      onStdErr: (data) => enqueue(stderrCtl, data),
      onExitCode: (code) => void (exitCode = code),
      onEnd: (result) =>
        finish(
          result.kind === "closed" ? { kind: "exited", code: exitCode ?? 0 } : { kind: "lost", error: result.error },
        ),
    },
  });

  const started = session;
  flow(); // output delivered during the handshake may have filled a queue already
  const onAbort = () => {
    void started.terminate();
    finish({
      kind: "lost",
      error: new TransportError("the session was closed", { layer: "channel", code: "interrupted" }),
    });
  };
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  void exit.then(() => ctx.signal.removeEventListener("abort", onAbort));

  if (request.pty) await started.resize(request.pty.columns, request.pty.rows);

  const stdin = new WritableStream<Uint8Array>({
    async write(chunk) {
      if (settled) return;
      // the plugin sends a lone newline as a carriage return (`streaming.go`)
      await started.write(chunk.length === 1 && chunk[0] === 0x0a ? new Uint8Array([0x0d]) : chunk);
    },
  });

  return {
    stdin,
    stdout,
    stderr,
    exit,
    resize: (size) => started.resize(size.columns, size.rows),
    async [Symbol.asyncDispose]() {
      // after channel_closed the session is over already; otherwise end it on the service too
      if (!started.ended) await started.terminate();
      finish({ kind: "lost", error: new TransportError("the session was closed", { layer: "channel" }) });
    },
  };
}
