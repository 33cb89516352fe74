/**
 * The life of a session, after PowerShell's PSSession: its states, who may use it, the transitions
 * between states, and the record the local registry keeps of it.
 *
 * @module
 */

/**
 * Where a session stands, with PowerShell's names.
 *
 * - `Opening`: connecting, not usable yet
 * - `Opened`: connected to this client
 * - `Disconnected`: alive on the host, no client attached
 * - `Reconnecting`: this client is attaching again
 * - `Closing`: being ended on the host
 * - `Closed`: ended; final
 * - `Broken`: the link or the host lost it; only cleanup (`Closing`) may follow
 */
export type SessionState =
  | "Opening"
  | "Opened"
  | "Disconnected"
  | "Reconnecting"
  | "Closing"
  | "Closed"
  | "Broken";

/**
 * Whether a client may use the session now: `Available` (free), `Busy` (a client is attached, or a
 * command runs), `None` (not usable: closed, broken, or disconnected from this client's view).
 */
export type Availability = "Available" | "Busy" | "None";

/** Every state, in lifecycle order, for validation and help. */
export const SESSION_STATES: readonly SessionState[] = [
  "Opening",
  "Opened",
  "Disconnected",
  "Reconnecting",
  "Closing",
  "Closed",
  "Broken",
];

/** Every availability value, for validation. */
export const AVAILABILITIES: readonly Availability[] = ["Available", "Busy", "None"];

/**
 * The legal transitions: for each state, the states it may move to. `Closed` is final; `Broken` may
 * only move to `Closing`, so that whatever is left on the host can be cleaned up.
 */
export const LEGAL_TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = {
  Opening: ["Opened", "Broken", "Closed"],
  Opened: ["Disconnected", "Closing", "Broken"],
  // Broken here: the host ended the session (idle timeout, reboot) while nobody was attached
  Disconnected: ["Reconnecting", "Closing", "Closed", "Broken"],
  Reconnecting: ["Opened", "Disconnected", "Broken"],
  Closing: ["Closed"],
  Closed: [],
  Broken: ["Closing"],
};

/**
 * Moves a session from one state to another and returns the new state.
 *
 * @throws {Error} when the transition is not in {@linkcode LEGAL_TRANSITIONS}: that is a bug in the
 * caller, not something a user can fix, so it is a plain `Error`
 *
 * @example Disconnecting an open session
 * ```ts
 * import { transition } from "./session.ts";
 * const state = transition("Opened", "Disconnected");
 * console.assert(state === "Disconnected");
 * ```
 */
export function transition(from: SessionState, to: SessionState): SessionState {
  const allowed = LEGAL_TRANSITIONS[from];
  if (allowed === undefined) throw new Error(`unknown session state ${JSON.stringify(from)}`);
  if (!allowed.includes(to)) {
    const next = allowed.length === 0 ? "nothing: it is final" : allowed.join(", ");
    throw new Error(`illegal session state transition ${from} -> ${to} (${from} may move to ${next})`);
  }
  return to;
}

/** Where a session was opened to. */
export interface SessionTarget {
  host: string;
  port?: number;
  user?: string;
}

/** What the local registry keeps about one session. */
export interface SessionRecord {
  /** small number for the user to type, unique in the registry, the smallest free one from 1 */
  id: number;
  /** GUID, stable for the session's life, also known to the host */
  instanceId: string;
  /** unique per `computerName` (case-insensitive), like `Session1` */
  name: string;
  computerName: string;
  /** transport ID: `ssh`, `winrm`, `ssm`… */
  transport: string;
  configurationName?: string;
  state: SessionState;
  availability: Availability;
  /** ISO 8601 */
  createdAt: string;
  /** ISO 8601: last time this client saw the session */
  lastSeenAt: string;
  target: SessionTarget;
  /**
   * Non-secret bound parameters needed to reconnect (`Port`, `KeyFilePath`…). The registry drops keys
   * whose names suggest a secret.
   */
  parameters: Record<string, unknown>;
}

const SESSION_NAME = /^Session(\d+)$/i;

/**
 * Picks the default name of a new session, as PowerShell does: `Session1`, `Session2`… — the smallest
 * number not taken by `existing` (the names already used on the same host, compared case-insensitively).
 *
 * @example Names on a host that has Session1 and Session3
 * ```ts
 * import { generateSessionName } from "./session.ts";
 * console.assert(generateSessionName(["Session1", "session3"]) === "Session2");
 * ```
 */
export function generateSessionName(existing: readonly string[]): string {
  const taken = new Set<number>();
  for (const name of existing) {
    const m = SESSION_NAME.exec(name);
    // "Session01" is not "Session1": only the canonical spelling blocks a number
    if (m && String(Number(m[1])) === m[1]) taken.add(Number(m[1]));
  }
  let n = 1;
  while (taken.has(n)) n++;
  return `Session${n}`;
}
