import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { STDIN_AHEAD, STDIN_HANDOFF } from "./stdin_stream.ts";

const MODULE = new URL("./stdin_stream.ts", import.meta.url).href;

/**
 * A process that copies {@linkcode stdinStream} to stdout, or with `stopAfter` reads that many bytes, cancels
 * the stream, prints "stopped" and leaves with `Deno.exit`, as main.ts does (a read under way, the worker's
 * here, keeps a process that just returns alive until input comes, as Deno's own stdin read did).
 */
function copier(stopAfter?: number): Deno.ChildProcess {
  const script = stopAfter === undefined
    ? `import { stdinStream } from ${JSON.stringify(MODULE)};
       await stdinStream().pipeTo(Deno.stdout.writable);`
    : `import { stdinStream } from ${JSON.stringify(MODULE)};
       const reader = stdinStream().getReader();
       let got = 0;
       while (got < ${stopAfter}) got += (await reader.read()).value.length;
       await reader.cancel();
       console.log("stopped");
       Deno.exit(0);`;
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

Deno.test("stdinStream() passes every byte of a large pipe in order, across the hand-off to its worker", async () => {
  const input = randomBytes(STDIN_HANDOFF + 3 * STDIN_AHEAD + 12345);
  const child = copier();
  // uneven writes, some of a single byte, so reads end at odd places on both sides of the hand-off
  const writer = child.stdin.getWriter();
  const writing = (async () => {
    for (let at = 0, i = 0; at < input.length; i++) {
      const n = i % 7 === 0 ? 1 : 1 + (i * 7919) % 200_000;
      await writer.write(input.subarray(at, at + n));
      at += n;
    }
    await writer.close();
  })();
  const [out] = await Promise.all([child.output(), writing]);
  const got = new Uint8Array(out.stdout);
  assertEquals({ code: out.code, bytes: got.length, sha256: await sha256(got) }, {
    code: 0,
    bytes: input.length,
    sha256: await sha256(input),
  });
});

Deno.test("stdinStream() reads a file given as stdin, and ends at once on an empty one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const input = randomBytes(3 * STDIN_HANDOFF + 777);
    for (const bytes of [input, new Uint8Array(0)]) {
      await Deno.writeFile(`${dir}/in`, bytes);
      const script = `import { stdinStream } from ${JSON.stringify(MODULE)};
        await stdinStream().pipeTo(Deno.stdout.writable);`;
      const out = await new Deno.Command("sh", {
        args: ["-c", `exec "$0" eval --quiet "$1" < "$2"`, Deno.execPath(), script, `${dir}/in`],
        stdout: "piped",
      }).output();
      const got = new Uint8Array(out.stdout);
      assertEquals({ code: out.code, sha256: await sha256(got) }, { code: 0, sha256: await sha256(bytes) });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stdinStream() cancelled while its worker waits in a read lets the process exit with Deno.exit", async () => {
  const child = copier(STDIN_HANDOFF + 1);
  const writer = child.stdin.getWriter();
  // more than the hand-off, then nothing: the worker sits in a read that no data will end
  await writer.write(randomBytes(STDIN_HANDOFF + 65536));
  const out = await child.output();
  assertEquals({ code: out.code, out: new TextDecoder().decode(out.stdout) }, { code: 0, out: "stopped\n" });
  await writer.close().catch(() => {});
});
