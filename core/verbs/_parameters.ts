/**
 * Parameters several verbs declare alike: the target, the escape character, the session selectors,
 * and the transports' parameters joined to a connecting verb. Each is literal data, so a verb that
 * declares it with `declareParameters` reads it typed.
 *
 * @module
 */
import type { ParameterSpec, TransportManifest } from "../../plugins/mod.ts";

const valueName = "<[user@]host[:port]>";

/** The one target of `enter`, `new`: transport-neutral, in the SSH set that is the default. */
export function hostNameParameter<const S extends string>(set: S) {
  return {
    name: "HostName",
    aliases: ["host"],
    type: { kind: "string" },
    sets: { [set]: { position: 0, mandatory: true } } as Record<S, { position: 0; mandatory: true }>,
    help: "target [scheme://][user@]host[:port]; a scheme picks the transport (ssh is the default)",
    valueName,
  } as const satisfies ParameterSpec;
}

/** The targets of `invoke`. */
export function hostNamesParameter<const S extends string>(set: S) {
  return {
    name: "HostName",
    aliases: ["host"],
    type: { kind: "list" },
    sets: { [set]: { position: 0, mandatory: false } } as Record<S, { position: 0; mandatory: false }>,
    help: "targets, each [scheme://][user@]host[:port]; a scheme picks the transport (ssh is the default)",
    valueName,
  } as const satisfies ParameterSpec;
}

/** ssh's -e: the escape character of the terminal bridge. */
export const escapeCharParameter = {
  name: "EscapeChar",
  short: "e",
  type: { kind: "string" },
  help: "escape character of the session (one character, ^X, or none), as ssh -e",
  default: "~",
  valueName: "<char>",
} as const satisfies ParameterSpec;

/** ssh's -N: no command, the connection only holds its forwardings. */
export const noCommandParameter = {
  name: "NoCommand",
  short: "N",
  type: { kind: "switch" },
  help: "run no command: hold the forwardings (-L/-R/-D) until Ctrl-C, as ssh -N",
} as const satisfies ParameterSpec;

/** A recorded session by its local Id. */
export const idParameter = {
  name: "Id",
  type: { kind: "int", min: 1 },
  sets: { Id: { position: 0, mandatory: true } },
  help: "the session's local Id, as `remote get` shows it",
} as const satisfies ParameterSpec;

/** A recorded session by its InstanceId. */
export const instanceIdParameter = {
  name: "InstanceId",
  type: { kind: "guid" },
  sets: { InstanceId: { mandatory: true } },
  help: "the session's InstanceId (a GUID)",
} as const satisfies ParameterSpec;

/** A recorded session by its name. */
export const sessionNameParameter = {
  name: "Name",
  type: { kind: "string" },
  sets: { Name: { mandatory: true } },
  help: "the session's name",
} as const satisfies ParameterSpec;

/** `--json` of the verbs that print records or results. */
export const jsonParameter = {
  name: "Json",
  type: { kind: "switch" },
  help: "print JSON instead of a table",
} as const satisfies ParameterSpec;

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

/** The transports' hints for one-letter options they do not take, joined (the first transport's wins). */
export function letterHints(manifests: readonly TransportManifest[]): Record<string, string> {
  const hints: Record<string, string> = {};
  for (const m of manifests) {
    for (const [letter, hint] of Object.entries(m.letterHints ?? {})) hints[letter] ??= `${m.id}: ${hint}`;
  }
  return hints;
}

/** `--via`: the target reached through another transport's connection (core/via.ts). */
export const viaParameter = {
  name: "Via",
  type: { kind: "string" },
  help: "go through another transport's connection: admin@host (ssh), ssm://i-0abc, or ssm alone for the target itself",
  valueName: "<target>",
} as const satisfies ParameterSpec;
