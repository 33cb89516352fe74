import { ok as assert } from "node:assert/strict";
import { hasWildcard, matchWildcard } from "./wildcard.ts";

Deno.test("matchWildcard() matches * and ? against the whole text, everything else literally", () => {
  assert(matchWildcard("*", ""));
  assert(matchWildcard("a*b?", "axxbc"));
  assert(!matchWildcard("a*b?", "axxb"));
  assert(matchWildcard("*.example.com", "web.example.com"));
  assert(!matchWildcard("*.example.com", "web-example.com"));
  assert(matchWildcard("[a](b)+$^|{}/\\", "[a](b)+$^|{}/\\"));
  assert(matchWildcard("?", "😀"));
});

Deno.test("matchWildcard() compares case only when told to ignore it", () => {
  assert(!matchWildcard("LC_*", "lc_all"));
  assert(matchWildcard("LC_*", "lc_all", { ignoreCase: true }));
  assert(hasWildcard("a?") && hasWildcard("*") && !hasWildcard("plain"));
});
