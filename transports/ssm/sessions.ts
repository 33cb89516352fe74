/**
 * Sessions kept on Session Manager, natively: `remote new` starts one (StartSession and the handshake)
 * and leaves it running without a client; `disconnect` closes the data channel without
 * TerminateSession, so the service reports the session Disconnected; `connect` calls ResumeSession and
 * continues the data channel's sequence numbers where the last client left them (the agent keeps its
 * own and resends what was not acknowledged); `receive` does the same without a terminal and returns
 * what the shell printed; `remove` calls TerminateSession; `list` merges DescribeSessions with what
 * this computer keeps (`session_state.ts`).
 *
 * What Session Manager keeps while no client is attached: the agent stops reading the shell's output
 * while the service has paused its publication, so a program that prints blocks once the terminal's
 * buffer is full, and nothing is lost; output the agent had sent and nobody acknowledged it resends.
 * AWS documents ResumeSession for a client reconnecting after a network interruption; the session's
 * idle timeout (the account's Session Manager preference, 20 minutes by default) ends a session left
 * alone, and then ResumeSession returns no token.
 *
 * @module
 */
import {
  type Channel,
  type DisconnectOptions,
  type HostSession,
  type OpenContext,
  RemoteError,
  type SessionHost,
  UsageError,
} from "../../plugins/mod.ts";
import { sessionChannel } from "./channel.ts";
import { commandInput } from "./commands.ts";
import { readParameters, resolveConnection, type SsmConnection } from "./connection.ts";
import { type DescribedSession, describeSessions, terminateSession } from "./control_plane.ts";
import { type DetachedSession, SsmSession } from "./session.ts";
import {
  appendUnread,
  isRunning,
  type KeptSession,
  listKept,
  readKept,
  removeKept,
  writeKept,
} from "./session_state.ts";

/** How long `receive` waits for more output before it returns (the agent resends within 1 s). */
export const RECEIVE_QUIET_MS = 1500;
/** The most `receive` waits in all, and the most bytes it returns at once. */
const RECEIVE_LIMIT = { ms: 20_000, bytes: 16 * 1024 * 1024 } as const;
/** How often an attached run looks whether `remote disconnect` asked it to let go. */
const DISCONNECT_POLL_MS = 250;

function targetOf(ctx: OpenContext): string {
  const target = readParameters(ctx).target;
  if (!target) {
    throw new UsageError("no SSM target given", {
      hint: "pass --target i-0123456789abcdef0 (or a Name tag) or use ssm://i-0123456789abcdef0",
    });
  }
  return target;
}

async function kept(ctx: OpenContext, name: string): Promise<KeptSession> {
  const target = targetOf(ctx);
  const found = await readKept(target, name);
  if (!found) {
    throw new RemoteError("notFound", `no SSM session named ${name} on ${target} is kept on this computer`, {
      hint: `list them with: remote get --computer-name ssm://${target}`,
    });
  }
  return found;
}

function notBusy(session: KeptSession): void {
  if (isRunning(session.attachedPid) && session.attachedPid !== Deno.pid) {
    throw new RemoteError(
      "usage",
      `session ${session.name} is attached in another remote (pid ${session.attachedPid})`,
      {
        hint: `let it go with: remote disconnect --name ${session.name}`,
      },
    );
  }
}

/** Asks the run attached to `session` to detach, and waits until it has (up to 10 s). */
async function letGo(session: KeptSession): Promise<KeptSession> {
  if (!isRunning(session.attachedPid) || session.attachedPid === Deno.pid) return session;
  await writeKept({ ...session, disconnectRequested: true });
  for (let waited = 0; waited < 10_000; waited += 100) {
    await new Promise((r) => setTimeout(r, 100));
    const now = await readKept(session.target, session.name);
    if (!now) throw new RemoteError("notFound", `session ${session.name} ended`, {});
    if (!isRunning(now.attachedPid)) return now;
  }
  throw new RemoteError("timeout", `the remote attached to ${session.name} did not let go within 10 s`, {
    hint: `stop it (pid ${session.attachedPid}) and try again`,
  });
}

/** Keeps a detached session's state, clearing what the attached run had marked. */
function keepDetached(
  base: KeptSession,
  detached: DetachedSession,
  unread: Uint8Array = new Uint8Array(),
): Promise<void> {
  return writeKept({
    ...base,
    info: detached.info,
    state: detached.state,
    unread,
    droppedBytes: unread.length === 0 ? 0 : base.droppedBytes,
    attachedPid: undefined,
    disconnectRequested: undefined,
  });
}

function resumeStart(ctx: OpenContext, connection: SsmConnection, session: KeptSession) {
  return (handlers: Parameters<typeof SsmSession.start>[0]["handlers"]) =>
    SsmSession.start({
      control: connection.control,
      input: connection.input,
      notice: (line) => ctx.notice(line),
      signal: ctx.signal,
      handlers,
      resume: { info: session.info, state: session.state },
    });
}

function hostSession(s: DescribedSession, name: string, foreign: boolean): HostSession {
  const connected = s.Status === "Connected" || s.Status === "Connecting";
  return {
    name,
    state: connected ? "Opened" : "Disconnected",
    availability: connected ? "Busy" : "None",
    createdAt: s.StartDate instanceof Date ? s.StartDate.toISOString() : undefined,
    ...(foreign ? { foreign: true } : {}),
  };
}

/** The ssm transport's session host. */
export const sessions: SessionHost = {
  async list(ctx) {
    const target = targetOf(ctx);
    const connection = await resolveConnection(ctx);
    const instance = connection.input.Target;
    const [active, mine] = await Promise.all([
      describeSessions(connection.control, "Active", instance),
      listKept(target, instance),
    ]);
    const byId = new Map(mine.map((k) => [k.info.sessionId, k]));
    const listed = active.map((s) => {
      const own = byId.get(s.SessionId);
      byId.delete(s.SessionId);
      return own
        ? { ...hostSession(s, own.name, false), instanceId: own.recordId, createdAt: own.createdAt }
        : hostSession(s, s.SessionId, true);
    });
    // a finished command's output waits here for `receive`: the session is shown until then
    for (const [id, k] of byId) {
      if (!k.finished) continue;
      byId.delete(id);
      listed.push({
        name: k.name,
        state: "Disconnected",
        availability: "None",
        instanceId: k.recordId,
        createdAt: k.createdAt,
      });
    }
    if (byId.size > 0) {
      // kept here, not active: forget those the service reports ended
      const ended = new Set((await describeSessions(connection.control, "History", instance)).map((s) => s.SessionId));
      for (const [id, k] of byId) if (ended.has(id)) await removeKept(k.target, k.name);
    }
    return listed;
  },

  async create(ctx, name, options) {
    const target = targetOf(ctx);
    if (await readKept(target, name)) {
      throw new UsageError(`a session named ${name} on ${target} exists already`, { hint: "choose another --name" });
    }
    const connection = await resolveConnection(ctx);
    // Invoke-Command -InDisconnectedSession: the command runs as `remote invoke` runs it; its session ends
    // with it (Session Manager has no shell to fall back to), and what it printed waits for `receive`
    const command = options.command;
    if (command !== undefined) connection.input = commandInput(connection.input, command);
    const base: KeptSession = {
      name,
      target,
      instanceId: connection.input.Target,
      recordId: options.instanceId,
      info: { sessionId: "", sessionType: "", properties: {}, agentVersion: "" },
      state: { nextSequenceNumber: 0, expectedSequenceNumber: 0, unacknowledged: [], early: [] },
      unread: new Uint8Array(),
      droppedBytes: 0,
      createdAt: new Date().toISOString(),
    };
    let ended = false;
    const session = await SsmSession.start({
      control: connection.control,
      input: connection.input,
      notice: (line) => ctx.notice(line),
      signal: ctx.signal,
      handlers: {
        // what the shell prints before anyone attaches (its prompt) is shown by the first `connect`
        onOutput: (data) => appendUnread(base, data),
        onStdErr: (data) => appendUnread(base, data),
        onEnd: () => void (ended = true),
      },
    });
    try {
      if (command === undefined) await session.resize(options.pty.columns, options.pty.rows);
      const detached = await session.detach();
      if (ended && command === undefined) {
        throw new RemoteError("lost", `the new SSM session on ${target} ended at once`, {});
      }
      await keepDetached(base, detached, base.unread);
      if (ended) await writeKept({ ...base, info: detached.info, state: detached.state, finished: true });
    } catch (error) {
      await session.terminate();
      throw error;
    }
    return {
      name,
      state: "Disconnected",
      availability: "None",
      instanceId: options.instanceId,
      createdAt: base.createdAt,
    };
  },

  async attach(ctx, name, { force, pty }): Promise<Channel> {
    let session = await kept(ctx, name);
    if (session.finished) {
      throw new RemoteError("notFound", `session ${name} ended: its command finished`, {
        hint: `get what it printed with: remote receive --name ${name}`,
      });
    }
    if (force) session = await letGo(session);
    else notBusy(session);
    const connection = await resolveConnection(ctx);
    await writeKept({ ...session, attachedPid: Deno.pid, disconnectRequested: undefined });
    let channel: Channel;
    try {
      channel = await sessionChannel(ctx, resumeStart(ctx, connection, session), {
        pty,
        replay: session.unread,
        persistence: {
          keep: (detached) => keepDetached(session, detached),
          ended: () => removeKept(session.target, name),
        },
      });
    } catch (error) {
      await writeKept({ ...session, attachedPid: undefined });
      if (error instanceof RemoteError && error.code === "notFound") await removeKept(session.target, name);
      throw error;
    }
    if (session.droppedBytes > 0) {
      ctx.notice(`remote: ${session.droppedBytes} bytes of older output were dropped before this attach`);
    }
    // `remote disconnect` from another run: let go when asked
    const poll = setInterval(async () => {
      const now = await readKept(session.target, name).catch(() => undefined);
      if (now?.disconnectRequested) {
        clearInterval(poll);
        await channel.detach?.();
      }
    }, DISCONNECT_POLL_MS);
    void channel.exit.finally(() => clearInterval(poll));
    return channel;
  },

  async disconnect(ctx, name, options: DisconnectOptions) {
    if (options.idleTimeoutMs !== undefined) {
      throw new UsageError("an SSM session's idle timeout is the account's Session Manager preference", {
        hint: "set idleSessionTimeout in the Session Manager preferences (SSM-SessionManagerRunShell)",
      });
    }
    if (options.outputBufferingMode === "drop") {
      throw new UsageError("SSM keeps a disconnected session's output by blocking the shell (block), never drops it", {
        hint: "leave out --output-buffering-mode, or pass block",
      });
    }
    await letGo(await kept(ctx, name));
  },

  async receive(ctx, name) {
    const session = await kept(ctx, name);
    if (session.finished) {
      await removeKept(session.target, name);
      return session.unread;
    }
    notBusy(session);
    const connection = await resolveConnection(ctx);
    const chunks: Uint8Array[] = [session.unread];
    let bytes = session.unread.length;
    let last = Date.now();
    let ended = false;
    const collect = (data: Uint8Array) => {
      chunks.push(data);
      bytes += data.length;
      last = Date.now();
    };
    await writeKept({ ...session, attachedPid: Deno.pid });
    let resumed: SsmSession;
    try {
      resumed = await resumeStart(ctx, connection, session)({
        onOutput: collect,
        onStdErr: collect,
        onEnd: () => void (ended = true),
      });
    } catch (error) {
      await writeKept({ ...session, attachedPid: undefined });
      if (error instanceof RemoteError && error.code === "notFound") {
        await removeKept(session.target, name);
        // a command's session ends with it: what an earlier run received is still news
        const command = /Commands$/.test(session.info.sessionType);
        if (command && session.unread.length > 0) {
          ctx.notice(`remote: session ${name} ended with its command on ${session.instanceId}`);
          return session.unread;
        }
      }
      throw error;
    }
    const started = Date.now();
    while (!ended && Date.now() - last < RECEIVE_QUIET_MS && Date.now() - started < RECEIVE_LIMIT.ms) {
      if (bytes >= RECEIVE_LIMIT.bytes) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (ended) await removeKept(session.target, name);
    else await keepDetached(session, await resumed.detach());
    const out = new Uint8Array(bytes);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  },

  async remove(ctx, name) {
    const session = await kept(ctx, name);
    if (!session.finished) {
      const connection = await resolveConnection(ctx);
      await terminateSession(connection.control, session.info.sessionId);
    }
    await removeKept(session.target, name);
  },
};
