/**
 * A small model of a terminal's screen (xterm's behaviour for what line editors send): printable text with
 * auto-wrap at the right margin (the cursor waits at the margin until the next character), CR, LF, BS, and the
 * ECMA-48 sequences CUU/CUD/CUF/CUB (`ESC [ n A/B/C/D`), CUP (`ESC [ r ; c H`), EL and ED (`ESC [ K`, `ESC [ J`),
 * save and restore (`ESC 7`, `ESC 8`); SGR, OSC and the rest are skipped. Tests read what a user sees from it
 * (plugins/line_editor_test.ts, tests/psrp_enter_test.ts).
 *
 * @module
 */
import { cellWidth } from "./line_editor.ts";

/** A terminal's screen, `columns` by `rows`, fed what a program writes to it. */
export class ScreenModel {
  /** the width */
  readonly columns: number;
  /** the height; a line feed on the last row scrolls */
  readonly rows: number;
  #cells: string[][];
  /** the cursor's row, 0-based */
  row = 0;
  /** the cursor's column, 0-based */
  col = 0;
  /** the cursor is at the right margin after filling it: the next character goes to the next row */
  pendingWrap = false;
  #saved = { row: 0, col: 0 };
  #escape = "";

  constructor(columns: number, rows: number) {
    this.columns = columns;
    this.rows = rows;
    this.#cells = Array.from({ length: rows }, () => this.#blank());
  }

  #blank(): string[] {
    return Array(this.columns).fill(" ");
  }

  #lineFeed(): void {
    if (this.row === this.rows - 1) {
      this.#cells.shift();
      this.#cells.push(this.#blank());
    } else this.row++;
  }

  #put(ch: string): void {
    const w = cellWidth(ch);
    if (w === 0) return;
    if (this.pendingWrap || this.col + w > this.columns) {
      this.col = 0;
      this.#lineFeed();
    }
    this.pendingWrap = false;
    this.#cells[this.row][this.col] = ch;
    if (w === 2) this.#cells[this.row][this.col + 1] = "";
    this.col += w;
    if (this.col >= this.columns) {
      this.col = this.columns - 1;
      this.pendingWrap = true;
    }
  }

  #sequence(final: string, params: string): void {
    const n = Math.max(1, Number(params.split(";")[0] || "1"));
    if ("ABCDHJK".includes(final)) this.pendingWrap = false;
    switch (final) {
      case "A":
        this.row = Math.max(0, this.row - n);
        break;
      case "B":
        this.row = Math.min(this.rows - 1, this.row + n);
        break;
      case "C":
        this.col = Math.min(this.columns - 1, this.col + n);
        break;
      case "D":
        this.col = Math.max(0, this.col - n);
        break;
      case "H": {
        const [r, c] = params.split(";").map((p) => Number(p || "1"));
        this.row = Math.min(this.rows, r || 1) - 1;
        this.col = Math.min(this.columns, c || 1) - 1;
        break;
      }
      case "K":
        for (let c = this.col; c < this.columns; c++) this.#cells[this.row][c] = " ";
        break;
      case "J":
        for (let c = this.col; c < this.columns; c++) this.#cells[this.row][c] = " ";
        for (let r = this.row + 1; r < this.rows; r++) this.#cells[r] = this.#blank();
        break;
    }
  }

  /** Interprets output as the terminal would. */
  write(text: string): void {
    for (const ch of text) {
      if (this.#escape !== "") {
        this.#escape += ch;
        const e = this.#escape;
        if (e === "\x1b7" || e === "\x1b8") {
          if (e === "\x1b7") this.#saved = { row: this.row, col: this.col };
          else ({ row: this.row, col: this.col } = this.#saved);
          this.#escape = "";
        } else if (e.startsWith("\x1b[") && e.length > 2 && /[\x40-\x7e]/.test(ch)) {
          this.#sequence(ch, e.slice(2, -1));
          this.#escape = "";
        } else if (e.startsWith("\x1b]") && (ch === "\x07" || e.endsWith("\x1b\\"))) this.#escape = "";
        else if (e.length === 2 && ch !== "[" && ch !== "]") this.#escape = "";
        continue;
      }
      if (ch === "\x1b") this.#escape = ch;
      else if (ch === "\r") {
        this.col = 0;
        this.pendingWrap = false;
      } else if (ch === "\n") {
        this.pendingWrap = false;
        this.#lineFeed();
      } else if (ch === "\b") {
        this.pendingWrap = false;
        this.col = Math.max(0, this.col - 1);
      } else if (ch >= " ") this.#put(ch);
    }
  }

  /** The screen's rows without trailing blanks, and without the blank rows at the bottom. */
  text(): string {
    const lines = this.#cells.map((r) => r.join("").trimEnd());
    while (lines.length > 0 && lines.at(-1) === "") lines.pop();
    return lines.join("\n");
  }

  /** Where the next character typed goes: the cursor, or the next row's start when it waits at the margin. */
  cursor(): { row: number; col: number } {
    return this.pendingWrap ? { row: this.row + 1, col: 0 } : { row: this.row, col: this.col };
  }
}
