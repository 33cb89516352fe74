import { deepStrictEqual as assertEquals } from "node:assert/strict";

Deno.test("the container transport's modules load no node: built-in (the Node layer costs a run 20 to 60 ms)", async () => {
  const mod = new URL("./mod.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", mod],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assertEquals(out.code, 0);
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: { specifier: string }[] };
  assertEquals(graph.modules.map((m) => m.specifier).filter((s) => s.startsWith("node:")), []);
});
