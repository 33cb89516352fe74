/**
 * Quoting for POSIX shells: a command line sent to a remote shell (SSH exec, tmux helpers), or a path
 * shown inside a command in a hint (`mv '/a b' '/a b.bad'`) so the user can paste it.
 *
 * @module
 */

/** How {@linkcode shellQuote} spells a word. */
export interface ShellQuoteOptions {
  /** single-quote even a word that is safe bare (default: false, such a word stays as it is) */
  always?: boolean;
}

/**
 * `text` as one POSIX shell word: single-quoted, each embedded `'` written as `'\''`; a word of only
 * safe characters stays bare unless `always` is set. Safe for any text but NUL.
 *
 * @example
 * ```ts
 * import { shellQuote } from "./shell_quote.ts";
 * console.assert(shellQuote("/tmp/x") === "/tmp/x");
 * console.assert(shellQuote("it's") === `'it'\\''s'`);
 * console.assert(shellQuote("plain", { always: true }) === "'plain'");
 * ```
 */
export function shellQuote(text: string, options: ShellQuoteOptions = {}): string {
  if (!options.always && text !== "" && /^[\w@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
