/**
 * Builds the `remote` binary with `deno compile`, optionally with extra transport plugins compiled in:
 *
 *   deno task build [--target <triple> | --all] [--plugin <path>]... [--out <dir>] [--entry-only]
 *
 * A compiled binary can import only what was embedded (denoland/deno#18327), so each `--plugin` is
 * written into a generated entry (`<out>/_build_main.ts`) as a literal lazy `import()` beside its
 * manifest, read here at build time; the binary lists the plugin without loading it. Honours
 * DENORT_BIN, as `deno compile` does.
 *
 * Native parts: `deno compile` embeds the npm packages of the lockfile's snapshot, as installed in
 * node_modules/, and at run time writes a Node-API addon (`*.node`) it loads to a temporary file
 * (denoland/deno#28934). node_modules/ holds the PTY addon package for one OS and CPU only
 * (`@lydell/node-pty-<os>-<arch>`), so each target is compiled after `deno install --os --arch` for it
 * (the host's is put back at the end), and the package is named with `--include` as well, since
 * node-pty finds it with a computed `require()`. On macOS node-pty also runs its `spawn-helper`
 * program, and on Windows it forks a script of its own that loads a second addon; both need real files,
 * so those targets are built `--self-extracting` (the binary unpacks itself beside it on first run,
 * denoland/deno#32227).
 * Linux's addon is a single file and the binary stays in-memory.
 *
 * The guides of `remote help <topic>` (core/help_topics.ts) are made from docs/ first.
 *
 * @module
 */
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { validateTransportModule } from "../plugins/mod.ts";
import { reservedParameters } from "../core/reserved_parameters.ts";
import { builtinTransports } from "../transports/mod.ts";
import { AWS_SDK_MODULES } from "../transports/ssm/sdk_loader.ts";
import { writeTopicsModule } from "./help_topics.ts";

/** The targets `deno compile` can build remote for. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** Parsed `deno task build` arguments. */
export interface BuildOptions {
  targets: string[];
  plugins: string[];
  out: string;
  entryOnly: boolean;
}

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** npm's `os` and `cpu` names (as `process.platform`, `process.arch`) of a target triple. */
export function npmPlatform(target: string): { os: string; arch: string } {
  const arch = target.startsWith("aarch64") ? "arm64" : "x64";
  const os = target.includes("apple-darwin") ? "darwin" : target.includes("windows") ? "win32" : "linux";
  return { os, arch };
}

/** Whether `deno compile` must unpack the binary to disk for `target` (see the module's doc). */
export function selfExtracting(target: string): boolean {
  return !target.includes("linux");
}

/** The OS and CPU whose npm packages node_modules/ holds now. */
let installed = npmPlatform(hostTarget());

/** Puts the npm packages for `platform` (or the host's, when absent) into node_modules/. */
async function installPackages(platform?: { os: string; arch: string }): Promise<string | undefined> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["install", "--frozen", ...(platform ? ["--os", platform.os, "--arch", platform.arch] : [])],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (result.success) return undefined;
  const text = new TextDecoder().decode(result.stderr).trim().split("\n").pop() ?? `exit code ${result.code}`;
  return `deno install${platform ? ` --os ${platform.os} --arch ${platform.arch}` : ""} failed: ${text}`;
}

/** The folder of node-pty's binary package for `platform` in node_modules/ (beside node-pty's own). */
async function ptyAddonDir(platform: { os: string; arch: string }): Promise<string> {
  const nodePty = await Deno.realPath(resolve(ROOT, "node_modules/@lydell/node-pty"));
  return resolve(dirname(nodePty), `node-pty-${platform.os}-${platform.arch}`);
}

function hostTarget(): string {
  const arch = Deno.build.arch;
  switch (Deno.build.os) {
    case "darwin":
      return `${arch}-apple-darwin`;
    case "windows":
      return `${arch}-pc-windows-msvc`;
    default:
      return `${arch}-unknown-linux-gnu`;
  }
}

/** Reads the build's arguments; throws a one-line error on bad ones. */
export function parseBuildArgs(args: readonly string[]): BuildOptions {
  const opts: BuildOptions = { targets: [], plugins: [], out: resolve(ROOT, "dist"), entryOnly: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--target") {
      const t = value();
      if (!(TARGETS as readonly string[]).includes(t)) {
        throw new Error(`unknown target ${t}; one of: ${TARGETS.join(", ")}`);
      }
      opts.targets.push(t);
    } else if (a === "--all") opts.targets.push(...TARGETS);
    else if (a === "--plugin") opts.plugins.push(resolve(value()));
    else if (a === "--out") opts.out = resolve(value());
    else if (a === "--entry-only") opts.entryOnly = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (opts.targets.length === 0) opts.targets.push(hostTarget());
  return opts;
}

/**
 * Writes the generated entry: main.ts's `main()` with each plugin as an extra transport entry. The
 * plugin is imported here once to read and check its manifest.
 */
export async function writeEntry(plugins: readonly string[], out: string): Promise<string> {
  await Deno.mkdir(out, { recursive: true });
  const entry = resolve(out, "_build_main.ts");
  const spec = (path: string) => {
    const r = relative(out, path).replaceAll("\\", "/");
    return r.startsWith(".") || isAbsolute(r) ? r : `./${r}`;
  };
  const lines = [
    "// Generated by scripts/build.ts: remote with extra transports compiled in. Do not edit.",
    `import { main } from ${JSON.stringify(spec(resolve(ROOT, "main.ts")))};`,
    `import { type TransportEntry, validateTransportModule } from ${
      JSON.stringify(spec(resolve(ROOT, "plugins/mod.ts")))
    };`,
    "",
    "const extra: TransportEntry[] = [",
  ];
  for (const path of plugins) {
    const mod = await import(pathToFileURL(path).href);
    // The core's own parameters are refused here, at build time, as the loader refuses them at run time.
    const reserved = await reservedParameters(builtinTransports.map((e) => e.manifest));
    const { manifest } = validateTransportModule(mod, path, { reserved });
    const literal = JSON.stringify(spec(path));
    lines.push(
      "  {",
      `    manifest: ${JSON.stringify(manifest)},`,
      `    origin: { kind: "module", specifier: ${JSON.stringify(`${relative(ROOT, path)} (compiled in)`)} },`,
      `    load: async () => validateTransportModule(await import(${literal}), ${literal}),`,
      "  },",
    );
  }
  lines.push("];", "", "Deno.exit(await main(Deno.args, extra));", "");
  await Deno.writeTextFile(entry, lines.join("\n"));
  return entry;
}

/** Compiles one target; returns an error line, or undefined on success. */
async function compile(entry: string, target: string, out: string): Promise<string | undefined> {
  const output = resolve(out, `remote-${target}${target.includes("windows") ? ".exe" : ""}`);
  const platform = npmPlatform(target);
  if (platform.os !== installed.os || platform.arch !== installed.arch) {
    const failed = await installPackages(platform);
    if (failed) return `cannot compile for ${target}: ${failed}`;
    installed = platform;
  }
  const addon = await ptyAddonDir(platform);
  try {
    await Deno.stat(resolve(addon, "pty.node"));
  } catch {
    return `cannot compile for ${target}: ${relative(ROOT, addon)}/pty.node is missing after deno install`;
  }
  const result = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "--allow-all",
      ...(selfExtracting(target) ? ["--self-extracting"] : []),
      "--target",
      target,
      "--include",
      addon,
      "--config",
      resolve(ROOT, "deno.json"),
      // loaded by a specifier made at run time (transports/ssm/sdk_loader.ts), so named here
      ...AWS_SDK_MODULES.flatMap((path) => ["--include", resolve(ROOT, path)]),
      "-o",
      output,
      entry,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (result.success) {
    console.log(`built ${relative(ROOT, output)}`);
    return undefined;
  }
  const text = new TextDecoder().decode(result.stderr);
  if (/denort/i.test(text) && /(error sending request|dns error|failed to download|connect)/i.test(text)) {
    return `cannot compile for ${target}: deno compile could not download denort for it (offline?)\n` +
      `hint: set DENORT_BIN to a denort binary for ${target}, or build where the Deno release host is reachable`;
  }
  const last = text.trim().split("\n").filter((l) => l.trim() !== "").pop() ?? `exit code ${result.code}`;
  return `cannot compile for ${target}: ${last}`;
}

if (import.meta.main) {
  let opts: BuildOptions;
  try {
    opts = parseBuildArgs(Deno.args);
  } catch (e) {
    console.error(`remote build: ${(e as Error).message}`);
    console.error("hint: deno task build [--target <triple> | --all] [--plugin <path>]... [--out <dir>]");
    Deno.exit(230);
  }
  let entry: string;
  try {
    entry = opts.plugins.length > 0 || opts.entryOnly
      ? await writeEntry(opts.plugins, opts.out)
      : resolve(ROOT, "main.ts");
  } catch (e) {
    console.error(`remote build: ${(e as Error).message.split("\n")[0]}`);
    console.error("hint: each --plugin must be a plugin module exporting manifest and open");
    Deno.exit(235);
  }
  if (opts.entryOnly) {
    console.log(relative(ROOT, entry));
    Deno.exit(0);
  }
  await writeTopicsModule();
  let failed = false;
  try {
    for (const target of opts.targets) {
      const error = await compile(entry, target, opts.out);
      if (error !== undefined) {
        console.error(`remote build: ${error}`);
        failed = true;
      }
    }
  } finally {
    // node_modules/ back to this machine's packages, for `deno run` and the tests
    const host = npmPlatform(hostTarget());
    const error = installed.os !== host.os || installed.arch !== host.arch ? await installPackages() : undefined;
    if (error) {
      console.error(`remote build: ${error}`);
      failed = true;
    }
  }
  Deno.exit(failed ? 1 : 0);
}
