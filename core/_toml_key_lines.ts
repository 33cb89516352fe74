/**
 * Where each key of a TOML document is defined, by line: the parser gives values but no positions, and
 * a config error must point at `file:line`. This is a line scanner, not a parser: it runs only on text
 * the parser has accepted, and a key it cannot place falls back to the line of its nearest parent.
 *
 * @module
 */

/** Lines (from 1) of the keys of a TOML document, by key path; array-of-table elements are indexed. */
export class TomlKeyLines {
  readonly #lines = new Map<string, number>();

  constructor(text: string) {
    const arrayIndex = new Map<string, number>();
    let table: string[] = [];
    let multiline: string | undefined; // the delimiter of an open multi-line string
    const lines = text.split(/\r?\n/);
    for (let n = 0; n < lines.length; n++) {
      const line = lines[n];
      if (multiline !== undefined) {
        if (countDelimiter(line, multiline) % 2 === 1) multiline = undefined;
        continue;
      }
      const trimmed = line.trimStart();
      if (trimmed.startsWith("[[")) {
        const keys = parseKeys(trimmed, 2);
        if (!keys) continue;
        const path = resolve(keys.keys, arrayIndex);
        const id = JSON.stringify(path);
        const index = (arrayIndex.has(id) ? arrayIndex.get(id)! : -1) + 1;
        arrayIndex.set(id, index);
        this.#record(path, n + 1);
        table = [...path, String(index)];
        this.#record(table, n + 1);
      } else if (trimmed.startsWith("[")) {
        const keys = parseKeys(trimmed, 1);
        if (!keys) continue;
        table = resolve(keys.keys, arrayIndex);
        this.#record(table, n + 1);
      } else {
        const keys = parseKeys(trimmed, 0);
        if (!keys || trimmed[keys.end] !== "=") continue;
        for (let i = 1; i <= keys.keys.length; i++) this.#record([...table, ...keys.keys.slice(0, i)], n + 1);
        const value = trimmed.slice(keys.end + 1);
        for (const delimiter of ['"""', "'''"]) {
          if (countDelimiter(value, delimiter) % 2 === 1) multiline = delimiter;
        }
      }
    }
  }

  /** The line of `path`, else of its nearest recorded parent, else undefined. */
  lineOf(path: readonly (string | number)[]): number | undefined {
    for (let i = path.length; i > 0; i--) {
      const line = this.#lines.get(JSON.stringify(path.slice(0, i).map(String)));
      if (line !== undefined) return line;
    }
    return undefined;
  }

  #record(path: string[], line: number): void {
    const id = JSON.stringify(path);
    if (!this.#lines.has(id)) this.#lines.set(id, line);
  }
}

/** A header's keys walk into the latest element of any array of tables on the way. */
function resolve(keys: string[], arrayIndex: Map<string, number>): string[] {
  const path: string[] = [];
  for (const [i, key] of keys.entries()) {
    path.push(key);
    const index = arrayIndex.get(JSON.stringify(path));
    if (index !== undefined && i < keys.length - 1) path.push(String(index));
  }
  return path;
}

function countDelimiter(text: string, delimiter: string): number {
  return text.split(delimiter).length - 1;
}

/**
 * Reads a dotted key from `text` at `start`: bare, "basic" and 'literal' parts. Returns the keys and
 * the index just past them (and past a closing `]`/`]]` for headers), or undefined if there is none.
 */
function parseKeys(text: string, brackets: number): { keys: string[]; end: number } | undefined {
  const keys: string[] = [];
  let i = brackets;
  for (;;) {
    while (text[i] === " " || text[i] === "\t") i++;
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      try {
        keys.push(JSON.parse(text.slice(i, j + 1)));
      } catch {
        return undefined; // a TOML escape JSON lacks (\e, \U): give up on this line
      }
      i = j + 1;
    } else if (ch === "'") {
      const j = text.indexOf("'", i + 1);
      if (j < 0) return undefined;
      keys.push(text.slice(i + 1, j));
      i = j + 1;
    } else {
      const m = /^[A-Za-z0-9_-]+/.exec(text.slice(i));
      if (!m) return undefined;
      keys.push(m[0]);
      i += m[0].length;
    }
    while (text[i] === " " || text[i] === "\t") i++;
    if (text[i] === ".") {
      i++;
      continue;
    }
    if (brackets > 0) {
      if (text.slice(i, i + brackets) !== "]".repeat(brackets)) return undefined;
      i += brackets;
    }
    return { keys, end: i };
  }
}
