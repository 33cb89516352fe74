/**
 * `remote get`: the sessions this computer knows, merged with what the hosts named report
 * (Get-PSSession).
 *
 * @module
 */
import {
  declareParameters,
  type ParameterSpec,
  RemoteError,
  type TransportEntry,
  type TransportManifest,
  UsageError,
  wildcardToRegExp,
} from "../../plugins/mod.ts";
import { printable, table } from "../output.ts";
import type { Route } from "../route.ts";
import type { SessionRecord } from "../session.ts";
import { foreignRecord, formatSessions, gone, publicRecord, upsertDiscovered } from "../session_records.ts";
import { loadTransport, openContext, sessionHost } from "../transport_use.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import { hostRoute } from "./_host_route.ts";
import { jsonParameter, transportParameters, viaParameter } from "./_parameters.ts";
import { contextFor, interruptSignal } from "./_run.ts";

/** The parameters `get` declares itself; the options of the transports that list sessions join them. */
export const parameters = declareParameters([
  {
    name: "ComputerName",
    aliases: ["cn"],
    type: { kind: "list" },
    help: "also ask these hosts for their sessions",
  },
  { name: "Name", type: { kind: "string" }, help: "only sessions whose name matches this pattern (* and ?)" },
  { name: "Id", type: { kind: "int", min: 1 }, help: "only the session with this Id" },
  { name: "InstanceId", type: { kind: "guid" }, help: "only the session with this InstanceId" },
  {
    name: "State",
    type: { kind: "enum", values: ["Opened", "Disconnected", "Broken", "Closed"] },
    help: "only sessions in this state",
  },
  {
    ...viaParameter,
    help: "with --container: list the targets of an engine on another host, e.g. --via admin@host (ssh)",
  },
  jsonParameter,
]);

/** `remote get`'s declaration. */
export function spec(manifests: readonly TransportManifest[]): VerbSpec {
  const own: ParameterSpec[] = [
    ...parameters.specs.slice(0, -1),
    ...transportParameters(manifests.filter((m) => m.capabilities.includes("list")), "__AllParameterSets")
      .filter((p) => p.name !== "ComputerName")
      .map((p) => ({ ...p, sets: undefined })),
  ];
  // `--container`: a transport's potential targets, with the parameters its listing reads (e.g. --docker-host)
  for (const m of manifests) {
    if (!m.targets) continue;
    const listing = m.targets;
    const taken = (name: string) => own.some((p) => p.name === name);
    if (!taken(listing.option)) own.push({ name: listing.option, type: { kind: "switch" }, help: listing.help });
    for (const p of m.parameters) {
      if (listing.parameters.includes(p.name) && !taken(p.name)) own.push({ ...p, sets: undefined });
    }
  }
  return {
    name: "get",
    summary: "Lists sessions: the local registry merged with what the hosts report (Get-PSSession)",
    parameters: [...own, parameters.specs[parameters.specs.length - 1]],
    examples: [
      { command: "remote get", description: "sessions this computer knows" },
      { command: "remote get --computer-name db1 --json", description: "db1's sessions, as JSON" },
      { command: "remote get --container", description: "the running containers one can enter" },
    ],
  };
}

/** Asks the hosts named, merges their answer into the registry, and prints the sessions that match. */
export async function run(input: VerbInput): Promise<number> {
  const { resolution, entries, prompter } = input;
  const lister = entries.find((e) => e.manifest.targets && resolution.values[e.manifest.targets.option] === true);
  if (lister) return await listTargets(input, lister);
  if (resolution.values.Via !== undefined) {
    throw new UsageError("--via lists a transport's targets through another host", {
      hint: "add the listing, e.g. remote get --container --via admin@host",
    });
  }
  const registry = await input.registry();
  const v = resolution.values;
  const params = parameters.read(v);
  const hosts = [...params.computerName ?? [], ...ownTargets(entries, v)];
  const stale = new Set<string>();
  const asked = new Set<string>();
  const seenAnywhere = new Set<string>();
  const foreign: SessionRecord[] = [];
  using interrupt = interruptSignal();
  for (const hostText of hosts) {
    const r = hostRoute(input, parameters.names, hostText);
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
  const { id, instanceId, name, state } = params;
  if (id !== undefined) records = records.filter((s) => s.id === id);
  if (instanceId !== undefined) records = records.filter((s) => s.instanceId === instanceId);
  if (name !== undefined) {
    const pattern = wildcardToRegExp(name, { ignoreCase: true });
    records = records.filter((s) => pattern.test(s.name));
  }
  if (state !== undefined) records = records.filter((s) => s.state === state);
  if (hosts.length > 0) {
    records = records.filter((s) => asked.has(s.computerName.toLowerCase()) || seenAnywhere.has(s.instanceId));
  }
  const rows = records.map((record) => ({ record, stale: stale.has(record.instanceId), foreign: record.id === 0 }));
  if (params.json === true) {
    for (const { record, stale, foreign } of rows) {
      await input.io.out(JSON.stringify({ ...publicRecord(record), stale, foreign }) + "\n");
    }
  } else if (rows.length > 0) {
    await input.io.out(formatSessions(rows));
  }
  return 0;
}

/**
 * Hosts named by a listing transport's own target option (`remote get --target i-…` for ssm), as
 * `<id>://<value>`: asked like `--computer-name ssm://i-…`, never silently ignored.
 */
function ownTargets(entries: readonly TransportEntry[], values: Record<string, unknown>): string[] {
  const found: string[] = [];
  for (const { manifest } of entries) {
    if (!manifest.capabilities.includes("list") || !manifest.defaultSet) continue;
    const own = manifest.parameters.find((p) => {
      const at = p.sets?.[manifest.defaultSet!];
      // get's own --computer-name is read above, whoever else claims it
      return at?.mandatory === true && at.position === 0 && !parameters.specs.some((g) => g.name === p.name);
    });
    const value = own ? values[own.name] : undefined;
    for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
      found.push(`${manifest.id}://${String(one)}`);
    }
  }
  return found;
}

/** The parameters given to `get` that the host's transport understands (e.g. -p, -i, -o). */
function hostParameters(r: Route, values: Record<string, unknown>): Record<string, unknown> {
  const own = new Set(r.entry.manifest.parameters.map((p) => p.name));
  return Object.fromEntries(Object.entries(values).filter(([k]) => own.has(k) && k !== "ComputerName"));
}

/** `remote get --container`: the transport's potential targets as a table, or one JSON object a line. */
async function listTargets(input: VerbInput, entry: TransportEntry): Promise<number> {
  const listing = entry.manifest.targets!;
  const transport = await loadTransport(entry);
  if (!transport.targets) {
    throw new RemoteError("plugin", `plugin ${entry.manifest.id} declares targets but has no targets()`, {
      hint: "report this to the plugin's author",
    });
  }
  const values = input.resolution.values;
  const given = Object.fromEntries(listing.parameters.filter((n) => n in values).map((n) => [n, values[n]]));
  const target = { transport: entry.manifest.id, host: "", display: `${entry.manifest.id}://` };
  // --via: the listing's engine is on the via host; its connection is closed once the listing is printed
  const viaText = values.Via;
  const direct: Route = { entry, target, parameters: given };
  await using via = typeof viaText === "string"
    ? (await import("../via.ts")).routeVia(
      [viaText],
      [direct],
      input.resolution,
      new Set(input.resolution.given), // get's own options and the listing's stay here; the via reads its config
      input.entries,
      input.config,
      input.prompter,
    )
    : undefined;
  const dial = via?.bind(direct).dial;
  using interrupt = interruptSignal();
  const { columns, rows } = await transport.targets(
    openContext(target, given, input.prompter, interrupt.signal, dial),
  );
  if (values.Json === true) {
    for (const row of rows) await input.io.out(JSON.stringify(row) + "\n");
  } else if (rows.length > 0) {
    await input.io.out(table(columns, rows.map((row) => columns.map((c) => printable(row[c] ?? "")))));
  }
  return 0;
}
