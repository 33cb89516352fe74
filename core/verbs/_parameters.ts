/**
 * Parameters several verbs declare alike: the target, the escape character, the session selectors,
 * and the transports' parameters joined to a connecting verb.
 *
 * @module
 */
import type { ParameterSpec, TransportManifest } from "../../plugins/types.ts";

/** The target of `enter`, `new`, `invoke`: transport-neutral, in the SSH set that is the default. */
export function hostNameParameter(set: string, list: boolean): ParameterSpec {
  return {
    name: "HostName",
    aliases: ["host"],
    type: list ? { kind: "list" } : { kind: "string" },
    sets: { [set]: { position: 0, mandatory: !list } },
    help: list
      ? "targets, each [scheme://][user@]host[:port]; a scheme picks the transport (ssh is the default)"
      : "target [scheme://][user@]host[:port]; a scheme picks the transport (ssh is the default)",
    valueName: "<[user@]host[:port]>",
  };
}

/** ssh's -e: the escape character of the terminal bridge. */
export const escapeCharParameter: ParameterSpec = {
  name: "EscapeChar",
  short: "e",
  type: { kind: "string" },
  help: "escape character of the session (one character, ^X, or none), as ssh -e",
  default: "~",
  valueName: "<char>",
};

/** A recorded session by its local Id. */
export const idParameter: ParameterSpec = {
  name: "Id",
  type: { kind: "int", min: 1 },
  sets: { Id: { position: 0, mandatory: true } },
  help: "the session's local Id, as `remote get` shows it",
};

/** A recorded session by its InstanceId. */
export const instanceIdParameter: ParameterSpec = {
  name: "InstanceId",
  type: { kind: "guid" },
  sets: { InstanceId: { mandatory: true } },
  help: "the session's InstanceId (a GUID)",
};

/** A recorded session by its name. */
export const sessionNameParameter: ParameterSpec = {
  name: "Name",
  type: { kind: "string" },
  sets: { Name: { mandatory: true } },
  help: "the session's name",
};

/** `--json` of the verbs that print records or results. */
export const jsonParameter: ParameterSpec = {
  name: "Json",
  type: { kind: "switch" },
  help: "print JSON instead of a table",
};

/** Transport parameters, with every set renamed to `set` when given (verbs with one connecting set). */
export function transportParameters(manifests: readonly TransportManifest[], set?: string): ParameterSpec[] {
  const byName = new Map<string, ParameterSpec>();
  for (const manifest of manifests) {
    for (const parameter of manifest.parameters) {
      const sets = set ? { [set]: {} } : parameter.sets;
      const known = byName.get(parameter.name);
      if (known) {
        // Same name in two transports (Port, Credential…): one option, in the union of their sets.
        byName.set(parameter.name, { ...known, sets: { ...known.sets, ...sets } });
      } else {
        byName.set(parameter.name, { ...parameter, sets });
      }
    }
  }
  return [...byName.values()];
}
