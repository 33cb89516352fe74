/**
 * The server role against this library's own client: every message crosses the fragment, message and CLIXML
 * layers both ways, so the client's reading of what the server writes (and the reverse) is pinned here.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { PSObject, type PSValue } from "./clixml.ts";
import { NIL_GUID, PipelineState } from "./constants.ts";
import { decodeFragments, Defragmenter, Fragmenter } from "./fragment.ts";
import { decodeMessage, encodeMessage, type Message } from "./message.ts";
import { type PsrpWire, RunspacePool } from "./runspace_pool.ts";
import { RunspacePoolServer, type ServerPipeline } from "./server.ts";
import { errorRecordObject } from "./records.ts";

/** Client and server joined by fragments in memory (out-of-process flow control is not the point here). */
function pair(run: (p: ServerPipeline) => Promise<void>) {
  const toServer = { frag: new Fragmenter(64), defrag: new Defragmenter() };
  const toClient = { frag: new Fragmenter(64), defrag: new Defragmenter() };
  const cross = (m: Message, way: typeof toServer, deliver: (m: Message) => void) => {
    for (const bytes of way.frag.fragment(encodeMessage(m))) {
      for (const f of decodeFragments(bytes)) {
        const whole = way.defrag.push(f);
        if (whole) deliver(decodeMessage(whole));
      }
    }
  };
  const server: RunspacePoolServer = new RunspacePoolServer({
    send: (m) => queueMicrotask(() => cross(m, toClient, (x) => pool.receive(x))),
    run: async (p) => {
      await run(p);
      return { state: "Completed" };
    },
  });
  const wire: PsrpWire = {
    send: (m) => cross(m, toServer, (x) => server.receive(x)),
    createPipeline() {},
    stopPipeline: (pid) => server.stopPipeline(pid),
    closePipeline() {},
    close: () => Promise.resolve(),
    drained: () => Promise.resolve(),
  };
  const pool = new RunspacePool({ wire });
  return { pool, server };
}

Deno.test("RunspacePoolServer opens a pool the client accepts and negotiates down to 2.3", async () => {
  const { pool, server } = pair(async () => {});
  await pool.open();
  assertEquals(pool.protocolVersion, "2.3");
  assertEquals(server.rpid, pool.rpid);
  ok(pool.applicationPrivateData instanceof PSObject);
});

Deno.test("RunspacePoolServer runs a pipeline: commands, input, output, errors and the final state", async () => {
  let seen: ServerPipeline | undefined;
  const { pool } = pair(async (p) => {
    seen = p;
    for await (const v of p.input()) p.output(`got ${v}`);
    p.error(
      errorRecordObject({
        message: "boom",
        fullyQualifiedErrorId: "Microsoft.PowerShell.Commands.WriteErrorException",
      }),
    );
  });
  await pool.open();
  const out: PSValue[] = [];
  const errors: string[] = [];
  const p = pool.createPipeline({
    commands: [{ cmd: "$input", isScript: true, args: [{ value: "a" }] }],
    input: true,
    output: (v) => out.push(v),
    error: (r) => errors.push(r.message),
  });
  await p.sendInput("x");
  p.endInput();
  const r = await p.done;
  assertEquals(r.state, PipelineState.Completed);
  assertEquals(out, ["got x"]);
  assertEquals(errors, ["boom"]);
  assertEquals(seen?.statements[0][0], { cmd: "$input", isScript: true, args: [{ name: null, value: "a" }] });
});

Deno.test("RunspacePoolServer ends a stopped pipeline Stopped with PipelineStopped", async () => {
  const { pool } = pair((p) => new Promise((resolve) => p.signal.addEventListener("abort", () => resolve())));
  await pool.open();
  const p = pool.createPipeline({ commands: [{ cmd: "Start-Sleep 60", isScript: true }] });
  setTimeout(() => p.stop(), 10);
  const r = await p.done;
  assertEquals(r.state, PipelineState.Stopped);
  assertEquals(r.reason?.fullyQualifiedErrorId, "PipelineStopped");
  assertEquals(NIL_GUID.length, 36);
});
