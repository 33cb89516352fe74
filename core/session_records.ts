/**
 * The local registry kept in step with what the hosts report: recording a created session, merging a
 * host's sessions into the registry, picking recorded sessions by Id, InstanceId or name, the way back
 * to a recorded session's host, and how sessions are shown (`remote get`'s table and JSON).
 *
 * @module
 */
import type { HostSession, OpenContext, Target } from "../plugins/types.ts";
import { RemoteError, UsageError } from "./errors.ts";
import { printable, table } from "./output.ts";
import type { Registry } from "./registry.ts";
import type { Route } from "./route.ts";
import { generateSessionName, type SessionRecord, type SessionState, transition } from "./session.ts";
import { ptyRequestFromEnvironment } from "./terminal_bridge.ts";
import type { TransportEntry } from "./transport_catalog.ts";
import { sessionHost } from "./transport_use.ts";

/** What {@linkcode createSession} makes, besides where. */
export interface CreateSessionRequest {
  /** the session's name; default `Session<N>`, free in the registry, on the host and in `taken` */
  name?: string;
  /** a command the session starts with (see `SessionHost.create`); default an interactive shell */
  command?: string;
  /** names already given to sessions created in this run; a generated name is added */
  taken?: Set<string>;
}

/**
 * Creates a session on the route's host and records it in `registry`: New-PSSession, and
 * Invoke-Command -InDisconnectedSession with a command. Returns the recorded session.
 *
 * @throws {UnsupportedError} when the route's transport cannot host disconnected sessions
 */
export async function createSession(
  registry: Registry,
  r: Route,
  ctx: OpenContext,
  request: CreateSessionRequest = {},
): Promise<SessionRecord> {
  const host = await sessionHost(r.entry, "disconnect");
  const computerName = r.target.host;
  let name = request.name;
  if (!name) {
    const known = (await registry.find({ computerName })).map((s) => s.name);
    const onHost = r.entry.manifest.capabilities.includes("list") ? (await host.list(ctx)).map((s) => s.name) : [];
    // no await between choosing and reserving: sessions created side by side get distinct names
    name = generateSessionName([...known, ...onHost, ...request.taken ?? []]);
    request.taken?.add(name);
  }
  const instanceId = crypto.randomUUID();
  const created = await host.create(ctx, name, {
    instanceId,
    pty: ptyRequestFromEnvironment() ?? { term: "xterm-256color", columns: 80, rows: 24 },
    ...(request.command === undefined ? {} : { command: request.command }),
  });
  const now = new Date().toISOString();
  return await registry.add({
    instanceId: created.instanceId ?? instanceId,
    name: created.name,
    computerName,
    transport: r.entry.manifest.id,
    configurationName: created.configurationName,
    state: created.state,
    availability: created.availability,
    createdAt: created.createdAt ?? now,
    lastSeenAt: now,
    target: { host: r.target.host, port: r.target.port, user: r.target.user },
    parameters: storableParameters(r),
  });
}

/**
 * Records a session a host reported: updates the registry's entry for it (same host, and same name
 * or InstanceId) with the host's truth, or adds one. Returns the recorded session.
 */
export async function upsertDiscovered(registry: Registry, r: Route, s: HostSession): Promise<SessionRecord> {
  const known = (await registry.find({ computerName: r.target.host })).find((rec) =>
    rec.name === s.name || (s.instanceId !== undefined && rec.instanceId === s.instanceId)
  );
  const now = new Date().toISOString();
  if (known) {
    return await registry.update(known.instanceId, {
      state: s.state,
      availability: s.availability,
      lastSeenAt: now,
      parameters: storableParameters(r),
      target: { host: r.target.host, port: r.target.port, user: r.target.user },
    });
  }
  return await registry.add({
    instanceId: s.instanceId ?? crypto.randomUUID(),
    name: s.name,
    computerName: r.target.host,
    transport: r.entry.manifest.id,
    configurationName: s.configurationName,
    state: s.state,
    availability: s.availability,
    createdAt: s.createdAt ?? now,
    lastSeenAt: now,
    target: { host: r.target.host, port: r.target.port, user: r.target.user },
    parameters: storableParameters(r),
  });
}

/**
 * The state a recorded session moves to, through the legal path of docs/sessions.md: attaching to a
 * disconnected session passes Reconnecting; staying put is no move. An illegal move is a bug.
 */
export function advance(from: SessionState, to: SessionState): SessionState {
  if (from === to) return to;
  if (from === "Disconnected" && to === "Opened") return transition(transition(from, "Reconnecting"), to);
  return transition(from, to);
}

/** The state of a session its host no longer has: Broken, unless it had already ended. */
export function gone(state: SessionState): SessionState {
  return state === "Closed" || state === "Broken" ? state : advance(state, "Broken");
}

/** Bound values that are safe to keep on disk: never a secret. */
export function storableParameters(r: Route): Record<string, unknown> {
  const secret = new Set(r.entry.manifest.parameters.filter((p) => p.secret).map((p) => p.name));
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(r.parameters)) {
    if (secret.has(name)) continue;
    kept[name] = value instanceof URL ? value.href : value;
  }
  return kept;
}

/**
 * The route back to a recorded session's host.
 *
 * @throws {RemoteError} code `notFound` when the session's transport is not loaded
 */
export function recordRoute(record: SessionRecord, entries: readonly TransportEntry[]): Route {
  const entry = entries.find((e) => e.manifest.id === record.transport);
  if (!entry) {
    throw new RemoteError(
      "notFound",
      `session ${record.name} uses transport ${record.transport}, which is not loaded`,
      {
        hint: "load its plugin with --plugin, or see: remote plugin list",
      },
    );
  }
  const target: Target = {
    transport: record.transport,
    host: record.target.host,
    port: record.target.port,
    user: record.target.user,
    display: record.computerName,
  };
  return { entry, target, parameters: { ...record.parameters } };
}

/** Which recorded sessions a verb means: by Id, else InstanceId, else name (`*` and `?` allowed). */
export interface SessionChoice {
  id?: number;
  instanceId?: string;
  name?: string;
}

/**
 * Exactly one recorded session for `choice`.
 *
 * @throws {RemoteError} code `notFound` when none matches
 * @throws {UsageError} when several match, naming them
 */
export async function selectOne(registry: Registry, choice: SessionChoice): Promise<SessionRecord> {
  const found = await selectMany(registry, choice);
  if (found.length > 1) {
    throw new UsageError(
      `${found.length} sessions match: ${found.map((s) => `${s.name} on ${s.computerName} (Id ${s.id})`).join(", ")}`,
      { hint: "pick one with --id" },
    );
  }
  return found[0];
}

/**
 * Every recorded session for `choice`, at least one.
 *
 * @throws {RemoteError} code `notFound` when none matches
 */
export async function selectMany(registry: Registry, choice: SessionChoice): Promise<SessionRecord[]> {
  const selector = choice.id !== undefined
    ? { id: choice.id }
    : choice.instanceId !== undefined
    ? { instanceId: choice.instanceId }
    : { name: choice.name ?? "" };
  const found = await registry.find(selector);
  if (found.length === 0) {
    const what = "id" in selector
      ? `Id ${selector.id}`
      : "instanceId" in selector
      ? selector.instanceId
      : selector.name;
    throw new RemoteError("notFound", `no session ${what} in the local registry`, {
      hint: "list sessions with: remote get; find one on a host with: remote connect --computer-name <host> --name <n>",
    });
  }
  return found;
}

/** A recorded session as `remote get --json` prints it. */
export function publicRecord(record: SessionRecord): Record<string, unknown> {
  return {
    id: record.id,
    name: record.name,
    computerName: record.computerName,
    transport: record.transport,
    state: record.state,
    configurationName: record.configurationName ?? null,
    availability: record.availability,
    instanceId: record.instanceId,
    createdAt: record.createdAt,
    lastSeenAt: record.lastSeenAt,
  };
}

/** Get-PSSession's columns: Id Name ComputerName Transport State ConfigurationName Availability. */
export function formatSessions(rows: { record: SessionRecord; stale?: boolean }[]): string {
  const headers = ["Id", "Name", "ComputerName", "Transport", "State", "ConfigurationName", "Availability"];
  const cells = rows.map(({ record, stale }) =>
    [
      String(record.id),
      record.name,
      record.computerName,
      record.transport,
      stale ? `${record.state} (stale)` : record.state,
      record.configurationName ?? "",
      record.availability,
    ].map(printable)
  );
  return table(headers, cells, " ");
}
