/**
 * Wildcard patterns as PowerShell's `-like` and ssh_config(5)'s PATTERNS read them: `*` any run of
 * characters (none included), `?` exactly one, everything else literal, matched against the whole
 * text. The core matches session names and `[hosts."pattern"]` case-insensitively; the SSH transport
 * matches Host, Match and SendEnv patterns case-sensitively, as OpenSSH's match_pattern() does.
 *
 * @module
 */

/** How a wildcard pattern compares letters. */
export interface WildcardOptions {
  /** whether `a` matches `A` (default: false) */
  ignoreCase?: boolean;
}

/** Whether `pattern` holds a wildcard character. */
export function hasWildcard(pattern: string): boolean {
  return pattern.includes("*") || pattern.includes("?");
}

/**
 * Whether `text` matches `pattern` as a whole.
 *
 * @example
 * ```ts
 * import { matchWildcard } from "./wildcard.ts";
 * console.assert(matchWildcard("LC_*", "LC_ALL"));
 * console.assert(!matchWildcard("web?", "WEB1"));
 * console.assert(matchWildcard("web?", "WEB1", { ignoreCase: true }));
 * ```
 */
export function matchWildcard(pattern: string, text: string, options: WildcardOptions = {}): boolean {
  return wildcardToRegExp(pattern, options).test(text);
}

/** The anchored regular expression for `pattern`. */
export function wildcardToRegExp(pattern: string, options: WildcardOptions = {}): RegExp {
  let source = "";
  for (const ch of pattern) {
    if (ch === "*") source += "[\\s\\S]*";
    else if (ch === "?") source += "[\\s\\S]";
    else source += ch.replace(/[\\^$.|+()[\]{}/]/g, "\\$&");
  }
  return new RegExp(`^${source}$`, options.ignoreCase ? "iu" : "u");
}
