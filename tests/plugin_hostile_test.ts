/**
 * Hostile and broken plugins: each must fail with one clear PluginError (exit 235) naming the plugin,
 * and leave no plugin process behind. Out-of-process fixtures run as real executables (shell
 * wrappers around `deno run`), discovered by the loader like any `remote-transport-*`.
 */
import { loadPluginEntries } from "../core/plugin_loader.ts";
import type { TransportEntry } from "../core/transport_catalog.ts";
import { mergeCatalog, type OpenContext, PluginError, UsageError, validateManifest } from "../plugins/mod.ts";
import { builtinTransports } from "../transports/mod.ts";

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

function assertPluginError(e: unknown, plugin: string, ...parts: string[]): PluginError {
  if (!(e instanceof PluginError)) throw new Error(`expected a PluginError, got ${e}`, { cause: e });
  if (e.plugin !== plugin) throw new Error(`error names ${e.plugin}, not ${plugin}: ${e.message}`);
  if (e.exitCode !== 235) throw new Error(`exit code ${e.exitCode}`);
  if (!e.message.startsWith(`plugin ${plugin}: `)) throw new Error(`message does not name the plugin: ${e.message}`);
  if (e.message.includes("\n")) throw new Error(`message is not one line: ${e.message}`);
  if (!e.hint) throw new Error(`no hint: ${e.message}`);
  for (const part of parts) if (!e.message.includes(part)) throw new Error(`"${part}" not in: ${e.message}`);
  return e;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return await p.then(() => new Error("it did not fail"), (e) => e);
}

/** Processes descending from this test process (Linux /proc), excluding zombies. */
async function descendants(): Promise<number[]> {
  const parent = new Map<number, number>();
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (f[0] !== "Z") parent.set(Number(e.name), Number(f[1]));
    } catch { /* ended */ }
  }
  const out = new Set<number>();
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!out.has(pid) && (ppid === Deno.pid || out.has(ppid))) out.add(pid), grew = true;
    }
  }
  return [...out];
}

/**
 * Descendants running `fixture`: `deno test --parallel` runs every test file in this one process, so
 * other files' servers are descendants too and must not count.
 */
async function pluginProcesses(fixture: string): Promise<number[]> {
  const found = [];
  for (const pid of await descendants()) {
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    if (cmdline.includes(fixture)) found.push(pid);
  }
  return found;
}

async function assertNoChildren(fixture: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await pluginProcesses(fixture)).length === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`plugin processes left behind: ${(await pluginProcesses(fixture)).join(", ")}`);
}

async function executableEntry(name: string, file: string): Promise<{ entry: TransportEntry; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "remote-hostile-" });
  const path = `${dir}/remote-transport-${name}`;
  await Deno.writeTextFile(path, `#!/bin/sh\nexec '${Deno.execPath()}' run -A --quiet '${fixture(file)}' "$@"\n`);
  await Deno.chmod(path, 0o755);
  const [entry] = await loadPluginEntries({ specifiers: [], executables: true, pluginDir: dir, path: "" });
  return { entry, dir };
}

function context(signal = AbortSignal.timeout(30_000)): OpenContext {
  return {
    target: { transport: "x", host: "h", display: "x://h" },
    parameters: {},
    signal,
    prompt: { interactive: false, ask: () => Promise.reject(new UsageError("nobody can answer here")) },
    notice: () => {},
  };
}

Deno.test("loadPluginEntries() refuses a module written for another sdk, naming it", async () => {
  const e = await rejection(loadPluginEntries({
    specifiers: [fixture("plugin_wrong_sdk.ts")],
    executables: false,
    pluginDir: "/nonexistent",
    path: "",
  }));
  assertPluginError(e, "future", "sdk 2", "sdk 1");
});

Deno.test("loadPluginEntries() refuses a module whose manifest lacks fields", async () => {
  const e = await rejection(loadPluginEntries({
    specifiers: [fixture("plugin_missing_fields.ts")],
    executables: false,
    pluginDir: "/nonexistent",
    path: "",
  }));
  assertPluginError(e, "sloppy", "manifest has no summary");
});

Deno.test("loadPluginEntries() names a module path that cannot be imported", async () => {
  const e = await rejection(loadPluginEntries({
    specifiers: ["./no/such/plugin.ts"],
    executables: false,
    pluginDir: "/nonexistent",
    path: "",
  }));
  assertPluginError(e, "./no/such/plugin.ts", "cannot be imported");
});

Deno.test("mergeCatalog() refuses a plugin claiming a built-in's scheme, naming both origins", async () => {
  const entries = await loadPluginEntries({
    specifiers: [fixture("plugin_duplicate.ts")],
    executables: false,
    pluginDir: "/nonexistent",
    path: "",
  });
  const e = assertPluginError(
    await rejection(Promise.resolve().then(() => mergeCatalog([...builtinTransports, ...entries]))),
    "sshalike",
    `scheme "ssh" is already claimed by ssh (built-in)`,
    fixture("plugin_duplicate.ts"),
  );
  if (!e.hint?.includes("remove one")) throw new Error(e.hint);
});

Deno.test("loadPluginEntries() refuses an executable printing a wrong-sdk manifest, or warns and skips it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "remote-hostile-" });
  try {
    const manifest = { id: "old", sdk: 0, version: "1", summary: "old", capabilities: [], parameters: [] };
    await Deno.writeTextFile(`${dir}/remote-transport-old`, `#!/bin/sh\necho '${JSON.stringify(manifest)}'\n`);
    await Deno.chmod(`${dir}/remote-transport-old`, 0o755);
    const opts = { specifiers: [], executables: true, pluginDir: dir, path: "" };
    assertPluginError(await rejection(loadPluginEntries(opts)), "old", "sdk 0");
    const warned: PluginError[] = [];
    const entries = await loadPluginEntries({ ...opts, warn: (w) => warned.push(w) });
    if (entries.length !== 0 || warned.length !== 1) {
      throw new Error(`${entries.length} entries, ${warned.length} warnings`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an out-of-process plugin that crashes mid-session ends the session with a PluginError", async () => {
  const { entry, dir } = await executableEntry("crashy", "plugin_crash.ts");
  try {
    const transport = await entry.load();
    await using channel = await transport.open(context(), { kind: "exec", command: "anything" });
    const out = new TextDecoder().decode(await new Response(channel.stdout).arrayBuffer());
    if (out !== "partial output\n") throw new Error(`stdout: ${JSON.stringify(out)}`);
    const status = await channel.exit;
    if (status.kind !== "lost") throw new Error(`status ${status.kind}`);
    assertPluginError(status.error, "crashy", "exited with code 3 in the middle of a session", "went badly wrong");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assertNoChildren("plugin_crash.ts");
});

Deno.test("an out-of-process plugin writing garbage on stdout is refused and killed", async () => {
  const { entry, dir } = await executableEntry("noisy", "plugin_garbage.ts");
  try {
    const transport = await entry.load();
    const e = await rejection(transport.open(context(), { kind: "exec", command: "anything" }));
    assertPluginError(e, "noisy", "garbage on the protocol stream", `starts "starting up the noisy`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assertNoChildren("plugin_garbage.ts");
});

Deno.test("an out-of-process plugin speaking a newer protocol is refused and stopped", async () => {
  const { entry, dir } = await executableEntry("nextgen", "plugin_future_protocol.ts");
  try {
    const transport = await entry.load();
    const e = await rejection(transport.open(context(), { kind: "exec", command: "anything" }));
    const err = assertPluginError(e, "nextgen", "speaks protocol version 2, this remote speaks 1");
    if (err.hint !== "upgrade remote") throw new Error(err.hint);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assertNoChildren("plugin_future_protocol.ts");
});

Deno.test("validateManifest() accepts every built-in manifest and the cliexec example's", async () => {
  const { builtinTransports } = await import("../transports/mod.ts");
  const { manifest } = await import("../plugins/examples/cliexec/manifest.ts");
  for (const m of [...builtinTransports.map((e) => e.manifest), manifest]) validateManifest(m, m.id);
  // the example claims no ID or scheme of a built-in, so loading it never stops a run
  const example: TransportEntry = {
    manifest,
    origin: { kind: "module", specifier: "./plugins/examples/cliexec/mod.ts" },
    load: () => import("../plugins/examples/cliexec/mod.ts"),
  };
  mergeCatalog([...builtinTransports, example]);
});
