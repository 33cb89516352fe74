import { deepStrictEqual as assertEquals } from "node:assert/strict";
import * as posix from "node:path/posix";
import { dirname, isAbsolute, join, normalize, resolve } from "./_path.ts";

const cases = ["/", "/a/b/c", "a/b", "a", "", ".", "..", "../a/./b/../c", "/a/../../b", "a//b/", "/a/b/", "./x"];

Deno.test("_path agrees with node:path on POSIX paths", { ignore: Deno.build.os === "windows" }, () => {
  for (const p of cases) {
    assertEquals(isAbsolute(p), posix.isAbsolute(p), `isAbsolute(${p})`);
    if (p !== "") assertEquals(normalize(p), posix.normalize(p).replace(/(.)\/$/, "$1"), `normalize(${p})`);
    // (node:path keeps one of a doubled separator there; remote's paths are normalized before)
    if (!p.includes("//")) assertEquals(dirname(p), posix.dirname(p), `dirname(${p})`);
    assertEquals(join("/x", p), posix.join("/x", p).replace(/(.)\/$/, "$1"), `join(/x, ${p})`);
    assertEquals(join(p, "y"), posix.join(p, "y"), `join(${p}, y)`);
    assertEquals(resolve(p), posix.resolve(p), `resolve(${p})`);
    assertEquals(resolve("/base", p), posix.resolve("/base", p), `resolve(/base, ${p})`);
  }
});
