/**
 * The operands of `remote copy`, read as scp reads them.
 *
 * @module
 */
/** `host:path` or `path`, split as scp's colon(): a colon before any slash, outside `[...]`, makes a remote operand. */
export function parseCopyOperand(text: string): { host?: string; path: string } {
  if (text.startsWith(":")) return { path: text };
  let bracket = text.startsWith("[");
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "@" && text[i + 1] === "[") bracket = true;
    if (c === "]" && text[i + 1] === ":" && bracket) return { host: text.slice(0, i + 1), path: text.slice(i + 2) };
    if (c === ":" && !bracket) return { host: text.slice(0, i), path: text.slice(i + 1) };
    if (c === "/") break;
  }
  return { path: text };
}
