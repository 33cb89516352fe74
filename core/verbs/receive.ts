/**
 * `remote receive`: print what a disconnected session printed, without attaching
 * (Receive-PSSession).
 *
 * @module
 */
import { declareParameters, type TransportManifest, UsageError } from "../../plugins/mod.ts";
import { recordRoute, selectOne } from "../session_records.ts";
import { powershellConfiguration, sessionHost } from "../transport_use.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import { idParameter, instanceIdParameter, jsonParameter, sessionNameParameter } from "./_parameters.ts";
import { configuredVia, contextFor, interruptSignal, sessionChoice } from "./_run.ts";

/** The parameters of `receive`. */
export const parameters = declareParameters([sessionNameParameter, idParameter, instanceIdParameter, {
  ...jsonParameter,
  help: "a PowerShell session's output objects, one JSON line each (as invoke --json)",
}]);

/** `remote receive`'s declaration. */
export function spec(_manifests: readonly TransportManifest[]): VerbSpec {
  return {
    name: "receive",
    summary: "Prints the output a disconnected session produced, without attaching (Receive-PSSession)",
    defaultSet: "Name",
    parameters: [...parameters.specs],
    examples: [
      { command: "remote receive --name ITTask", description: "what ITTask printed since the detach" },
      { command: "remote receive --name Job --json", description: "a PowerShell job's output objects as JSON" },
    ],
  };
}

/** Prints the session's output kept on its host. */
export async function run(input: VerbInput): Promise<number> {
  const { resolution, entries, prompter } = input;
  const params = parameters.read(resolution.values);
  const record = await selectOne(await input.registry(), sessionChoice(params));
  await using routed = await configuredVia(input, recordRoute(record, entries));
  const r = routed.route;
  const json = params.json === true;
  if (
    json &&
    !(typeof record.configurationName === "string" && powershellConfiguration(r.entry, record.configurationName))
  ) {
    throw new UsageError(`session ${record.name} is not a PowerShell session, so its output is text, not objects`, {
      hint: `drop --json: remote receive --name ${record.name}`,
    });
  }
  const host = await sessionHost(r.entry, "receive");
  using interrupt = interruptSignal();
  const ctx = contextFor(r, prompter, interrupt.signal);
  const received = await host.receive(ctx, record.name, json ? { format: "json" } : undefined);
  if (!json) {
    await input.io.out(received);
    return 0;
  }
  // as invoke --json writes them: each line names its host
  const lines = new TextDecoder().decode(received).split("\n").filter((line) => line !== "");
  let parsed: unknown[];
  try {
    parsed = lines.map((line) => JSON.parse(line));
  } catch {
    // a plugin transport gets no options over the plugin protocol, so it answers with text
    throw new UsageError(`the ${r.entry.manifest.id} transport cannot receive output as objects`, {
      hint: `drop --json: remote receive --name ${record.name}`,
    });
  }
  for (const one of parsed) {
    await input.io.out(JSON.stringify({ host: record.computerName, ...(one as Record<string, unknown>) }) + "\n");
  }
  return 0;
}
