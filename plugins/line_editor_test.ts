import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { EchoFilter, LineEditor, type LineEvent } from "./line_editor.ts";

const enc = new TextEncoder();
const show = (evs: LineEvent[]) =>
  evs.map((e) =>
    e.kind === "echo" ? `echo:${new TextDecoder().decode(e.bytes)}` : e.kind === "line" ? `line:${e.text}` : e.kind
  );

Deno.test("LineEditor echoes, erases and sends whole lines", () => {
  const ed = new LineEditor();
  assertEquals(show(ed.feed(enc.encode("dix\x7fr /w\r"))), ["echo:dix\b \br /w\r\n", "line:dir /w"]);
  assertEquals(show(ed.feed(enc.encode("abc\x15ok\x1b[A\r"))), ["echo:abc\b \b\b \b\b \bok\r\n", "line:ok"]);
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
  assertEquals(show(ed.feed(enc.encode("\x1b[A"))), ["echo:\b \b\b \b\b \bone"]);
  assertEquals(show(ed.feed(enc.encode("\x1b[B\r"))), ["echo:\b \b\b \b\b \btwo\r\n", "line:two"]);
  assertEquals(ed.feed(enc.encode("Get-Chi\t")).at(-1), { kind: "tab", text: "Get-Chi" });
  assertEquals(new TextDecoder().decode(ed.replace("Get-ChildItem")), "\b \b".repeat(7) + "Get-ChildItem");
  assertEquals(show(ed.feed(enc.encode("\r"))), ["echo:\r\n", "line:Get-ChildItem"]);
  // without the options, Tab is a space and arrows are swallowed, as WinRS shells need
  assertEquals(show(new LineEditor().feed(enc.encode("a\tb\x1b[A\r"))), ["echo:a b\r\n", "line:a b"]);
});

Deno.test("LineEditor.text() is the line typed so far, for redrawing it after an escape's message", () => {
  const ed = new LineEditor();
  assertEquals(ed.text(), "");
  ed.feed(enc.encode("Get-Dat\x7fte"));
  assertEquals(ed.text(), "Get-Date");
  ed.feed(enc.encode("\r"));
  assertEquals(ed.text(), "");
});
