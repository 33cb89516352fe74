/**
 * The local registry kept in step with what the hosts report: recording a created session, merging a
 * host's sessions into the registry, picking recorded sessions by Id, InstanceId or name, the way back
 * to a recorded session's host, and how sessions are shown (`remote get`'s table and JSON).
 *
 * @module
 */
import type { HostSession, OpenContext, Target } from "../plugins/mod.ts";
import { RemoteError, UsageError } from "./errors.ts";
import { printable, table } from "./output.ts";
import type { Registry } from "./registry.ts";
import type { Route } from "./route.ts";
import { type SessionRecord, type SessionState, transition } from "./session.ts";
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
 * Invoke-Command -InDisconnectedSession with a command. The name is reserved in the registry, under
 * its lock, before the host is asked. Returns the recorded session.
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
  const where = printable(r.target.display);
  // a chosen name may be taken on the host by a client with another registry: try the next one
  for (let attempt = 1;; attempt++) {
    const onHost = !request.name && r.entry.manifest.capabilities.includes("list")
      ? (await host.list(ctx)).map((s) => s.name)
      : [];
    const instanceId = crypto.randomUUID();
    const now = new Date().toISOString();
    // the name is reserved in the registry, under its lock, before the host is asked: concurrent
    // `remote new` runs never pick the same one, and a registry that cannot be written stops us first
    let reserved: SessionRecord;
    try {
      reserved = await registry.add({
        instanceId,
        name: request.name ?? "",
        computerName,
        transport: r.entry.manifest.id,
        state: "Opening",
        availability: "None",
        createdAt: now,
        lastSeenAt: now,
        target: { host: r.target.host, port: r.target.port, user: r.target.user },
        parameters: storableParameters(r),
      }, { avoid: onHost, taken: request.taken });
    } catch (error) {
      throw withConsequence(error, `nothing was created on ${where}`);
    }
    let created: HostSession;
    try {
      created = await host.create(ctx, reserved.name, {
        instanceId,
        pty: ptyRequestFromEnvironment() ?? { term: "xterm-256color", columns: 80, rows: 24 },
        ...(request.command === undefined ? {} : { command: request.command }),
      });
    } catch (error) {
      await registry.remove(instanceId).catch(() => {});
      const nameTaken = error instanceof RemoteError && error.code === "usage";
      if (!request.name && nameTaken && attempt < 5) continue;
      throw error;
    }
    try {
      const result = {
        name: created.name,
        configurationName: created.configurationName,
        state: created.state,
        availability: created.availability,
        createdAt: created.createdAt ?? now,
        lastSeenAt: new Date().toISOString(),
      };
      if (created.instanceId === undefined || created.instanceId === instanceId) {
        return await registry.update(instanceId, result);
      }
      // the host gave the session an id of its own (a plugin's): the reserved entry takes it
      const recorded = await registry.upsert(
        { ...reserved, ...result, instanceId: created.instanceId },
        () => ({ ...result, instanceId: created.instanceId }),
      );
      if (recorded.id !== reserved.id) await registry.remove(instanceId);
      return recorded;
    } catch (error) {
      // a session the registry does not know would run on unseen: end it rather than lose track of it
      const undone = await host.remove(ctx, created.name).then(
        () => `the new session ${created.name} was removed from ${where}`,
        () => `the new session ${created.name} is left on ${where}, unrecorded: remove it there`,
      );
      const forgotten = await registry.remove(instanceId).then(
        () => "",
        () => ` (its entry Id ${reserved.id} stays Opening until: remote remove --id ${reserved.id})`,
      );
      throw withConsequence(error, printable(undone + forgotten));
    }
  }
}

/** `error` with what it left behind appended to its message (a registry failure mid-way through `new`). */
function withConsequence(error: unknown, consequence: string): unknown {
  // a name already taken says all there is to say
  if (!(error instanceof RemoteError) || error.code === "usage") return error;
  return new RemoteError(error.code, `${error.message}; ${consequence}`, { hint: error.hint, cause: error.cause });
}

/**
 * Records a session found on the host, or refreshes its entry: one entry per session whatever name the
 * host was reached by (an ssh_config alias, its address), matched by instance id first. An entry made
 * under another host name keeps that name and its route; only what the host reports is refreshed.
 */
export async function upsertDiscovered(registry: Registry, r: Route, s: HostSession): Promise<SessionRecord> {
  const now = new Date().toISOString();
  const target = { host: r.target.host, port: r.target.port, user: r.target.user };
  const parameters = storableParameters(r);
  const seen = { state: s.state, availability: s.availability, lastSeenAt: now };
  return await registry.upsert(
    {
      instanceId: s.instanceId ?? crypto.randomUUID(),
      name: s.name,
      computerName: r.target.host,
      transport: r.entry.manifest.id,
      configurationName: s.configurationName,
      createdAt: s.createdAt ?? now,
      target,
      parameters,
      ...seen,
    },
    (old) =>
      old.computerName.toLowerCase() === r.target.host.toLowerCase()
        ? { ...seen, target, parameters, ...(s.instanceId === undefined ? {} : { instanceId: s.instanceId }) }
        : seen,
  );
}

/** A session on a host that remote did not create: shown, never recorded, never attached to or ended. */
export function foreignRecord(r: Route, s: HostSession): SessionRecord {
  const now = new Date().toISOString();
  return {
    id: 0,
    instanceId: s.instanceId ?? "",
    name: s.name,
    computerName: r.target.host,
    transport: r.entry.manifest.id,
    configurationName: s.configurationName,
    state: s.state,
    availability: s.availability,
    createdAt: s.createdAt ?? "",
    lastSeenAt: s.lastSeenAt ?? now,
    target: { host: r.target.host, port: r.target.port, user: r.target.user },
    parameters: {},
  };
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
  const trusting = trustOptions(record.parameters);
  if (trusting.length > 0) {
    // the registry is checked as ssh checks its config, but what decides whom we trust is never used unsaid
    console.error(
      printable(`remote: session ${record.name} uses options recorded at its creation: ${trusting.join(", ")}`),
    );
  }
  return { entry, target, parameters: { ...record.parameters } };
}

/**
 * ssh_config keywords (ssh_config(5)) that decide which host keys are trusted or what runs on this
 * machine; when a recorded session brings them back, remote says so.
 */
const TRUST_OPTIONS = new Set([
  "stricthostkeychecking",
  "userknownhostsfile",
  "globalknownhostsfile",
  "knownhostscommand",
  "hostkeyalias",
  "checkhostip",
  "verifyhostkeydns",
  "proxycommand",
  "localcommand",
  "permitlocalcommand",
]);

/** `Key=Value` for each recorded option (in any map-valued parameter, such as ssh's `-o`) in {@linkcode TRUST_OPTIONS}. */
function trustOptions(parameters: Record<string, unknown>): string[] {
  const found: string[] = [];
  for (const value of Object.values(parameters)) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) continue;
    for (const [key, v] of Object.entries(value)) {
      if (TRUST_OPTIONS.has(key.toLowerCase())) found.push(`${key}=${String(v)}`);
    }
  }
  return found;
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
    // a session remote did not create has no entry, so no id
    id: record.id === 0 ? null : record.id,
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

/**
 * Get-PSSession's columns: Id Name ComputerName Transport State ConfigurationName Availability. A
 * session remote did not create has no Id (`-`) and its state reads `(foreign)`.
 */
export function formatSessions(rows: { record: SessionRecord; stale?: boolean; foreign?: boolean }[]): string {
  const headers = ["Id", "Name", "ComputerName", "Transport", "State", "ConfigurationName", "Availability"];
  const cells = rows.map(({ record, stale, foreign }) =>
    [
      foreign ? "-" : String(record.id),
      record.name,
      record.computerName,
      record.transport,
      foreign ? `${record.state} (foreign)` : stale ? `${record.state} (stale)` : record.state,
      record.configurationName ?? "",
      record.availability,
    ].map(printable)
  );
  return table(headers, cells, " ");
}
