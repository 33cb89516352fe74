/**
 * The verbs' behaviour once their parameter set is resolved: enter, new, get, connect, disconnect,
 * receive, remove, forward (invoke lives in invoke.ts). Transports fill in the transport-specific
 * parts through the contract; everything here is the same for every transport.
 *
 * @module
 */
import type { ExitStatus, HostSession, OpenContext, OpenRequest, Prompter, Target } from "../plugins/mod.ts";
import type { UserConfig } from "./config.ts";
import { RemoteError, UsageError } from "./errors.ts";
import { runInvoke } from "./invoke.ts";
import { printable, table, writeErr, writeOut } from "./output.ts";
import type { Resolution, VerbSpec } from "./parameter_set.ts";
import { Registry } from "./registry.ts";
import { wildcardToRegExp } from "./_wildcard.ts";
import { type Route, route } from "./route.ts";
import { type SessionRecord, type SessionState, transition } from "./session.ts";
import { parseEscapeChar, ptyRequestFromEnvironment, runInteractive } from "./terminal_bridge.ts";
import type { TransportEntry } from "./transport_catalog.ts";
import { exitCodeOf, loadTransport, openContext, requireCapability, sessionHost } from "./transport_use.ts";

/** Everything a verb handler is given. */
export interface VerbInput {
  verb: string;
  spec: VerbSpec;
  resolution: Resolution;
  entries: readonly TransportEntry[];
  config: UserConfig;
  prompter: Prompter;
}

/** Runs a resolved verb; returns the exit code. */
export async function runVerb(input: VerbInput): Promise<number> {
  switch (input.verb) {
    case "enter":
      return await enter(input);
    case "new":
      return await newSession(input);
    case "get":
      return await getSessions(input);
    case "connect":
      return await connect(input);
    case "disconnect":
      return await disconnect(input);
    case "receive":
      return await receive(input);
    case "remove":
      return await remove(input);
    case "invoke":
      return await runInvoke(input);
    case "forward":
      return await forward(input);
  }
  throw new UsageError(`'${input.verb}' is not a remote verb`, { hint: "all verbs: remote --help" });
}

const SELECTOR_SETS = new Set(["Id", "Name", "InstanceId"]);

/** A shutdown signal for non-interactive verbs: Ctrl-C (reason: 130) and SIGTERM (reason: 143) abort it. */
function interruptSignal(): { signal: AbortSignal; [Symbol.dispose](): void } {
  const controller = new AbortController();
  const listeners: [Deno.Signal, () => void][] = [
    ["SIGINT", () => controller.abort(new RemoteError("interrupted", "interrupted"))],
    ["SIGTERM", () => controller.abort(new RemoteError("terminated", "terminated by SIGTERM"))],
  ];
  for (const [s, listener] of listeners) Deno.addSignalListener(s, listener);
  return {
    signal: controller.signal,
    [Symbol.dispose]() {
      for (const [s, listener] of listeners) Deno.removeSignalListener(s, listener);
    },
  };
}

function targetText(resolution: Resolution): string | undefined {
  const value = resolution.values.HostName;
  return typeof value === "string" ? value : undefined;
}

function contextFor(r: Route, prompter: Prompter, signal: AbortSignal): OpenContext {
  return openContext(r.target, r.parameters, prompter, signal);
}

async function enter(input: VerbInput): Promise<number> {
  const { resolution, entries, config, prompter } = input;
  if (SELECTOR_SETS.has(resolution.set)) return await attachRecorded(input, false);
  const escapeChar = escapeCharOf(resolution);
  const r = resolution.given.every((name) => name === "EscapeChar")
    ? localRoute(entries)
    : route(resolution, entries, config, targetText(resolution));
  requireCapability(r.entry, "shell");
  const transport = await loadTransport(r.entry);
  const pty = Deno.stdin.isTerminal() ? ptyRequestFromEnvironment() : undefined;
  const subsystem = r.parameters.Subsystem;
  const request: OpenRequest = typeof subsystem === "string"
    ? { kind: "subsystem", name: subsystem }
    : { kind: "shell", pty: r.entry.manifest.capabilities.includes("pty") ? pty : undefined };
  const controller = new AbortController();
  const channel = await transport.open(contextFor(r, prompter, controller.signal), request);
  try {
    const status = await runInteractive(channel, {
      canDetach: false,
      onEscapeList: listForEscape,
      escapeChar,
    });
    return exitCodeOf(status, r.target.display);
  } finally {
    controller.abort();
    await channel[Symbol.asyncDispose]();
  }
}

/** `-e` as ssh reads it; `~` when not given. */
function escapeCharOf(resolution: Resolution): string | null {
  const value = resolution.values.EscapeChar;
  return typeof value === "string" ? parseEscapeChar(value) : "~";
}

function localRoute(entries: readonly TransportEntry[]): Route {
  const entry = entries.find((e) => e.manifest.id === "local");
  if (!entry) throw new RemoteError("notFound", "no local transport in this build", { hint: "name a host" });
  return {
    entry,
    parameters: {},
    target: { transport: "local", host: "localhost", display: "localhost" },
  };
}

async function listForEscape(): Promise<string> {
  const records = await new Registry().list();
  return formatSessions(records.map((r) => ({ record: r })));
}

async function newSession(input: VerbInput): Promise<number> {
  const { resolution, entries, config, prompter } = input;
  const r = route(resolution, entries, config, targetText(resolution));
  using interrupt = interruptSignal();
  const record = await createSession(r, contextFor(r, prompter, interrupt.signal), {
    name: typeof resolution.values.Name === "string" ? resolution.values.Name : undefined,
  });
  await writeOut(formatSessions([{ record }]));
  return 0;
}

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
 * Creates a session on the route's host and records it in the local registry: New-PSSession, and
 * Invoke-Command -InDisconnectedSession with a command. Returns the recorded session.
 *
 * @throws {UnsupportedError} when the route's transport cannot host disconnected sessions
 */
export async function createSession(
  r: Route,
  ctx: OpenContext,
  request: CreateSessionRequest = {},
): Promise<SessionRecord> {
  const host = await sessionHost(r.entry, "disconnect");
  const registry = new Registry();
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
 * The state a recorded session moves to, through the legal path of docs/sessions.md: attaching to a
 * disconnected session passes Reconnecting; staying put is no move. An illegal move is a bug.
 */
function advance(from: SessionState, to: SessionState): SessionState {
  if (from === to) return to;
  if (from === "Disconnected" && to === "Opened") return transition(transition(from, "Reconnecting"), to);
  return transition(from, to);
}

/** The state of a session its host no longer has: Broken, unless it had already ended. */
function gone(state: SessionState): SessionState {
  return state === "Closed" || state === "Broken" ? state : advance(state, "Broken");
}

/** Bound values that are safe to keep on disk: never a secret. */
function storableParameters(r: Route): Record<string, unknown> {
  const secret = new Set(r.entry.manifest.parameters.filter((p) => p.secret).map((p) => p.name));
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(r.parameters)) {
    if (secret.has(name)) continue;
    kept[name] = value instanceof URL ? value.href : value;
  }
  return kept;
}

/** The route back to a recorded session's host. */
function recordRoute(record: SessionRecord, entries: readonly TransportEntry[]): Route {
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

/** Exactly one recorded session for the selector in `resolution`. */
async function selectOne(registry: Registry, resolution: Resolution): Promise<SessionRecord> {
  const found = await selectMany(registry, resolution);
  if (found.length > 1) {
    throw new UsageError(
      `${found.length} sessions match: ${found.map((s) => `${s.name} on ${s.computerName} (Id ${s.id})`).join(", ")}`,
      { hint: "pick one with --id" },
    );
  }
  return found[0];
}

async function selectMany(registry: Registry, resolution: Resolution): Promise<SessionRecord[]> {
  const v = resolution.values;
  const selector = typeof v.Id === "number"
    ? { id: v.Id }
    : typeof v.InstanceId === "string"
    ? { instanceId: v.InstanceId }
    : { name: String(v.Name ?? "") };
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

async function connect(input: VerbInput): Promise<number> {
  return await attachRecorded(input, input.resolution.values.Force === true);
}

/** Attaches to a session found in the registry, or discovered on a host (`--computer-name`). */
async function attachRecorded(input: VerbInput, force: boolean): Promise<number> {
  const { resolution, entries, config, prompter } = input;
  const registry = new Registry();
  const escapeChar = escapeCharOf(resolution);
  let record: SessionRecord;
  let r: Route;
  using interrupt = interruptSignal();
  if (resolution.set === "ComputerName") {
    const hostText = String(resolution.values.ComputerName);
    const hostResolution = { ...resolution, set: "", given: resolution.given.filter((n) => n !== "ComputerName") };
    r = route(hostResolution, entries, config, hostText);
    const host = await sessionHost(r.entry, "list");
    const sessions = await host.list(contextFor(r, prompter, interrupt.signal));
    const wanted = typeof resolution.values.Name === "string" ? resolution.values.Name : undefined;
    const matches = sessions.filter((s) => wanted === undefined || s.name === wanted);
    if (matches.length !== 1) {
      const names = sessions.map((s) => `${s.name} (${s.state})`).join(", ") || "none";
      throw new RemoteError(
        matches.length === 0 ? "notFound" : "usage",
        wanted ? `no session named ${wanted} on ${r.target.display}` : `${r.target.host} has ${names}`,
        { hint: `sessions on ${r.target.host}: ${names}; pick one with --name` },
      );
    }
    if (matches[0].foreign) {
      throw new UsageError(
        printable(`session ${JSON.stringify(matches[0].name)} on ${r.target.display} was not created by remote`),
        { hint: "remote attaches only to sessions it created; use the host's own tools for this one" },
      );
    }
    record = await upsertDiscovered(registry, r, matches[0]);
  } else {
    record = await selectOne(registry, resolution);
    r = recordRoute(record, entries);
  }
  const host = await sessionHost(r.entry, "disconnect");
  const ctx = contextFor(r, prompter, interrupt.signal);
  if (!force && r.entry.manifest.capabilities.includes("list")) {
    const onHost = (await host.list(ctx)).find((s) => s.name === record.name);
    if (!onHost) {
      await registry.update(record.instanceId, { state: gone(record.state), availability: "None" });
      throw new RemoteError("notFound", `session ${record.name} no longer exists on ${record.computerName}`, {
        hint: `forget it with: remote remove --id ${record.id}`,
      });
    }
    if (onHost.foreign) {
      // an entry an older remote made for a session made by hand
      throw new UsageError(
        printable(`session ${JSON.stringify(record.name)} on ${record.computerName} was not created by remote`),
        {
          hint: `remote attaches only to sessions it created; forget this entry with: remote remove --id ${record.id}`,
        },
      );
    }
    if (onHost.availability === "Busy") {
      throw new RemoteError("usage", `session ${record.name} on ${record.computerName} is in use by another client`, {
        hint: `take it over with: remote connect --name ${record.name} --force`,
      });
    }
  }
  const pty = ptyRequestFromEnvironment() ?? { term: "xterm-256color", columns: 80, rows: 24 };
  const channel = await host.attach(ctx, record.name, { force, pty });
  if (record.state === "Broken" || record.state === "Closed") {
    throw new RemoteError("notFound", `session ${record.name} on ${record.computerName} is ${record.state}`, {
      hint: `forget it with: remote remove --id ${record.id}`,
    });
  }
  await registry.update(record.instanceId, {
    state: advance(record.state, "Opened"),
    availability: "Available",
    lastSeenAt: new Date().toISOString(),
  });
  let status: ExitStatus;
  try {
    status = await runInteractive(channel, {
      canDetach: typeof channel.detach === "function",
      onEscapeList: listForEscape,
      escapeChar,
    });
  } finally {
    await channel[Symbol.asyncDispose]();
  }
  const now = new Date().toISOString();
  if (status.kind === "detached" || status.kind === "lost") {
    await registry.update(record.instanceId, {
      state: advance("Opened", "Disconnected"),
      availability: "None",
      lastSeenAt: now,
    });
    if (status.kind === "detached") {
      await writeErr(
        printable(`remote: disconnected from ${record.name}; it keeps running on ${record.computerName}`) + "\n",
      );
    }
  } else {
    await registry.remove(record.instanceId);
  }
  const resume = `resume it with: remote connect --name ${record.name}`;
  if (status.kind === "lost") {
    // the transport's own hint (e.g. "reconnect") does not know the session survived: name the way back
    throw new RemoteError("lost", status.error.message, { hint: resume, cause: status.error });
  }
  return exitCodeOf(status, record.computerName, resume);
}

/**
 * Records a session found on the host, or refreshes its entry: one entry per session whatever name the
 * host was reached by (an ssh_config alias, its address), matched by instance id first. An entry made
 * under another host name keeps that name and its route; only what the host reports is refreshed.
 */
async function upsertDiscovered(registry: Registry, r: Route, s: HostSession): Promise<SessionRecord> {
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
function foreignRecord(r: Route, s: HostSession): SessionRecord {
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

async function getSessions(input: VerbInput): Promise<number> {
  const { resolution, entries, config, prompter } = input;
  const registry = new Registry();
  const v = resolution.values;
  const hosts = Array.isArray(v.ComputerName) ? v.ComputerName.map(String) : [];
  const stale = new Set<string>();
  const asked = new Set<string>();
  const seenAnywhere = new Set<string>();
  const foreign: SessionRecord[] = [];
  using interrupt = interruptSignal();
  for (const hostText of hosts) {
    const r = route({ ...resolution, set: "", given: [] }, entries, config, hostText);
    asked.add(r.target.host.toLowerCase());
    const host = await sessionHost(r.entry, "list");
    const onHost = await host.list(contextFor({ ...r, parameters: hostParameters(r, v) }, prompter, interrupt.signal));
    const seen = new Set<string>();
    for (const s of onHost) {
      if (s.foreign) foreign.push(foreignRecord(r, s));
      else seen.add((await upsertDiscovered(registry, r, s)).instanceId);
    }
    for (const id of seen) seenAnywhere.add(id);
    for (const rec of await registry.find({ computerName: r.target.host })) {
      if (!seen.has(rec.instanceId) && rec.transport === r.entry.manifest.id) {
        stale.add(rec.instanceId);
        await registry.update(rec.instanceId, { state: gone(rec.state), availability: "None" });
      }
    }
  }
  let records = [...await registry.list(), ...foreign];
  if (typeof v.Id === "number") records = records.filter((s) => s.id === v.Id);
  if (typeof v.InstanceId === "string") records = records.filter((s) => s.instanceId === v.InstanceId);
  if (typeof v.Name === "string") {
    const pattern = wildcardToRegExp(v.Name);
    records = records.filter((s) => pattern.test(s.name));
  }
  if (typeof v.State === "string") records = records.filter((s) => s.state === v.State);
  if (hosts.length > 0) {
    records = records.filter((s) => asked.has(s.computerName.toLowerCase()) || seenAnywhere.has(s.instanceId));
  }
  const rows = records.map((record) => ({ record, stale: stale.has(record.instanceId), foreign: record.id === 0 }));
  if (v.Json === true) {
    for (const { record, stale, foreign } of rows) {
      await writeOut(JSON.stringify({ ...publicRecord(record), stale, foreign }) + "\n");
    }
  } else if (rows.length > 0) {
    await writeOut(formatSessions(rows));
  }
  return 0;
}

/** The parameters given to `get` that the host's transport understands (e.g. -p, -i, -o). */
function hostParameters(r: Route, values: Record<string, unknown>): Record<string, unknown> {
  const own = new Set(r.entry.manifest.parameters.map((p) => p.name));
  return Object.fromEntries(Object.entries(values).filter(([k]) => own.has(k) && k !== "ComputerName"));
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

async function disconnect(input: VerbInput): Promise<number> {
  const { resolution, entries, prompter } = input;
  const registry = new Registry();
  const record = await selectOne(registry, resolution);
  const r = recordRoute(record, entries);
  const host = await sessionHost(r.entry, "disconnect");
  using interrupt = interruptSignal();
  const v = resolution.values;
  await host.disconnect(contextFor(r, prompter, interrupt.signal), record.name, {
    idleTimeoutMs: typeof v.IdleTimeout === "number" ? v.IdleTimeout : undefined,
    outputBufferingMode: v.OutputBufferingMode === "block" || v.OutputBufferingMode === "drop"
      ? v.OutputBufferingMode
      : undefined,
  });
  const updated = await registry.update(record.instanceId, {
    state: advance(record.state, "Disconnected"),
    availability: "None",
    lastSeenAt: new Date().toISOString(),
  });
  await writeOut(formatSessions([{ record: updated }]));
  return 0;
}

async function receive(input: VerbInput): Promise<number> {
  const { resolution, entries, prompter } = input;
  const registry = new Registry();
  const record = await selectOne(registry, resolution);
  const r = recordRoute(record, entries);
  const host = await sessionHost(r.entry, "receive");
  using interrupt = interruptSignal();
  await writeOut(await host.receive(contextFor(r, prompter, interrupt.signal), record.name));
  return 0;
}

async function remove(input: VerbInput): Promise<number> {
  const { resolution, entries, prompter } = input;
  const registry = new Registry();
  const records = await selectMany(registry, resolution);
  using interrupt = interruptSignal();
  for (const record of records) {
    const what = printable(`session ${record.name} (Id ${record.id}) on ${record.computerName}`);
    if (resolution.values.WhatIf === true) {
      await writeOut(`What if: removing ${what}\n`);
      continue;
    }
    if (resolution.values.Confirm === true) {
      const answer = await prompter.ask(`remove ${what}? [y/N] `, { what: "--confirm answer" });
      if (!/^y(es)?$/i.test(answer.trim())) continue;
    }
    const r = recordRoute(record, entries);
    const host = await sessionHost(r.entry, "remove");
    try {
      await host.remove(contextFor(r, prompter, interrupt.signal), record.name);
    } catch (error) {
      // Already gone on the host: forgetting it locally is all that is left to do.
      if (!(error instanceof RemoteError && error.code === "notFound")) throw error;
    }
    await registry.remove(record.instanceId);
  }
  return 0;
}

async function forward(input: VerbInput): Promise<number> {
  const { resolution, entries, config, prompter } = input;
  const r = route(resolution, entries, config, targetText(resolution));
  requireCapability(r.entry, "forward");
  const transport = await loadTransport(r.entry);
  const v = resolution.values;
  if (typeof v.RemotePort !== "number") {
    throw new UsageError("missing --remote-port", { hint: "e.g. --local-port 8080 --remote-port 80" });
  }
  if (!transport.forward) {
    throw new RemoteError("plugin", `plugin ${r.entry.manifest.id} advertises forward but has no forward()`, {
      hint: "report this to the plugin's author",
    });
  }
  using interrupt = interruptSignal();
  const remoteHost = typeof v.RemoteHost === "string" ? v.RemoteHost : undefined;
  try {
    await transport.forward(contextFor(r, prompter, interrupt.signal), {
      localPort: typeof v.LocalPort === "number" ? v.LocalPort : 0,
      remotePort: v.RemotePort,
      remoteHost,
      onListening: (port) =>
        console.error(
          `remote: forwarding 127.0.0.1:${port} to ${
            remoteHost ?? r.target.host
          }:${v.RemotePort} via ${r.target.display}`,
        ),
    });
  } catch (error) {
    if (interrupt.signal.aborted) return 0;
    throw error;
  }
  return 0;
}
