/**
 * Writing to the user's stdout and stderr, completely, as bytes.
 *
 * @module
 */

const encoder = new TextEncoder();

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await w.write(data.subarray(offset));
}

/** Writes text or bytes to stdout, all of it. */
export async function writeOut(data: string | Uint8Array): Promise<void> {
  await writeAll(Deno.stdout, typeof data === "string" ? encoder.encode(data) : data);
}

/** Writes text or bytes to stderr, all of it. */
export async function writeErr(data: string | Uint8Array): Promise<void> {
  await writeAll(Deno.stderr, typeof data === "string" ? encoder.encode(data) : data);
}

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;

/**
 * `text` with control characters shown as escapes (`\n`, `\x1b`): names and messages can come from a
 * host or a file, and must neither split a line nor drive the user's terminal.
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** Whether colour may be used on stream `fd`: a TTY, and NO_COLOR unset (https://no-color.org). */
export function useColor(stream: { isTerminal(): boolean }): boolean {
  const noColor = Deno.env.get("NO_COLOR");
  return stream.isTerminal() && (noColor === undefined || noColor === "");
}

/**
 * A plain text table: a header row, a row of dashes, then `rows`, each column padded to its widest cell
 * and separated by `gap`.
 */
export function table(headers: readonly string[], rows: readonly string[][], gap = "  "): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(gap).trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n") + "\n";
}
