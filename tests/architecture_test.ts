/**
 * The seams of STYLE.md and docs/architecture.md, checked on the source: the SDK (plugins/) is the floor
 * and imports nothing above it, the core reaches the SDK through plugins/mod.ts only, the PowerShell
 * remoting layer (plugins/psrp/) is reached through its mod.ts and owns no socket, dependencies point
 * inward, built-ins load lazily with literal specifiers, the `--via` glue (core/via.ts) loads only when used, and
 * nothing is imported from JSR or a URL (CI cannot reach them).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";

const root = new URL("../", import.meta.url);

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(new URL(dir, root))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* sourceFiles(path);
    else if (/\.(ts|js)$/.test(entry.name)) yield path;
  }
}

function importsOf(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/g)) found.push(m[1]);
  for (const m of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) found.push(m[1]);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s*["']([^"']+)["']/g)) found.push(m[1]);
  return found;
}

function resolve(from: string, specifier: string): string {
  return new URL(specifier, new URL(from, root)).pathname.replace(new URL(".", root).pathname, "");
}

async function allImports(dirs: string[]): Promise<{ file: string; specifier: string; target: string }[]> {
  const out = [];
  for (const dir of dirs) {
    for await (const file of sourceFiles(dir)) {
      const text = await Deno.readTextFile(new URL(file, root));
      for (const specifier of importsOf(text)) {
        const target = specifier.startsWith(".") ? resolve(file, specifier) : specifier;
        out.push({ file, specifier, target });
      }
    }
  }
  return out;
}

Deno.test("core imports no transport", async () => {
  // Tests beside the core may drive it with a real transport; the core's own modules may not.
  const wrong = (await allImports(["core"]))
    .filter((i) => !i.file.endsWith("_test.ts") && i.target.startsWith("transports/"));
  assertEquals(wrong, []);
});

Deno.test("the SDK imports nothing from the core, a transport or the tests", async () => {
  // plugins/ is the floor a plugin author builds on alone: its tests and examples too.
  const wrong = (await allImports(["plugins"]))
    .filter((i) => i.specifier.startsWith(".") && !i.target.startsWith("plugins/"));
  assertEquals(wrong, []);
});

Deno.test("the core imports the SDK only through plugins/mod.ts and plugins/psrp/mod.ts", async () => {
  const wrong = (await allImports(["core"]))
    .filter((i) =>
      i.target.startsWith("plugins/") && i.target !== "plugins/mod.ts" && i.target !== "plugins/psrp/mod.ts"
    );
  assertEquals(wrong, []);
});

Deno.test("a transport imports only the SDK (plugins/mod.ts, plugins/psrp/mod.ts), core/mod.ts and its own folder", async () => {
  const wrong = (await allImports(["transports"])).filter(({ file, target, specifier }) => {
    if (file === "transports/mod.ts") return false;
    if (!specifier.startsWith(".")) return false; // npm and node: packages
    const own = file.split("/").slice(0, 2).join("/") + "/";
    return !(target.startsWith(own) || target === "plugins/mod.ts" || target === "plugins/psrp/mod.ts" ||
      target === "core/mod.ts");
  });
  assertEquals(wrong, []);
});

Deno.test("plugins/psrp imports only its own folder and the SDK's errors, and no package: it owns no socket", async () => {
  const wrong = (await allImports(["plugins/psrp"])).filter(({ file, target, specifier }) => {
    if (!specifier.startsWith(".")) return !(file.endsWith("_test.ts") && specifier === "node:assert/strict");
    return !(target.startsWith("plugins/psrp/") || target === "plugins/errors.ts");
  });
  assertEquals(wrong, []);
});

Deno.test("other folders import plugins/psrp only through plugins/psrp/mod.ts", async () => {
  const wrong = (await allImports(["core", "transports", "plugins", "tests", "bench", "scripts"]))
    .filter((i) =>
      !i.file.startsWith("plugins/psrp/") && i.target.startsWith("plugins/psrp/") && i.target !== "plugins/psrp/mod.ts"
    );
  assertEquals(wrong, []);
});

Deno.test("nothing is imported from JSR or a URL", async () => {
  const wrong = (await allImports(["core", "transports", "plugins", "tests", "bench", "scripts"]))
    .filter((i) => /^(jsr:|https?:)/.test(i.specifier));
  assertEquals(wrong, []);
});

Deno.test("built-in transports load lazily through literal import() specifiers", async () => {
  const text = await Deno.readTextFile(new URL("transports/mod.ts", root));
  const lazy = [...text.matchAll(/\bimport\(([^)]+)\)/g)].map((m) => m[1]);
  assertEquals(lazy.length > 0 && lazy.every((s) => /^"\.\/[a-z0-9_]+\/mod\.ts"$/.test(s)), true, lazy.join());
  const staticImports = importsOf(text).filter((s) => !lazy.includes(`"${s}"`));
  assertEquals(staticImports.filter((s) => s.endsWith("/mod.ts") && s.startsWith("./")), []);
});

/** The first import cycle found among `files` (as a path that returns to its start), or undefined. */
function findCycle(edges: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string): string[] | undefined => {
    if (state.get(file) === "done") return undefined;
    if (state.get(file) === "open") return [...stack.slice(stack.indexOf(file)), file];
    state.set(file, "open");
    stack.push(file);
    for (const next of edges.get(file) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(file, "done");
    return undefined;
  };
  for (const file of [...edges.keys()].sort()) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return undefined;
}

Deno.test("the core's modules import one another without a cycle", async () => {
  // type-only and lazy imports count too: a cycle among them is still two modules that cannot be read apart
  const edges = new Map<string, string[]>();
  for (const { file, target } of await allImports(["core"])) {
    if (file.endsWith("_test.ts") || !target.startsWith("core/")) continue;
    edges.set(file, [...(edges.get(file) ?? []), target]);
  }
  assertEquals(findCycle(edges), undefined);
});

Deno.test("findCycle() finds a cycle through three modules and none in a tree", () => {
  const cyclic = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
  assertEquals(findCycle(cyclic), ["a", "b", "c", "a"]);
  assertEquals(findCycle(new Map([["a", ["b", "c"]], ["b", ["c"]], ["c", []]])), undefined);
});

Deno.test("the verbs load lazily through literal import() specifiers", async () => {
  const text = await Deno.readTextFile(new URL("core/verbs/mod.ts", root));
  const lazy = [...text.matchAll(/\bimport\(([^)]+)\)/g)].map((m) => m[1]);
  assertEquals(lazy.length > 0 && lazy.every((s) => /^"\.\/[a-z0-9_]+\.ts"$/.test(s)), true, lazy.join());
  // nothing but types is imported up front, so naming the verbs loads none of their code
  const eager = [...text.matchAll(/(?:^|\n)\s*import\s+(?!type\b)[^;]*?\bfrom\s*["']([^"']+)["']/g)].map((m) => m[1]);
  assertEquals(eager, []);
});

Deno.test("core/via.ts, which joins one transport to another, is loaded only by literal import() (--via)", async () => {
  // a run without --via (or a config via) loads none of it; docs/architecture.md, "One transport through another"
  const eager = [];
  for await (const file of sourceFiles("core")) {
    if (file.endsWith("_test.ts")) continue;
    const text = await Deno.readTextFile(new URL(file, root));
    const lazy = [...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]);
    for (const specifier of importsOf(text)) {
      if (resolve(file, specifier) === "core/via.ts" && !lazy.includes(specifier)) eager.push(file);
    }
  }
  assertEquals(eager, []);
});
