/**
 * The plugin contract's edges as a user meets them through the CLI, with the same plugin loaded
 * in-process (`--plugin`) and run out-of-process (a `remote-transport-*` executable): parameters that
 * are remote's own, capabilities this remote does not know, `uri` values, and `background`.
 */
import { runRemote, tempHome } from "./run_remote.ts";
import { writeEntry } from "../scripts/build.ts";

const FIXTURE = new URL("./fixtures/plugin_contract.ts", import.meta.url).pathname;

function assert(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

/** Installs the fixture as `remote-transport-contract` in the home's plugin folder. */
async function installExecutable(home: { env: Record<string, string> }): Promise<void> {
  const dir = `${home.env.XDG_DATA_HOME}/remote/plugins`;
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/remote-transport-contract`;
  await Deno.writeTextFile(path, `#!/bin/sh\nexec '${Deno.execPath()}' run -A --quiet '${FIXTURE}' "$@"\n`);
  await Deno.chmod(path, 0o755);
}

Deno.test("a plugin parameter named or spelled like one of remote's own is refused with exit 235, naming it", async () => {
  await using home = await tempHome();
  const env = { ...home.env, CONTRACT_PARAMETER: "Json" };
  const run = await runRemote(["--plugin", FIXTURE, "invoke", "contract://h", "--", "hi"], { env });
  assert(run.code === 235, `exit ${run.code}: ${run.stderr}`);
  const lines = run.stderr.trimEnd().split("\n");
  assert(lines[0] === "remote: plugin contract: parameter Json is one of remote's own parameters", run.stderr);
  assert(lines.length === 2 && lines[1].startsWith("hint: rename it"), run.stderr);
  // PowerShell names are case-insensitive on the command line: JSON is spelled --json too.
  const upper = await runRemote(["--plugin", FIXTURE, "plugin", "list"], {
    env: { ...env, CONTRACT_PARAMETER: "JSON" },
  });
  assert(upper.code === 235 && upper.stderr.includes("parameter JSON is one of remote's own parameters"), upper.stderr);
  // Discovered executables that break the contract are skipped with a warning, as before.
  await installExecutable(home);
  const listed = await runRemote(["plugin", "list"], { env });
  assert(listed.code === 0, `exit ${listed.code}: ${listed.stderr}`);
  assert(listed.stderr.includes("plugin contract: parameter Json is one of remote's own parameters"), listed.stderr);
  assert(!/^contract /m.test(listed.stdout), listed.stdout);
});

Deno.test("a plugin parameter a built-in declares with another type, or another's spelling, is refused with exit 235", async () => {
  await using home = await tempHome();
  for (
    const [name, line] of [
      ["Port", "remote: plugin contract: parameter Port is of type switch, but of type int in ssh (built-in)"],
      ["Cn", "remote: plugin contract: parameter Cn is spelled --cn, as ComputerName is in winrm (built-in)"],
    ]
  ) {
    const env = { ...home.env, CONTRACT_PARAMETER: name };
    const run = await runRemote(["--plugin", FIXTURE, "invoke", "contract://h", "--", "hi"], { env });
    assert(run.code === 235 && run.stderr.startsWith(`${line}\nhint: `), `exit ${run.code}: ${run.stderr}`);
  }
});

Deno.test("a plugin's unknown optional capability is ignored, an unknown mandatory (*) one refuses it", async () => {
  for (const how of ["in-process", "out-of-process"]) {
    await using home = await tempHome();
    if (how === "out-of-process") await installExecutable(home);
    const plugin = how === "in-process" ? ["--plugin", FIXTURE] : [];
    const optional = { ...home.env, CONTRACT_CAPABILITIES: "teleport,*pty" };
    const list = await runRemote([...plugin, "plugin", "list"], { env: optional });
    assert(list.code === 0, `${how}: exit ${list.code}: ${list.stderr}`);
    assert(/^contract +1\.0\.0 +\S+ +exec,pty +contract:\/\/$/m.test(list.stdout), `${how}: ${list.stdout}`);
    const run = await runRemote([...plugin, "invoke", "contract://h", "--", "hi"], { env: optional });
    assert(
      run.code === 0 && run.stdout === "undefined undefined hi\n",
      `${how}: ${run.code} ${run.stdout}${run.stderr}`,
    );

    const mandatory = { ...home.env, CONTRACT_CAPABILITIES: "*teleport" };
    if (how === "out-of-process") {
      // serve() refuses to run a module its own SDK cannot serve, so this plugin was built with a newer one.
      const manifest = { ...(await import(FIXTURE)).manifest, capabilities: ["exec", "*teleport"] };
      const path = `${home.env.XDG_DATA_HOME}/remote/plugins/remote-transport-contract`;
      await Deno.writeTextFile(path, `#!/bin/sh\necho '${JSON.stringify(manifest)}'\n`);
    }
    const refused = await runRemote([...plugin, "invoke", "contract://h", "--", "hi"], { env: mandatory });
    const line = `plugin contract: needs the capability "teleport", which this remote does not have`;
    assert(refused.stderr.includes(line), `${how}: ${refused.stderr}`);
    if (how === "in-process") {
      assert(
        refused.code === 235 && refused.stderr.startsWith(`remote: ${line}\nhint: upgrade remote`),
        refused.stderr,
      );
    } else {
      // skipped with a warning, so the scheme is unknown
      assert(refused.code === 230 && refused.stderr.includes("no transport handles the scheme"), refused.stderr);
    }
  }
});

Deno.test("a uri parameter reaches a plugin as a URL in-process and out-of-process alike", async () => {
  await using home = await tempHome();
  const args = ["invoke", "contract://h", "--endpoint", "https://win01:5986/wsman", "--", "hi"];
  const inProcess = await runRemote(["--plugin", FIXTURE, ...args], { env: home.env });
  await installExecutable(home);
  const outOfProcess = await runRemote(args, { env: home.env });
  for (const run of [inProcess, outOfProcess]) {
    assert(run.code === 0, `exit ${run.code}: ${run.stderr}`);
    assert(run.stdout === "URL https://win01:5986/wsman hi\n", run.stdout);
  }
});

Deno.test("a compiled-in plugin keeps its background helper through validation", async () => {
  const out = await Deno.makeTempDir({ prefix: "remote-build-" });
  try {
    const entry = await writeEntry([FIXTURE], out);
    const child = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--quiet", entry, "__transport-background", "contract", "a", "b"],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const stdout = new TextDecoder().decode(child.stdout);
    const stderr = new TextDecoder().decode(child.stderr);
    assert(child.code === 7 && stdout === "background a b\n", `exit ${child.code}: ${stdout}${stderr}`);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
