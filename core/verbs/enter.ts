/**
 * `remote enter`: an interactive session with a remote computer (Enter-PSSession), or attached to a
 * recorded persistent session with `--name`, `--id` or `--instance-id`.
 *
 * @module
 */
import {
  declareParameters,
  HOST_SET,
  type OpenContext,
  type OpenRequest,
  type TransportManifest,
} from "../../plugins/mod.ts";
import { UsageError } from "../errors.ts";
import { type Route, route } from "../route.ts";
import { ptyRequestFromEnvironment, runInteractive } from "../terminal_bridge.ts";
import { exitCodeOf, loadTransport, powershellConfiguration, requireCapability } from "../transport_use.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import { attachRecorded, listForEscape } from "./_attach.ts";
import {
  escapeCharParameter,
  hostNameParameter,
  idParameter,
  instanceIdParameter,
  letterHints,
  noCommandParameter,
  sessionNameParameter,
  transportParameters,
  viaParameter,
} from "./_parameters.ts";
import { holdForwards } from "./forward.ts";
import { contextFor, escapeCharOf, localRoute, throughVia } from "./_run.ts";

const SELECTOR_SETS = new Set(["Id", "Name", "InstanceId"]);

/** The parameters `enter` declares itself; the transports' join them in {@linkcode spec}. */
export const parameters = declareParameters([
  hostNameParameter(HOST_SET),
  idParameter,
  instanceIdParameter,
  sessionNameParameter,
  escapeCharParameter,
  noCommandParameter,
  viaParameter,
  {
    name: "ForcePseudoTerminal",
    short: "t",
    type: { kind: "switch" },
    help: "ask for a pseudo-terminal, as ssh -t (the default on a terminal, with or without a command)",
  },
  {
    name: "DisablePseudoTerminal",
    short: "T",
    type: { kind: "switch" },
    help: "no pseudo-terminal, as ssh -T: bytes pass untouched (a command's output, a binary stream)",
  },
]);

/** The command after `--`, run on a pseudo-terminal as `ssh -t host cmd` does. */
const COMMAND = "Command";

/** What `remote enter` alone may be given and still open the local session. */
const LOCAL_ONLY = new Set(["EscapeChar", COMMAND, "ForcePseudoTerminal", "DisablePseudoTerminal"]);

/** `remote enter`'s declaration. */
export function spec(manifests: readonly TransportManifest[]): VerbSpec {
  return {
    name: "enter",
    summary: "Starts an interactive session with a remote computer (Enter-PSSession)",
    defaultSet: HOST_SET,
    parameters: [parameters.specs[0], ...transportParameters(manifests), ...parameters.specs.slice(1)],
    remainder: { name: COMMAND, help: "a command to run instead of a shell, on a pseudo-terminal (ssh -t host cmd)" },
    letterHints: letterHints(manifests),
    examples: [
      { command: "remote enter", description: "a shell on this computer (the local transport)" },
      { command: "remote enter admin@db1", description: "a shell on db1 over SSH" },
      {
        command: "remote enter --computer-name win01 --credential CORP\\admin",
        description: "cmd on win01 over WinRM",
      },
      { command: "remote enter --target i-0123456789abcdef0", description: "a shell through AWS Session Manager" },
      { command: "remote enter --name ITTask", description: "attach to the persistent session ITTask" },
      { command: "remote enter db1 -- top", description: "top on db1, on a pseudo-terminal (ssh -t db1 top)" },
      {
        command: "remote enter db1 -L 5432:localhost:5432 -N",
        description: "no shell: hold the forwarding until Ctrl-C, as ssh -N",
      },
      {
        command: "remote enter db1 --configuration-name powershell",
        description: "a PowerShell session on db1 over SSH (PSRP; no host: pwsh here)",
      },
      { command: "remote enter pwsh+ssh://admin@db1", description: "the same, as a target (see: remote help psrp)" },
    ],
  };
}

/** A transport's parameter the core reads too: the PowerShell configuration (subsystem) to enter. */
const CONFIGURATION_NAME = "ConfigurationName";

/** Enter-PSSession: a PowerShell session over the transport's PSRP subsystem (core/powershell_enter.ts). */
async function enterPowerShell(
  r: Route,
  configuration: string,
  ctx: OpenContext,
  escapes: { escapeChar: string | null; onEscapeList: () => Promise<string> },
): Promise<number> {
  const transport = await loadTransport(r.entry);
  await using channel = await transport.open(ctx, { kind: "subsystem", name: configuration });
  const { endedByEscape, enterPowerShell, stdioTerminal } = await import("../powershell_enter.ts");
  const { term, release } = stdioTerminal({
    ...escapes,
    plainSession: r.entry.manifest.capabilities.includes("disconnect"),
  });
  try {
    const code = await enterPowerShell(channel, r.target.display, term);
    if (code === "terminated") throw endedByEscape(escapes.escapeChar);
    return code === "detached" ? 0 : code; // no detach is offered here
  } finally {
    release();
  }
}

/** Opens a shell through the routed transport and bridges it to the terminal. */
export async function run(input: VerbInput): Promise<number> {
  const { resolution, entries, config, prompter } = input;
  const params = parameters.read(resolution.values);
  if (SELECTOR_SETS.has(resolution.set)) {
    return await attachRecorded(input, parameters.names, { ...params, force: false });
  }
  const escapeChar = escapeCharOf(params.escapeChar);
  const configuration = resolution.values[CONFIGURATION_NAME];
  const core = new Set([...parameters.names, COMMAND]);
  const local = resolution.given.every((name) => LOCAL_ONLY.has(name) || name === CONFIGURATION_NAME);
  const direct = local ? localRoute(entries) : route(resolution, core, entries, config, params.hostName, "ignore");
  // --via, or the host's `via` in the config: the via connection outlives the channel, so it is closed after it
  await using routed = local
    ? { route: direct, async [Symbol.asyncDispose]() {} }
    : await throughVia(input, direct, params.via, core);
  const r = routed.route;
  // --configuration-name, else the one a pwsh+ssh:// target asks for
  const named = typeof configuration === "string" ? configuration : r.configuration;
  const powershell = powershellConfiguration(r.entry, named);
  // a transport's default configuration (WinRM's) applies to a session; a command after -- runs as before
  if (powershell !== undefined && (named !== undefined || resolution.values[COMMAND] === undefined)) {
    return await enterPowerShell(r, powershell, contextFor(r, prompter, new AbortController().signal), {
      escapeChar,
      onEscapeList: listForEscape(input.registry),
    });
  }
  if (params.noCommand) return await holdForwards(input, r, {});
  const command = commandOf(resolution.values[COMMAND]);
  requireCapability(r.entry, command.length > 0 ? "exec" : "shell");
  const transport = await loadTransport(r.entry);
  if (params.forcePseudoTerminal && params.disablePseudoTerminal) {
    throw new UsageError("-t and -T contradict each other", { hint: "give one of them" });
  }
  // ssh -t without a local terminal says so and goes on without one (ssh -tt has no equivalent here)
  if (params.forcePseudoTerminal && !Deno.stdin.isTerminal()) {
    await input.io.err("Pseudo-terminal will not be allocated because stdin is not a terminal.\n");
  }
  const wantPty = !params.disablePseudoTerminal && r.entry.manifest.capabilities.includes("pty");
  const pty = wantPty && Deno.stdin.isTerminal() ? ptyRequestFromEnvironment() : undefined;
  const subsystem = r.parameters.Subsystem;
  const request: OpenRequest = typeof subsystem === "string"
    ? { kind: "subsystem", name: subsystem }
    : command.length > 0
    ? { kind: "exec", command: command.join(" "), pty }
    : { kind: "shell", pty };
  const controller = new AbortController();
  const channel = await transport.open(contextFor(r, prompter, controller.signal), request);
  try {
    const status = await runInteractive(channel, {
      canDetach: false,
      // the transport keeps sessions, only not this one: ~& says how to get one that it can keep
      plainSession: r.entry.manifest.capabilities.includes("disconnect"),
      onEscapeList: listForEscape(input.registry),
      escapeChar,
    });
    return exitCodeOf(status, r.target.display);
  } finally {
    controller.abort();
    await channel[Symbol.asyncDispose]();
  }
}

/** The remainder as bound: the words after `--`. */
function commandOf(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}
