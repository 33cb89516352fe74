import { deepStrictEqual as assertEquals, ok as assert, rejects, throws } from "node:assert/strict";
import { type EscapeEvent, escapeHelp, EscapeScanner, parseEscapeChar, runInteractive } from "./terminal_bridge.ts";
import { nonInteractivePrompter } from "./prompt.ts";
import { RemoteError, UsageError } from "./errors.ts";
import { open } from "../transports/local/mod.ts";
import type { Channel, OpenRequest } from "../plugins/mod.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Events as readable values: sent bytes as text, escapes by action name. */
function scan(scanner: EscapeScanner, ...chunks: string[]): Array<string | { escape: string }> {
  const events: EscapeEvent[] = chunks.flatMap((chunk) => scanner.feed(encode(chunk)));
  return events.map((e) => e.kind === "send" ? decode(e.bytes) : { escape: e.action });
}

Deno.test("EscapeScanner recognizes ~. at the very start and right after CR or LF", () => {
  assertEquals(scan(new EscapeScanner(), "~."), [{ escape: "terminate" }]);
  assertEquals(scan(new EscapeScanner(), "ls\r~."), ["ls\r", { escape: "terminate" }]);
  assertEquals(scan(new EscapeScanner(), "ls\n~."), ["ls\n", { escape: "terminate" }]);
  assertEquals(scan(new EscapeScanner(), "ls\r", "~", "."), ["ls\r", { escape: "terminate" }]);
});

Deno.test("EscapeScanner passes a tilde in the middle of a line through", () => {
  assertEquals(scan(new EscapeScanner(), "a~.b"), ["a~.b"]);
  assertEquals(scan(new EscapeScanner(), "a", "~."), ["a", "~."]);
});

Deno.test("EscapeScanner maps & ? # to detach, help and list, keeping the order of the typed bytes", () => {
  assertEquals(scan(new EscapeScanner(), "x\r~&y"), ["x\r", { escape: "detach" }, "y"]);
  assertEquals(scan(new EscapeScanner(), "~?~#"), [{ escape: "help" }, { escape: "list" }]);
});

Deno.test("EscapeScanner sends ~~ as one tilde and ~ with another key as both", () => {
  assertEquals(scan(new EscapeScanner(), "~~."), ["~."]);
  assertEquals(scan(new EscapeScanner(), "~x"), ["~x"]);
  // after ~~ the line has started, so a following ~. is text
  assertEquals(scan(new EscapeScanner(), "~~", "~."), ["~", "~."]);
  // a newline typed after the escape character is sent with it and starts a new line
  assertEquals(scan(new EscapeScanner(), "~\r~."), ["~\r", { escape: "terminate" }]);
});

Deno.test("EscapeScanner holds an escape character at the end of a chunk until the next key", () => {
  const scanner = new EscapeScanner();
  assertEquals(scan(scanner, "\r~"), ["\r"]);
  assertEquals(scan(scanner, "z"), ["~z"]);
});

Deno.test("EscapeScanner uses another escape character and none at all", () => {
  assertEquals(scan(new EscapeScanner("\x1d"), "~.\r\x1d."), ["~.\r", { escape: "terminate" }]);
  assertEquals(scan(new EscapeScanner(null), "~.\r~?"), ["~.\r~?"]);
});

Deno.test("EscapeScanner rejects an escape character that is not one ASCII character", () => {
  throws(() => new EscapeScanner("ab"), UsageError);
  throws(() => new EscapeScanner("é"), UsageError);
});

Deno.test("parseEscapeChar() reads a character, ^X and none as ssh -e does", () => {
  assertEquals(parseEscapeChar("~"), "~");
  assertEquals(parseEscapeChar("^]"), "\x1d");
  assertEquals(parseEscapeChar("^a"), "\x01");
  assertEquals(parseEscapeChar("none"), null);
  throws(() => parseEscapeChar("^1"), UsageError);
  throws(() => parseEscapeChar("xy"), /bad escape character "xy"/);
});

Deno.test("escapeHelp() names every escape with the chosen character in CRLF lines", () => {
  const help = escapeHelp("\x1d", true);
  for (const key of [".", "&", "#", "?"]) assert(help.includes(` ^]${key}   `), key);
  assert(help.includes(" ^]^]   send the escape character"));
  assert(!help.replace(/\r\n/g, "").includes("\n"));
});

/** stdin that is not a terminal, fed from text. */
function pipedInput(text: string) {
  return {
    readable: ReadableStream.from([encode(text)]),
    isTerminal: () => false,
    setRaw: () => {
      throw new Error("setRaw on a pipe");
    },
  };
}

/** Collects what the bridge writes. */
function collector() {
  const chunks: Uint8Array[] = [];
  return {
    write(p: Uint8Array) {
      chunks.push(p.slice());
      return Promise.resolve(p.length);
    },
    text: () => chunks.map(decode).join(""),
  };
}

const ctx = {
  target: { transport: "local", host: "localhost", display: "local" },
  parameters: {},
  signal: new AbortController().signal,
  prompt: nonInteractivePrompter(),
  notice: () => {},
};

async function openLocal(request: OpenRequest): Promise<Channel> {
  return await open(ctx, request);
}

Deno.test("runInteractive() in stream mode pipes stdin to a real shell, keeps stderr apart and returns its status", async () => {
  await using channel = await openLocal({ kind: "shell" });
  const stdout = collector();
  const stderr = collector();
  const status = await runInteractive(channel, {
    stdin: pipedInput("echo out\necho ~. err >&2\nexit 4\n"),
    stdout,
    stderr,
    canDetach: false,
  });
  assertEquals(status, { kind: "exited", code: 4 });
  assertEquals(stdout.text(), "out\n");
  assertEquals(stderr.text(), "~. err\n");
});

Deno.test("runInteractive() closes the channel's stdin at the end of piped input", async () => {
  await using channel = await openLocal({ kind: "exec", command: "wc -c" });
  const stdout = collector();
  const status = await runInteractive(channel, { stdin: pipedInput("12345"), stdout, canDetach: false });
  assertEquals(status, { kind: "exited", code: 0 });
  assertEquals(stdout.text().trim(), "5");
});

Deno.test("runInteractive() ends the channel when its signal aborts and reports it lost", async () => {
  await using channel = await openLocal({ kind: "exec", command: "echo started; exec sleep 60" });
  const stdout = collector();
  const controller = new AbortController();
  const input = new TransformStream<Uint8Array, Uint8Array>();
  const running = runInteractive(channel, {
    stdin: { readable: input.readable, isTerminal: () => false, setRaw: () => {} },
    stdout,
    canDetach: false,
    signal: controller.signal,
  });
  for (let waited = 0; !stdout.text().includes("started"); waited += 20) {
    assert(waited < 30_000, "the command never started");
    await new Promise((r) => setTimeout(r, 20));
  }
  controller.abort(new RemoteError("timeout", "gave up"));
  const status = await running;
  assert(status.kind === "lost" && status.error.message === "gave up");
  // the process is gone: its exit has settled
  const exit = await channel.exit;
  assertEquals(exit.kind, "signaled");
  // the bridge has cancelled its input
  await rejects(input.writable.close());
});

Deno.test("runInteractive() reports a channel whose exit rejects as lost", async () => {
  const channel: Channel = {
    stdin: new WritableStream(),
    stdout: ReadableStream.from([encode("partial")]),
    stderr: ReadableStream.from<Uint8Array>([]),
    exit: Promise.reject(new Error("connection reset")),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
  const stdout = collector();
  const status = await runInteractive(channel, { stdin: pipedInput(""), stdout, canDetach: false });
  assert(status.kind === "lost" && status.error.message === "connection reset");
  assertEquals(stdout.text(), "partial");
  await rejects(channel.exit);
});

Deno.test("escapeHelp() lists ~& only where the session can be left running", () => {
  assert(escapeHelp("~", true).includes(" ~&   disconnect, leaving the session running"));
  const plain = escapeHelp("~", false);
  assert(!plain.includes("~&"), plain);
  for (const key of [".", "#", "?", "~"]) assert(plain.includes(` ~${key}   `), key);
});
