/**
 * Makes a `deno bundle` output load Node's built-in modules when the code that needs them first runs, not
 * when the bundle starts. In one bundled file every `import … from "node:…"` of every module is a static
 * import of the whole bundle, and the first one starts Deno's Node layer (~20 ms of CPU), so `remote
 * --version` and a command sent through the reuse master paid for the ssh transport's `node:net`,
 * `node:crypto`, … (BENCHMARKS.md, cold start). esbuild wraps each module reached only through `import()` in
 * an `init_…` function (`__esm`); such a module's Node imports become variables that its `init_…` fills from
 * `process.getBuiltinModule` (the same objects the imports give). A module that runs at start keeps its
 * imports as they are. npm packages' `require()` (`__require`) makes its `createRequire` on first call, and
 * `__filename`/`__dirname`, read by CommonJS modules as they load, are set before the first one runs.
 *
 * @example
 * ```ts
 * import { lazyNodeImports } from "./_lazy_node_imports.ts";
 * const body = [
 *   "// a.ts",
 *   'import * as net from "node:net";',
 *   "function dial() { return net.connect(22); }",
 *   "var init_a = __esm({",
 *   '  "a.ts"() {',
 *   "  }",
 *   "});",
 * ].join("\n");
 * console.assert(lazyNodeImports(body).text.includes('net = __remote_node("node:net");'));
 * ```
 *
 * @module
 */

/** What {@linkcode lazyNodeImports} did. */
export interface LazyNodeResult {
  text: string;
  /** imports made lazy */
  lazy: number;
  /** imports left as they were: their module runs at start */
  eager: string[];
}

/** Statements put before the bundle's code: {@linkcode lazyNodeImports}'s output uses them. */
export const LAZY_NODE_PRELUDE = [
  "var __remote_node = (name) => globalThis.process.getBuiltinModule(name);",
  "var __filename, __dirname;",
  "var __remote_paths = () => {",
  "  if (__filename !== undefined) return;",
  '  __filename = __remote_node("node:url").fileURLToPath(import.meta.url);',
  '  __dirname = __remote_node("node:path").dirname(__filename);',
  "};",
  "",
].join("\n");

const NODE_IMPORT = /^import (.+) from "(node:[a-z_/]+)";$/;
const CREATE_REQUIRE = 'import { createRequire as __deno_internal_createRequire } from "node:module";\n' +
  "var __require = __deno_internal_createRequire(import.meta.url);\n";
const LAZY_REQUIRE = "var __remote_require;\n" +
  'var __remote_required = () => __remote_require ??= __remote_node("node:module").createRequire(import.meta.url);\n' +
  "var __require = Object.assign((id) => __remote_required()(id), {\n" +
  "  resolve: (id, options) => __remote_required().resolve(id, options),\n" +
  "});\n";
const COMMON_JS = /(var __commonJS = \(cb, mod\) => function \w+\(\) \{\n {2}return )(mod \|\|)/;

/**
 * Rewrites `body` (a `deno bundle` output) as the module doc says; needs {@linkcode LAZY_NODE_PRELUDE} before it.
 *
 * @throws {Error} when the bundle's helpers are not in the shape this was written for (a new esbuild)
 */
export function lazyNodeImports(body: string): LazyNodeResult {
  let text = body;
  if (text.includes(CREATE_REQUIRE)) text = text.replace(CREATE_REQUIRE, LAZY_REQUIRE);
  else if (text.includes("__deno_internal_createRequire")) throw new Error("unknown shape of __require");
  if (COMMON_JS.test(text)) text = text.replace(COMMON_JS, "$1__remote_paths(), $2");
  else if (text.includes("__commonJS")) throw new Error("unknown shape of __commonJS");

  const original = text.split("\n");
  const lines = [...original];
  let section = "";
  let lazy = 0;
  const eager: string[] = [];
  /** assignments to insert after a line (by index) */
  const inserts = new Map<number, string[]>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("// ")) section = line.slice(3);
    const m = NODE_IMPORT.exec(line);
    // an import heads its module: after the module's comment, another import or its `__export(…);`
    if (!m || !/^(\/\/ |import |\}\);$)/.test(original[i - 1] ?? "")) continue;
    const bindings = parseClause(m[1]);
    const init = bindings && section ? findInit(lines, i + 1, section) : -1;
    if (!bindings || init < 0) {
      eager.push(`${section}: ${line}`);
      continue;
    }
    lines[i] = `var ${bindings.names.join(", ")};`;
    const at = inserts.get(init) ?? [];
    at.push(`    ${bindings.assign(`__remote_node("${m[2]}")`)};`);
    inserts.set(init, at);
    lazy++;
  }
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    out.push(lines[i]);
    for (const a of inserts.get(i) ?? []) out.push(a);
  }
  return { text: out.join("\n"), lazy, eager };
}

/** The variables an import clause binds and the statement that fills them from a module's exports object. */
function parseClause(clause: string): { names: string[]; assign(from: string): string } | undefined {
  const star = /^\* as ([\w$]+)$/.exec(clause);
  // the exports object of a built-in is its default export, and holds each named export
  if (star) return { names: [star[1]], assign: (from) => `${star[1]} = ${from}` };
  const def = /^([\w$]+)$/.exec(clause);
  if (def) return { names: [def[1]], assign: (from) => `${def[1]} = ${from}` };
  const named = /^\{ ([^}]+) \}$/.exec(clause);
  if (!named) return undefined;
  const pairs: [string, string][] = [];
  for (const part of named[1].split(", ")) {
    const p = /^([\w$]+)(?: as ([\w$]+))?$/.exec(part);
    if (!p || p[1] === "default") return undefined;
    pairs.push([p[1], p[2] ?? p[1]]);
  }
  return {
    names: pairs.map(([, local]) => local),
    assign: (from) =>
      `({ ${pairs.map(([name, local]) => name === local ? name : `${name}: ${local}`).join(", ")} } = ${from})`,
  };
}

/** The line that opens `section`'s init function (`"path"() {` inside `__esm({`), from line `from`; -1 if none. */
function findInit(lines: string[], from: number, section: string): number {
  const opening = `  ${JSON.stringify(section)}() {`;
  for (let i = from; i < lines.length; i++) {
    if (lines[i].startsWith("// ") && lines[i].slice(3) !== section) return -1;
    if (lines[i] === opening && /= __esm\(\{$/.test(lines[i - 1])) return i;
  }
  return -1;
}
