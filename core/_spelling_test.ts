import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { closestSpelling, editDistance } from "./_spelling.ts";

Deno.test("editDistance() counts a swap of neighbours as one edit", () => {
  assertEquals(editDistance("prot", "port"), 1);
  assertEquals(editDistance("tranport", "transport"), 1);
  assertEquals(editDistance("", "abc"), 3);
  assertEquals(editDistance("kitten", "sitting"), 3);
});

Deno.test("closestSpelling() picks the nearest candidate within a third of the length", () => {
  assertEquals(closestSpelling("default", ["transport", "defaults", "plugins"]), "defaults");
  assertEquals(closestSpelling("prot", ["user", "port"]), "port");
  assertEquals(closestSpelling("xyz", ["user", "port"]), undefined);
  assertEquals(closestSpelling("", ["user"]), undefined);
  assertEquals(closestSpelling("usr", ["user", "uses"]), "user");
});
