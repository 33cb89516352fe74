import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { cellWidth, EchoFilter, LineEditor, type LineEvent } from "./line_editor.ts";
import { ScreenModel } from "./screen_model.ts";

const enc = new TextEncoder();
const show = (evs: LineEvent[]) =>
  evs.map((e) =>
    e.kind === "echo" ? `echo:${new TextDecoder().decode(e.bytes)}` : e.kind === "line" ? `line:${e.text}` : e.kind
  );

Deno.test("LineEditor echoes, erases and sends whole lines", () => {
  const ed = new LineEditor();
  assertEquals(show(ed.feed(enc.encode("dix\x7fr /w\r"))), ["echo:dix\b \br /w\r\n", "line:dir /w"]);
  assertEquals(show(ed.feed(enc.encode("abc\x15ok\x1b[A\r"))), ["echo:abc\x1b[3D\x1b[Kok\r\n", "line:ok"]);
});

Deno.test("LineEditor turns Ctrl-C into an interrupt and Ctrl-D on an empty line into eof", () => {
  const ed = new LineEditor();
  assertEquals(show(ed.feed(enc.encode("half\x03"))), ["echo:half^C\r\n", "interrupt"]);
  assertEquals(show(ed.feed(enc.encode("\x04"))), ["eof"]);
});

Deno.test("LineEditor keeps multi-byte characters whole across chunks", () => {
  const ed = new LineEditor();
  const b = enc.encode("ü\r");
  assertEquals(show(ed.feed(b.subarray(0, 1))), []);
  assertEquals(show(ed.feed(b.subarray(1))), ["echo:ü\r\n", "line:ü"]);
});

Deno.test("EchoFilter drops cmd's echo of the sent line, even split across chunks", () => {
  const f = new EchoFilter();
  const d = (b: Uint8Array) => new TextDecoder().decode(b);
  f.expect("dir");
  assertEquals(d(f.filter(enc.encode("di"))), "");
  assertEquals(d(f.filter(enc.encode("r\r\n Volume in drive C"))), " Volume in drive C");
  f.expect("echo off");
  assertEquals(d(f.filter(enc.encode("other output\r\n"))), "other output\r\n");
});

Deno.test("LineEditor with history recalls sent lines with Up and Down; Tab as an event, replace() redraws", () => {
  const ed = new LineEditor({ tabs: "event", history: true });
  ed.feed(enc.encode("one\rtwo\r"));
  assertEquals(show(ed.feed(enc.encode("\x1b[A"))), ["echo:two"]);
  assertEquals(show(ed.feed(enc.encode("\x1b[A"))), ["echo:\x1b[3Done"]);
  assertEquals(show(ed.feed(enc.encode("\x1b[B\r"))), ["echo:\x1b[3Dtwo\r\n", "line:two"]);
  assertEquals(ed.feed(enc.encode("Get-Chi\t")).at(-1), { kind: "tab", text: "Get-Chi" });
  assertEquals(new TextDecoder().decode(ed.replace("Get-ChildItem")), "\x1b[7DGet-ChildItem");
  assertEquals(show(ed.feed(enc.encode("\r"))), ["echo:\r\n", "line:Get-ChildItem"]);
  // without the options, Tab is a space and arrows are swallowed, as WinRS shells need
  assertEquals(show(new LineEditor().feed(enc.encode("a\tb\x1b[A\r"))), ["echo:a b\r\n", "line:a b"]);
});

/** A terminal `columns` wide showing `prompt`, and an editor that knows where the prompt ended. */
function terminal(prompt: string, columns: number, options: { history?: boolean; tabs?: "event" } = {}) {
  const screen = new ScreenModel(columns, 40);
  screen.write(prompt);
  const ed = new LineEditor({ ...options, columns: () => columns });
  ed.startAt(screen.cursor().col);
  const lines: string[] = [];
  const type = (keys: string) => {
    for (const e of ed.feed(enc.encode(keys))) {
      if (e.kind === "echo") screen.write(new TextDecoder().decode(e.bytes));
      if (e.kind === "line") lines.push(e.text);
    }
  };
  return { screen, ed, type, lines };
}

/**
 * What the screen should show: `text` written fresh after the prompt, and the cursor after `before` of it (on the
 * next character, which is on the next row when it is a wide one that does not fit).
 */
function expected(prompt: string, columns: number, text: string, before: string) {
  const fresh = new ScreenModel(columns, 40);
  fresh.write(prompt + before);
  let cursor = fresh.cursor();
  const next = text.slice(before.length)[0];
  if (next !== undefined && cellWidth(next) === 2 && cursor.col + 2 > columns) cursor = { row: cursor.row + 1, col: 0 };
  fresh.write(text.slice(before.length));
  return { text: fresh.text(), cursor };
}

const LEFT = "\x1b[D", RIGHT = "\x1b[C", HOME = "\x1b[H", END = "\x1b[F", DEL = "\x1b[3~";

Deno.test("LineEditor moves within the line: Left/Right, Home/End, Ctrl-A/Ctrl-E, inserts and deletes in the middle", () => {
  const t = terminal("PS> ", 80);
  t.type("Get-Item x");
  t.type(LEFT + LEFT + "Child"); // Get-ItemChild x
  assertEquals(t.screen.text(), "PS> Get-ItemChild x");
  assertEquals(t.screen.cursor(), { row: 0, col: 17 });
  t.type("\x01" + "'" + "\x05" + "'"); // Ctrl-A, Ctrl-E
  assertEquals(t.screen.text(), "PS> 'Get-ItemChild x'");
  t.type(HOME + RIGHT + DEL + DEL + DEL + DEL + "Set"); // Home, Delete ×4
  assertEquals(t.screen.text(), "PS> 'SetItemChild x'");
  t.type(END + LEFT + "\x7f" + "y" + "\x1bOH" + "\x1b[1~" + "\x1b[4~" + "\x1bOF"); // Backspace in the middle
  assertEquals([t.screen.text(), t.screen.cursor()], ["PS> 'SetItemChild y'", { row: 0, col: 20 }]);
  t.type(HOME + "\x1b[1;5C" + "\x1b[1;5C" + "-" + "\x1b[1;5D" + "\x1b[1;5D" + "\x0b"); // Ctrl-Right/Left, Ctrl-K
  assertEquals(t.screen.text(), "PS> '");
  t.type("a b c" + "\x1bb" + "\x1bb" + "\x15" + "\x1bf" + "!" + "\x04" + "\x06" + "\x02" + "\r"); // Alt-B, Ctrl-U…
  assertEquals(t.lines, ["b!c"]);
  assertEquals(t.screen.text(), "PS> b!c");
});

Deno.test("LineEditor redraws a line that wraps over several rows, from the column the prompt ended in", () => {
  const prompt = "[h1]: PS /home> "; // 16 columns of 24
  const t = terminal(prompt, 24, { history: true });
  const text = "Get-ChildItem -Recurse -Filter *.log | Select-Object -First 3";
  t.type(text);
  assertEquals(t.screen.text(), expected(prompt, 24, text, text).text);
  assertEquals(t.screen.text().split("\n").length, 4);
  // Home goes back over the rows; typing there pushes the rest along every row
  t.type(HOME + "@(" + END + ")");
  let now = "@(" + text + ")";
  assertEquals([t.screen.text(), t.screen.cursor()], [
    expected(prompt, 24, now, now).text,
    expected(prompt, 24, now, now).cursor,
  ]);
  // deleting at the start pulls it back, and the last row's leftovers are erased
  t.type(HOME + DEL + DEL + "\x1b[1;5C");
  now = text + ")";
  assertEquals([t.screen.text(), t.screen.cursor()], [
    expected(prompt, 24, now, "Get").text,
    expected(prompt, 24, now, "Get").cursor,
  ]);
  // Backspace across a row boundary, then Up recalls a short line: the rows below are cleared
  t.type(END + "\x7f\r");
  assertEquals(t.lines, [text]);
  t.screen.write(prompt);
  t.ed.startAt(t.screen.cursor().col);
  t.type("x".repeat(30) + "\x1b[A");
  assertEquals(t.screen.text().split("\n").slice(-3), expected(prompt, 24, text, text).text.split("\n").slice(-3));
  t.type("\x1b[B" + "short");
  assertEquals(t.screen.text().split("\n").at(-1), prompt + "short");
});

Deno.test("LineEditor steps onto the next row when a line fills its row exactly, and handles wide characters at the margin", () => {
  const t = terminal("> ", 10);
  t.type("12345678"); // fills the row: the cursor waits at the margin
  assertEquals([t.screen.text(), t.screen.cursor(), t.screen.pendingWrap], ["> 12345678", { row: 1, col: 0 }, false]);
  t.type("9" + LEFT + LEFT + "\x7f");
  assertEquals([t.screen.text(), t.screen.cursor()], ["> 12345689", { row: 0, col: 8 }]);
  // a wide character that does not fit in the last column goes to the next row, as the terminal puts it
  const w = terminal("> ", 10);
  w.type("abcdefg日本" + HOME + RIGHT + DEL);
  const now = "acdefg日本";
  assertEquals([w.screen.text(), w.screen.cursor()], [
    expected("> ", 10, now, "a").text,
    expected("> ", 10, now, "a").cursor,
  ]);
  w.type(END + LEFT + "語");
  assertEquals(w.screen.text(), expected("> ", 10, "acdefg日語本", "").text);
});

Deno.test("LineEditor keeps the screen equal to the line after any sequence of edits (random keys, narrow terminal)", () => {
  const keys = [
    LEFT,
    RIGHT,
    HOME,
    END,
    DEL,
    "\x7f",
    "\x01",
    "\x05",
    "\x0b",
    "\x17",
    "\x1b[1;5D",
    "\x1b[1;5C",
    "a",
    "b",
    " ",
    "é",
    "日",
    "x",
  ];
  let seed = 7;
  const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  for (let round = 0; round < 40; round++) {
    const columns = 5 + random(20);
    const prompt = "p".repeat(random(columns)) + "> ";
    const t = terminal(prompt, columns);
    // the reference: the text and the cursor, kept by the plainest means
    let text: string[] = [];
    let pos = 0;
    for (let i = 0; i < 60; i++) {
      const k = keys[random(keys.length)];
      t.type(k);
      const word = (dir: number) => {
        let p = pos;
        const w = (ch?: string) => ch !== undefined && /[\p{L}\p{N}_]/u.test(ch);
        if (dir < 0) {
          while (p > 0 && !w(text[p - 1])) p--;
          while (p > 0 && w(text[p - 1])) p--;
        } else {
          while (p < text.length && !w(text[p])) p++;
          while (p < text.length && w(text[p])) p++;
        }
        return p;
      };
      if (k === LEFT) pos = Math.max(0, pos - 1);
      else if (k === RIGHT) pos = Math.min(text.length, pos + 1);
      else if (k === HOME || k === "\x01") pos = 0;
      else if (k === END || k === "\x05") pos = text.length;
      else if (k === DEL) text.splice(pos, 1);
      else if (k === "\x7f") pos > 0 && text.splice(--pos, 1);
      else if (k === "\x0b") text = text.slice(0, pos);
      else if (k === "\x17") {
        let p = pos;
        while (p > 0 && text[p - 1] === " ") p--;
        while (p > 0 && text[p - 1] !== " ") p--;
        text.splice(p, pos - p);
        pos = p;
      } else if (k === "\x1b[1;5D") pos = word(-1);
      else if (k === "\x1b[1;5C") pos = word(1);
      else text.splice(pos++, 0, k);
      const want = expected(prompt, columns, text.join(""), text.slice(0, pos).join(""));
      assertEquals([t.screen.text(), t.screen.cursor()], [want.text, want.cursor], `round ${round} key ${i}`);
    }
    t.type("\r");
    assertEquals(t.lines, [text.join("")]);
  }
});

Deno.test("LineEditor completes the text before the cursor and keeps what follows it", () => {
  const t = terminal("PS> ", 80, { tabs: "event" });
  t.type("Get-Chi | Out-Null");
  t.type("\x1b[1;5D".repeat(3) + "\x1b[1;5C");
  const tab = t.ed.feed(enc.encode("\t")).at(-1);
  assertEquals(tab, { kind: "tab", text: "Get-Chi" });
  t.screen.write(new TextDecoder().decode(t.ed.replace("Get-ChildItem")));
  assertEquals([t.screen.text(), t.screen.cursor()], ["PS> Get-ChildItem | Out-Null", { row: 0, col: 17 }]);
  t.type("\r");
  assertEquals(t.lines, ["Get-ChildItem | Out-Null"]);
});

Deno.test("LineEditor.text() is the line typed so far, for redrawing it after an escape's message", () => {
  const ed = new LineEditor();
  assertEquals(ed.text(), "");
  ed.feed(enc.encode("Get-Dat\x7fte"));
  assertEquals(ed.text(), "Get-Date");
  ed.feed(enc.encode("\r"));
  assertEquals(ed.text(), "");
});
