import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { LAZY_NODE_PRELUDE, lazyNodeImports } from "./_lazy_node_imports.ts";

/** esbuild's helpers as `deno bundle` writes them, with one lazily initialised module and one that runs at start. */
const BUNDLE = [
  'import { createRequire as __deno_internal_createRequire } from "node:module";',
  "var __require = __deno_internal_createRequire(import.meta.url);",
  "",
  "var __esm = (fn, res) => function __init() {",
  "  return fn && (res = (0, fn[Object.getOwnPropertyNames(fn)[0]])(fn = 0)), res;",
  "};",
  "var __commonJS = (cb, mod) => function __require2() {",
  "  return mod || (0, cb[Object.getOwnPropertyNames(cb)[0]])((mod = { exports: {} }).exports, mod), mod.exports;",
  "};",
  "",
  "// core/eager.ts",
  'import { EOL } from "node:os";',
  "export const eol = () => EOL;",
  "",
  "// transports/x/lazy.ts",
  "var lazy_exports = {};",
  "__export(lazy_exports, {",
  "  describe: () => describe",
  "});",
  'import * as os from "node:os";',
  'import { Buffer as Buffer2, constants } from "node:buffer";',
  'import process2 from "node:process";',
  "function describe() {",
  "  return [typeof os.platform(), Buffer2.from([104, 105]).toString(), typeof constants.MAX_LENGTH, process2.pid];",
  "}",
  "var ready;",
  "var init_lazy = __esm({",
  '  "transports/x/lazy.ts"() {',
  "    ready = true;",
  "  }",
  "});",
  "export const load = () => (init_lazy(), describe());",
  "export const pathsOf = () => [__filename, __dirname];",
  "export const needCjs = __commonJS({ 'c.js'(exports, module) { module.exports = typeof __dirname; } });",
  "function __export(target, all) {",
  "  for (const name in all) Object.defineProperty(target, name, { get: all[name], enumerable: true });",
  "}",
  "",
].join("\n");

Deno.test("lazyNodeImports() turns a lazily initialised module's Node imports into variables its init fills", async () => {
  const { text, lazy, eager } = lazyNodeImports(BUNDLE);
  assertEquals(lazy, 3);
  assertEquals(eager, ['core/eager.ts: import { EOL } from "node:os";']);
  assertEquals(text.includes('import * as os from "node:os";'), false);
  assertEquals(text.includes("var Buffer2, constants;"), true);
  assertEquals(text.includes("__deno_internal_createRequire"), false);
  // the rewritten bundle runs: before the init nothing is loaded, after it the values are Node's own
  const file = await Deno.makeTempFile({ suffix: ".js" });
  try {
    await Deno.writeTextFile(file, LAZY_NODE_PRELUDE + text);
    const mod = await import(new URL(`file://${file}`).href);
    assertEquals(mod.pathsOf(), [undefined, undefined]);
    assertEquals(mod.load(), ["string", "hi", "number", Deno.pid]);
    // __filename and __dirname are there once the first CommonJS module runs
    assertEquals(mod.needCjs(), "string");
    assertEquals(mod.pathsOf(), [file, file.slice(0, file.lastIndexOf("/"))]);
    assertEquals(mod.eol(), "\n");
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("lazyNodeImports() rejects a bundle whose require helper it does not know", () => {
  const odd = BUNDLE.replace("var __require = __deno_internal_createRequire(import.meta.url);", "var __require = 1;");
  throws(() => lazyNodeImports(odd), /unknown shape of __require/);
});
