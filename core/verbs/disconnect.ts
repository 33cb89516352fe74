/**
 * `remote disconnect`: detach every client from a session and leave it running
 * (Disconnect-PSSession).
 *
 * @module
 */
import { declareParameters, type TransportManifest } from "../../plugins/mod.ts";
import { advance, formatSessions, recordRoute, selectOne } from "../session_records.ts";
import { sessionHost } from "../transport_use.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import { idParameter, instanceIdParameter, sessionNameParameter } from "./_parameters.ts";
import { configuredVia, contextFor, interruptSignal, sessionChoice } from "./_run.ts";

/** The parameters of `disconnect`. */
export const parameters = declareParameters([
  sessionNameParameter,
  idParameter,
  instanceIdParameter,
  {
    name: "IdleTimeout",
    type: { kind: "duration" },
    help: "end the session on the host after it has been idle this long (e.g. 15h)",
  },
  {
    name: "OutputBufferingMode",
    type: { kind: "enum", values: ["block", "drop"] },
    help: "what happens to output while disconnected (see: remote help sessions)",
  },
]);

/** `remote disconnect`'s declaration. */
export function spec(_manifests: readonly TransportManifest[]): VerbSpec {
  return {
    name: "disconnect",
    summary: "Detaches every client from a session and leaves it running (Disconnect-PSSession)",
    defaultSet: "Name",
    parameters: [...parameters.specs],
    examples: [{ command: "remote disconnect --name ITTask --idle-timeout 15h", description: "detach, keep 15h" }],
  };
}

/** Detaches on the host, records the session as Disconnected and prints its row. */
export async function run(input: VerbInput): Promise<number> {
  const { resolution, entries, prompter } = input;
  const registry = await input.registry();
  const params = parameters.read(resolution.values);
  const record = await selectOne(registry, sessionChoice(params));
  await using routed = await configuredVia(input, recordRoute(record, entries));
  const r = routed.route;
  const host = await sessionHost(r.entry, "disconnect");
  using interrupt = interruptSignal();
  await host.disconnect(contextFor(r, prompter, interrupt.signal), record.name, {
    idleTimeoutMs: params.idleTimeout,
    outputBufferingMode: params.outputBufferingMode,
  });
  const updated = await registry.update(record.instanceId, {
    state: advance(record.state, "Disconnected"),
    availability: "None",
    lastSeenAt: new Date().toISOString(),
  });
  await input.io.out(formatSessions([{ record: updated }]));
  return 0;
}
