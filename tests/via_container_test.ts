/**
 * Containers on an SSH host (`--via`), through the CLI: the harness's real sshd on loopback is "the SSH host", and
 * the real dockerd and podman the container tests start run on it (this machine). The engine's socket is reached
 * only through the SSH connection (`direct-streamlocal@openssh.com`), which sshd's log shows; DOCKER_HOST points
 * nowhere, as it names an engine here, not on the host.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createHash } from "node:crypto";
import { type ContainerEngine, startDockerEngine, startPodmanEngine } from "./harness/docker_engine.ts";
import { startDropbear } from "./harness/dropbear.ts";
import { type SshdServer, startSshd } from "./harness/sshd.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Writes ~/.ssh/config naming the harness sshd `dockhost`, as an operator's config names a host. */
async function sshConfig(home: string, sshd: SshdServer, alias: string): Promise<void> {
  await Deno.mkdir(`${home}/.ssh`, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(`${home}/.ssh/known_hosts`, sshd.knownHostsLine() + "\n", { append: true });
  await Deno.writeTextFile(
    `${home}/.ssh/config`,
    [
      `Host ${alias}`,
      "  HostName 127.0.0.1",
      `  Port ${sshd.port}`,
      `  User ${sshd.user}`,
      `  IdentityFile ${sshd.userKey}`,
      "",
    ].join("\n"),
    { append: true },
  );
}

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

/** How many channels to `path` sshd opened so far, from its debug log. */
async function streamlocalOpens(sshd: SshdServer, path: string): Promise<number> {
  return (await sshd.log()).split("\n").filter((l) =>
    l.includes("server_request_direct_streamlocal") && l.trimEnd().endsWith(`target ${path}`)
  ).length;
}

const engines: [string, () => Promise<ContainerEngine>][] = [
  ["docker", startDockerEngine],
  ["podman", startPodmanEngine],
];

for (const [scheme, start] of engines) {
  Deno.test({
    name: `remote invoke --via runs commands in a ${scheme} container on an SSH host, through its engine's socket`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      await using home = await tempHome();
      await using sshd = await startSshd();
      await using engine = await start();
      await engine.createContainer("web1");
      await engine.createContainer("web2");
      await sshConfig(home.dir, sshd, "dockhost");
      // DOCKER_HOST and CONTAINER_HOST name engines on this computer: --via must not use them
      const env = { ...home.env, DOCKER_HOST: "unix:///nonexistent.sock", CONTAINER_HOST: "unix:///nonexistent.sock" };
      const engineHost = ["--docker-host", engine.host];
      let failed = 0;
      const step = async (name: string, fn: () => Promise<void>) => {
        if (!await t.step(name, fn)) failed++;
      };

      await step("invoke --container-id … --via: stdout and stderr apart, exit 3 is 3, through sshd", async () => {
        const before = await streamlocalOpens(sshd, engine.socketPath);
        const run = await runRemote(
          [
            "invoke",
            "--container-id",
            "web1",
            "--via",
            "dockhost",
            ...engineHost,
            "--",
            "echo out; echo err >&2; exit 3",
          ],
          { env },
        );
        assertEquals(run, { code: 3, stdout: "out\n", stderr: "err\n" });
        assert(
          await streamlocalOpens(sshd, engine.socketPath) > before,
          `no direct-streamlocal channel to ${engine.socketPath} in sshd's log:\n` +
            (await sshd.log()).split("\n").filter((l) => l.includes("streamlocal")).join("\n"),
        );
      });

      await step(`enter ${scheme}://web1 --via user@host -- cmd: the command's exit code`, async () => {
        const run = await runRemote(
          ["enter", `${scheme}://web1`, "--via", "dockhost", ...engineHost, "-T", "--", "echo in; exit 7"],
          { env },
        );
        assertEquals([run.code, run.stderr], [7, ""]);
        assertEquals(run.stdout, "in\n");
      });

      await step("binary data both ways intact through the SSH channel (SHA-256 of 1 MiB)", async () => {
        const data = new Uint8Array(1024 * 1024);
        for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
        const echoed = await runBytes(
          ["invoke", `${scheme}://web1`, "--via", "dockhost", ...engineHost, "--", "cat"],
          env,
          data,
        );
        assertEquals([echoed.code, echoed.stderr], [0, ""]);
        assertEquals(sha256(echoed.stdout), sha256(data));
      });

      await step("fan-out over two containers shares one SSH login", async () => {
        const logins = (await sshd.log()).split("\n").filter((l) => l.startsWith("Accepted publickey")).length;
        const run = await runRemote(
          ["invoke", "--container-id", "web1", "web2", "--via", "dockhost", ...engineHost, "--", "echo up"],
          { env },
        );
        assertEquals([run.code, run.stderr], [0, ""]);
        assertEquals(run.stdout.split("\n").filter(Boolean).sort(), ["[web1] up", "[web2] up"]);
        const after = (await sshd.log()).split("\n").filter((l) => l.startsWith("Accepted publickey")).length;
        assertEquals(after - logins, 1);
      });

      await step("a PTY shell over --via: prompt, stty size, resize, exit 3", async () => {
        await using pty = await spawnInPty(
          Deno.execPath(),
          ["run", "-A", "--quiet", MAIN, "enter", `${scheme}://web1`, "--via", "dockhost", ...engineHost],
          { cols: 100, rows: 30, env },
        );
        await pty.waitFor("/ # ", 30_000);
        pty.write("stty size\r");
        await pty.waitFor(/^30 100\r?$/m);
        pty.resize(120, 40);
        await new Promise((r) => setTimeout(r, 500));
        pty.write("stty size\r");
        await pty.waitFor(/^40 120\r?$/m);
        pty.write("exit 3\r");
        assertEquals((await pty.exited).code, 3);
      });

      await step("Ctrl-C over --via stops the command in the container (exit 130), nothing left running", async () => {
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-all",
            "--quiet",
            MAIN,
            "invoke",
            `${scheme}://web1`,
            "--via",
            "dockhost",
            ...engineHost,
            "--",
            "sleep 62; echo not-stopped",
          ],
          env,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
        try {
          const running = async () => {
            const top = await engine.api("GET", "/containers/web1/top?ps_args=-ef");
            return (top.body as { Processes: string[][] }).Processes.some((p) => p.join(" ").includes("sleep 62"));
          };
          for (let i = 0; i < 200 && !await running(); i++) await new Promise((r) => setTimeout(r, 50));
          assert(await running(), "the command never started");
          child.kill("SIGINT");
          const out = await child.output();
          assertEquals([out.code, new TextDecoder().decode(out.stdout)], [130, ""]);
          let left = true;
          for (let i = 0; i < 60 && (left = await running()); i++) await new Promise((r) => setTimeout(r, 50));
          assertEquals(left, false, "sleep 62 still runs in the container");
        } finally {
          clearTimeout(timer);
        }
      });

      await step("get --container --via lists the host's running containers", async () => {
        const run = await runRemote(["get", "--container", "--via", "dockhost", ...engineHost, "--json"], { env });
        assertEquals([run.code, run.stderr], [0, ""]);
        const names = run.stdout.trimEnd().split("\n").map((l) => JSON.parse(l).Name).sort();
        assertEquals(names, ["web1", "web2"]);
      });

      await step("no engine socket on the host: one line, exit 241 (engine not running)", async () => {
        const run = await runRemote(
          [
            "invoke",
            "--container-id",
            "web1",
            "--via",
            "dockhost",
            "--docker-host",
            "unix:///nonexistent.sock",
            "--",
            "true",
          ],
          { env },
        );
        assertEquals(run.code, 241);
        const lines = run.stderr.trimEnd().split("\n");
        assertEquals(lines.length, 2, run.stderr);
        assert(
          /^remote: the \w+ engine at unix:\/\/\/nonexistent\.sock is not running: .* has no socket \/nonexistent\.sock$/
            .test(lines[0]),
          lines[0],
        );
        assert(lines[1].startsWith("hint: start it on that host"), lines[1]);
      });

      await step("a via host that does not resolve: exit 240, said to be the via's", async () => {
        const run = await runRemote(
          ["invoke", "--container-id", "web1", "--via", "admin@no-such-host.invalid", ...engineHost, "--", "true"],
          { env },
        );
        assertEquals(run.code, 240);
        assert(run.stderr.startsWith("remote: via admin@no-such-host.invalid: cannot resolve host name"), run.stderr);
      });

      await step("--via on a transport that cannot go through another is refused (234)", async () => {
        const run = await runRemote(["invoke", "winrm://w1", "--via", "dockhost", "--", "true"], { env });
        assertEquals(run.code, 234);
        assert(run.stderr.includes("connecting through another transport (--via)"), run.stderr);
      });

      if (failed > 0) {
        console.error(await engine.log().then((l) => l.slice(-4000)));
        throw new Error(`${failed} step(s) failed`);
      }
    },
  });
}

Deno.test({
  name: "remote invoke --via says so in one line (exit 234) when sshd forbids streamlocal forwarding",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using home = await tempHome();
    await using sshd = await startSshd({ config: "AllowStreamLocalForwarding no" });
    await using engine = await startDockerEngine();
    await engine.createContainer("web1");
    await sshConfig(home.dir, sshd, "locked");
    const run = await runRemote(
      ["invoke", "--container-id", "web1", "--via", "locked", "--docker-host", engine.host, "--", "echo no"],
      { env: home.env },
    );
    assertEquals([run.code, run.stdout], [234, ""]);
    const lines = run.stderr.trimEnd().split("\n");
    assertEquals(lines.length, 2, run.stderr);
    assertEquals(
      lines[0],
      `remote: ${sshd.user}@127.0.0.1:${sshd.port} does not allow forwarding to its unix socket ${engine.socketPath}`,
    );
    assert(lines[1].includes("AllowStreamLocalForwarding"), lines[1]);
  },
});

Deno.test({
  name: "remote invoke --via a dropbear host says the server cannot forward to unix sockets (234)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using home = await tempHome();
    await using dropbear = await startDropbear();
    await sshConfig(home.dir, dropbear, "tiny");
    const run = await runRemote(
      ["invoke", "--container-id", "web1", "--via", "tiny", "--docker-host", "unix:///run/any.sock", "--", "true"],
      { env: home.env },
    );
    assertEquals([run.code, run.stdout], [234, ""]);
    const lines = run.stderr.trimEnd().split("\n");
    assertEquals(lines.length, 2, run.stderr);
    assert(
      lines[0].endsWith("does not know direct-streamlocal@openssh.com channels: it cannot forward to /run/any.sock"),
      lines[0],
    );
    assert(lines[1].includes("OpenSSH server"), lines[1]);
  },
});
