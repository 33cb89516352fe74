/**
 * The example plugin (plugins/examples/cliexec) with real CLIs: `env` as the degenerate exec CLI (it runs the
 * command right here), and `docker exec` / `podman exec` against the real dockerd and Podman service that
 * tests/harness/docker_engine.ts starts. It runs through the conformance suite imported in-process and as a
 * `remote-transport-cliexec` executable found by the loader, and through remote's CLI as a user runs it:
 * `--plugin path` and the executable on the plugin path, invoke and a PTY shell, and the errors a user sees.
 *
 * kubectl is exercised only up to its own failure: no Kubernetes API server runs here.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { loadPluginEntries } from "../core/plugin_loader.ts";
import {
  conformanceCases,
  type ConformanceOptions,
  type OpenContext,
  type Transport,
  UsageError,
} from "../plugins/mod.ts";
import * as cliexec from "../plugins/examples/cliexec/mod.ts";
import { type ContainerEngine, startDockerEngine, startPodmanEngine } from "./harness/docker_engine.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, tempHome } from "./run_remote.ts";

const MODULE = new URL("../plugins/examples/cliexec/mod.ts", import.meta.url).pathname;
const MAIN = new URL("../main.ts", import.meta.url).pathname;

const ALL_CASES = [
  "echo round trip",
  "1 MiB of binary data both ways",
  "large output (20971520 bytes)",
  "stdout and stderr stay apart",
  "exit code 0 comes through",
  "exit code 3 comes through",
  "exit code 255 comes through",
  "resize reaches the terminal",
  "INT stops a sleeping command",
  "close leaves no process or socket behind",
  "shell echo round trip",
  "shell large output (1048576 bytes)",
  "shell resize reaches the terminal",
  "shell exit ends the session",
  "malformed parameters give a clear error",
];

const nobody = { interactive: false, ask: () => Promise.reject(new UsageError("nobody can answer in this test")) };
const common = { sanitizeOps: false, sanitizeResources: false };

/** A context for `cliexec://<host>` through `execCli`. */
function contextFor(execCli: string, host = "web1") {
  return (signal: AbortSignal): OpenContext => ({
    target: { transport: "cliexec", host, display: `cliexec://${host}` },
    parameters: { ExecCli: execCli },
    signal,
    prompt: nobody,
    notice: () => {},
  });
}

/** What every run must refuse before any CLI starts, whatever the CLI. */
function malformed(execCli: string): ConformanceOptions["malformed"] {
  return [
    { what: "a CLI that is not installed", parameters: { ExecCli: "kubectl-not-installed exec {instance} --" } },
    { what: "an empty CLI", parameters: { ExecCli: " " } },
    { what: "an unknown placeholder", parameters: { ExecCli: `${execCli} {pod}` } },
    { what: "a name the CLI would read as an option", target: { host: "--privileged" } },
    { what: "a namespace with nowhere to go", parameters: { ExecCli: execCli, Namespace: "prod" } },
    { what: "a user with nowhere to go", target: { user: "root" } },
  ];
}

/** Runs every applicable case as a step, after checking that all of them apply but the peer's limits. */
async function runSuite(t: Deno.TestContext, options: ConformanceOptions): Promise<void> {
  const cases = await conformanceCases(options);
  const expected = ALL_CASES.filter((name) => options.peerLimits?.[name] === undefined);
  assertEquals(cases.map((c) => c.name).sort(), expected.sort());
  let failed = 0;
  for (const c of cases) if (!await t.step(c.name, () => c.run())) failed++;
  if (failed > 0) throw new Error(`${failed} of ${cases.length} conformance cases failed`);
}

/**
 * Opens a PTY shell, starts `sleep 300 &` in it and disposes of the channel while both run (the suite's close
 * case closes a command, not a terminal); returns the background sleep's PID as the far side sees it.
 */
async function disposeRunningShell(transport: Transport, context: (signal: AbortSignal) => OpenContext) {
  const channel = await transport.open(context(AbortSignal.timeout(60_000)), {
    kind: "shell",
    pty: { term: "xterm", columns: 80, rows: 24 },
  });
  let text = "";
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of channel.stdout) text += decoder.decode(chunk, { stream: true });
  })();
  await channel.stdin.getWriter().write(new TextEncoder().encode("sleep 300 & echo bg=$!.\r"));
  // the echoed line shows `$!`; only the shell's output holds digits there
  for (let i = 0; i < 300 && !/bg=\d+\./.test(text); i++) await new Promise((r) => setTimeout(r, 100));
  const pid = Number(/bg=(\d+)\./.exec(text)?.[1]);
  assert(pid > 0, `no background PID in ${JSON.stringify(text)}`);
  await channel[Symbol.asyncDispose]();
  await reading;
  await channel.exit;
  return pid;
}

/** Whether `pid` runs on this machine (a zombie does not). */
function running(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** A plugin folder holding `remote-transport-cliexec`, a wrapper running mod.ts under this Deno. */
async function pluginDir(): Promise<{ dir: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "remote-plugins-" });
  const wrapper = `${dir}/remote-transport-cliexec`;
  await Deno.writeTextFile(wrapper, `#!/bin/sh\nexec '${Deno.execPath()}' run -A --quiet '${MODULE}' "$@"\n`);
  await Deno.chmod(wrapper, 0o755);
  return { dir, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

/** The executable, as remote's loader finds and loads it. */
async function executableTransport(dir: string): Promise<Transport> {
  const [entry] = await loadPluginEntries({ specifiers: [], executables: true, pluginDir: dir, path: "" });
  assertEquals(entry?.manifest.id, "cliexec");
  assertEquals(entry.origin, { kind: "executable", path: `${dir}/remote-transport-cliexec` });
  assertEquals(entry.manifest.parameters, cliexec.manifest.parameters);
  return await entry.load();
}

Deno.test({
  name: "cliexec passes the conformance suite in-process with env as its CLI",
  ...common,
  async fn(t) {
    await runSuite(t, { transport: cliexec as Transport, context: contextFor("env"), malformed: malformed("env") });
  },
});

Deno.test({
  name: "cliexec disposes of a running PTY shell with its background job, with env as its CLI",
  ...common,
  async fn() {
    const pid = await disposeRunningShell(cliexec as Transport, contextFor("env"));
    for (let i = 0; i < 50 && running(pid); i++) await new Promise((r) => setTimeout(r, 100));
    assertEquals(running(pid), false, `the shell's sleep ${pid} is still running`);
  },
});

Deno.test({
  name: "cliexec tells the CLI of every resize, one to the same size too, with env as its CLI",
  ...common,
  async fn() {
    // A CLI that began watching SIGWINCH after the first resize (docker exec does, once its stream is up) must
    // still learn of a second one, even to the same size, for which the kernel sends no signal.
    const channel = await cliexec.open(contextFor("env")(AbortSignal.timeout(30_000)), {
      kind: "exec",
      command: "trap 'echo winch' WINCH; echo ready; while :; do sleep 0.1; done",
      pty: { term: "xterm", columns: 80, rows: 24 },
    });
    try {
      let text = "";
      const reading = (async () => {
        for await (const chunk of channel.stdout) text += new TextDecoder().decode(chunk);
      })();
      const until = async (what: string, done: () => boolean) => {
        for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setTimeout(r, 100));
        assert(done(), `${what}; the terminal shows ${JSON.stringify(text)}`);
      };
      const winches = () => text.split("winch\r\n").length - 1;
      await until("no ready", () => text.includes("ready"));
      await channel.resize!({ columns: 100, rows: 30 });
      await until("no SIGWINCH for a new size", () => winches() >= 1);
      const before = winches();
      await channel.resize!({ columns: 100, rows: 30 });
      await until("no SIGWINCH for the same size again", () => winches() > before);
      await channel[Symbol.asyncDispose]();
      await reading;
    } finally {
      await channel[Symbol.asyncDispose]();
    }
  },
});

Deno.test({
  name: "cliexec passes the conformance suite as a remote-transport-cliexec executable with env as its CLI",
  ...common,
  async fn(t) {
    await using plugins = await pluginDir();
    const transport = await executableTransport(plugins.dir);
    await runSuite(t, { transport, context: contextFor("env"), malformed: malformed("env") });
  },
});

/** The suite through `<engine CLI> exec` into a busybox container; nothing of an exec may stay in it. */
async function engineSuite(t: Deno.TestContext, engine: ContainerEngine, execCli: string, transport: Transport) {
  const strays = async () => {
    const top = await engine.api("GET", "/containers/web1/top?ps_args=-ef");
    // Podman runs the container's own ps (busybox: one column per row), Docker the host's
    // A killed background job whose shell died first is a zombie of the container's PID 1 (`sleep`, which reaps
    // nothing, as in any container run without --init): ended, with no command line (`[sleep]`), so not counted.
    return (top.body as { Processes: string[][] }).Processes.map((p) => p.join(" "))
      .filter((line) => !/sleep 86400/.test(line) && !/\[\w+\]( <defunct>)?$/.test(line));
  };
  const assertNoLeaks = async () => {
    let left: string[] = [];
    for (let i = 0; i < 60 && (left = await strays()).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assertEquals(left, [], "processes of the exec left running in the container");
  };
  await runSuite(t, {
    transport,
    context: contextFor(execCli),
    malformed: malformed(execCli),
    assertNoLeaks,
    peerLimits: {
      // The CLI passes a resize on with an API request of its own, apart from the stdin stream, and (against an
      // API 1.41 engine) sets the first size only after the command started, so the line the case types at once
      // can run `stty size` before either lands. The env runs cover resize(); the shell resize case, which looks
      // again as a person would, and the PTY test through remote cover it through docker and podman.
      "resize reaches the terminal": "docker/podman exec apply a size asynchronously to the typed input",
    },
  });
  await t.step("disposing of a running PTY shell ends it and its background job in the container", async () => {
    await disposeRunningShell(transport, contextFor(execCli));
    await assertNoLeaks();
  });
}

const engines: [string, () => Promise<ContainerEngine>, (e: ContainerEngine) => string][] = [
  ["docker", startDockerEngine, (e) => `docker -H ${e.host} exec -i {tty} {instance}`],
  ["podman", startPodmanEngine, (e) => `podman --url ${e.host} exec -i {tty} {instance}`],
];

for (const [name, start, cliFor] of engines) {
  Deno.test({
    name: `cliexec passes the conformance suite through ${name} exec against a real ${name} engine`,
    ...common,
    async fn(t) {
      await using engine = await start();
      await engine.createContainer("web1");
      await engineSuite(t, engine, cliFor(engine), cliexec as Transport);
    },
  });
}

Deno.test({
  name: "cliexec passes the conformance suite out-of-process through docker exec against a real dockerd",
  ...common,
  async fn(t) {
    await using engine = await startDockerEngine();
    await engine.createContainer("web1");
    await using plugins = await pluginDir();
    await engineSuite(
      t,
      engine,
      `docker -H ${engine.host} exec -i {tty} {instance}`,
      await executableTransport(plugins.dir),
    );
  },
});

Deno.test({
  name: "remote with the cliexec plugin runs commands through docker exec: --plugin path and the executable",
  ...common,
  async fn(t) {
    await using home = await tempHome();
    await using engine = await startDockerEngine();
    await engine.createContainer("web1");
    await engine.createContainer("idle1", { running: false });
    const execCli = ["--exec-cli", `docker -H ${engine.host} exec -i {tty} {instance}`];
    const script = "read line; echo got-$line; echo to-err >&2; exit 3";

    await t.step("--plugin: the built-in docker:// scheme and cliexec:// live side by side", async () => {
      // the old example claimed docker://, which the built-in container transport has: every run exited 235
      const list = await runRemote(["--plugin", MODULE, "plugin", "list"], { env: home.env });
      assertEquals(list.code, 0, list.stderr);
      assert(/^cliexec +0\.1\.0 +\S+mod\.ts .* cliexec:\/\/$/m.test(list.stdout), list.stdout);
      assert(/^container .* docker:\/\/ podman:\/\/$/m.test(list.stdout), list.stdout);
    });

    await t.step("--plugin: stdout and stderr apart, stdin with its end, the exit code", async () => {
      const run = await runRemote(["--plugin", MODULE, "invoke", "cliexec://web1", ...execCli, "--", script], {
        env: home.env,
        stdin: "hello\n",
      });
      assertEquals(run, { code: 3, stdout: "got-hello\n", stderr: "to-err\n" });
    });

    await t.step("--plugin: the plugin's own parameter set, --instance", async () => {
      const run = await runRemote(
        ["--plugin", MODULE, "invoke", "--instance", "web1", ...execCli, "--", "cat /proc/1/cmdline"],
        { env: home.env },
      );
      // the container's own first process, so the command ran in web1
      assertEquals(run, { code: 0, stdout: "/bin/sleep\x0086400\x00", stderr: "" });
    });

    await t.step("executable: remote-transport-cliexec in the plugin folder", async () => {
      await Deno.mkdir(`${home.env.XDG_DATA_HOME}/remote`, { recursive: true });
      await using plugins = await pluginDir();
      await Deno.symlink(plugins.dir, `${home.env.XDG_DATA_HOME}/remote/plugins`);
      try {
        const list = await runRemote(["plugin", "list"], { env: home.env });
        assert(/^cliexec .*remote-transport-cliexec/m.test(list.stdout), list.stdout + list.stderr);
        const run = await runRemote(["invoke", "cliexec://web1", ...execCli, "--", script], {
          env: home.env,
          stdin: "again\n",
        });
        assertEquals(run, { code: 3, stdout: "got-again\n", stderr: "to-err\n" });
      } finally {
        await Deno.remove(`${home.env.XDG_DATA_HOME}/remote/plugins`);
      }
    });

    await t.step("the CLI's own failures reach the user as its message and exit code", async () => {
      const missing = await runRemote(["--plugin", MODULE, "invoke", "cliexec://web9", ...execCli, "--", "true"], {
        env: home.env,
      });
      assertEquals(missing, { code: 1, stdout: "", stderr: "Error response from daemon: No such container: web9\n" });
      const stopped = await runRemote(["--plugin", MODULE, "invoke", "cliexec://idle1", ...execCli, "--", "true"], {
        env: home.env,
      });
      assertEquals(stopped.code, 1);
      assert(/^Error response from daemon: Container \w+ is not running\n$/.test(stopped.stderr), stopped.stderr);
    });
  },
});

Deno.test({
  name: "remote enter cliexec://NAME through docker exec -t gives a PTY shell: prompt, stty size, resize, exit 3",
  ...common,
  async fn() {
    await using home = await tempHome();
    await using engine = await startDockerEngine();
    await engine.createContainer("web1");
    await using pty = await spawnInPty(
      Deno.execPath(),
      [
        "run",
        "-A",
        "--quiet",
        MAIN,
        "--plugin",
        MODULE,
        "enter",
        "cliexec://web1",
        "--exec-cli",
        `docker -H ${engine.host} exec -i {tty} {instance}`,
      ],
      { cols: 100, rows: 30, env: home.env },
    );
    // busybox sh's prompt for root in /
    await pty.waitFor("/ # ", 30_000);
    pty.write("stty size\r");
    await pty.waitFor(/^30 100\r?$/m);
    pty.resize(120, 40);
    await new Promise((r) => setTimeout(r, 500));
    pty.write("stty size\r");
    await pty.waitFor(/^40 120\r?$/m);
    pty.write("echo $TERM\r");
    await pty.waitFor(/^xterm-256color\r?$/m);
    pty.write("exit 3\r");
    assertEquals((await pty.exited).code, 3);
  },
});

Deno.test({
  name: "remote with the cliexec plugin says when the exec CLI is missing or the template is wrong",
  ...common,
  async fn() {
    await using home = await tempHome();
    const emptyPath = await Deno.makeTempDir({ prefix: "remote-empty-path-" });
    try {
      // kubectl, the default CLI, not on PATH
      const missing = await runRemote(["--plugin", MODULE, "invoke", "cliexec://web1", "--", "true"], {
        env: { ...home.env, PATH: emptyPath },
      });
      assertEquals(missing, {
        code: 252,
        stdout: "",
        stderr: "remote: kubectl is not installed here (not found on PATH)\n" +
          "hint: install kubectl, or name another CLI with --exec-cli, e.g. 'docker exec -i {tty} {instance}'\n",
      });
    } finally {
      await Deno.remove(emptyPath, { recursive: true });
    }
    const placeholder = await runRemote(
      ["--plugin", MODULE, "invoke", "cliexec://web1", "--exec-cli", "kubectl exec {pod} --", "--", "true"],
      { env: home.env },
    );
    assertEquals(placeholder, {
      code: 230,
      stdout: "",
      stderr: "remote: unknown placeholder {pod} in the exec CLI\n" +
        "hint: use {instance}, {tty}, {namespace}, {container} or {user}\n",
    });
  },
});

/**
 * A loopback HTTP endpoint that answers kubectl's discovery and its GET of pod `prod/web1` (one container,
 * `app`), records every request, and refuses the exec itself (403): enough to see which exec real kubectl
 * asks for, without standing in for the exec protocol.
 */
function kubeApiRecorder(): { port: number; requests: string[] } & AsyncDisposable {
  const requests: string[] = [];
  const status = { apiVersion: "v1", kind: "Status", status: "Failure", reason: "Forbidden", code: 403 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    switch (url.pathname) {
      case "/version":
        return Response.json({ major: "1", minor: "32", gitVersion: "v1.32.0" });
      case "/api":
        return Response.json({ kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] });
      case "/apis":
        return Response.json({ kind: "APIGroupList", apiVersion: "v1", groups: [] });
      case "/api/v1":
        return Response.json({
          kind: "APIResourceList",
          groupVersion: "v1",
          resources: [{ name: "pods", singularName: "pod", namespaced: true, kind: "Pod", verbs: ["get"] }],
        });
      case "/api/v1/namespaces/prod/pods/web1":
        return Response.json({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "web1", namespace: "prod" },
          spec: { containers: [{ name: "app", image: "busybox" }] },
          status: { phase: "Running" },
        });
    }
    return Response.json({ ...status, message: "no exec here" }, { status: 403 });
  });
  return { port: server.addr.port, requests, [Symbol.asyncDispose]: () => server.shutdown() };
}

Deno.test({
  name: "remote with the cliexec plugin runs real kubectl exec with the namespace, container and command",
  ...common,
  async fn() {
    const found = await new Deno.Command("sh", { args: ["-c", "command -v kubectl"], stdout: "null" }).output();
    if (!found.success) {
      // Debian has no kubectl package; GitHub's runner images ship one
      throw new Error("kubectl is not installed; install it: https://kubernetes.io/docs/tasks/tools/");
    }
    await using home = await tempHome();
    await using api = kubeApiRecorder();
    const kubeconfig = `${home.dir}/kubeconfig`;
    await Deno.writeTextFile(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:${api.port}"}}]\n` +
        `users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
    );
    const run = await runRemote(
      ["--plugin", MODULE, "invoke", "cliexec://web1", "--namespace", "prod", "--container", "app", "--", "uname -a"],
      { env: { ...home.env, KUBECONFIG: kubeconfig } },
    );
    // kubectl's own failure reaches the user as kubectl printed it, with its exit code
    assertEquals(run.code, 1, run.stderr);
    assert(run.stderr.startsWith("Error from server"), run.stderr);
    const exec = api.requests.find((r) => r.includes("/exec?"));
    assert(exec !== undefined, api.requests.join("\n"));
    const query = new URL(exec.split(" ")[1], "http://x").searchParams;
    assertEquals(exec.split("?")[0], "GET /api/v1/namespaces/prod/pods/web1/exec");
    const command = query.getAll("command");
    assertEquals([command[0], command[1].split("=")[0], ...command.slice(2)], [
      "env",
      "REMOTE_CLIEXEC_TAG",
      "sh",
      "-c",
      "uname -a",
    ]);
    assertEquals([query.get("container"), query.get("stdin"), query.get("tty")], ["app", "true", null]);
  },
});
