/**
 * How a parameter's PowerShell name becomes its long CLI spelling when the manifest gives no `flag`.
 * Part of the contract: a plugin author predicts the option users type, and validation compares
 * spellings with it.
 *
 * @module
 */
import type { ParameterSpec } from "./types.ts";

/**
 * Kebab-case of a PowerShell name: `SkipCACheck` → `skip-ca-check`.
 *
 * @example The default flag of a parameter
 * ```ts
 * import { kebabCase } from "./parameter_flag.ts";
 * console.assert(kebabCase("ComputerName") === "computer-name");
 * console.assert(kebabCase("SkipCACheck") === "skip-ca-check");
 * ```
 */
export function kebabCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1-$2")
    .toLowerCase();
}

/**
 * The long CLI spelling of a parameter, without dashes: `flag`, else the kebab case of its name.
 *
 * @example Spellings
 * ```ts
 * import { flagOf } from "./parameter_flag.ts";
 * console.assert(flagOf({ name: "SkipCACheck", type: { kind: "switch" }, help: "" }) === "skip-ca-check");
 * console.assert(flagOf({ name: "RemoteHost", flag: "host", type: { kind: "string" }, help: "" }) === "host");
 * ```
 */
export function flagOf(p: ParameterSpec): string {
  return p.flag ?? kebabCase(p.name);
}
