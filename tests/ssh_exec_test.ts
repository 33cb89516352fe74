/**
 * The ssh transport against real servers (OpenSSH sshd, dropbear): commands, streams, exit status,
 * PTY shells, environment and subsystems, as a user sees them.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startDropbear } from "./harness/dropbear.ts";
import { isolatedHome, readText, trustedContext } from "./harness/ssh_context.ts";
import { type SshdServer, startSshd, withLogOnFailure } from "./harness/sshd.ts";
import { open } from "../transports/ssh/mod.ts";
import type { Channel } from "../plugins/mod.ts";

async function execText(server: SshdServer, command: string, parameters: Record<string, unknown> = {}) {
  await using home = await isolatedHome();
  const ctx = await trustedContext(server, home, parameters);
  await using ch = await open(ctx, { kind: "exec", command });
  await ch.stdin.close();
  const [stdout, stderr] = await Promise.all([readText(ch.stdout), readText(ch.stderr)]);
  return { stdout, stderr, status: await ch.exit, notices: ctx.notices };
}

Deno.test("open() exec prints the command's output and passes its exit code through", async () => {
  await using sshd = await startSshd();
  await withLogOnFailure(sshd, async () => {
    const ok = await execText(sshd, "echo hi");
    assertEquals(ok.stdout, "hi\n");
    assertEquals(ok.status, { kind: "exited", code: 0 });
    assertEquals(ok.notices, []);
    const seven = await execText(sshd, "exit 7");
    assertEquals(seven.status, { kind: "exited", code: 7 });
  });
});

Deno.test("open() exec keeps stderr apart from stdout", async () => {
  await using sshd = await startSshd();
  await withLogOnFailure(sshd, async () => {
    const r = await execText(sshd, "echo out; echo err >&2; echo out2");
    assertEquals(r.stdout, "out\nout2\n");
    assertEquals(r.stderr, "err\n");
  });
});

Deno.test("open() exec reports a signal death as signaled with 128+n", async () => {
  await using sshd = await startSshd();
  await withLogOnFailure(sshd, async () => {
    const r = await execText(sshd, "kill -TERM $$");
    assertEquals(r.status, { kind: "signaled", signal: "TERM", code: 143 });
  });
});

Deno.test("open() exec sends request.env that the server accepts", async () => {
  await using sshd = await startSshd();
  await withLogOnFailure(sshd, async () => {
    await using home = await isolatedHome();
    const ctx = await trustedContext(sshd, home);
    await using ch = await open(ctx, {
      kind: "exec",
      command: 'echo "$REMOTE_TEST_COLOR"',
      env: { REMOTE_TEST_COLOR: "blue" },
    });
    await ch.stdin.close();
    assertEquals(await readText(ch.stdout), "blue\n");
  });
});

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

Deno.test("open() exec round-trips 10 MB of random bytes through cat", async () => {
  await using sshd = await startSshd();
  await withLogOnFailure(sshd, async () => {
    await using home = await isolatedHome();
    const ctx = await trustedContext(sshd, home);
    const input = new Uint8Array(10 * 1024 * 1024);
    for (let i = 0; i < input.length; i += 65536) crypto.getRandomValues(input.subarray(i, i + 65536));
    await using ch = await open(ctx, { kind: "exec", command: "cat" });
    const writing = ReadableStream.from([input.subarray(0, 3_000_000), input.subarray(3_000_000)]).pipeTo(ch.stdin);
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const c of ch.stdout) {
      chunks.push(c);
      size += c.length;
    }
    await writing;
    const output = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      output.set(c, at);
      at += c.length;
    }
    assertEquals(size, input.length);
    assertEquals(await sha256(output), await sha256(input));
    assertEquals(await ch.exit, { kind: "exited", code: 0 });
  });
});

Deno.test("open() exec delivers 20 MB of output after stdin was closed", async () => {
  await using sshd = await startSshd();
  await withLogOnFailure(sshd, async () => {
    await using home = await isolatedHome();
    const ctx = await trustedContext(sshd, home);
    await using ch = await open(ctx, { kind: "exec", command: "head -c 20000000 /dev/zero" });
    // closing stdin first once ended the channel's reading too, stalling output past the first window
    await ch.stdin.close();
    let size = 0;
    for await (const c of ch.stdout) size += c.length;
    assertEquals(size, 20_000_000);
    assertEquals(await ch.exit, { kind: "exited", code: 0 });
  });
});

/** Reads `ch.stdout` into `sink.text` until it contains `needle`. */
async function waitFor(reader: ReadableStreamDefaultReader<Uint8Array>, sink: { text: string }, needle: string) {
  const decoder = new TextDecoder();
  while (!sink.text.includes(needle)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${JSON.stringify(needle)}; got ${JSON.stringify(sink.text)}`);
    sink.text += decoder.decode(value, { stream: true });
  }
}

Deno.test("open() shell with a PTY has the requested size, follows resize, and exits with the shell's code", async () => {
  await using sshd = await startSshd();
  await withLogOnFailure(sshd, async () => {
    await using home = await isolatedHome();
    const ctx = await trustedContext(sshd, home);
    await using ch: Channel = await open(ctx, {
      kind: "shell",
      pty: { columns: 100, rows: 30, term: "xterm-256color" },
    });
    const writer = ch.stdin.getWriter();
    const reader = ch.stdout.getReader();
    const sink = { text: "" };
    await writer.write(new TextEncoder().encode("echo T=$TERM; stty size\n"));
    await waitFor(reader, sink, "30 100");
    assert(sink.text.includes("T=xterm-256color"), sink.text);
    await ch.resize!({ columns: 120, rows: 40 });
    await writer.write(new TextEncoder().encode("stty size; exit 3\n"));
    await waitFor(reader, sink, "40 120");
    for (;;) if ((await reader.read()).done) break;
    assertEquals(await readText(ch.stderr), "");
    assertEquals(await ch.exit, { kind: "exited", code: 3 });
  });
});

Deno.test("open() subsystem starts the server's sftp subsystem", async () => {
  await using sshd = await startSshd();
  await withLogOnFailure(sshd, async () => {
    await using home = await isolatedHome();
    const ctx = await trustedContext(sshd, home);
    await using ch = await open(ctx, { kind: "subsystem", name: "sftp" });
    // SSH_FXP_INIT version 3 (draft-ietf-secsh-filexfer-02 §4); the server answers SSH_FXP_VERSION (2)
    const writer = ch.stdin.getWriter();
    await writer.write(new Uint8Array([0, 0, 0, 5, 1, 0, 0, 0, 3]));
    const { value } = await ch.stdout.getReader().read();
    assert(value !== undefined && value.length >= 9, "no sftp reply");
    assertEquals(value[4], 2);
  });
});

Deno.test("open() exec works against dropbear with key authentication", async () => {
  await using server = await startDropbear();
  await withLogOnFailure(server, async () => {
    const r = await execText(server, "echo hi; exit 5");
    assertEquals(r.stdout, "hi\n");
    assertEquals(r.status, { kind: "exited", code: 5 });
  });
});
