/**
 * Loading a transport once per run, checking capabilities before any call, building the context a
 * transport is opened with, and turning an exit status into remote's exit code.
 *
 * @module
 */
import type { Capability, ExitStatus, OpenContext, Prompter, SessionHost, Target, Transport } from "../plugins/mod.ts";
import { RemoteError, UnsupportedError } from "./errors.ts";
import { printable } from "./output.ts";
import type { TransportEntry } from "./transport_catalog.ts";

const loaded = new Map<TransportEntry, Promise<Transport>>();

/** Imports (or starts) the transport behind `entry`, once per run. */
export function loadTransport(entry: TransportEntry): Promise<Transport> {
  let transport = loaded.get(entry);
  if (!transport) {
    transport = entry.load();
    loaded.set(entry, transport);
  }
  return transport;
}

const CAPABILITY_WORDS: Record<Capability, string> = {
  shell: "interactive shells",
  exec: "running commands",
  pty: "pseudo-terminals",
  "pty-resize": "terminal resizing",
  signals: "signals",
  disconnect: "disconnected sessions",
  list: "listing sessions on the host",
  receive: "receiving output of disconnected sessions",
  remove: "removing sessions",
  forward: "port forwarding",
  copy: "file copy",
  psrp: "PowerShell remoting (PSRP)",
  dial: "carrying another connection (dial)",
  via: "connecting through another transport (--via)",
};

/**
 * Throws a clear error when the transport lacks `capability`.
 *
 * @throws {UnsupportedError} naming transport and capability
 */
export function requireCapability(entry: TransportEntry, capability: Capability, why?: string): void {
  if (!entry.manifest.capabilities.includes(capability)) {
    throw new UnsupportedError(entry.manifest.id, CAPABILITY_WORDS[capability], {
      hint: why ?? entry.manifest.unsupportedReasons?.[capability] ??
        `see which transports can: remote plugin list`,
    });
  }
}

/**
 * The PowerShell configuration a run opens over PSRP on this transport, or undefined when it runs the
 * transport's own shell: the one given with `--configuration-name`, else the manifest's default (WinRM's
 * `Microsoft.PowerShell`), unless that name is one of the transport's native shells (WinRM's `cmd`).
 */
export function powershellConfiguration(entry: TransportEntry, given: unknown): string | undefined {
  const m = entry.manifest;
  if (!m.capabilities.includes("psrp")) return undefined;
  const name = typeof given === "string" ? given : m.powershell?.default;
  if (name === undefined) return undefined;
  if (m.powershell?.native?.some((n) => n.toLowerCase() === name.toLowerCase())) return undefined;
  return name;
}

/** The transport's session-host operations, after checking the capability. */
export async function sessionHost(entry: TransportEntry, capability: Capability): Promise<SessionHost> {
  requireCapability(entry, capability);
  const transport = await loadTransport(entry);
  if (!transport.sessions) {
    throw new RemoteError("plugin", `plugin ${entry.manifest.id} advertises ${capability} but has no sessions part`, {
      hint: "report this to the plugin's author",
    });
  }
  return transport.sessions;
}

/**
 * The context a transport is opened with; notices go to stderr, one line each, with control characters
 * escaped: a notice may carry a host's or a plugin's text (an SSM CustomerMessage, a relayed plugin notice).
 */
export function openContext(
  target: Target,
  parameters: Record<string, unknown>,
  prompt: Prompter,
  signal: AbortSignal,
  /** `--via`'s stream opener (core/via.ts) */
  dial?: OpenContext["dial"],
): OpenContext {
  return {
    target,
    parameters,
    signal,
    prompt,
    notice: (line) => console.error(printable(line)),
    ...(dial ? { dial } : {}),
  };
}

/**
 * remote's exit code for how the remote side ended: the remote command's own code, 128+n for a
 * signal, 0 for a detach; a lost link is remote's failure.
 *
 * @throws {RemoteError} with code "lost" when the link broke
 */
export function exitCodeOf(status: ExitStatus, target: string, reconnectHint?: string): number {
  switch (status.kind) {
    case "exited":
      return status.code;
    case "signaled":
      return status.code;
    case "detached":
      return 0;
    case "lost":
      if (status.error instanceof RemoteError) throw status.error;
      throw new RemoteError("lost", `connection to ${target} lost: ${status.error.message}`, {
        hint: reconnectHint ?? "check the network and run the command again",
        cause: status.error,
      });
  }
}
