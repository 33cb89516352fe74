import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ExitCode, RemoteError, TransportError } from "./errors.ts";

Deno.test("ExitCode matches the table in docs/exit-codes.md", async () => {
  const doc = await Deno.readTextFile(new URL("../docs/exit-codes.md", import.meta.url));
  const rows = [...doc.matchAll(/^\|\s*(\d+)\s*\|\s*(\w+)\s*\|/gm)].map((m) => [m[2], Number(m[1])]);
  assertEquals(Object.fromEntries(rows), { ...ExitCode });
});

Deno.test("ExitCode values are distinct", () => {
  const values = Object.values(ExitCode);
  assertEquals(new Set(values).size, values.length);
});

Deno.test("TransportError takes its exit code from the layer unless told", () => {
  assertEquals(new TransportError("x", { layer: "host-key" }).exitCode, 246);
  assertEquals(new TransportError("x", { layer: "dns" }).exitCode, 240);
  assertEquals(new TransportError("x", { layer: "socket", code: "unreachable" }).exitCode, 243);
  assertEquals(new RemoteError("usage", "x").exitCode, 230);
});
