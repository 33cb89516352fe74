/**
 * `remote receive`: print what a disconnected session printed, without attaching
 * (Receive-PSSession).
 *
 * @module
 */
import { declareParameters, type TransportManifest } from "../../plugins/mod.ts";
import { recordRoute, selectOne } from "../session_records.ts";
import { sessionHost } from "../transport_use.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import { idParameter, instanceIdParameter, sessionNameParameter } from "./_parameters.ts";
import { configuredVia, contextFor, interruptSignal, sessionChoice } from "./_run.ts";

/** The parameters of `receive`. */
export const parameters = declareParameters([sessionNameParameter, idParameter, instanceIdParameter]);

/** `remote receive`'s declaration. */
export function spec(_manifests: readonly TransportManifest[]): VerbSpec {
  return {
    name: "receive",
    summary: "Prints the output a disconnected session produced, without attaching (Receive-PSSession)",
    defaultSet: "Name",
    parameters: [...parameters.specs],
    examples: [{ command: "remote receive --name ITTask", description: "what ITTask printed since the detach" }],
  };
}

/** Prints the session's output kept on its host. */
export async function run(input: VerbInput): Promise<number> {
  const { resolution, entries, prompter } = input;
  const record = await selectOne(await input.registry(), sessionChoice(parameters.read(resolution.values)));
  await using routed = await configuredVia(input, recordRoute(record, entries));
  const r = routed.route;
  const host = await sessionHost(r.entry, "receive");
  using interrupt = interruptSignal();
  await input.io.out(await host.receive(contextFor(r, prompter, interrupt.signal), record.name));
  return 0;
}
