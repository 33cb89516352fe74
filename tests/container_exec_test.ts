/**
 * The container transport through the CLI against a real Docker Engine 20.10 (API 1.41) and a real Podman API
 * service, both started by tests/harness/docker_engine.ts with a busybox image: commands with stdout and stderr
 * apart, binary data both ways, exit codes, stdin's end, user/workdir/env, and the engine's errors as a user sees
 * them. One test per engine, each case a step; the engine is stopped inside the test whatever happens.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createHash } from "node:crypto";
import { type ContainerEngine, startDockerEngine, startPodmanEngine } from "./harness/docker_engine.ts";
import { runRemote, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Runs remote with raw bytes in and out. */
async function runBytes(
  args: string[],
  env: Record<string, string>,
  stdin: Uint8Array,
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN, ...args],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  try {
    const writing = (async () => {
      const w = child.stdin.getWriter();
      await w.write(stdin);
      await w.close();
    })();
    const out = await child.output();
    await writing.catch(() => {});
    return { code: out.code, stdout: out.stdout, stderr: new TextDecoder().decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A loopback TCP listener that relays each connection to a unix socket, both directions with half-close. */
function tcpRelay(socketPath: string): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (let n; (n = await from.read(buf)) !== null;) {
        for (let at = 0; at < n;) at += await to.write(buf.subarray(at, n));
      }
      await to.closeWrite();
    } catch {
      // one side went away
    }
  };
  const serving = (async () => {
    for await (const client of listener) {
      const upstream = await Deno.connect({ transport: "unix", path: socketPath });
      conns.push(client, upstream);
      void Promise.all([pipe(client, upstream), pipe(upstream, client)]).finally(() => {
        for (const c of [client, upstream]) {
          try {
            c.close();
          } catch { /* closed */ }
        }
      });
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving.catch(() => {});
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

const engines: [string, () => Promise<ContainerEngine>][] = [
  ["docker", startDockerEngine],
  ["podman", startPodmanEngine],
];

for (const [scheme, start] of engines) {
  Deno.test({
    name: `remote invoke ${scheme}://NAME runs commands in a real ${scheme} engine's container`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      await using home = await tempHome();
      await using engine = await start();
      console.error(`${scheme} engine and busybox image ready in ${engine.startupMs} ms`);
      await engine.createContainer("web1");
      await engine.createContainer("off1", { running: false });
      const env = { ...home.env, DOCKER_HOST: engine.host, CONTAINER_HOST: engine.host };
      const target = `${scheme}://web1`;
      const socket = engine.host;
      let failed = 0;
      const step = async (name: string, fn: () => Promise<void>) => {
        if (!await t.step(name, fn)) failed++;
      };

      await step("stdout and stderr stay apart, and exit 3 comes through as 3", async () => {
        const run = await runRemote(["invoke", target, "--", "echo out; echo err >&2; exit 3"], { env });
        assertEquals(run, { code: 3, stdout: "out\n", stderr: "err\n" });
      });

      await step("the quick road (one container, then --) answers as the general road does", async () => {
        // `invoke docker://NAME -- cmd` and `invoke --container-id NAME -- cmd` skip the CLI's parameter machinery
        // (core/quick_invoke.ts); --throttle-limit sends the same call the general way
        const general = ["--throttle-limit", "32"];
        const cases: [string[], string][] = [
          [[target], "echo out; echo err >&2; exit 3"],
          [["--container-id", "web1"], "echo out; echo err >&2; exit 3"],
          [[`${scheme}://web9`], "true"],
          [["--container-id", "off1"], "true"],
        ];
        for (const [given, command] of cases) {
          const quick = await runRemote(["invoke", ...given, "--", command], { env });
          const slow = await runRemote(["invoke", ...given, ...general, "--", command], { env });
          assertEquals(quick, slow, given.join(" "));
        }
        const ran = await runRemote(["invoke", "--container-id", "web1", "--", "echo", "$0"], { env });
        assertEquals(ran, { code: 0, stdout: "/bin/sh\n", stderr: "" });
      });

      await step("--container-id names the container; --docker-host names the engine", async () => {
        const run = await runRemote(
          ["invoke", "--container-id", "web1", "--docker-host", socket, "--", "echo hi"],
          { env: { ...home.env, DOCKER_HOST: "unix:///nonexistent.sock" } },
        );
        assertEquals(run, { code: 0, stdout: "hi\n", stderr: "" });
      });

      await step("a full 64-hex-digit container ID works as a target and as --container-id", async () => {
        const id = await engine.createContainer("long1", { env: ["WHO=long1"] });
        assert(/^[0-9a-f]{64}$/.test(id), id);
        const viaScheme = await runRemote(["invoke", `${scheme}://${id}`, "--", 'echo "$WHO"'], { env });
        assertEquals(viaScheme, { code: 0, stdout: "long1\n", stderr: "" });
        const viaSet = await runRemote(["invoke", "--container-id", id, "--", 'echo "set $WHO"'], { env });
        assertEquals(viaSet, { code: 0, stdout: "set long1\n", stderr: "" });
        // the name rule is Docker's, not DNS's: a 256-character name is still refused, as a usage error
        const tooLong = await runRemote(["invoke", `${scheme}://${"a".repeat(256)}`, "--", "true"], { env });
        assertEquals(tooLong.code, 230);
        assert(tooLong.stderr.includes("is not a valid name"), tooLong.stderr);
      });

      await step(
        "get --container lists the running containers (Id, Name, Image, State), as a table and JSON",
        async () => {
          const id = await engine.createContainer("list1");
          const json = await runRemote(["get", "--container", "--docker-host", socket, "--json"], { env: home.env });
          assertEquals([json.code, json.stderr], [0, ""]);
          const rows = json.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
          const row = rows.find((r) => r.Name === "list1");
          assertEquals(Object.keys(row), ["Id", "Name", "Image", "State"]);
          assertEquals([row.Id, row.State], [id, "running"]);
          assert(row.Image !== "", JSON.stringify(row));
          assert(rows.some((r) => r.Name === "web1") && !rows.some((r) => r.Name === "off1"), json.stdout);
          const shown = await runRemote(["get", "--container"], { env });
          assertEquals([shown.code, shown.stderr], [0, ""]);
          const lines = shown.stdout.split("\n");
          assert(/^Id +Name +Image +State$/.test(lines[0]), shown.stdout);
          assert(lines.some((l) => new RegExp(`^${id} +list1 +\\S+ +running$`).test(l)), shown.stdout);
        },
      );

      await step("binary data goes in and comes back intact (SHA-256 of 1 MiB)", async () => {
        const data = new Uint8Array(1024 * 1024);
        for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
        const echoed = await runBytes(["invoke", target, "--", "cat"], env, data);
        assertEquals(echoed.stderr, "");
        assertEquals(echoed.code, 0);
        assertEquals(sha256(echoed.stdout), sha256(data));
        const summed = await runBytes(["invoke", target, "--", "sha256sum"], env, data);
        assertEquals(new TextDecoder().decode(summed.stdout), `${sha256(data)}  -\n`);
      });

      await step("stdin's end reaches the command (half-close), which then finishes", async () => {
        const run = await runRemote(["invoke", target, "--", "cat; echo done"], { env, stdin: "hello\n" });
        assertEquals(run, { code: 0, stdout: "hello\ndone\n", stderr: "" });
      });

      await step("--user, --workdir and --env reach the command; --run-as-administrator is root", async () => {
        const run = await runRemote(
          [
            "invoke",
            target,
            "--user",
            "nobody",
            "--workdir",
            "/tmp",
            "--env",
            "COLOR=blue",
            "--",
            'id -u; pwd; echo "$COLOR"',
          ],
          { env },
        );
        assertEquals(run, { code: 0, stdout: "65534\n/tmp\nblue\n", stderr: "" });
        const root = await runRemote(["invoke", target, "--run-as-administrator", "--", "id -u"], { env });
        assertEquals(root, { code: 0, stdout: "0\n", stderr: "" });
      });

      await step("a command the container lacks exits 127 with the shell's message", async () => {
        const run = await runRemote(["invoke", target, "--", "no-such-command"], { env });
        assertEquals(run.code, 127);
        assert(run.stderr.includes("no-such-command: not found"), run.stderr);
      });

      await step("an exec that cannot start says why on stderr, not stdout", async () => {
        const workdir = await runRemote(["invoke", target, "--workdir", "/nonexistent", "--", "true"], { env });
        // 126 from Docker 20.10 for any failed start; Podman's runtime reports 127 for this one
        assertEquals([workdir.code === (scheme === "docker" ? 126 : 127), workdir.stdout], [true, ""]);
        assert(workdir.stderr.includes('chdir to cwd ("/nonexistent")'), workdir.stderr);
        const user = await runRemote(["invoke", target, "--user", "nosuch", "--", "true"], { env });
        assertEquals(user.stdout, "");
        assert(user.stderr.includes("unable to find user nosuch"), user.stderr);
        // Docker 20.10 finds out at start (the exec's status, 126), Podman at create (an engine error, 251)
        assertEquals(user.code, scheme === "docker" ? 126 : 251);
      });

      await step("invoke fans out across containers; a missing one is named and sets the exit code", async () => {
        for (const name of ["fan1", "fan2"]) await engine.createContainer(name, { env: [`WHO=${name}`] });
        const run = await runRemote(
          ["invoke", `${scheme}://fan1`, `${scheme}://fan2`, `${scheme}://fan9`, "--", 'echo "$WHO"'],
          { env },
        );
        assertEquals(run.code, 233);
        assertEquals(run.stdout.split("\n").filter((l) => l !== "").sort(), [
          `[${scheme}://fan1] fan1`,
          `[${scheme}://fan2] fan2`,
        ]);
        assert(run.stderr.includes(`remote: 1 of 3 hosts failed: ${scheme}://fan9 (no container fan9 on `), run.stderr);
      });

      await step("invoke --container-id a b c fans out across the containers named", async () => {
        const run = await runRemote(
          ["invoke", "--container-id", "fan1", "fan2", "fan9", "--docker-host", socket, "--", 'echo "$WHO"'],
          { env },
        );
        assertEquals(run.code, 233);
        assertEquals(run.stdout.split("\n").filter((l) => l !== "").sort(), ["[fan1] fan1", "[fan2] fan2"]);
        assert(run.stderr.includes("remote: 1 of 3 hosts failed: fan9 (no container fan9 on "), run.stderr);
      });

      await step(
        "invoke fans out across 10 containers (--container-id and the scheme); a failing one sets the code and the summary",
        async () => {
          const names = Array.from({ length: 10 }, (_, i) => `ten${i + 1}`);
          for (const name of names) await engine.createContainer(name, { env: [`WHO=${name}`] });
          const lines = (stdout: string) => stdout.split("\n").filter((l) => l !== "").sort();
          // every container's line, each once, prefixed by its own name; nothing on stderr; exit 0
          const all = await runRemote(
            ["invoke", "--container-id", ...names, "--docker-host", socket, "--", 'echo "$WHO"'],
            { env, timeoutMs: 90_000 },
          );
          assertEquals([all.code, all.stderr], [0, ""]);
          assertEquals(lines(all.stdout), names.map((n) => `[${n}] ${n}`).sort());
          // the command fails in one container: its exit code is remote's, and the summary names it
          const one = await runRemote(
            [
              "invoke",
              ...names.map((n) => `${scheme}://${n}`),
              "--",
              'echo "$WHO"; [ "$WHO" != ten7 ] || exit 7',
            ],
            { env, timeoutMs: 90_000 },
          );
          assertEquals(one.code, 7);
          assertEquals(lines(one.stdout), names.map((n) => `[${scheme}://${n}] ${n}`).sort());
          assertEquals(one.stderr, `remote: 1 of 10 hosts failed: ${scheme}://ten7 (exit 7)\n`);
          // one container stopped: 251, its reason on its own prefixed line, the others' output whole
          await engine.stopContainer("ten4");
          const stopped = await runRemote(
            ["invoke", "--container-id", ...names, "--docker-host", socket, "--", 'echo "$WHO"'],
            { env, timeoutMs: 90_000 },
          );
          assertEquals(stopped.code, 251);
          assertEquals(
            lines(stopped.stdout),
            names.filter((n) => n !== "ten4").map((n) => `[${n}] ${n}`).sort(),
          );
          const why = `container ten4 is not running (exited) on the ${scheme} engine at ${socket}`;
          assertEquals(stopped.stderr, `[ten4] remote: ${why}\nremote: 1 of 10 hosts failed: ten4 (${why})\n`);
        },
      );

      await step("Ctrl-C stops the command in the container and remote exits 130", async () => {
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "--allow-all", "--quiet", MAIN, "invoke", target, "--", "sleep 61; echo not-stopped"],
          env,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
        try {
          const running = async () => {
            const top = await engine.api("GET", "/containers/web1/top?ps_args=-ef");
            return (top.body as { Processes: string[][] }).Processes.some((p) => p.join(" ").includes("sleep 61"));
          };
          for (let i = 0; i < 200 && !await running(); i++) await new Promise((r) => setTimeout(r, 50));
          assert(await running(), "the command never started");
          child.kill("SIGINT");
          const out = await child.output();
          assertEquals(out.code, 130);
          assertEquals(new TextDecoder().decode(out.stdout), "");
          let left = true;
          for (let i = 0; i < 60 && (left = await running()); i++) await new Promise((r) => setTimeout(r, 50));
          assertEquals(left, false, "sleep 61 still runs in the container");
        } finally {
          clearTimeout(timer);
        }
      });

      await step(
        "--docker-host tcp://host:port reaches the engine (through a loopback relay to its socket)",
        async () => {
          await using relay = tcpRelay(engine.socketPath);
          const run = await runRemote(
            ["invoke", target, "--docker-host", `tcp://127.0.0.1:${relay.port}`, "--", "echo over-tcp; exit 5"],
            { env },
          );
          assertEquals(run, { code: 5, stdout: "over-tcp\n", stderr: "" });
        },
      );

      await step("without --docker-host or DOCKER_HOST, the current docker context names the engine", async () => {
        const config = `${home.dir}/.docker`;
        const hash = createHash("sha256").update("test-ctx").digest("hex");
        await Deno.mkdir(`${config}/contexts/meta/${hash}`, { recursive: true });
        await Deno.writeTextFile(
          `${config}/contexts/meta/${hash}/meta.json`,
          JSON.stringify({
            Name: "test-ctx",
            Metadata: {},
            Endpoints: { docker: { Host: socket, SkipTLSVerify: false } },
          }),
        );
        await Deno.writeTextFile(`${config}/config.json`, JSON.stringify({ currentContext: "test-ctx" }));
        try {
          const run = await runRemote(["invoke", "docker://web1", "--", "echo via-context"], { env: home.env });
          assertEquals(run, { code: 0, stdout: "via-context\n", stderr: "" });
        } finally {
          await Deno.remove(config, { recursive: true });
        }
      });

      await step("a missing container is exit 233 with a fix", async () => {
        const run = await runRemote(["invoke", `${scheme}://web9`, "--", "true"], { env });
        assertEquals(run, {
          code: 233,
          stdout: "",
          stderr: `remote: no container web9 on the ${scheme} engine at ${socket}\n` +
            `hint: list running containers with: ${scheme} ps\n`,
        });
      });

      await step("a stopped container is exit 251 with a fix", async () => {
        const run = await runRemote(["invoke", `${scheme}://off1`, "--", "true"], { env });
        assertEquals(run, {
          code: 251,
          stdout: "",
          stderr: `remote: container off1 is not running (created) on the ${scheme} engine at ${socket}\n` +
            `hint: start it with: ${scheme} start off1\n`,
        });
        await engine.createContainer("gone1");
        await engine.stopContainer("gone1");
        const stopped = await runRemote(["invoke", `${scheme}://gone1`, "--", "true"], { env });
        assertEquals(stopped.code, 251);
        assert(stopped.stderr.startsWith("remote: container gone1 is not running (exited) on "), stopped.stderr);
      });

      await step("the API version is negotiated down to the engine's 1.41; a pin is used as given", async () => {
        // remote speaks up to 1.44: without negotiation Docker 20.10 would refuse every request as too new
        const pinned = await runRemote(["invoke", target, "--", "echo pinned"], {
          env: { ...env, DOCKER_API_VERSION: "1.40" },
        });
        assertEquals(pinned, { code: 0, stdout: "pinned\n", stderr: "" });
        const tooNew = await runRemote(["invoke", target, "--", "true"], {
          env: { ...env, DOCKER_API_VERSION: "1.44" },
        });
        if (scheme === "docker") {
          assertEquals(tooNew.code, 244);
          assertEquals(
            tooNew.stderr,
            `remote: the docker engine at ${socket} refused the API version: client version 1.44 is too new. ` +
              "Maximum supported API version is 1.41\n" +
              "hint: unset DOCKER_API_VERSION so remote negotiates, or set it within the engine's range\n",
          );
        } else {
          // Podman serves any version it is asked for
          assertEquals(tooNew, { code: 0, stdout: "", stderr: "" });
        }
      });

      await step("a pinned version that is not one is a usage error", async () => {
        const run = await runRemote(["invoke", target, "--", "true"], {
          env: { ...env, DOCKER_API_VERSION: "latest" },
        });
        assertEquals(run.code, 230);
        assert(run.stderr.startsWith("remote: DOCKER_API_VERSION=latest is not an API version\n"), run.stderr);
      });

      if (failed > 0) {
        console.error(`--- ${scheme} log ---\n${(await engine.log()).slice(-4000)}\n--- end of log ---`);
        throw new Error(`${failed} ${scheme} steps failed`);
      }
    },
  });
}

Deno.test("remote invoke docker://NAME says the engine is not running, exit 241, for a missing or dead socket", async () => {
  await using home = await tempHome();
  const missing = `${home.dir}/docker.sock`;
  const run = await runRemote(["invoke", "docker://web1", "--", "true"], {
    env: { ...home.env, DOCKER_HOST: `unix://${missing}` },
  });
  assertEquals(run, {
    code: 241,
    stdout: "",
    stderr: `remote: the docker engine at unix://${missing} is not running: no such socket\n` +
      "hint: start it (dockerd, or systemctl start docker), or point --docker-host or DOCKER_HOST at its socket\n",
  });
  // a socket file left behind by an engine that died: nobody accepts on it (a second link keeps the file, which
  // Deno removes on close)
  const listener = Deno.listen({ transport: "unix", path: `${home.dir}/live.sock` });
  await Deno.link(`${home.dir}/live.sock`, missing);
  listener.close();
  const dead = await runRemote(["invoke", "podman://web1", "--docker-host", `unix://${missing}`, "--", "true"], {
    env: home.env,
  });
  assertEquals(dead.code, 241);
  assert(
    dead.stderr.startsWith(`remote: the podman engine at unix://${missing} is not running: connection refused\n`),
    dead.stderr,
  );
});

Deno.test("remote invoke docker://NAME says permission denied on the socket, exit 245, with a fix", async () => {
  await using home = await tempHome();
  const path = `${home.dir}/docker.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  try {
    // the socket belongs to someone else and only they may use it; root is held to that without CAP_DAC_OVERRIDE
    if (Deno.uid() === 0) await Deno.chown(path, 65534, 65534);
    await Deno.chmod(path, Deno.uid() === 0 ? 0o600 : 0o000);
    const args = ["run", "--allow-all", "--quiet", MAIN, "invoke", "docker://web1", "--", "true"];
    const out = await new Deno.Command(Deno.uid() === 0 ? "setpriv" : Deno.execPath(), {
      args: Deno.uid() === 0
        ? ["--bounding-set", "-dac_override,-dac_read_search", "--", Deno.execPath(), ...args]
        : args,
      env: { ...home.env, DOCKER_HOST: `unix://${path}` },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    assertEquals({ code: out.code, stderr: new TextDecoder().decode(out.stderr) }, {
      code: 245,
      stderr: `remote: permission denied on the docker engine's socket unix://${path}\n` +
        "hint: join the socket's group (usually docker: sudo usermod -aG docker $USER, then log in again)\n",
    });
  } finally {
    listener.close();
  }
});
