/**
 * Attaching to a persistent session, found in the registry or discovered on a host: `remote connect`,
 * and `remote enter --name/--id/--instance-id`.
 *
 * @module
 */
import type { Channel, ExitStatus } from "../../plugins/mod.ts";
import { RemoteError, UsageError } from "../errors.ts";
import { printable } from "../output.ts";
import type { Registry } from "../registry.ts";
import { type CoreParameters, type Route, route } from "../route.ts";
import type { SessionRecord } from "../session.ts";
import {
  advance,
  formatSessions,
  gone,
  recordRoute,
  selectOne,
  type SessionChoice,
  upsertDiscovered,
} from "../session_records.ts";
import { ptyRequestFromEnvironment, runInteractive } from "../terminal_bridge.ts";
import { exitCodeOf, powershellConfiguration, sessionHost } from "../transport_use.ts";
import type { VerbInput } from "./_verb.ts";
import { hostRoute } from "./_host_route.ts";
import { configuredVia, contextFor, escapeCharOf, interruptSignal, sessionChoice } from "./_run.ts";

/** The session list the escape `~#` prints while attached. */
export function listForEscape(registry: () => Promise<Registry>): () => Promise<string> {
  return async () => formatSessions((await (await registry()).list()).map((r) => ({ record: r })));
}

/** Which session to attach to, and how. */
export interface Attachment extends SessionChoice {
  /** with the `ComputerName` set: the host to discover the session on */
  computerName?: string;
  escapeChar?: string;
  /** take the session over from another client */
  force: boolean;
}

/**
 * Attaches to a session found in the registry, or discovered on a host (`--computer-name`), and
 * keeps the registry in step with how the attachment ended. `core` are the calling verb's own
 * parameters (see `route()`).
 */
export async function attachRecorded(input: VerbInput, core: CoreParameters, attachment: Attachment): Promise<number> {
  const { resolution, entries, config, prompter } = input;
  const { force } = attachment;
  const registry = await input.registry();
  const escapeChar = escapeCharOf(attachment.escapeChar);
  let record: SessionRecord;
  let r: Route;
  using interrupt = interruptSignal();
  if (resolution.set === "ComputerName") {
    r = attachment.computerName === undefined
      ? route({ ...resolution, set: "" }, core, entries, config, attachment.computerName)
      : hostRoute(input, core, attachment.computerName, true);
    const host = await sessionHost(r.entry, "list");
    const sessions = await host.list(contextFor(r, prompter, interrupt.signal));
    const wanted = attachment.name;
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
    record = await selectOne(registry, sessionChoice(attachment));
    r = recordRoute(record, entries);
  }
  // the host's via in the config, if any (as `new` went): closed once the attachment ends
  const via = resolution.values.Via;
  await using routed = await configuredVia(input, r, typeof via === "string" ? via : undefined);
  r = routed.route;
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
    await channel[Symbol.asyncDispose]();
    throw new RemoteError("notFound", `session ${record.name} on ${record.computerName} is ${record.state}`, {
      hint: `forget it with: remote remove --id ${record.id}`,
    });
  }
  await registry.update(record.instanceId, {
    state: advance(record.state, "Opened"),
    availability: "Available",
    lastSeenAt: new Date().toISOString(),
  });
  if (typeof record.configurationName === "string" && powershellConfiguration(r.entry, record.configurationName)) {
    // a PowerShell session (Connect-PSSession, then Enter-PSSession): the channel speaks PSRP
    let code: number | "detached" | "terminated";
    try {
      // Connect-PSSession, then Receive-PSSession: what the session's commands printed while nobody was
      // connected (to the end of a command still running), once, before the prompt
      if (r.entry.manifest.capabilities.includes("receive")) {
        await input.io.out(await host.receive(ctx, record.name));
      }
      code = await enterPowerShellSession(channel, record.computerName, {
        escapeChar,
        onEscapeList: listForEscape(input.registry),
      });
    } catch (error) {
      await registry.update(record.instanceId, { state: advance("Opened", "Disconnected"), availability: "None" });
      throw error;
    } finally {
      await channel[Symbol.asyncDispose]();
    }
    if (code === "detached") {
      await registry.update(record.instanceId, {
        state: advance("Opened", "Disconnected"),
        availability: "None",
        lastSeenAt: new Date().toISOString(),
      });
      await input.io.err(
        printable(`remote: disconnected from ${record.name}; it keeps running on ${record.computerName}`) + "\n",
      );
      return 0;
    }
    // leaving the session closes its pool, which ends it on the host (Exit-PSSession on a connected session);
    // so does ~., at once
    await registry.remove(record.instanceId);
    if (code === "terminated") throw (await import("../powershell_enter.ts")).endedByEscape(escapeChar);
    return code;
  }
  let status: ExitStatus;
  try {
    status = await runInteractive(channel, {
      canDetach: typeof channel.detach === "function",
      onEscapeList: listForEscape(input.registry),
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
      await input.io.err(
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

/** Enter-PSSession on an attached PowerShell session's channel, on this process's terminal. */
async function enterPowerShellSession(
  channel: Channel,
  display: string,
  escapes: { escapeChar: string | null; onEscapeList: () => Promise<string> },
): Promise<number | "detached" | "terminated"> {
  const { enterPowerShell, stdioTerminal } = await import("../powershell_enter.ts");
  const { term, release } = stdioTerminal({
    detach: channel.detach ? async () => await channel.detach!() : undefined,
    ...escapes,
  });
  try {
    return await enterPowerShell(channel, display, term);
  } finally {
    release();
  }
}
