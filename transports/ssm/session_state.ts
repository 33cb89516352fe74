/**
 * What remote keeps on this computer about an SSM session it left running: the SessionId, where the
 * data channel's sequence numbers stand (the agent continues its own across ResumeSession, so the next
 * client must continue ours), output received and not yet shown, and which local run is attached.
 *
 * One JSON file per session under `$XDG_STATE_HOME/remote/ssm/` (else `~/.local/state/remote/ssm/`),
 * mode 0600, written whole through a rename. It holds no credential and no key.
 *
 * @module
 */
import { RemoteError, sha256 } from "../../plugins/mod.ts";
import type { ChannelState } from "./data_channel.ts";
import type { SessionInfo } from "./session.ts";

/** Output received for a session and not yet shown, kept up to this many bytes (the newest). */
export const UNREAD_LIMIT_BYTES = 1024 * 1024;

/** One kept session. */
export interface KeptSession {
  name: string;
  /** the target as the user gave it (an ID or a Name tag) */
  target: string;
  /** the instance the session runs on */
  instanceId: string;
  /** the InstanceId of the session in remote's registry */
  recordId?: string;
  info: SessionInfo;
  state: ChannelState;
  /** output received and not yet shown (`remote new` reads the prompt) */
  unread: Uint8Array;
  /** bytes of older unread output dropped beyond {@linkcode UNREAD_LIMIT_BYTES} */
  droppedBytes: number;
  createdAt: string;
  /** the process attached to the session now, if any */
  attachedPid?: number;
  /** `remote disconnect` asks the attached process to let go */
  disconnectRequested?: boolean;
  /**
   * the session ended on the service (its command finished) with output nobody has received yet: kept
   * until `receive` returns it
   */
  finished?: boolean;
}

interface StoredFrame {
  sequenceNumber: number;
  frame: string;
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function unb64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** The folder of the kept sessions. */
export function stateDir(env: (name: string) => string | undefined = (n) => Deno.env.get(n)): string {
  const state = env("XDG_STATE_HOME");
  if (state && state.startsWith("/")) return `${state}/remote/ssm`;
  const home = env("HOME");
  if (home) return `${home}/.local/state/remote/ssm`;
  throw new RemoteError("state", "cannot find a directory for SSM session state: HOME is not set", {
    hint: "set HOME, or XDG_STATE_HOME to an absolute path",
  });
}

function fileOf(target: string, name: string): string {
  const key = Array.from(sha256(new TextEncoder().encode(`${target}\0${name}`)).subarray(0, 16))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${stateDir()}/${key}.json`;
}

function encode(s: KeptSession): string {
  const frames = (list: { sequenceNumber: number; frame: Uint8Array }[]): StoredFrame[] =>
    list.map((f) => ({ sequenceNumber: f.sequenceNumber, frame: b64(f.frame) }));
  return JSON.stringify({
    version: 1,
    ...s,
    unread: b64(s.unread),
    state: { ...s.state, unacknowledged: frames(s.state.unacknowledged), early: frames(s.state.early) },
  });
}

function decode(text: string): KeptSession | undefined {
  try {
    const raw = JSON.parse(text);
    if (raw?.version !== 1 || typeof raw.name !== "string" || typeof raw.info?.sessionId !== "string") return undefined;
    const frames = (list: StoredFrame[]) =>
      (Array.isArray(list) ? list : []).map((f) => ({ sequenceNumber: f.sequenceNumber, frame: unb64(f.frame) }));
    return {
      ...raw,
      unread: unb64(raw.unread ?? ""),
      droppedBytes: Number(raw.droppedBytes ?? 0),
      state: {
        nextSequenceNumber: Number(raw.state?.nextSequenceNumber ?? 0),
        expectedSequenceNumber: Number(raw.state?.expectedSequenceNumber ?? 0),
        unacknowledged: frames(raw.state?.unacknowledged),
        early: frames(raw.state?.early),
      },
    };
  } catch {
    return undefined; // a damaged file is a session remote no longer knows
  }
}

/** The kept session `name` on `target`, if any. */
export async function readKept(target: string, name: string): Promise<KeptSession | undefined> {
  try {
    return decode(await Deno.readTextFile(fileOf(target, name)));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw stateError(error);
  }
}

/** Every kept session on `target`: made with that target, or running on that instance. */
export async function listKept(target: string, instanceId = target): Promise<KeptSession[]> {
  const found: KeptSession[] = [];
  try {
    for await (const entry of Deno.readDir(stateDir())) {
      if (!entry.isFile || !entry.name.endsWith(".json")) continue;
      const kept = decode(await Deno.readTextFile(`${stateDir()}/${entry.name}`).catch(() => ""));
      if (kept && (kept.target === target || kept.instanceId === instanceId)) found.push(kept);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw stateError(error);
  }
  return found;
}

/** Writes `kept` whole (a temporary file renamed over the old one), readable by the user only. */
export async function writeKept(kept: KeptSession): Promise<void> {
  const path = fileOf(kept.target, kept.name);
  try {
    await Deno.mkdir(stateDir(), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(tmp, encode(kept), { mode: 0o600 });
    await Deno.rename(tmp, path);
  } catch (error) {
    throw stateError(error);
  }
}

/** Forgets the kept session `name` on `target`. */
export async function removeKept(target: string, name: string): Promise<void> {
  await Deno.remove(fileOf(target, name)).catch(() => {});
}

/** Appends output to a session's unread bytes, keeping the newest {@linkcode UNREAD_LIMIT_BYTES}. */
export function appendUnread(kept: Pick<KeptSession, "unread" | "droppedBytes">, data: Uint8Array): void {
  const joined = new Uint8Array(kept.unread.length + data.length);
  joined.set(kept.unread);
  joined.set(data, kept.unread.length);
  const over = Math.max(0, joined.length - UNREAD_LIMIT_BYTES);
  kept.droppedBytes += over;
  kept.unread = joined.slice(over);
}

/** true while the process `pid` runs (Linux: its /proc entry). */
export function isRunning(pid: number | undefined): boolean {
  if (pid === undefined || pid === Deno.pid) return pid === Deno.pid;
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

function stateError(error: unknown): RemoteError {
  return new RemoteError("state", `cannot keep SSM session state: ${(error as Error).message}`, {
    hint: "check that the state folder (XDG_STATE_HOME, else ~/.local/state) is writable",
    cause: error,
  });
}
