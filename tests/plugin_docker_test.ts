/**
 * The example docker plugin against the Docker Engine API stand-in (tests/docker_engine_stub.ts: no
 * Docker engine can run on this machine), run through the conformance suite twice: imported
 * in-process, and out-of-process as a `remote-transport-docker` executable found by the loader.
 */
import { loadPluginEntries } from "../core/plugin_loader.ts";
import { conformance, type OpenContext, UsageError } from "../plugins/mod.ts";
import { validateTransportModule } from "../plugins/validate.ts";
import * as docker from "../plugins/examples/docker/mod.ts";
import { startDockerEngineStub } from "./docker_engine_stub.ts";

const engine = await startDockerEngineStub(["web1"]);
const dockerHost = `unix://${engine.socketPath}`;
const binDir = await Deno.makeTempDir({ prefix: "remote-plugins-" });
const wrapper = `${binDir}/remote-transport-docker`;
await Deno.writeTextFile(
  wrapper,
  `#!/bin/sh\nexec '${Deno.execPath()}' run -A --quiet '${
    new URL("../plugins/examples/docker/mod.ts", import.meta.url).pathname
  }' "$@"\n`,
);
await Deno.chmod(wrapper, 0o755);

function context(signal: AbortSignal): OpenContext {
  return {
    target: { transport: "docker", host: "web1", display: "docker://web1" },
    parameters: { ContainerId: "web1", DockerHost: dockerHost },
    signal,
    prompt: { interactive: false, ask: () => Promise.reject(new UsageError("nobody can answer here")) },
    notice: () => {},
  };
}

const malformed = [
  { what: "an unknown container", parameters: { ContainerId: "db9", DockerHost: dockerHost } },
  { what: "a container id with a slash", parameters: { ContainerId: "web1/../x", DockerHost: dockerHost } },
  { what: "a tcp docker host", parameters: { ContainerId: "web1", DockerHost: "tcp://127.0.0.1:2375" } },
  { what: "a socket nobody listens on", parameters: { ContainerId: "web1", DockerHost: `unix://${binDir}/none` } },
];

conformance("docker in-process", {
  transport: validateTransportModule(docker, "plugins/examples/docker/mod.ts"),
  context,
  malformed,
});

const [entry] = await loadPluginEntries({ specifiers: [], executables: true, pluginDir: binDir, path: "" });

Deno.test("loadPluginEntries() finds remote-transport-docker and reads its manifest", () => {
  if (entry?.manifest.id !== "docker") throw new Error(`found ${entry?.manifest.id}`);
  if (entry.origin.kind !== "executable" || entry.origin.path !== wrapper) throw new Error("wrong origin");
  if (JSON.stringify(entry.manifest.parameters) !== JSON.stringify(docker.manifest.parameters)) {
    throw new Error("manifest differs from the module's");
  }
});

conformance("docker out-of-process", { transport: await entry.load(), context, malformed });

Deno.test("docker plugin reports an unknown container by name", async () => {
  const ctx = context(AbortSignal.timeout(30_000));
  const err = await docker.open({ ...ctx, parameters: { ContainerId: "db9", DockerHost: dockerHost } }, {
    kind: "exec",
    command: "true",
  }).then(() => undefined, (e) => e);
  if (!(err instanceof Error) || !err.message.includes("No such container: db9")) throw new Error(String(err));
});

Deno.test("docker engine stub stops", async () => {
  await engine[Symbol.asyncDispose]();
  await Deno.remove(binDir, { recursive: true });
});
