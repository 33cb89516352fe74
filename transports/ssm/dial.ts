/**
 * The `dial` capability over Session Manager: one port session per stream, for `--via ssm` (SSH over Session
 * Manager, what `ssh -o ProxyCommand='aws ssm start-session --target %h --document-name AWS-StartSSHSession
 * --parameters portNumber=%p'` does, with no AWS CLI or session-manager-plugin).
 *
 * A port on the instance itself (`host` the instance, the name it was given by, or loopback) is an
 * `AWS-StartSSHSession` session: properties without a `type`, so the agent runs it basic and the plugin streams it
 * over stdio (session-manager-plugin `sessionmanagerplugin/session/portsession/standardstreamforwarding.go`): the
 * Output payloads are the stream's bytes, and the session ends with the connection (agent `port_basic.go`). Any
 * other host is `AWS-StartPortForwardingSessionToRemoteHost`, multiplexed as `port_forward.ts` does (one smux
 * stream) when the agent has smux. Closing the stream's writable ends the session, as the plugin does at stdin's
 * end: the TerminateSession flag (agents after 2.3.722.0), then TerminateSession.
 *
 * @module
 */
import {
  type DialAddress,
  type Dialer,
  type DialStream,
  type OpenContext,
  RemoteError,
  TransportError,
} from "../../plugins/mod.ts";
import { PayloadFlag } from "./client_message.ts";
import { resolveConnection, type SsmConnection } from "./connection.ts";
import { OutputQueue } from "./output_queue.ts";
import { compareVersions, SsmSession } from "./session.ts";
import { SmuxClient, smuxOutput } from "./smux.ts";

const SSH_DOCUMENT = "AWS-StartSSHSession";
const REMOTE_HOST_DOCUMENT = "AWS-StartPortForwardingSessionToRemoteHost";
const MUX_AFTER_AGENT = "3.0.196.0";
const TERMINATE_FLAG_AFTER_AGENT = "2.3.722.0";
/** Output bytes queued for the stream's reader before the data channel is not read. */
const HIGH_WATER_BYTES = 1024 * 1024;

/**
 * Resolves credentials, region and the target once; each `dial` then starts a port session to it.
 *
 * @throws {TransportError} as `open` does: no target or region, no credentials, no instance of that name
 */
export async function dialer(ctx: OpenContext): Promise<Dialer> {
  const connection = await resolveConnection(ctx);
  const open = new Set<DialStream>();
  return {
    async dial(to) {
      const stream = await dialSession(ctx, connection, to);
      open.add(stream);
      return {
        ...stream,
        async [Symbol.asyncDispose]() {
          open.delete(stream);
          await stream[Symbol.asyncDispose]();
        },
      };
    },
    async [Symbol.asyncDispose]() {
      await Promise.all([...open].map((s) => s[Symbol.asyncDispose]()));
      open.clear();
    },
  };
}

/** Whether `host` names the instance itself, so its port is reached with AWS-StartSSHSession. */
function onInstance(host: string, ctx: OpenContext, instance: string): boolean {
  const h = host.toLowerCase();
  return h === instance.toLowerCase() || h === ctx.target.host.toLowerCase() || h === "localhost" ||
    h === "::1" || /^127\./.test(h);
}

async function dialSession(ctx: OpenContext, connection: SsmConnection, to: DialAddress): Promise<DialStream> {
  const instance = connection.input.Target;
  if (to.kind === "unix") {
    throw new RemoteError("unsupported", `Session Manager cannot reach the unix socket ${to.path} on ${instance}`, {
      hint: "only TCP ports go through Session Manager: give the service's tcp://host:port",
    });
  }
  const local = onInstance(to.host, ctx, instance);
  const input = { ...connection.input, Parameters: { ...connection.input.Parameters } };
  input.DocumentName ??= local ? SSH_DOCUMENT : REMOTE_HOST_DOCUMENT;
  input.Parameters = {
    portNumber: [String(to.port)],
    ...(local ? {} : { host: [to.host] }),
    ...input.Parameters,
  };

  let ended = false;
  let failure: Error | undefined;
  let onOutput: (data: Uint8Array) => void;
  const early: Uint8Array[] = [];
  onOutput = (data) => void early.push(data);
  // deno-lint-ignore prefer-const -- assigned once started; the stream callbacks defined before read it
  let session: SsmSession | undefined;
  // payloads that wait while the reader is busy are read as one chunk (see output_queue.ts); a read that brings
  // the queue below its mark lets the agent send on
  const queue = new OutputQueue(() => {
    if (queue.bytes < HIGH_WATER_BYTES) session?.resumeOutput();
  });
  const readable = queue.readable;
  const end = (error?: Error) => {
    if (ended) return;
    ended = true;
    failure = error;
    if (error) queue.error(error);
    else queue.close();
  };
  const deliver = (data: Uint8Array) => {
    if (ended) return;
    queue.push(data);
    if (queue.bytes >= HIGH_WATER_BYTES) session?.pauseOutput();
  };

  session = await SsmSession.start({
    control: { ...connection.control, signal: ctx.signal },
    input,
    notice: (line) => ctx.notice(line),
    signal: ctx.signal,
    handlers: {
      onOutput: (data) => onOutput(data),
      onFlag: (flag) => {
        if (flag === PayloadFlag.connectToPortError) {
          end(
            new TransportError(`${instance} could not connect to ${to.host}:${to.port}`, {
              layer: "socket",
              code: "refused",
              hint: `is something listening on port ${to.port} as ${instance} sees it?`,
            }),
          );
        }
      },
      onEnd: (result) => {
        if (result.kind === "lost") return end(result.error);
        // the agent ends a session whose port refused with that as the Output text (`port_basic.go`)
        if (/unable to connect/i.test(result.output)) {
          return end(
            new TransportError(`${instance} could not connect to port ${to.port}: ${result.output.trim()}`, {
              layer: "socket",
              code: "refused",
              hint: `is something listening on port ${to.port} on ${instance}?`,
            }),
          );
        }
        end();
      },
    },
  });
  const started = session;
  const info = started.info;
  if (info.sessionType !== "Port") {
    await started.terminate();
    throw new TransportError(
      `the session document opened a ${info.sessionType || "shell"} session, not a port session`,
      {
        layer: "protocol",
        hint: `use a port session document such as ${SSH_DOCUMENT}`,
      },
    );
  }

  let send: (data: Uint8Array) => Promise<void>;
  let finishInput: () => Promise<void>;
  const mux = info.properties.type === "LocalPortForwarding" && compareVersions(info.agentVersion, MUX_AFTER_AGENT) > 0;
  if (mux) {
    const smux = new SmuxClient((bytes) => started.write(bytes));
    onOutput = smuxOutput(smux, end);
    const id = await smux.open({ onData: deliver, onClose: () => end() });
    send = (data) => smux.send(id, data);
    finishInput = () => smux.close(id);
  } else {
    onOutput = deliver;
    send = (data) => started.write(data);
    finishInput = () => closeSession(started);
  }
  for (const data of early.splice(0)) onOutput(data);

  const writable = new WritableStream<Uint8Array>({
    async write(chunk) {
      if (ended || queue.cancelled || started.ended) {
        throw failure ?? new TransportError(`the port session to ${instance} has ended`, { layer: "channel" });
      }
      await send(chunk);
    },
    // stdin's end, as the plugin's StandardStreamForwarding sees it: the session is over
    close: () => finishInput(),
    abort: () => closeSession(started),
  });
  return {
    readable,
    writable,
    async [Symbol.asyncDispose]() {
      await closeSession(started);
      end();
    },
  };
}

/** Ends a port session: the TerminateSession flag where the agent knows it, then TerminateSession. */
async function closeSession(session: SsmSession): Promise<void> {
  if (session.ended) return await session.terminate();
  if (compareVersions(session.info.agentVersion, TERMINATE_FLAG_AFTER_AGENT) > 0) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([session.flag(PayloadFlag.terminateSession), new Promise((r) => timer = setTimeout(r, 500))])
      .catch(() => {});
    clearTimeout(timer);
  }
  await session.terminate();
}
