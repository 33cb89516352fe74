/**
 * End-to-end tests of the ssm transport's shell sessions against tests/ssm_emulator.ts.
 *
 * @module
 */
import { AssertionError, deepStrictEqual as assertEquals, ok as assert, strictEqual } from "node:assert/strict";
import { RemoteError } from "../plugins/mod.ts";
import { open } from "../transports/ssm/mod.ts";
import { SsmSession } from "../transports/ssm/session.ts";
import { resolveConnection } from "../transports/ssm/connection.ts";
import {
  blobBytes,
  emulatorContext,
  OutputReader,
  type SsmEmulatorOptions,
  startSsmEmulator,
  type,
  useEmulatorCredentials,
} from "./ssm_emulator.ts";

useEmulatorCredentials();

/** Awaits `fn`'s rejection and returns the error, which must be a RemoteError. */
async function rejects(fn: () => Promise<unknown>, _kind: typeof RemoteError): Promise<RemoteError> {
  try {
    await fn();
  } catch (error) {
    assert(error instanceof RemoteError, `not a RemoteError: ${error}`);
    return error;
  }
  throw new AssertionError({ message: "expected a rejection" });
}

function includes(text: string, part: string): void {
  assert(text.includes(part), `${JSON.stringify(text)} does not include ${JSON.stringify(part)}`);
}
const PTY = { term: "xterm-256color", columns: 100, rows: 30 };

Deno.test("open() runs a shell: echo, size, resize, Ctrl-C, exit; the data channel offers no compression", async () => {
  await using emu = await startSsmEmulator();
  const ctx = emulatorContext(emu);
  await using ch = await open(ctx, { kind: "shell", pty: PTY });
  const out = new OutputReader(ch.stdout);
  await out.waitFor("$ ");
  await type(ch, "echo hi\r");
  await out.waitFor("echo hi\r\nhi\r\n$ ");
  await type(ch, "stty size\r");
  await out.waitFor("30 100\r\n$ ");
  await ch.resize!({ columns: 132, rows: 43 });
  await type(ch, "stty size\r");
  await out.waitFor("43 132\r\n$ ");
  await type(ch, "sleep 100\x03");
  await out.waitFor("sleep 100^C\r\n$ ");
  await type(ch, "exit 3\r");
  assertEquals(await ch.exit, { kind: "exited", code: 0 });
  await out.done;
  assertEquals(emu.stats.calls.StartSession, 1);
  assertEquals(emu.stats.clientVersions, ["token:1.2.694.0", "1.2.694.0"]);
  // as the plugin's dialer: no permessage-deflate offered
  assertEquals(emu.stats.dataChannelExtensions, [""]);
});

async function runBlob(options: SsmEmulatorOptions, size: number): Promise<{ output: Uint8Array; resumes: number }> {
  await using emu = await startSsmEmulator(options);
  await using ch = await open(emulatorContext(emu), { kind: "shell", pty: PTY });
  const out = new OutputReader(ch.stdout);
  await out.waitFor("$ ");
  await type(ch, `blob ${size}\r`);
  await out.waitFor(`blob ${size}\r\n`, 60_000);
  const tail = new TextDecoder().decode(blobBytes(size).subarray(size - 64)) + "$ ";
  await out.waitFor(tail, 60_000);
  await type(ch, "exit\r");
  assertEquals(await ch.exit, { kind: "exited", code: 0 });
  await out.done;
  return { output: out.bytes(), resumes: emu.stats.resumes };
}

Deno.test("open() resumes after the socket drops mid-stream, output byte-identical", async () => {
  const size = 3_000_000;
  const clean = await runBlob({}, size);
  const dropped = await runBlob({ faults: { dropAfterBytes: 1_000_000 } }, size);
  assertEquals(clean.resumes, 0);
  assertEquals(dropped.resumes, 1);
  assertEquals(dropped.output.length, clean.output.length);
  assert(dropped.output.every((b, i) => b === clean.output[i]), "output differs after the resume");
});

Deno.test("open() resumes after a drop with an agent that resends only its oldest unacknowledged frame", async () => {
  // the frames in flight at the drop come again one per 100 ms tick, so the blob is small
  const size = 100_000;
  const clean = await runBlob({}, size);
  const dropped = await runBlob({ agentResend: "front", faults: { dropAfterBytes: 30_000 } }, size);
  assertEquals(dropped.resumes, 1);
  assertEquals(dropped.output.length, clean.output.length);
  assert(dropped.output.every((b, i) => b === clean.output[i]), "output differs after the resume");
});

Deno.test("open() tolerates reordered, duplicated, bad-digest, bad-length and unknown frames", async () => {
  const size = 300_000;
  const clean = await runBlob({}, size);
  const faulty = await runBlob({
    faults: { reorder: true, duplicateEvery: 7, corruptDigestEvery: 11, badLengthEvery: 13, unknownTypeEvery: 5 },
  }, size);
  assertEquals(faulty.output.length, clean.output.length);
  assert(faulty.output.every((b, i) => b === clean.output[i]), "output differs under faults");
});

Deno.test("open() holds input while the service pauses publication", async () => {
  await using emu = await startSsmEmulator({ faults: { pauseMs: 400 } });
  await using ch = await open(emulatorContext(emu), { kind: "shell", pty: PTY });
  const out = new OutputReader(ch.stdout);
  await type(ch, "echo paused\r");
  await out.waitFor("paused\r\n$ ");
  assertEquals(emu.stats.inputWhilePaused, 0);
  await type(ch, "exit\r");
  await ch.exit;
  await out.done;
});

Deno.test("open() works with an old agent that sends no handshake", async () => {
  await using emu = await startSsmEmulator({ handshake: "legacy" });
  await using ch = await open(emulatorContext(emu), { kind: "shell", pty: PTY });
  const out = new OutputReader(ch.stdout);
  await type(ch, "echo legacy\r");
  await out.waitFor("legacy\r\n$ ");
  await type(ch, "exit\r");
  assertEquals(await ch.exit, { kind: "exited", code: 0 });
  await out.done;
});

Deno.test("open() runs a KMS-encrypted session: GenerateDataKey with the session's context, the challenge, sealed payloads", async () => {
  await using emu = await startSsmEmulator({ handshake: "kms" });
  Deno.env.set("AWS_ENDPOINT_URL_KMS", emu.endpoint);
  try {
    const ctx = emulatorContext(emu);
    await using ch = await open(ctx, { kind: "shell", pty: PTY });
    const out = new OutputReader(ch.stdout);
    await type(ch, "echo sealed\r");
    await out.waitFor("sealed\r\n$ ");
    assertEquals(ctx.notices, ["This session is encrypted using AWS KMS."]);
    assertEquals(emu.stats.calls.GenerateDataKey, 1);
    const [context] = emu.stats.kmsContexts;
    assertEquals(Object.keys(context).sort(), ["aws:ssm:RandomChallenge", "aws:ssm:SessionId", "aws:ssm:TargetId"]);
    assertEquals(context["aws:ssm:TargetId"], "i-0123456789abcdef0");
    await type(ch, "exit\r");
    assertEquals(await ch.exit, { kind: "exited", code: 0 });
    await out.done;
  } finally {
    Deno.env.delete("AWS_ENDPOINT_URL_KMS");
  }
});

Deno.test("a session whose agent never acknowledges input ends as lost", async () => {
  await using emu = await startSsmEmulator({ faults: { neverAck: true } });
  const connection = await resolveConnection(emulatorContext(emu));
  const { promise: ended, resolve } = Promise.withResolvers<unknown>();
  const session = await SsmSession.start({
    ...connection,
    notice: () => {},
    maxAttempts: 3,
    handlers: { onOutput: () => {}, onEnd: (r) => resolve(r) },
  });
  await session.write(new TextEncoder().encode("echo never\r"));
  const result = await ended as { kind: string; error: RemoteError };
  assertEquals(result.kind, "lost");
  includes(result.error.message, "stopped acknowledging");
  await session.terminate();
});

Deno.test("an ack lost in a dropped connection does not stall a session with an agent that discards processed input", async () => {
  // agent 3.0.196.0 processes the first line, the socket drops before its ack; after the resume the
  // client sends the line again and the agent discards it without an ack ("already processed")
  await using emu = await startSsmEmulator({ agentVersion: "3.0.196.0", faults: { loseInputAck: 2 } });
  const connection = await resolveConnection(emulatorContext(emu));
  let text = "";
  let changed = () => {};
  const { promise: ended, resolve } = Promise.withResolvers<{ kind: string }>();
  const session = await SsmSession.start({
    ...connection,
    notice: () => {},
    maxAttempts: 5,
    handlers: {
      onOutput: (d) => {
        text += new TextDecoder().decode(d);
        changed();
      },
      onEnd: (r) => resolve(r),
    },
  });
  const waitFor = async (needle: string) => {
    while (!text.includes(needle)) {
      const more = new Promise<void>((r) => changed = r);
      const end = await Promise.race([more.then(() => false), ended.then(() => true)]);
      if (end && !text.includes(needle)) throw new Error(`the session ended before ${JSON.stringify(needle)}: ${text}`);
    }
  };
  await waitFor("$ ");
  await session.resize(100, 30);
  await session.write(new TextEncoder().encode("echo one\r"));
  await waitFor("one\r\n$ ");
  // idle after the resume: the size sent again is acked, and that ack settles the line
  for (let i = 0; i < 200 && session.pendingInput > 0; i++) await new Promise((r) => setTimeout(r, 50));
  strictEqual(session.pendingInput, 0, "the line is still being resent");
  assertEquals(emu.stats.lastSize, { cols: 100, rows: 30 });
  await session.write(new TextEncoder().encode("echo two\r"));
  await waitFor("two\r\n$ ");
  strictEqual(emu.stats.resumes, 1, "the socket dropped once");
  assert(emu.stats.inputDiscarded >= 1, "the agent discarded the resent line");
  strictEqual(session.pendingInput, 0, "nothing is left to resend");
  strictEqual(session.stats.impliedAcks, 1);
  strictEqual(text.split("\r\none\r\n").length, 2, "the line ran once");
  await session.terminate();
});

Deno.test("open() reports bad credentials, an expired token and an offline target clearly", async () => {
  await using emu = await startSsmEmulator({
    expiredTokens: ["expired-token"],
    offlineTargets: ["i-0ff1e000000000000"],
  });
  const attempt = async (env: Record<string, string | undefined>, target?: string) => {
    for (const [k, v] of Object.entries(env)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    try {
      return await rejects(() => open(emulatorContext(emu, {}, target), { kind: "shell", pty: PTY }), RemoteError);
    } finally {
      useEmulatorCredentials();
    }
  };
  const wrongSecret = await attempt({ AWS_SECRET_ACCESS_KEY: "not-the-secret" });
  assertEquals([wrongSecret.code, wrongSecret.exitCode], ["auth", 245]);
  includes(wrongSecret.message, "signature");
  const unknownKey = await attempt({ AWS_ACCESS_KEY_ID: "AKIDUNKNOWN" });
  assertEquals(unknownKey.code, "auth");
  includes(unknownKey.message, "does not recognise the access key");
  const expired = await attempt({ AWS_SESSION_TOKEN: "expired-token" });
  assertEquals(expired.code, "auth");
  includes(expired.message, "expired");
  assert(expired.hint);
  const none = await attempt({ AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined });
  assertEquals(none.message, "no AWS credentials found");
  const offline = await attempt({}, "i-0ff1e000000000000");
  includes(offline.message, "i-0ff1e000000000000 is not connected to Session Manager");
  assertEquals(emu.stats.signatureFailures, 3);
});

Deno.test("open() rejects a subsystem and an unknown document", async () => {
  await using emu = await startSsmEmulator();
  const sub = await rejects(() => open(emulatorContext(emu), { kind: "subsystem", name: "sftp" }), RemoteError);
  assertEquals(sub.code, "unsupported");
  const doc = await rejects(
    () => open(emulatorContext(emu, { DocumentName: "No-Such-Doc" }), { kind: "shell", pty: PTY }),
    RemoteError,
  );
  includes(doc.message, "session document is not valid");
});
