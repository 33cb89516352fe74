/**
 * PowerShell-style wildcards for session names and host patterns: `*` any run of characters, `?` one
 * character, everything else literal; case-insensitive, like PowerShell and host names.
 *
 * @module
 */

/** Whether `pattern` holds a wildcard character. */
export function hasWildcard(pattern: string): boolean {
  return pattern.includes("*") || pattern.includes("?");
}

/** Whether `text` matches `pattern` as a whole. */
export function matchWildcard(pattern: string, text: string): boolean {
  return wildcardToRegExp(pattern).test(text);
}

/** The anchored, case-insensitive regular expression for `pattern`. */
export function wildcardToRegExp(pattern: string): RegExp {
  let source = "";
  for (const ch of pattern) {
    if (ch === "*") source += "[\\s\\S]*";
    else if (ch === "?") source += "[\\s\\S]";
    else source += ch.replace(/[\\^$.|+()[\]{}/]/g, "\\$&");
  }
  return new RegExp(`^${source}$`, "iu");
}
