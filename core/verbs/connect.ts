/**
 * `remote connect`: attach again to a disconnected session, recorded here or discovered on a host
 * (Connect-PSSession).
 *
 * @module
 */
import { declareParameters, type TransportManifest } from "../../plugins/mod.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import { attachRecorded } from "./_attach.ts";
import {
  escapeCharParameter,
  idParameter,
  instanceIdParameter,
  sessionNameParameter,
  transportParameters,
} from "./_parameters.ts";

/** The parameters `connect` declares itself; the transports' join them in {@linkcode spec}. */
export const parameters = declareParameters([
  { ...sessionNameParameter, sets: { Name: { mandatory: true }, ComputerName: {} } },
  {
    name: "ComputerName",
    aliases: ["cn"],
    type: { kind: "string" },
    sets: { ComputerName: { position: 0, mandatory: true } },
    help: "discover the session on this host ([user@]host[:port]) rather than in the local registry",
  },
  idParameter,
  instanceIdParameter,
  { name: "Force", type: { kind: "switch" }, help: "take over a session another client is attached to" },
  escapeCharParameter,
]);

/** `remote connect`'s declaration. */
export function spec(manifests: readonly TransportManifest[]): VerbSpec {
  const own = parameters.specs;
  return {
    name: "connect",
    summary: "Reconnects to a disconnected session and attaches to it (Connect-PSSession)",
    defaultSet: "Name",
    parameters: [
      ...own.slice(0, 4),
      ...transportParameters(
        manifests.filter((m) => m.capabilities.includes("disconnect")),
        "ComputerName",
      ).filter((p) => p.name !== "ComputerName"),
      ...own.slice(4),
    ],
    examples: [
      { command: "remote connect --name ITTask", description: "attach again to ITTask" },
      {
        command: "remote connect --computer-name db1 --name ITTask",
        description: "find ITTask on db1 from another computer and attach",
      },
    ],
  };
}

/** Attaches to the session; `--force` takes it over from another client. */
export async function run(input: VerbInput): Promise<number> {
  const params = parameters.read(input.resolution.values);
  return await attachRecorded(input, parameters.names, { ...params, force: params.force === true });
}
