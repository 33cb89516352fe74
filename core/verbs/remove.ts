/**
 * `remote remove`: end sessions and every process in them, and forget them (Remove-PSSession).
 *
 * @module
 */
import { declareParameters, type TransportManifest } from "../../plugins/mod.ts";
import { RemoteError } from "../errors.ts";
import { printable } from "../output.ts";
import { recordRoute, selectMany } from "../session_records.ts";
import { sessionHost } from "../transport_use.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import { idParameter, instanceIdParameter, sessionNameParameter } from "./_parameters.ts";
import { configuredVia, contextFor, interruptSignal, sessionChoice } from "./_run.ts";

/** The parameters of `remove`. */
export const parameters = declareParameters([
  sessionNameParameter,
  idParameter,
  instanceIdParameter,
  { name: "WhatIf", type: { kind: "switch" }, help: "show what would be removed, remove nothing" },
  { name: "Confirm", type: { kind: "switch" }, help: "ask before removing each session" },
]);

/** `remote remove`'s declaration. */
export function spec(_manifests: readonly TransportManifest[]): VerbSpec {
  return {
    name: "remove",
    summary: "Ends a session and every process in it (Remove-PSSession)",
    defaultSet: "Name",
    parameters: [...parameters.specs],
    examples: [{ command: "remote remove --name ITTask", description: "end ITTask on its host" }],
  };
}

/** Ends each matching session on its host and removes it from the registry. */
export async function run(input: VerbInput): Promise<number> {
  const { resolution, entries, prompter } = input;
  const registry = await input.registry();
  const params = parameters.read(resolution.values);
  const records = await selectMany(registry, sessionChoice(params));
  using interrupt = interruptSignal();
  for (const record of records) {
    const what = printable(`session ${record.name} (Id ${record.id}) on ${record.computerName}`);
    if (params.whatIf === true) {
      await input.io.out(`What if: removing ${what}\n`);
      continue;
    }
    if (params.confirm === true) {
      const answer = await prompter.ask(`remove ${what}? [y/N] `, { what: "--confirm answer" });
      if (!/^y(es)?$/i.test(answer.trim())) continue;
    }
    await using routed = await configuredVia(input, recordRoute(record, entries));
    const r = routed.route;
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
