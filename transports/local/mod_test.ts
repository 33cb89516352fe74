import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { type Channel, type OpenContext, type OpenRequest, UnsupportedError, UsageError } from "../../plugins/mod.ts";
import { manifest, open } from "./mod.ts";

const decoder = new TextDecoder();

// a known shell: $SHELL may be a bash whose rc file sets its own prompt
Deno.env.set("SHELL", "/bin/sh");

function context(signal = new AbortController().signal): OpenContext {
  return {
    target: { transport: "local", host: "localhost", display: "local" },
    parameters: {},
    signal,
    prompt: {
      interactive: false,
      ask: () => Promise.reject(new Error("the local transport never asks")),
    },
    notice: () => {},
  };
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  return text;
}

/** Reads until `pattern` shows up, for at most 30 s. */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, pattern: RegExp): Promise<string> {
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), 30_000));
  try {
    while (!pattern.test(text)) {
      const chunk = await Promise.race([reader.read(), late]);
      assert(chunk !== "late", `no ${pattern} within 30 s in ${JSON.stringify(text)}`);
      assert(!chunk.done, `stream ended before ${pattern}: ${JSON.stringify(text)}`);
      text += decoder.decode(chunk.value);
    }
    return text;
  } finally {
    clearTimeout(timer);
  }
}

/** Reads the rest of a stream a test has read part of, so `exit` can settle (it waits for all output). */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  while (!(await reader.read()).done) { /* discard */ }
  reader.releaseLock();
}

async function run(request: OpenRequest, input?: string) {
  await using channel = await open(context(), request);
  const writer = channel.stdin.getWriter();
  if (input !== undefined) await writer.write(new TextEncoder().encode(input));
  await writer.close().catch(() => {});
  const [stdout, stderr, status] = await Promise.all([readAll(channel.stdout), readAll(channel.stderr), channel.exit]);
  return { stdout, stderr, status };
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

Deno.test("manifest declares what open() implements", () => {
  assertEquals(manifest.id, "local");
  assertEquals([...manifest.capabilities].sort(), ["exec", "psrp", "pty", "pty-resize", "shell", "signals"]);
});

Deno.test("open() runs an exec request with separate stdout and stderr and its exit code", async () => {
  const { stdout, stderr, status } = await run({ kind: "exec", command: "echo out; echo err >&2; exit 7" });
  assertEquals(stdout, "out\n");
  assertEquals(stderr, "err\n");
  assertEquals(status, { kind: "exited", code: 7 });
});

Deno.test("open() feeds stdin to an exec request and passes env", async () => {
  const { stdout } = await run(
    { kind: "exec", command: 'tr a-z A-Z; echo "$GREETING"', env: { GREETING: "hej" } },
    "abc\n",
  );
  assertEquals(stdout, "ABC\nhej\n");
});

Deno.test("open() runs a shell request without a PTY reading commands from stdin", async () => {
  const { stdout, status } = await run({ kind: "shell" }, "echo from-shell\nexit 2\n");
  assertEquals(stdout, "from-shell\n");
  assertEquals(status, { kind: "exited", code: 2 });
});

Deno.test("open() reports a command killed by a signal as signaled with 128 + n", async () => {
  const { status } = await run({ kind: "exec", command: "kill -TERM $$" });
  assertEquals(status, { kind: "signaled", signal: "TERM", code: 143 });
});

Deno.test("open() sends INT to a piped command on request", async () => {
  await using channel = await open(context(), { kind: "exec", command: "echo ready; exec sleep 60" });
  const reader = channel.stdout.getReader();
  await readUntil(reader, /ready/);
  await channel.signal!("INT");
  await drain(reader);
  assertEquals(await channel.exit, { kind: "signaled", signal: "INT", code: 130 });
});

Deno.test("open() refuses an unknown signal name", async () => {
  await using channel = await open(context(), { kind: "exec", command: "exec sleep 60" });
  assert(channel.signal);
  let error: unknown;
  try {
    await channel.signal("BOGUS");
  } catch (e) {
    error = e;
  }
  assert(error instanceof UsageError && error.message === "unknown signal BOGUS", String(error));
});

Deno.test("open() runs an exec request in a PTY with the requested size and TERM", async () => {
  const { stdout, stderr, status } = await run({
    kind: "exec",
    command: 'stty size; echo "$TERM"; test -t 0 && echo tty; echo err >&2',
    pty: { term: "vt220", columns: 101, rows: 33 },
  });
  assertEquals(stdout, "33 101\r\nvt220\r\ntty\r\nerr\r\n");
  assertEquals(stderr, "");
  assertEquals(status, { kind: "exited", code: 0 });
});

Deno.test("open() resizes a PTY and the process sees SIGWINCH", async () => {
  await using channel = await open(context(), {
    kind: "exec",
    command: "trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.1; done",
    pty: { term: "xterm", columns: 80, rows: 24 },
  });
  const reader = channel.stdout.getReader();
  await readUntil(reader, /ready/);
  await channel.resize!({ columns: 120, rows: 40 });
  await readUntil(reader, /40 120/);
  await drain(reader);
  assertEquals(await channel.exit, { kind: "exited", code: 0 });
});

Deno.test("open() runs a shell in a PTY and reports a signal that killed it", async () => {
  await using channel = await open(context(), {
    kind: "shell",
    env: { PS1: "pty$ ", ENV: "" },
    pty: { term: "xterm", columns: 80, rows: 24 },
  });
  const reader = channel.stdout.getReader();
  await readUntil(reader, /pty\$ /);
  const writer = channel.stdin.getWriter();
  await writer.write(new TextEncoder().encode("echo $((6*7))\r"));
  await readUntil(reader, /42\r\n/);
  writer.releaseLock();
  await channel.signal!("KILL");
  await drain(reader);
  assertEquals(await channel.exit, { kind: "signaled", signal: "KILL", code: 137 });
});

Deno.test("open() delivers all of a PTY's output before exit settles", async () => {
  const { stdout, status } = await run({
    kind: "exec",
    command: "seq 1 20000",
    pty: { term: "xterm", columns: 80, rows: 24 },
  });
  const lines = stdout.split("\r\n");
  assertEquals(lines.length, 20001);
  assertEquals(lines[19999], "20000");
  assertEquals(status, { kind: "exited", code: 0 });
});

Deno.test("dispose ends a PTY shell and the background jobs in its session", async () => {
  const channel: Channel = await open(context(), {
    kind: "shell",
    env: { PS1: "pty$ ", ENV: "" },
    pty: { term: "xterm", columns: 80, rows: 24 },
  });
  const reader = channel.stdout.getReader();
  await readUntil(reader, /pty\$ /);
  const writer = channel.stdin.getWriter();
  // a job that ignores SIGHUP, in a process group of its own (set -m), to prove nothing is left behind
  await writer.write(new TextEncoder().encode("set -m; (trap '' HUP; exec sleep 300) & echo \"job=$!\"\r"));
  const text = await readUntil(reader, /job=\d+\r\n/);
  const job = Number(/job=(\d+)/.exec(text)![1]);
  assert(alive(job));
  writer.releaseLock();
  reader.releaseLock();
  await channel[Symbol.asyncDispose]();
  await channel[Symbol.asyncDispose](); // twice is fine
  for (let waited = 0; alive(job); waited += 20) {
    assert(waited < 10_000, `job ${job} survived dispose`);
    await new Promise((r) => setTimeout(r, 20));
  }
});

Deno.test("dispose ends a piped command and its children", async () => {
  const channel = await open(context(), { kind: "exec", command: 'sleep 300 & echo "job=$!"; wait' });
  const reader = channel.stdout.getReader();
  const text = await readUntil(reader, /job=\d+\n/);
  const job = Number(/job=(\d+)/.exec(text)![1]);
  assert(alive(job));
  reader.releaseLock();
  await channel[Symbol.asyncDispose]();
  assertEquals((await channel.exit).kind, "signaled");
  for (let waited = 0; alive(job); waited += 20) {
    assert(waited < 10_000, `job ${job} survived dispose`);
    await new Promise((r) => setTimeout(r, 20));
  }
});

Deno.test("open() ends the channel when the context's signal aborts", async () => {
  const controller = new AbortController();
  await using channel = await open(context(controller.signal), { kind: "exec", command: "exec sleep 300" });
  controller.abort();
  assertEquals((await channel.exit).kind, "signaled");
});

Deno.test("open() refuses a subsystem request", async () => {
  await rejects(open(context(), { kind: "subsystem", name: "sftp" }), UnsupportedError);
});
