/**
 * `remote invoke`: one command on one or many computers (Invoke-Command). The fan-out itself lives in
 * `core/invoke.ts`; this module reads the command line and routes each target.
 *
 * @module
 */
import { declareParameters, HOST_SET, type ParameterSpec, type TransportManifest } from "../../plugins/mod.ts";
import type { Resolution } from "../parameter_set.ts";
import { UsageError } from "../errors.ts";
import { readHostFile, runInvoke } from "../invoke.ts";
import { hostMapping } from "../config.ts";
import { refuseUnusedOptions, type Route, route } from "../route.ts";
import { powershellConfiguration, requireCapability } from "../transport_use.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import { THROTTLE_LIMIT } from "../throttle_limit.ts";
import { hostNamesParameter, jsonParameter, letterHints, transportParameters, viaParameter } from "./_parameters.ts";
import { localRoute } from "./_run.ts";

/** The parameters `invoke` declares itself; the transports' join them in {@linkcode spec}. */
export const parameters = declareParameters([
  hostNamesParameter(HOST_SET),
  {
    name: "HostFile",
    type: { kind: "string" },
    help: "read targets from this file, one per line (- for stdin)",
    valueName: "<file>",
  },
  {
    name: "ThrottleLimit",
    type: { kind: "int", min: THROTTLE_LIMIT.min, max: THROTTLE_LIMIT.max },
    help: "run on at most this many hosts at once",
    default: String(THROTTLE_LIMIT.default),
  },
  jsonParameter,
  { name: "NoReuse", type: { kind: "switch" }, help: "open a new connection rather than reuse a master" },
  {
    name: "InDisconnectedSession",
    type: { kind: "switch" },
    help: "start the command in a new persistent session on each host and return at once (see remote receive)",
  },
  {
    name: "SessionName",
    type: { kind: "string" },
    help: "with --in-disconnected-session: the sessions' name (default: Session<N>)",
  },
  {
    name: "ArgumentList",
    aliases: ["args"],
    type: { kind: "list" },
    help: "with --configuration-name powershell: the script's arguments ($args), repeatable",
    valueName: "<value>",
  },
  viaParameter,
]);

/** A transport's parameter the core reads too: the PowerShell configuration (subsystem) to run in. */
const CONFIGURATION_NAME = "ConfigurationName";

/** The words after `--`: the command to run. */
const COMMAND = "Command";

/** What stays with the core: `invoke`'s own parameters and its command. */
const core = new Set([...parameters.names, COMMAND]);

/** `remote invoke`'s declaration. */
export function spec(manifests: readonly TransportManifest[]): VerbSpec {
  const connecting = transportParameters(manifests).map(manyTargets);
  return {
    name: "invoke",
    summary: "Runs a command on one or many computers (Invoke-Command)",
    defaultSet: HOST_SET,
    parameters: [parameters.specs[0], ...connecting, ...parameters.specs.slice(1)],
    remainder: {
      name: COMMAND,
      help: "the command to run, after --",
      mandatorySets: [...new Set([HOST_SET, ...connecting.flatMap((p) => Object.keys(p.sets ?? {}))])],
    },
    letterHints: letterHints(manifests),
    examples: [
      { command: "remote invoke db1 db2 -- uptime", description: "uptime on two hosts" },
      { command: "remote invoke --computer-name win01 -- ipconfig", description: "ipconfig over WinRM" },
      {
        command: "remote invoke db1 db2 --configuration-name powershell -- 'Get-Process | Select -First 3'",
        description: "a PowerShell script on two hosts over SSH (PSRP)",
      },
      {
        command: "remote invoke db1 db2 --in-disconnected-session -- ./nightly.sh",
        description: "start a long job in a session on each host; collect it later with remote receive",
      },
    ],
  };
}

/** Routes every target, checks each transport can run the command, then fans it out. */
export async function run(input: VerbInput): Promise<number> {
  const { resolution, entries, config } = input;
  const params = parameters.read(resolution.values);
  const command = commandOf(resolution.values[COMMAND]);
  if (command.length === 0) {
    throw new UsageError("no command to run", { hint: "put it after --, e.g. remote invoke db1 -- uptime" });
  }
  const targets = [...params.hostName ?? []];
  if (params.hostFile !== undefined) targets.push(...await readHostFile(params.hostFile));
  const configuration = resolution.values[CONFIGURATION_NAME];
  // a transport with a default configuration (WinRM: Microsoft.PowerShell) runs PowerShell without one given
  const powershell = {
    configuration: typeof configuration === "string" ? configuration : undefined,
    argumentList: [...params.argumentList ?? []],
  };
  // PowerShell with no target is PowerShell on this computer (Enter-PSSession's Example 1), via the local transport
  const local = targets.length === 0 && typeof configuration === "string" && resolution.set === HOST_SET;
  const owned = ownTargets(resolution, entries.map((e) => e.manifest));
  // options are checked once the vias are known: an option of the via's transport is not a stray one
  const direct: Route[] = local
    ? [localRoute(entries)]
    : targets.length > 0
    ? targets.map((t) => route(resolution, core, entries, config, t, "ignore"))
    : owned.length > 0
    ? owned.map((r) => route(r, core, entries, config, undefined, "ignore"))
    : [route(resolution, core, entries, config, undefined, "ignore")];
  // --via, or each host's `via` in the config: the via connections are closed once every target is done
  const vias = local ? [undefined] : direct.map((r) => params.via ?? hostMapping(config, r.target.host)?.via);
  await using via = vias.every((v) => v === undefined)
    ? undefined
    : (await import("../via.ts")).routeVia(vias, direct, resolution, core, entries, config, input.prompter);
  const routes = via ? direct.map((r) => via.bind(r)) : direct;
  if (!via && !local) {
    const manifests = entries.map((e) => e.manifest);
    // the routed host, not the target as typed: that may carry a password (user:secret@host)
    const example = routes[0].target.host;
    refuseUnusedOptions(resolution, core, manifests, routes.map((r) => r.entry.manifest), example);
  }
  const disconnected = params.inDisconnectedSession === true;
  if (params.sessionName !== undefined && !disconnected) {
    throw new UsageError("--session-name names the sessions of --in-disconnected-session", {
      hint: "add --in-disconnected-session, or drop --session-name",
    });
  }
  if (
    params.argumentList !== undefined &&
    routes.some((r) => powershellConfiguration(r.entry, configuration ?? r.configuration) === undefined)
  ) {
    throw new UsageError("--argument-list passes arguments to a PowerShell script", {
      hint: "add --configuration-name powershell, or put the arguments in the command",
    });
  }
  // before anything starts: a host that cannot keep a disconnected session fails the whole run
  for (const r of routes) requireCapability(r.entry, disconnected ? "disconnect" : "exec");
  return await runInvoke({
    routes,
    command: command.join(" "),
    throttle: params.throttleLimit ?? config.defaults.throttleLimit ?? THROTTLE_LIMIT.default,
    json: params.json === true,
    reuse: params.noReuse !== true,
    disconnected,
    sessionName: params.sessionName,
    prompter: input.prompter,
    registry: input.registry,
    powershell,
  });
}

/** The remainder as bound: the words after `--` (`string[]`). */
function commandOf(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

/**
 * A transport's target parameter (mandatory at position 0 of a set it owns: `--container-id`, `--computer-name`)
 * takes several values in `invoke`, as Invoke-Command's `-ContainerId` and `-ComputerName` are `string[]`:
 * `remote invoke --container-id a b c -- cmd` runs on each.
 */
function manyTargets(p: ParameterSpec): ParameterSpec {
  const owned = Object.entries(p.sets ?? {}).some(([set, at]) =>
    set !== HOST_SET && at.mandatory === true && at.position === 0
  );
  return owned && p.type.kind === "string" ? { ...p, type: { kind: "list" } } : p;
}

/** One resolution per value of a transport's target list ({@linkcode manyTargets}), each with that one value. */
function ownTargets(resolution: Resolution, manifests: readonly TransportManifest[]): Resolution[] {
  const target = manifests.flatMap((m) => m.parameters).find((p) => {
    const at = p.sets?.[resolution.set];
    return resolution.set !== HOST_SET && at?.mandatory === true && at.position === 0;
  });
  const value = target ? resolution.values[target.name] : undefined;
  if (!target || !Array.isArray(value)) return [];
  return value.map((one) => ({ ...resolution, values: { ...resolution.values, [target.name]: String(one) } }));
}
