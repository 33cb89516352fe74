/**
 * Quoting for file paths shown inside commands in hints (`mv '/a b' '/a b.bad'`), so the user can paste them.
 *
 * @module
 */

/** `text` as one POSIX shell word: unchanged when it is safe bare, else single-quoted. */
export function shellQuote(text: string): string {
  if (text !== "" && /^[\w@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
