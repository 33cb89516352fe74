/**
 * Local line editing, for peers that read whole lines (WinRS shells, a PowerShell runspace). WinRS gives the remote process pipes, not a console: there is
 * no raw keystroke mode and no terminal protocol (MS-WSMV has no resize or PTY message), so when the
 * user is at a terminal the keystrokes are assembled into lines here, echoed locally, and each whole
 * line is sent with `\r\n`, as winrs.exe and evil-winrm do.
 *
 * @module
 */

/** What a keystroke batch produced. */
export type LineEvent =
  /** bytes to show the user */
  | { kind: "echo"; bytes: Uint8Array }
  /** a finished line, without its terminator */
  | { kind: "line"; text: string }
  /** Ctrl-C: send the ctrl_c signal */
  | { kind: "interrupt" }
  /** Ctrl-D on an empty line: close stdin */
  | { kind: "eof" }
  /**
   * Tab, with `tabs: "event"`: the line up to the cursor, to complete (answer with {@linkcode LineEditor.replace})
   */
  | { kind: "tab"; text: string };

/** Options of {@linkcode LineEditor}. */
export interface LineEditorOptions {
  /** "space" (default): Tab types a space; "event": Tab produces a `tab` event for completion */
  tabs?: "space" | "event";
  /** keep the lines sent, for Up and Down (default: no history) */
  history?: boolean;
  /**
   * the terminal's width now, so that a line longer than a row is redrawn where the terminal wrapped it
   * (default: no wrapping is assumed)
   */
  columns?: () => number | undefined;
}

const enc = new TextEncoder();

/**
 * The cells a code point takes on a terminal: 0 for combining marks and other zero-width characters, 2 for East
 * Asian wide and fullwidth characters and emoji (Unicode's UAX #11, as wcwidth reckons them), else 1.
 */
export function cellWidth(ch: string): number {
  const c = ch.codePointAt(0)!;
  if (c < 0x300) return c < 0x20 || (c >= 0x7f && c < 0xa0) ? 0 : 1;
  if (/^[\p{Mn}\p{Me}\p{Cf}]$/u.test(ch) || (c >= 0x1160 && c <= 0x11ff)) return 0;
  return (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf && c !== 0x303f) ||
      (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) ||
      (c >= 0xff00 && c <= 0xff60) || (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
      (c >= 0x1f900 && c <= 0x1f9ff) || (c >= 0x20000 && c <= 0x3fffd)
    ? 2
    : 1;
}

/** A place on the screen, in rows below the row the line starts on and the column in that row. */
interface Cell {
  row: number;
  col: number;
}

/**
 * Where each character of `line` starts when it is written from column `start` of a terminal `columns` wide that
 * wraps at its right margin (a wide character that does not fit goes to the next row), and, last, where the cursor
 * stands after it: on the next row when the line fills its last row (the editor moves there, see `#show`).
 */
function layout(line: readonly string[], start: number, columns: number): Cell[] {
  const cells: Cell[] = [];
  let row = 0;
  let col = start;
  for (const ch of line) {
    const w = cellWidth(ch);
    if (w > 0 && col + w > columns) {
      row++;
      col = 0;
    }
    cells.push({ row, col });
    col += w;
  }
  cells.push(col >= columns ? { row: row + 1, col: 0 } : { row, col });
  return cells;
}

/** The bytes that move the cursor from one cell to another. */
function moveBetween(from: Cell, to: Cell): string {
  let s = "";
  if (to.row < from.row) s += `\x1b[${from.row - to.row}A`;
  else if (to.row > from.row) s += `\x1b[${to.row - from.row}B`;
  // relative moves only: the line's first column is wherever the prompt before it ended
  if (to.col === from.col) return s;
  if (to.col === from.col - 1) return s + "\b";
  return s + (to.col < from.col ? `\x1b[${from.col - to.col}D` : `\x1b[${to.col - from.col}C`);
}

const isWordChar = (ch: string | undefined) => ch !== undefined && /[\p{L}\p{N}_]/u.test(ch);

/**
 * Assembles typed bytes into lines, editing as a shell's line editor (PSReadLine's and readline's basic keys):
 * printable text is inserted at the cursor; Left/Right (Ctrl-B/Ctrl-F) move a character, Ctrl-Left/Ctrl-Right
 * (Alt-B/Alt-F) a word, Home/End (Ctrl-A/Ctrl-E) to the ends; Backspace and Delete erase a character, Ctrl-W the
 * word before the cursor, Ctrl-U everything before it, Ctrl-K everything after it; Enter sends the whole line,
 * Ctrl-C interrupts, Ctrl-D erases the character under the cursor, or on an empty line ends input. With `history`,
 * Up and Down recall the lines sent; other escape sequences are swallowed. With `tabs: "event"`, Tab asks the caller
 * to complete the text before the cursor ({@linkcode LineEditor.replace} shows the answer). The echo redraws only
 * what changed, with relative cursor movement (ECMA-48 CUU/CUD/CUF/CUB, EL, ED), and with `columns` follows the
 * line over the rows it wraps onto from the column it started in ({@linkcode LineEditor.startAt}).
 *
 * @example Typing `dir` and Enter
 * ```ts
 * import { LineEditor } from "./line_editor.ts";
 * const ed = new LineEditor();
 * const events = ed.feed(new TextEncoder().encode("dix\x7fr\r"));
 * console.assert(events.some((e) => e.kind === "line" && e.text === "dir"));
 * ```
 */
export class LineEditor {
  #line: string[] = [];
  /** the cursor, an index into #line */
  #pos = 0;
  /** the column the line started in */
  #start = 0;
  #decoder = new TextDecoder();
  #escape: "none" | "esc" | "csi" | "ss3" = "none";
  /** the parameter bytes of the escape sequence being read */
  #params = "";
  #options: LineEditorOptions;
  #history: string[] = [];
  /** where Up/Down stand in the history: its length when on the line being typed */
  #at = 0;

  constructor(options: LineEditorOptions = {}) {
    this.#options = options;
  }

  /** The line typed so far. */
  text(): string {
    return this.#line.join("");
  }

  /**
   * The next line starts at this column of the terminal (0-based: after a prompt of that width), for lines that
   * wrap; call it before feeding the line's first key.
   */
  startAt(column: number): void {
    if (this.#line.length === 0) this.#start = Math.max(0, Math.floor(column));
  }

  /**
   * Replaces the text before the cursor with `text` (a completion of it), keeping what follows the cursor; returns
   * the bytes that redraw the line.
   */
  replace(text: string): Uint8Array {
    return enc.encode(this.#edit(0, this.#pos, [...text]));
  }

  #columns(): number {
    const w = this.#options.columns?.();
    return w !== undefined && w > 0 ? w : Infinity;
  }

  /**
   * Replaces `count` characters at `at` with `insert`, leaving the cursor after the insertion; returns the echo:
   * the cursor moved to the change, the rest of the line rewritten, what the old line had beyond it erased, and
   * the cursor moved back.
   */
  #edit(at: number, count: number, insert: string[]): string {
    const columns = this.#columns();
    const before = layout(this.#line, this.#start, columns);
    // writing starts where the character before the change ends (a wide character after it may have wrapped)
    const prev = before[at - 1];
    const prevEnd = prev && prev.col + cellWidth(this.#line[at - 1]);
    const from = prev === undefined
      ? { row: 0, col: this.#start }
      : prevEnd < columns
      ? { row: prev.row, col: prevEnd }
      : before[at];
    let out = moveBetween(before[this.#pos], from);
    this.#line.splice(at, count, ...insert);
    const after = layout(this.#line, this.#start, columns);
    const end = after[this.#line.length];
    for (let i = at; i < this.#line.length; i++) {
      // a wide character that does not fit goes to the next row: blank what it leaves at the margin
      const prev = i === 0 ? { row: 0, col: this.#start } : after[i - 1];
      const prevEnd = i === 0 ? prev.col : prev.col + cellWidth(this.#line[i - 1]);
      if (after[i].row > prev.row && prevEnd < columns) out += " ".repeat(columns - prevEnd);
      out += this.#line[i];
    }
    // a line that fills its last row leaves the cursor at the margin (awaiting a wrap): step onto the next row
    if (at < this.#line.length && end.col === 0 && end.row > 0) out += "\r\n";
    const oldEnd = before.at(-1)!;
    if (oldEnd.row > end.row) out += "\x1b[J";
    else if (oldEnd.row === end.row && oldEnd.col === end.col + 1) out += " \b";
    else if (oldEnd.row === end.row && oldEnd.col > end.col) out += "\x1b[K";
    this.#pos = at + insert.length;
    return out + moveBetween(end, after[this.#pos]);
  }

  #moveTo(pos: number): string {
    const to = Math.max(0, Math.min(this.#line.length, pos));
    const cells = layout(this.#line, this.#start, this.#columns());
    const out = moveBetween(cells[this.#pos], cells[to]);
    this.#pos = to;
    return out;
  }

  /** Skips zero-width characters (combining marks) so that the cursor stays on whole characters. */
  #step(pos: number, dir: 1 | -1): number {
    let p = pos + dir;
    while (p > 0 && p < this.#line.length && cellWidth(this.#line[p]) === 0) p += dir;
    return p;
  }

  /** The start of the word before the cursor (Ctrl-Left), or the end of the word after it (Ctrl-Right). */
  #word(dir: 1 | -1): number {
    let p = this.#pos;
    if (dir < 0) {
      while (p > 0 && !isWordChar(this.#line[p - 1])) p--;
      while (p > 0 && isWordChar(this.#line[p - 1])) p--;
    } else {
      while (p < this.#line.length && !isWordChar(this.#line[p])) p++;
      while (p < this.#line.length && isWordChar(this.#line[p])) p++;
    }
    return p;
  }

  #recall(step: number): string | undefined {
    if (!this.#options.history) return undefined;
    const at = Math.max(0, Math.min(this.#history.length, this.#at + step));
    if (at === this.#at) return undefined;
    this.#at = at;
    return this.#history[at] ?? "";
  }

  /** An escape sequence's key: its final byte and parameters (`1;5` of Ctrl-Left's `ESC [ 1 ; 5 D`). */
  #key(final: string, params: string): string {
    const ctrl = /^1;[3-8]$/.test(params); // a modifier: Ctrl (5), Alt (3), or both
    switch (final) {
      case "A":
      case "B": {
        const recalled = this.#recall(final === "A" ? -1 : 1);
        return recalled === undefined ? "" : this.#edit(0, this.#line.length, [...recalled]);
      }
      case "C":
        return this.#moveTo(ctrl ? this.#word(1) : this.#step(this.#pos, 1));
      case "D":
        return this.#moveTo(ctrl ? this.#word(-1) : this.#step(this.#pos, -1));
      case "H":
        return this.#moveTo(0);
      case "F":
        return this.#moveTo(this.#line.length);
      case "~":
        // vt220 keys: Home 1/7, Delete 3, End 4/8
        if (params === "1" || params === "7") return this.#moveTo(0);
        if (params === "4" || params === "8") return this.#moveTo(this.#line.length);
        if (params === "3" && this.#pos < this.#line.length) {
          return this.#edit(this.#pos, this.#step(this.#pos, 1) - this.#pos, []);
        }
        return "";
      default:
        return "";
    }
  }

  /** feeds raw terminal input; returns what to echo and send, in order */
  feed(bytes: Uint8Array): LineEvent[] {
    const out: LineEvent[] = [];
    const echo = (s: string) => {
      if (s === "") return;
      const last = out.at(-1);
      const b = enc.encode(s);
      if (last?.kind === "echo") {
        const m = new Uint8Array(last.bytes.length + b.length);
        m.set(last.bytes);
        m.set(b, last.bytes.length);
        last.bytes = m;
      } else out.push({ kind: "echo", bytes: b });
    };
    for (const ch of this.#decoder.decode(bytes, { stream: true })) {
      const c = ch.codePointAt(0)!;
      if (this.#escape === "esc") {
        this.#escape = ch === "[" ? "csi" : ch === "O" ? "ss3" : "none";
        this.#params = "";
        // Alt-B and Alt-F: a word back and forward, as readline and PSReadLine's Emacs mode
        if (ch === "b") echo(this.#moveTo(this.#word(-1)));
        if (ch === "f") echo(this.#moveTo(this.#word(1)));
        continue;
      }
      if (this.#escape === "csi" || this.#escape === "ss3") {
        if (this.#escape === "ss3" || (c >= 0x40 && c <= 0x7e)) {
          this.#escape = "none";
          echo(this.#key(ch, this.#params));
        } else this.#params += ch;
        continue;
      }
      switch (c) {
        case 0x1b:
          this.#escape = "esc";
          break;
        case 0x0d:
        case 0x0a: {
          echo(this.#moveTo(this.#line.length) + "\r\n");
          const text = this.#line.join("");
          out.push({ kind: "line", text });
          if (this.#options.history && text.trim() !== "" && this.#history.at(-1) !== text) this.#history.push(text);
          this.#at = this.#history.length;
          this.#reset();
          break;
        }
        case 0x7f:
        case 0x08:
          if (this.#pos > 0) {
            const from = this.#step(this.#pos, -1);
            echo(this.#edit(from, this.#pos - from, []));
          }
          break;
        case 0x01: // Ctrl-A
          echo(this.#moveTo(0));
          break;
        case 0x05: // Ctrl-E
          echo(this.#moveTo(this.#line.length));
          break;
        case 0x02: // Ctrl-B
          echo(this.#moveTo(this.#step(this.#pos, -1)));
          break;
        case 0x06: // Ctrl-F
          echo(this.#moveTo(this.#step(this.#pos, 1)));
          break;
        case 0x0b: // Ctrl-K
          echo(this.#edit(this.#pos, this.#line.length - this.#pos, []));
          break;
        case 0x15: // Ctrl-U
          echo(this.#edit(0, this.#pos, []));
          break;
        case 0x17: { // Ctrl-W
          let p = this.#pos;
          while (p > 0 && this.#line[p - 1] === " ") p--;
          while (p > 0 && this.#line[p - 1] !== " ") p--;
          echo(this.#edit(p, this.#pos - p, []));
          break;
        }
        case 0x03: // Ctrl-C
          echo(this.#moveTo(this.#line.length) + "^C\r\n");
          this.#reset();
          out.push({ kind: "interrupt" });
          break;
        case 0x04: // Ctrl-D
          if (this.#line.length === 0) out.push({ kind: "eof" });
          else if (this.#pos < this.#line.length) echo(this.#edit(this.#pos, this.#step(this.#pos, 1) - this.#pos, []));
          break;
        case 0x09:
          if (this.#options.tabs === "event") {
            out.push({ kind: "tab", text: this.#line.slice(0, this.#pos).join("") });
            break;
          }
          echo(this.#edit(this.#pos, 0, [" "]));
          break;
        default:
          if (c >= 0x20) echo(this.#edit(this.#pos, 0, [ch]));
      }
    }
    return out;
  }

  #reset(): void {
    this.#line = [];
    this.#pos = 0;
    this.#start = 0;
  }
}

/**
 * Drops cmd's own echo of a line it read from its stdin pipe (cmd echoes each command after the
 * prompt), which the user has already seen from the local echo. Output that does not start with the
 * expected echo is passed on unchanged.
 */
export class EchoFilter {
  #expected: Uint8Array[] = [];
  #held = new Uint8Array(0);

  /** the next output should start with `line` and CRLF */
  expect(line: string): void {
    this.#expected.push(enc.encode(`${line}\r\n`));
  }

  /** filters one chunk of output; may hold back a prefix of an expected echo */
  filter(chunk: Uint8Array): Uint8Array {
    let data = new Uint8Array(this.#held.length + chunk.length);
    data.set(this.#held);
    data.set(chunk, this.#held.length);
    this.#held = new Uint8Array(0);
    while (this.#expected.length && data.length) {
      const e = this.#expected[0];
      const n = Math.min(e.length, data.length);
      let same = true;
      for (let i = 0; i < n; i++) {
        if (data[i] !== e[i]) {
          same = false;
          break;
        }
      }
      if (!same) {
        this.#expected.shift();
        continue;
      }
      if (data.length < e.length) {
        this.#held = data;
        return new Uint8Array(0);
      }
      this.#expected.shift();
      data = data.slice(e.length);
    }
    return data;
  }

  /** whatever is held back, at the end of output */
  flush(): Uint8Array {
    const h = this.#held;
    this.#held = new Uint8Array(0);
    this.#expected = [];
    return h;
  }
}
