import { deepStrictEqual as assertEquals, rejects, strictEqual, throws } from "node:assert/strict";
import { createHash } from "node:crypto";
import { UsageError } from "../../plugins/mod.ts";
import { parseEngineHost, resolveEngineHost } from "./engine_host.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("parseEngineHost() reads unix and tcp addresses", () => {
  assertEquals(parseEngineHost("unix:///var/run/docker.sock", "x"), {
    transport: "unix",
    path: "/var/run/docker.sock",
    display: "unix:///var/run/docker.sock",
  });
  assertEquals(parseEngineHost("tcp://127.0.0.1:2375", "x"), {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 2375,
    display: "tcp://127.0.0.1:2375",
  });
  strictEqual((parseEngineHost("tcp://[::1]", "x") as { port: number }).port, 2375);
});

Deno.test("parseEngineHost() refuses other forms with a usage error naming where the value came from", () => {
  for (const bad of ["/var/run/docker.sock", "npipe:////./pipe/docker_engine", "unix://relative", "tcp://h:99999"]) {
    throws(
      () => parseEngineHost(bad, "DOCKER_HOST"),
      (e) => e instanceof UsageError && /^DOCKER_HOST /.test(e.message),
    );
  }
  throws(() => parseEngineHost("ssh://admin@h", "--docker-host"), /with --via, not ssh:\/\//);
});

Deno.test("resolveEngineHost() prefers --docker-host, then DOCKER_HOST, then the default socket", async () => {
  const vars = { DOCKER_HOST: "unix:///env.sock" };
  strictEqual((await resolveEngineHost("docker", "unix:///flag.sock", env(vars))).display, "unix:///flag.sock");
  strictEqual((await resolveEngineHost("docker", undefined, env(vars))).display, "unix:///env.sock");
  strictEqual((await resolveEngineHost("docker", undefined, env({}))).display, "unix:///var/run/docker.sock");
});

Deno.test("resolveEngineHost() reads the current docker context from the context store; DOCKER_HOST wins", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const hash = createHash("sha256").update("ref-ctx").digest("hex");
    await Deno.mkdir(`${dir}/contexts/meta/${hash}`, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/contexts/meta/${hash}/meta.json`,
      JSON.stringify({ Name: "ref-ctx", Endpoints: { docker: { Host: "unix:///ctx.sock", SkipTLSVerify: false } } }),
    );
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ currentContext: "ref-ctx" }));
    strictEqual(
      (await resolveEngineHost("docker", undefined, env({ DOCKER_CONFIG: dir }))).display,
      "unix:///ctx.sock",
    );
    strictEqual(
      (await resolveEngineHost("docker", undefined, env({ DOCKER_CONFIG: dir, DOCKER_HOST: "unix:///env.sock" })))
        .display,
      "unix:///env.sock",
    );
    strictEqual(
      (await resolveEngineHost("docker", undefined, env({ DOCKER_CONFIG: dir, DOCKER_CONTEXT: "default" }))).display,
      "unix:///var/run/docker.sock",
    );
    await rejects(
      () => resolveEngineHost("docker", undefined, env({ DOCKER_CONFIG: dir, DOCKER_CONTEXT: "gone" })),
      /docker context gone is not in/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveEngineHost() gives podman CONTAINER_HOST, else its rootful or rootless socket", async () => {
  strictEqual(
    (await resolveEngineHost(
      "podman",
      undefined,
      env({ CONTAINER_HOST: "unix:///p.sock", DOCKER_HOST: "unix:///d.sock" }),
    ))
      .display,
    "unix:///p.sock",
  );
  const expected = Deno.uid() === 0 ? "unix:///run/podman/podman.sock" : "unix:///run/user/1000/podman/podman.sock";
  strictEqual(
    (await resolveEngineHost("podman", undefined, env({ XDG_RUNTIME_DIR: "/run/user/1000" }))).display,
    expected,
  );
});

Deno.test("resolveEngineHost() refuses DOCKER_TLS_VERIFY rather than talk in the clear", async () => {
  await rejects(() => resolveEngineHost("docker", undefined, env({ DOCKER_TLS_VERIFY: "1" })), /TLS/);
});
