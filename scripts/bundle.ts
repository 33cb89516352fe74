/**
 * `deno task bundle [--output file]`: one JavaScript module holding remote and its npm dependencies,
 * runnable as `deno run -A remote.js` from any folder — the stand-in, here, for the compiled binary.
 *
 * Native addons (`*.node`) stay outside: the local transport's node-pty cannot travel in a bundle, and
 * says so when used. ssh2's poly1305 module is Emscripten output that reads `__dirname` at load time,
 * so the bundle defines it first.
 *
 * @module
 */

const args = Deno.args;
const outputIndex = args.indexOf("--output");
const output = outputIndex >= 0 ? args[outputIndex + 1] : "dist/remote.js";
if (!output) {
  console.error("remote bundle: --output needs a file name");
  Deno.exit(2);
}
const root = new URL("..", import.meta.url).pathname;
const command = new Deno.Command(Deno.execPath(), {
  args: ["bundle", "--quiet", "--platform", "deno", "--external", "*.node", "-o", output, "main.ts"],
  cwd: root,
  stdout: "inherit",
  stderr: "inherit",
});
const { code } = await command.output();
if (code !== 0) {
  console.error(`remote bundle: deno bundle failed with exit code ${code}`);
  Deno.exit(code);
}
const outPath = output.startsWith("/") ? output : `${root}${output}`;
const body = await Deno.readTextFile(outPath);
const prelude = `import { dirname as __remote_dirname } from "node:path";\n` +
  `import { fileURLToPath as __remote_fileURLToPath } from "node:url";\n` +
  `var __filename = __remote_fileURLToPath(import.meta.url);\n` +
  `var __dirname = __remote_dirname(__filename);\n`;
await Deno.writeTextFile(outPath, prelude + body);
console.error(`remote bundle: wrote ${output} (${((prelude.length + body.length) / 1e6).toFixed(1)} MB)`);
