/**
 * The SSH transport's channel input against the real OpenSSH sshd: how many socket writes its packets take.
 *
 * @module
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import * as net from "node:net";
import { isolatedHome, readText, trustedContext } from "./harness/ssh_context.ts";
import { startSshd } from "./harness/sshd.ts";
import { open } from "../transports/ssh/mod.ts";

Deno.test("channel input: each chunk's packets leave in one socket write, byte-exact through sshd", async () => {
  await using sshd = await startSshd();
  await using home = await isolatedHome();
  const ctx = await trustedContext(sshd, home);
  const chunk = 256 * 1024;
  const input = new Uint8Array(4 * 1024 * 1024);
  for (let i = 0; i < input.length; i += 65536) crypto.getRandomValues(input.subarray(i, i + 65536));
  const expected = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", input)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  // count the socket's write operations (one per _write, one per _writev) while the upload runs
  const proto = net.Socket.prototype as unknown as Record<"_write" | "_writev", (...a: unknown[]) => unknown>;
  const saved = { _write: proto._write, _writev: proto._writev };
  let ops = 0;
  proto._write = function (this: unknown, ...a: unknown[]) {
    ops++;
    return saved._write.apply(this, a);
  };
  proto._writev = function (this: unknown, ...a: unknown[]) {
    ops++;
    return saved._writev.apply(this, a);
  };
  try {
    await using ch = await open(ctx, { kind: "exec", command: "sha256sum | cut -c1-64" });
    const before = ops;
    const parts = Array.from({ length: input.length / chunk }, (_, i) => input.subarray(i * chunk, (i + 1) * chunk));
    const [out] = await Promise.all([readText(ch.stdout), ReadableStream.from(parts).pipeTo(ch.stdin)]);
    assertEquals(out.trim(), expected);
    // 128 packets of 32 KiB were one socket write each; now one per chunk written (writeCorked) or per
    // window adjustment read from the server (batchWritesPerRead in socket.ts), plus EOF and close: ~17
    const writes = ops - before;
    assert(writes <= 32, `${writes} socket writes for ${input.length / chunk} chunks of input`);
  } finally {
    Object.assign(proto, saved);
  }
});
