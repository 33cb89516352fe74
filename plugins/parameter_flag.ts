/**
 * How a parameter's PowerShell name becomes its long CLI spelling when the manifest gives no `flag`.
 * Part of the contract: a plugin author predicts the option users type, and validation compares
 * spellings with it.
 *
 * @module
 */

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
