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
  /** Tab, with `tabs: "event"`: the line so far, to complete (answer with {@linkcode LineEditor.replace}) */
  | { kind: "tab"; text: string };

/** Options of {@linkcode LineEditor}. */
export interface LineEditorOptions {
  /** "space" (default): Tab types a space; "event": Tab produces a `tab` event for completion */
  tabs?: "space" | "event";
  /** keep the lines sent, for Up and Down (default: no history) */
  history?: boolean;
}

const enc = new TextEncoder();

/**
 * Assembles typed bytes into lines: printable text echoes, Backspace/DEL erase one character,
 * Ctrl-U erases the line, Ctrl-W a word, Enter sends, Ctrl-C interrupts, Ctrl-D on an empty line ends
 * input. With `history`, Up and Down recall the lines sent; other escape sequences (Left, Right) are swallowed.
 * With `tabs: "event"`, Tab asks the caller to complete the line ({@linkcode LineEditor.replace} shows the answer).
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
  #decoder = new TextDecoder();
  #escape: "none" | "esc" | "csi" | "ss3" = "none";
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

  /** Replaces the line being typed with `text`; returns the bytes that redraw it. */
  replace(text: string): Uint8Array {
    const erase = "\b \b".repeat(this.#line.length);
    this.#line = [...text];
    return enc.encode(erase + text);
  }

  #recall(step: number): string | undefined {
    if (!this.#options.history) return undefined;
    const at = Math.max(0, Math.min(this.#history.length, this.#at + step));
    if (at === this.#at) return undefined;
    this.#at = at;
    return this.#history[at] ?? "";
  }

  /** feeds raw terminal input; returns what to echo and send, in order */
  feed(bytes: Uint8Array): LineEvent[] {
    const out: LineEvent[] = [];
    const echo = (s: string) => {
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
        continue;
      }
      if (this.#escape === "csi" || this.#escape === "ss3") {
        if (this.#escape === "ss3" || (c >= 0x40 && c <= 0x7e)) {
          this.#escape = "none";
          const recalled = ch === "A" ? this.#recall(-1) : ch === "B" ? this.#recall(1) : undefined;
          if (recalled !== undefined) echo(new TextDecoder().decode(this.replace(recalled)));
        }
        continue;
      }
      switch (c) {
        case 0x1b:
          this.#escape = "esc";
          break;
        case 0x0d:
        case 0x0a: {
          echo("\r\n");
          const text = this.#line.join("");
          out.push({ kind: "line", text });
          if (this.#options.history && text.trim() !== "" && this.#history.at(-1) !== text) this.#history.push(text);
          this.#at = this.#history.length;
          this.#line = [];
          break;
        }
        case 0x7f:
        case 0x08:
          if (this.#line.pop() !== undefined) echo("\b \b");
          break;
        case 0x15: // Ctrl-U
          echo("\b \b".repeat(this.#line.length));
          this.#line = [];
          break;
        case 0x17: { // Ctrl-W
          let n = 0;
          while (this.#line.length && this.#line.at(-1) === " ") n += this.#line.pop() ? 1 : 0;
          while (this.#line.length && this.#line.at(-1) !== " ") n += this.#line.pop() ? 1 : 0;
          echo("\b \b".repeat(n));
          break;
        }
        case 0x03: // Ctrl-C
          echo("^C\r\n");
          this.#line = [];
          out.push({ kind: "interrupt" });
          break;
        case 0x04: // Ctrl-D
          if (this.#line.length === 0) out.push({ kind: "eof" });
          break;
        case 0x09:
          if (this.#options.tabs === "event") {
            out.push({ kind: "tab", text: this.#line.join("") });
            break;
          }
          this.#line.push(" ");
          echo(" ");
          break;
        default:
          if (c >= 0x20) {
            this.#line.push(ch);
            echo(ch);
          }
      }
    }
    return out;
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
