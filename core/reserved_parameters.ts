/**
 * The core's own parameters and their spellings, which a plugin's manifest may not use: the core never
 * passes them to a transport, and a second parameter with one of their spellings would make a verb's
 * command line ambiguous. The plugin loader hands them to the SDK's validation.
 *
 * @module
 */
import { flagOf, type ReservedParameters, type TransportManifest } from "../plugins/mod.ts";
import { verbSpecs } from "./verbs/mod.ts";

/**
 * Names, long spellings and short flags of the parameters the verbs declare themselves (each verb's
 * declaration without transports, and the words after `--`), except those a built-in transport of
 * `builtins` declares too: `get` and `connect` take `--computer-name` as winrm does, and a plugin may
 * share it as winrm's (validation then holds it to winrm's type and spellings). A short flag a built-in
 * transport also has is left free the same way: `copy`'s -p (scp's preserve) is ssh's -p (port) on the
 * connecting verbs, and `copy` gives the transport's letter way to its own.
 *
 * @example
 * ```ts
 * import { reservedParameters } from "./reserved_parameters.ts";
 * const reserved = await reservedParameters([]);
 * console.assert(reserved.names.includes("Json") && reserved.flags.includes("json"));
 * ```
 */
export async function reservedParameters(builtins: readonly TransportManifest[]): Promise<ReservedParameters> {
  const transports = new Set(builtins.flatMap((m) => m.parameters.map((p) => p.name)));
  const transportShorts = new Set(builtins.flatMap((m) => m.parameters.flatMap((p) => p.short ?? [])));
  const names = new Set<string>();
  const flags = new Set<string>();
  const shorts = new Set<string>();
  for (const verb of await verbSpecs([])) {
    if (verb.remainder) names.add(verb.remainder.name);
    for (const p of verb.parameters) {
      if (transports.has(p.name)) continue;
      names.add(p.name);
      for (const f of [flagOf(p), ...(p.aliases ?? [])]) flags.add(f.toLowerCase());
      if (p.short !== undefined && !transportShorts.has(p.short)) shorts.add(p.short);
    }
  }
  return { names: [...names], flags: [...flags], shorts: [...shorts] };
}
