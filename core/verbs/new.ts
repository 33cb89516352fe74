/**
 * `remote new`: a persistent session on a remote computer, left running (New-PSSession).
 *
 * @module
 */
import { declareParameters, HOST_SET, type TransportManifest } from "../../plugins/mod.ts";
import { route } from "../route.ts";
import { createSession, formatSessions } from "../session_records.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import { hostNameParameter, letterHints, transportParameters, viaParameter } from "./_parameters.ts";
import { contextFor, interruptSignal, throughVia } from "./_run.ts";

/** The parameters `new` declares itself; the transports' join them in {@linkcode spec}. */
export const parameters = declareParameters([
  hostNameParameter(HOST_SET),
  { name: "Name", type: { kind: "string" }, help: "the session's name (default: Session<N>)" },
  viaParameter,
]);

/** `remote new`'s declaration. */
export function spec(manifests: readonly TransportManifest[]): VerbSpec {
  return {
    name: "new",
    summary: "Creates a persistent session on a remote computer and leaves it running (New-PSSession)",
    defaultSet: HOST_SET,
    parameters: [parameters.specs[0], ...transportParameters(manifests), ...parameters.specs.slice(1)],
    letterHints: letterHints(manifests),
    examples: [{ command: "remote new db1 --name ITTask", description: "a session named ITTask on db1" }],
  };
}

/** Creates the session on its host, records it and prints its row. */
export async function run(input: VerbInput): Promise<number> {
  const { resolution, entries, config, prompter } = input;
  const params = parameters.read(resolution.values);
  const direct = route(resolution, parameters.names, entries, config, params.hostName, "ignore");
  // --via (or the host's via in the config): only to create the session; later verbs reach the host by its config
  await using routed = await throughVia(input, direct, params.via, parameters.names);
  const r = routed.route;
  using interrupt = interruptSignal();
  const record = await createSession(await input.registry(), r, contextFor(r, prompter, interrupt.signal), {
    name: params.name,
  });
  await input.io.out(formatSessions([{ record }]));
  return 0;
}
