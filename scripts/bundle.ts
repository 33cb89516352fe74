/**
 * `deno task bundle [--output file]`: one JavaScript module holding remote and its npm dependencies,
 * runnable as `deno run -A remote.js` from any folder — the stand-in, here, for the compiled binary.
 *
 * Native addons (`*.node`) cannot travel inside a JavaScript module, so the one remote needs travels
 * beside it: the local transport's PTY addon, the package `@lydell/node-pty-<os>-<arch>` for this
 * machine, is copied to `node_modules/` next to the output, where the bundle's `require()` (made with
 * `createRequire(import.meta.url)`) finds it as Node's resolution does. Move the folder, not the file.
 * (ssh2's optional crypto addon is nan-based, which Deno cannot load anyway: it stays out, and ssh2
 * takes its JavaScript path.) ssh2's poly1305 module is Emscripten output that reads `__dirname` at load
 * time, so the bundle defines it before the first CommonJS module runs.
 *
 * Node's built-in modules load when the code that needs them first runs, as they do unbundled, not with
 * the bundle (scripts/_lazy_node_imports.ts): the first one starts Deno's Node layer.
 *
 * The guides of `remote help <topic>` (core/help_topics.ts) are made from docs/ first, so they match
 * the docs of the tree being bundled.
 *
 * AWS's SDK (the ssm transport's `aws_sdk*.ts`, loaded lazily through transports/ssm/sdk_loader.ts) is
 * bundled separately and carried inside the bundle as text, made a module only on first use: V8 then
 * scans it as one string literal instead of parsing several megabytes of code on every start, so
 * `remote --version` and ssh do not pay for it. The loader finds it through `globalThis.__remote_lazy`.
 *
 * @module
 */

import { dirname, join } from "node:path";
import process from "node:process";
import { AWS_SDK_MODULES } from "../transports/ssm/sdk_loader.ts";
import { writeTopicsModule } from "./help_topics.ts";
import { LAZY_NODE_PRELUDE, lazyNodeImports } from "./_lazy_node_imports.ts";

const args = Deno.args;
const outputIndex = args.indexOf("--output");
const output = outputIndex >= 0 ? args[outputIndex + 1] : "dist/remote.js";
if (!output) {
  console.error("remote bundle: --output needs a file name");
  Deno.exit(2);
}
const root = new URL("..", import.meta.url).pathname;
/** Modules loaded lazily by transports/ssm/sdk_loader.ts and carried as text; each is bundled on its own. */
const LAZY: readonly string[] = AWS_SDK_MODULES;

async function bundle(entry: string, out: string, external: string[], minify = false): Promise<void> {
  const flags = [...external.flatMap((e) => ["--external", e]), ...(minify ? ["--minify"] : [])];
  const command = new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "deno", ...flags, "-o", out, entry],
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  });
  const { code } = await command.output();
  if (code !== 0) {
    console.error(`remote bundle: deno bundle ${entry} failed with exit code ${code}`);
    Deno.exit(code);
  }
}

// the guides `remote help <topic>` prints travel inside: made from docs/ now
await writeTopicsModule();
const outPath = output.startsWith("/") ? output : `${root}${output}`;
const lazyNames = LAZY.map((path) => `./${path.split("/").pop()}`);
await bundle("main.ts", output, ["*.node", ...lazyNames.map((name) => `*/${name.slice(2)}`)]);
const body = await Deno.readTextFile(outPath);
const sources: Record<string, string> = {};
const scratch = await Deno.makeTempDir({ prefix: "remote-bundle-" });
try {
  for (const [i, path] of LAZY.entries()) {
    await bundle(path, `${scratch}/lazy${i}.js`, ["*.node"], true);
    // a blob: module has no file URL; the SDK's createRequire needs one only to find Node's built-ins
    sources[lazyNames[i]] = (await Deno.readTextFile(`${scratch}/lazy${i}.js`))
      .replaceAll("createRequire(import.meta.url)", 'createRequire("file:///remote-bundle/aws-sdk.js")');
  }
} finally {
  await Deno.remove(scratch, { recursive: true });
}
const packed: Record<string, string> = {};
for (const [name, text] of Object.entries(sources)) {
  const gz = new Uint8Array(
    await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
  );
  let binary = "";
  for (let i = 0; i < gz.length; i += 0x8000) binary += String.fromCharCode(...gz.subarray(i, i + 0x8000));
  packed[name] = btoa(binary);
}
// Node's built-ins load when the code that needs them first runs (scripts/_lazy_node_imports.ts)
const lazyNode = lazyNodeImports(body);
const prelude = LAZY_NODE_PRELUDE +
  // gzip and base64: what Deno and V8 scan on every start is a few hundred kB of plain letters
  `var __remote_lazy_sources = ${JSON.stringify(packed)};\n` +
  `var __remote_lazy_loaded = new Map();\n` +
  `globalThis.__remote_lazy = (name) => {\n` +
  `  let loaded = __remote_lazy_loaded.get(name);\n` +
  `  if (!loaded) {\n` +
  `    const bytes = Uint8Array.from(atob(__remote_lazy_sources[name]), (c) => c.charCodeAt(0));\n` +
  `    const text = new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).blob();\n` +
  `    loaded = text.then((b) => import(URL.createObjectURL(new Blob([b], { type: "text/javascript" }))));\n` +
  `    __remote_lazy_loaded.set(name, loaded);\n` +
  `  }\n` +
  `  return loaded;\n` +
  `};\n`;
await Deno.writeTextFile(outPath, prelude + lazyNode.text);
const addon = await copyPtyAddon(dirname(outPath));
console.error(
  `remote bundle: wrote ${output} (${
    ((prelude.length + lazyNode.text.length) / 1e6).toFixed(1)
  } MB) and ${addon} beside it`,
);
// a module that runs at start and imports a Node built-in starts Node's layer with every run
for (const line of lazyNode.eager) console.error(`remote bundle: loaded at start: ${line}`);

/**
 * Copies this machine's node-pty binary package (`pty.node`, and `spawn-helper` on macOS) into
 * `<dir>/node_modules/@lydell/`, replacing an older copy; returns its path relative to `dir`.
 */
async function copyPtyAddon(dir: string): Promise<string> {
  const name = `node-pty-${process.platform}-${process.arch}`;
  // node_modules/@lydell/node-pty links into Deno's store, where its platform package is a sibling
  const from = join(dirname(await Deno.realPath(join(root, "node_modules/@lydell/node-pty"))), name);
  const relative = `node_modules/@lydell/${name}`;
  const to = join(dir, relative);
  try {
    await Deno.stat(join(from, "pty.node"));
  } catch {
    console.error(`remote bundle: ${from}/pty.node is missing; run \`deno install --frozen\` first`);
    Deno.exit(1);
  }
  await Deno.remove(to, { recursive: true }).catch(() => {});
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (!entry.isFile) continue;
    await Deno.copyFile(join(from, entry.name), join(to, entry.name));
    await Deno.chmod(join(to, entry.name), (await Deno.stat(join(from, entry.name))).mode! & 0o755);
  }
  return relative;
}
