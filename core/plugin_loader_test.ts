import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { defaultPluginDir, loadPluginEntries } from "./plugin_loader.ts";
import type { OpenContext } from "../plugins/mod.ts";

const fixture = new URL("../tests/fixtures/plugin_sessions.ts", import.meta.url).pathname;

async function install(dir: string, name: string): Promise<string> {
  const path = `${dir}/remote-transport-${name}`;
  await Deno.writeTextFile(path, `#!/bin/sh\nexec '${Deno.execPath()}' run -A --quiet '${fixture}' "$@"\n`);
  await Deno.chmod(path, 0o755);
  return path;
}

Deno.test("defaultPluginDir() follows XDG_DATA_HOME", () => {
  const old = Deno.env.get("XDG_DATA_HOME");
  Deno.env.set("XDG_DATA_HOME", "/srv/data");
  try {
    if (defaultPluginDir() !== "/srv/data/remote/plugins") throw new Error(defaultPluginDir());
  } finally {
    if (old === undefined) Deno.env.delete("XDG_DATA_HOME");
    else Deno.env.set("XDG_DATA_HOME", old);
  }
});

Deno.test("loadPluginEntries() prefers the plugin dir over PATH and skips non-executables", async () => {
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
  try {
    const first = await install(a, "hosted");
    await install(b, "hosted");
    await Deno.writeTextFile(`${b}/remote-transport-plain`, "not executable");
    const entries = await loadPluginEntries({
      specifiers: [],
      executables: true,
      pluginDir: a,
      path: `/nonexistent:${b}`,
    });
    const found = entries.map((e) => e.origin.kind === "executable" ? e.origin.path : "?");
    if (JSON.stringify(found) !== JSON.stringify([first])) throw new Error(JSON.stringify(found));
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("loadPluginEntries() lists a folder PATH names twice (through a link) once, and searches on after it", async () => {
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
  const link = `${a}-link`;
  try {
    await Deno.symlink(a, link);
    const found = async (path: string) =>
      (await loadPluginEntries({ specifiers: [], executables: true, pluginDir: "/nonexistent", path }))
        .map((e) => e.origin.kind === "executable" ? e.origin.path : "?");
    const inB = await install(b, "hosted");
    assertEquals(await found(`${a}:${link}:${b}`), [inB]);
    await install(a, "hosted");
    // the name PATH gives first wins, as for commands
    assertEquals(await found(`${link}:${a}:${b}`), [`${link}/remote-transport-hosted`]);
  } finally {
    await Deno.remove(link);
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("an out-of-process plugin prompts through remote and hosts sessions over the protocol", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await install(dir, "hosted");
    const [entry] = await loadPluginEntries({ specifiers: [], executables: true, pluginDir: dir, path: "" });
    const transport = await entry.load();
    const asked: string[] = [];
    const notices: string[] = [];
    const ctx: OpenContext = {
      target: { transport: "hosted", host: "h", display: "hosted://h" },
      parameters: {},
      signal: AbortSignal.timeout(30_000),
      prompt: {
        interactive: true,
        ask: (q, o) => (asked.push(`${q}|${o?.secret}|${o?.what}`), Promise.resolve("hunter22")),
      },
      notice: (line) => notices.push(line),
    };
    await using ch = await transport.open(ctx, { kind: "exec", command: "whoami" });
    const out = await new Response(ch.stdout).text();
    const status = await ch.exit;
    if (out !== "8 whoami\n") throw new Error(out);
    if (status.kind !== "exited" || status.code !== 7) throw new Error(JSON.stringify(status));
    if (asked.join() !== "password: |true|Credential" || notices.join() !== "connected") {
      throw new Error(`${asked} ${notices}`);
    }
    const list = await transport.sessions!.list(ctx);
    if (list.length !== 1 || list[0].name !== "s1") throw new Error(JSON.stringify(list));
    const bytes = await transport.sessions!.receive(ctx, "abcd");
    if (bytes.join() !== "0,255,4") throw new Error(bytes.join());
    await transport.sessions!.remove(ctx, "s1");
    const err = await transport.sessions!.remove(ctx, "s9").then(() => undefined, (e) => e);
    if (!(err instanceof Error) || err.message !== "no session named s9") throw new Error(String(err));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
