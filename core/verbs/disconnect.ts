/**
 * `remote disconnect`: detach every client from a session and leave it running
 * (Disconnect-PSSession).
 *
 * @module
 */
import type { TransportManifest } from "../../plugins/types.ts";
import { advance, formatSessions, recordRoute, selectOne } from "../session_records.ts";
import { sessionHost } from "../transport_use.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import { idParameter, instanceIdParameter, sessionNameParameter } from "./_parameters.ts";
import { contextFor, interruptSignal, sessionChoice } from "./_run.ts";

/** `remote disconnect`'s declaration. */
export function spec(_manifests: readonly TransportManifest[]): VerbSpec {
  return {
    name: "disconnect",
    summary: "Detaches every client from a session and leaves it running (Disconnect-PSSession)",
    defaultSet: "Name",
    parameters: [
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
        help: "what happens to output while disconnected (see docs/sessions.md)",
      },
    ],
    examples: [{ command: "remote disconnect --name ITTask --idle-timeout 15h", description: "detach, keep 15h" }],
  };
}

/** Detaches on the host, records the session as Disconnected and prints its row. */
export async function run(input: VerbInput): Promise<number> {
  const { resolution, entries, prompter } = input;
  const registry = await input.registry();
  const record = await selectOne(registry, sessionChoice(resolution));
  const r = recordRoute(record, entries);
  const host = await sessionHost(r.entry, "disconnect");
  using interrupt = interruptSignal();
  const v = resolution.values;
  await host.disconnect(contextFor(r, prompter, interrupt.signal), record.name, {
    idleTimeoutMs: typeof v.IdleTimeout === "number" ? v.IdleTimeout : undefined,
    outputBufferingMode: v.OutputBufferingMode === "block" || v.OutputBufferingMode === "drop"
      ? v.OutputBufferingMode
      : undefined,
  });
  const updated = await registry.update(record.instanceId, {
    state: advance(record.state, "Disconnected"),
    availability: "None",
    lastSeenAt: new Date().toISOString(),
  });
  await input.io.out(formatSessions([{ record: updated }]));
  return 0;
}
