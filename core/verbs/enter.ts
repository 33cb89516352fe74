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
import { type Route, route } from "../route.ts";
import { ptyRequestFromEnvironment, runInteractive } from "../terminal_bridge.ts";
import { exitCodeOf, loadTransport, requireCapability } from "../transport_use.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import { attachRecorded, listForEscape } from "./_attach.ts";
import {
  escapeCharParameter,
  hostNameParameter,
  idParameter,
  instanceIdParameter,
  sessionNameParameter,
  transportParameters,
} from "./_parameters.ts";
import { contextFor, escapeCharOf, localRoute } from "./_run.ts";

const SELECTOR_SETS = new Set(["Id", "Name", "InstanceId"]);

/** The parameters `enter` declares itself; the transports' join them in {@linkcode spec}. */
export const parameters = declareParameters([
  hostNameParameter(HOST_SET),
  idParameter,
  instanceIdParameter,
  sessionNameParameter,
  escapeCharParameter,
]);

/** `remote enter`'s declaration. */
export function spec(manifests: readonly TransportManifest[]): VerbSpec {
  return {
    name: "enter",
    summary: "Starts an interactive session with a remote computer (Enter-PSSession)",
    defaultSet: HOST_SET,
    parameters: [parameters.specs[0], ...transportParameters(manifests), ...parameters.specs.slice(1)],
    examples: [
      { command: "remote enter", description: "a shell on this computer (the local transport)" },
      { command: "remote enter admin@db1", description: "a shell on db1 over SSH" },
      {
        command: "remote enter --computer-name win01 --credential CORP\\admin",
        description: "cmd on win01 over WinRM",
      },
      { command: "remote enter --target i-0123456789abcdef0", description: "a shell through AWS Session Manager" },
      { command: "remote enter --name ITTask", description: "attach to the persistent session ITTask" },
      {
        command: "remote enter db1 --configuration-name powershell",
        description: "a PowerShell session on db1 over SSH (PSRP; no host: pwsh here)",
      },
    ],
  };
}

/** A transport's parameter the core reads too: the PowerShell configuration (subsystem) to enter. */
const CONFIGURATION_NAME = "ConfigurationName";

/** Enter-PSSession: a PowerShell session over the transport's PSRP subsystem (core/powershell_enter.ts). */
async function enterPowerShell(r: Route, configuration: string, ctx: OpenContext): Promise<number> {
  const transport = await loadTransport(r.entry);
  await using channel = await transport.open(ctx, { kind: "subsystem", name: configuration });
  const { enterPowerShell } = await import("../powershell_enter.ts");
  const stdout = Deno.stdout.writable.getWriter();
  const stderr = Deno.stderr.writable.getWriter();
  const encoder = new TextEncoder();
  try {
    return await enterPowerShell(channel, r.target.display, {
      stdin: Deno.stdin.readable,
      isTerminal: Deno.stdin.isTerminal(),
      setRaw: (mode) => Deno.stdin.setRaw(mode),
      write: (text) => stdout.write(encoder.encode(text)),
      writeError: (text) => stderr.write(encoder.encode(text)),
      columns: Deno.stdout.isTerminal() ? Deno.consoleSize().columns : undefined,
    });
  } finally {
    stdout.releaseLock();
    stderr.releaseLock();
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
  const r = resolution.given.every((name) => name === "EscapeChar" || name === CONFIGURATION_NAME)
    ? localRoute(entries)
    : route(resolution, parameters.names, entries, config, params.hostName);
  if (typeof configuration === "string" && r.entry.manifest.capabilities.includes("psrp")) {
    return await enterPowerShell(r, configuration, contextFor(r, prompter, new AbortController().signal));
  }
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
      onEscapeList: listForEscape(input.registry),
      escapeChar,
    });
    return exitCodeOf(status, r.target.display);
  } finally {
    controller.abort();
    await channel[Symbol.asyncDispose]();
  }
}
