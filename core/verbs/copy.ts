/**
 * `remote copy`: files between this computer and a host, with scp's operands (`host:path`), `-r`, `-p`,
 * `--resume`, a progress line on a terminal, and `--name` to copy to or from a persistent session's host
 * (PowerShell's Copy-Item -ToSession/-FromSession). The transport does the copy through its `copy` hook.
 *
 * @module
 */
import {
  type CopyRequest,
  declareParameters,
  HOST_SET,
  type ParameterSpec,
  parseCopyOperand,
  type TransportManifest,
} from "../../plugins/mod.ts";
import { RemoteError, UsageError } from "../errors.ts";
import { ProgressBar } from "../progress_bar.ts";
import { type Route, route } from "../route.ts";
import { recordRoute, selectOne } from "../session_records.ts";
import { loadTransport, requireCapability } from "../transport_use.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import { sessionNameParameter, transportParameters, viaParameter } from "./_parameters.ts";
import { configuredVia, contextFor, interruptSignal, throughVia } from "./_run.ts";

/** The parameters `copy` declares itself; the copying transports' join them in {@linkcode spec}. */
export const parameters = declareParameters([
  {
    name: "Path",
    type: { kind: "list", split: false },
    sets: { [HOST_SET]: { position: 0, mandatory: true }, Name: { position: 0, mandatory: true } },
    help: "SRC... DEST: the sources, then the destination; the remote side is written [user@]host:path, as scp",
    valueName: "<path>",
  },
  {
    name: "Recurse",
    aliases: ["recursive"],
    short: "r",
    type: { kind: "switch" },
    help: "copy folders and what they hold, as scp -r",
  },
  {
    name: "Preserve",
    short: "p",
    type: { kind: "switch" },
    help: "keep modes and access and modification times, as scp -p",
  },
  {
    name: "Resume",
    type: { kind: "switch" },
    help: "continue a partial destination file that is a prefix of its source (checked by SHA-256)",
  },
  {
    ...sessionNameParameter,
    help: "copy to or from the host of this persistent session; write its remote paths as <name>:path",
  },
  viaParameter,
]);

/** scp's letters win in `copy`: a transport's -p (ssh's Port) is -P here, as scp spells it; ssh's -l, -s none. */
function scpSpelling(p: ParameterSpec, taken: ReadonlySet<string>): ParameterSpec {
  if (p.short === undefined || !taken.has(p.short) && p.name !== "UserName" && p.name !== "Subsystem") return p;
  const upper = p.short.toUpperCase();
  const { short: _, ...rest } = p;
  return p.name === "Port" && !taken.has(upper) ? { ...rest, short: upper } : rest;
}

/** Transport parameters that make no sense for a copy (forwardings, a subsystem). */
const NOT_FOR_COPY = new Set(["LocalForward", "RemoteForward", "DynamicForward", "Subsystem"]);

/** `remote copy`'s declaration. */
export function spec(manifests: readonly TransportManifest[]): VerbSpec {
  const own = parameters.specs;
  const taken = new Set(own.flatMap((p) => "short" in p && p.short ? [p.short] : []));
  const connecting = transportParameters(manifests.filter((m) => m.capabilities.includes("copy")))
    .filter((p) => !NOT_FOR_COPY.has(p.name))
    .map((p) => scpSpelling(p, taken));
  return {
    name: "copy",
    summary: "Copies files to or from a remote computer, as scp (Copy-Item -ToSession/-FromSession)",
    defaultSet: HOST_SET,
    parameters: [own[0], ...connecting, ...own.slice(1)],
    examples: [
      { command: "remote copy report.pdf db1:", description: "into the login folder on db1" },
      { command: "remote copy -r site/ admin@db1:/var/www/", description: "a folder, recursively" },
      { command: "remote copy -p 'db1:/var/log/*.log' logs/", description: "a remote glob, keeping modes and times" },
      { command: "remote copy --resume db1:/backups/big.tar.gz .", description: "continue an interrupted download" },
      { command: "remote copy --name ITTask build.tgz ITTask:/tmp/", description: "to a persistent session's host" },
    ],
  };
}

const SHAPE = "remote copy SRC... [user@]host:DEST, or remote copy [user@]host:SRC... DEST";

/** Sorts the operands into a request: every source on one side, the destination on the other, one host. */
function plan(paths: readonly string[]): { host: string; request: Omit<CopyRequest, "remoteName"> } {
  if (paths.length < 2) throw new UsageError("missing destination", { hint: SHAPE });
  const operands = paths.map(parseCopyOperand);
  const dest = operands[operands.length - 1];
  const sources = operands.slice(0, -1);
  const direction = dest.host !== undefined ? "upload" : "download";
  if (direction === "upload" && sources.some((s) => s.host !== undefined)) {
    throw new UsageError("copy between two remote paths is not supported", {
      hint: "copy to this computer first, then on",
    });
  }
  if (direction === "download" && sources.some((s) => s.host === undefined)) {
    throw new UsageError(
      sources.every((s) => s.host === undefined)
        ? "no remote operand: copy between two local paths is not remote's business"
        : "sources on both sides",
      { hint: `write the remote side as host:path: ${SHAPE}` },
    );
  }
  const hosts = new Set(operands.flatMap((o) => o.host === undefined ? [] : [o.host]));
  if (hosts.size > 1) {
    throw new UsageError(`sources on several hosts: ${[...hosts].join(", ")}`, { hint: "copy from one host a run" });
  }
  const host = [...hosts][0];
  if (host === "") throw new UsageError(`no host before the colon in ${paths.find((p) => p.startsWith(":"))}`);
  return {
    host,
    request: { direction, sources: sources.map((s) => s.path), destination: dest.path },
  };
}

/** Copies; exits 0, or with the engine's code (253 for a file problem) and one line. */
export async function run(input: VerbInput): Promise<number> {
  const { resolution, entries, config, prompter } = input;
  const params = parameters.read(resolution.values);
  const { host, request } = plan(params.path ?? []);
  const fromRecord = async (name: string): Promise<Route> => {
    const record = await selectOne(await input.registry(), { name });
    if (host !== name && host !== record.computerName) {
      throw new UsageError(`${host} is not the host of session ${name} (${record.computerName})`, {
        hint: `write its remote paths as ${name}:path`,
      });
    }
    return recordRoute(record, entries);
  };
  // --via (or the host's via in the config): its connection is closed once the copy is done
  await using routed = params.name !== undefined
    ? await configuredVia(input, await fromRecord(params.name), params.via)
    : await throughVia(
      input,
      route(resolution, parameters.names, entries, config, host, "ignore"),
      params.via,
      parameters.names,
    );
  const r = routed.route;
  requireCapability(r.entry, "copy");
  const transport = await loadTransport(r.entry);
  if (!transport.copy) {
    throw new RemoteError("plugin", `plugin ${r.entry.manifest.id} advertises copy but has no copy()`, {
      hint: "report this to the plugin's author",
    });
  }
  const encoder = new TextEncoder();
  // -q is the transport's (ssh -q, scp -q): it silences the transport's notices, and the progress line here
  const bar = r.parameters.Quiet === true || !Deno.stderr.isTerminal() ? undefined : new ProgressBar(
    (text) => void Deno.stderr.writeSync(encoder.encode(text)),
    () => Deno.consoleSize().columns,
  );
  using interrupt = interruptSignal();
  try {
    await transport.copy(contextFor(r, prompter, interrupt.signal), {
      ...request,
      recursive: params.recurse,
      preserve: params.preserve,
      resume: params.resume,
      remoteName: host,
      progress: bar?.update,
    });
  } finally {
    bar?.finish();
  }
  return 0;
}
