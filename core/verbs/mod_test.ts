import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { VERBS } from "./mod.ts";

Deno.test("every verb's declaration is its declared parameters plus the transports': nothing declared by hand", async () => {
  for (const [name, load] of Object.entries(VERBS)) {
    const verb = await load() as Awaited<ReturnType<typeof load>> & { parameters?: { specs: readonly unknown[] } };
    const spec = verb.spec([]);
    assertEquals(spec.name, name);
    // without transports, a verb's parameters are exactly those it declared, which stay with the core
    assertEquals(spec.parameters, [...(verb.parameters?.specs ?? [])], name);
  }
});
