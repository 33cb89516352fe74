/**
 * The core's own parameters and their spellings, which a plugin's manifest may not use: the core never
 * passes them to a transport, and a second parameter with one of their spellings would make a verb's
 * command line ambiguous. The plugin loader hands them to the SDK's validation.
 *
 * @module
 */
import type { ReservedParameters } from "../plugins/mod.ts";
import { flagOf } from "./parameter_set.ts";
import { CORE_PARAMETERS } from "./route.ts";
import { verbSpecs } from "./verbs.ts";

/**
 * Names, long spellings and short flags of the core's parameters in every verb.
 *
 * @example
 * ```ts
 * import { reservedParameters } from "./reserved_parameters.ts";
 * const reserved = reservedParameters();
 * console.assert(reserved.names.includes("Json") && reserved.flags.includes("json"));
 * ```
 */
export function reservedParameters(): ReservedParameters {
  const names = new Set<string>();
  const flags = new Set<string>();
  const shorts = new Set<string>();
  for (const verb of verbSpecs([])) {
    if (verb.remainder) names.add(verb.remainder.name);
    for (const p of verb.parameters) {
      if (!CORE_PARAMETERS.has(p.name)) continue;
      names.add(p.name);
      for (const f of [flagOf(p), ...(p.aliases ?? [])]) flags.add(f.toLowerCase());
      if (p.short !== undefined) shorts.add(p.short);
    }
  }
  return { names: [...names], flags: [...flags], shorts: [...shorts] };
}
