import { PluginError } from "./errors.ts";
import { DATA_CHUNK, encodeMessage, FrameDecoder, MAX_PAYLOAD, type Message } from "./protocol.ts";

function decodeAll(bytes: Uint8Array, from: "plugin" | "core" = "plugin", step = bytes.length): Message[] {
  const d = new FrameDecoder("demo", from);
  const out: Message[] = [];
  for (let i = 0; i < bytes.length; i += step) out.push(...d.push(bytes.slice(i, i + step)));
  d.end();
  return out;
}

function expectPluginError(fn: () => unknown, part: string): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof PluginError)) throw new Error(`not a PluginError: ${e}`);
    if (!e.message.startsWith("plugin demo: ") || !e.message.includes(part)) throw new Error(e.message);
    return;
  }
  throw new Error(`no error (wanted "${part}")`);
}

Deno.test("encodeMessage() and FrameDecoder round-trip every message, fed byte by byte", () => {
  const fromPlugin: Message[] = [
    { type: "hello", protocol: "remote-transport", version: 1, manifest: { id: "demo" } },
    { type: "opened" },
    { type: "result", value: [{ name: "s1" }] },
    { type: "error", message: "no such host", hint: "check it", code: "dns", layer: "dns" },
    { type: "stdout", data: new Uint8Array([0, 1, 2, 255]) },
    { type: "stderr", data: new Uint8Array(0) },
    { type: "exit", status: { kind: "signaled", signal: "INT", code: 130 } },
    { type: "notice", line: "warning: x" },
    { type: "prompt", id: 1, question: "password: ", secret: true, what: "Credential" },
  ];
  const bytes = new Uint8Array(fromPlugin.flatMap((m) => [...encodeMessage(m)]));
  const got = decodeAll(bytes, "plugin", 1);
  if (JSON.stringify(got) !== JSON.stringify(fromPlugin)) throw new Error(JSON.stringify(got));
});

Deno.test("encodeMessage() splits big data into frames the decoder joins back", () => {
  const big = new Uint8Array(DATA_CHUNK * 3 + 7).map((_, i) => i % 251);
  const got = decodeAll(encodeMessage({ type: "stdin", data: big }), "core", 4096);
  if (got.length !== 4) throw new Error(`${got.length} frames`);
  const joined = new Uint8Array(got.flatMap((m) => m.type === "stdin" ? [...m.data] : []));
  if (joined.length !== big.length || joined.some((b, i) => b !== big[i])) throw new Error("bytes differ");
});

Deno.test("FrameDecoder refuses a log line on the protocol stream, quoting it", () => {
  const d = new FrameDecoder("demo", "plugin");
  expectPluginError(() => d.push(new TextEncoder().encode("Listening on port 8080\n")), `starts "Listening on port`);
});

Deno.test("FrameDecoder refuses an oversized length before waiting for its payload", () => {
  const frame = new Uint8Array([0x00, 0x20, 0x00, 0x01, 0x11]);
  const d = new FrameDecoder("demo", "plugin");
  expectPluginError(() => d.push(frame), `over the ${MAX_PAYLOAD}-byte limit`);
});

Deno.test("FrameDecoder refuses unknown and misdirected frame types", () => {
  expectPluginError(
    () => new FrameDecoder("demo", "plugin").push(new Uint8Array([0, 0, 0, 0, 0x7f])),
    "unknown frame type 0x7f",
  );
  expectPluginError(() => decodeAll(encodeMessage({ type: "close" }), "plugin"), "only core may send");
  expectPluginError(() => decodeAll(encodeMessage({ type: "stdout", data: new Uint8Array(1) }), "core"), "only plugin");
});

Deno.test("FrameDecoder.end() refuses a stream cut inside a frame", () => {
  const bytes = encodeMessage({ type: "notice", line: "hello" });
  const d = new FrameDecoder("demo", "plugin");
  if (d.push(bytes.subarray(0, bytes.length - 2)).length !== 0) throw new Error("decoded a partial frame");
  expectPluginError(() => d.end(), "stream ended inside a frame");
});

Deno.test("FrameDecoder refuses JSON frames that are not JSON or lack fields", () => {
  const raw = (type: number, text: string) => {
    const body = new TextEncoder().encode(text);
    const out = new Uint8Array(5 + body.length);
    new DataView(out.buffer).setUint32(0, body.length);
    out[4] = type;
    out.set(body, 5);
    return out;
  };
  expectPluginError(() => decodeAll(raw(0x31, "{nope")), "notice frame does not hold JSON");
  expectPluginError(() => decodeAll(raw(0x31, "[1]")), "does not hold a JSON object");
  expectPluginError(() => decodeAll(raw(0x31, "{}")), "notice frame has a missing or bad line");
  expectPluginError(() => decodeAll(raw(0x30, '{"status":{"kind":"exploded"}}')), "missing or bad status");
  expectPluginError(() => decodeAll(raw(0x01, '{"protocol":"x"}')), "missing or bad version");
  expectPluginError(() => decodeAll(raw(0x31, "\xff")), "does not hold JSON");
});

Deno.test("FrameDecoder never hangs or throws anything but PluginError on random bytes", () => {
  for (let round = 0; round < 2000; round++) {
    const bytes = crypto.getRandomValues(new Uint8Array(1 + (round % 64)));
    try {
      decodeAll(bytes, round % 2 ? "plugin" : "core", 1 + (round % 7));
    } catch (e) {
      if (!(e instanceof PluginError)) throw e;
    }
  }
});
