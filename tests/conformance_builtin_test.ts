/**
 * The conformance suite (plugins/conformance.ts) against the built-in transports, each against its
 * real peer or the protocol-faithful stand-in: local (this machine), ssh (real OpenSSH sshd and
 * dropbear from tests/harness/), winrm (tests/winrm_server.ts with cmd.exe recipes), ssm
 * (tests/ssm_emulator.ts; shells, and commands without end of input or, by default, exit status), container (real
 * dockerd and podman) and k8s (tests/k8s_api_server.ts, whose framing tests/k8s_exec_test.ts checks
 * against kubectl).
 *
 * Each transport-and-peer pair is one test whose steps are the cases; its server is started and
 * stopped inside it. Each test also pins which cases apply, so a capability gained or lost shows up.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { type OpenContext, type Transport, UsageError } from "../plugins/mod.ts";
import {
  conformanceCases,
  type ConformanceOptions,
  POSIX_COMMANDS,
  WINDOWS_CMD_COMMANDS,
} from "../plugins/conformance.ts";
import * as local from "../transports/local/mod.ts";
import * as ssh from "../transports/ssh/mod.ts";
import * as winrm from "../transports/winrm/mod.ts";
import * as ssm from "../transports/ssm/mod.ts";
import { isolatedHome, sshContext } from "./harness/ssh_context.ts";
import { type SshdServer, startSshd, withLogOnFailure } from "./harness/sshd.ts";
import { startDropbear } from "./harness/dropbear.ts";
import { isRoot } from "./harness/process.ts";
import { startWinrmServer } from "./winrm_server.ts";
import { emulatorContext, startSsmEmulator, useEmulatorCredentials } from "./ssm_emulator.ts";
import * as container from "../transports/container/mod.ts";
import * as k8s from "../transports/k8s/mod.ts";
import { startK8sApiServer } from "./k8s_api_server.ts";
import { type ContainerEngine, startDockerEngine, startPodmanEngine } from "./harness/docker_engine.ts";

// a known shell for local: $SHELL may be a shell whose rc files print or prompt unpredictably
Deno.env.set("SHELL", "/bin/sh");
useEmulatorCredentials();

const EXEC_CASES = [
  "echo round trip",
  "1 MiB of binary data both ways",
  "large output (20971520 bytes)",
  "stdout and stderr stay apart",
  "exit code 0 comes through",
  "exit code 3 comes through",
  "exit code 255 comes through",
];
const SHELL_CASES = ["shell echo round trip", "shell large output (1048576 bytes)", "shell exit ends the session"];

const nobody = { interactive: false, ask: () => Promise.reject(new UsageError("nobody can answer in this test")) };

/** Runs every applicable case as a step, after checking which cases apply. */
async function runSuite(t: Deno.TestContext, options: ConformanceOptions, expected: string[]): Promise<void> {
  const cases = await conformanceCases(options);
  assertEquals(cases.map((c) => c.name).sort(), [...expected].sort());
  let failed = 0;
  for (const c of cases) if (!await t.step(c.name, () => c.run())) failed++;
  if (failed > 0) throw new Error(`${failed} of ${cases.length} conformance cases failed`);
}

const common = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "local transport passes the conformance suite",
  ...common,
  async fn(t) {
    const context = (signal: AbortSignal): OpenContext => ({
      target: { transport: "local", host: "localhost", display: "local" },
      parameters: {},
      signal,
      prompt: nobody,
      notice: () => {},
    });
    await runSuite(t, { transport: local as Transport, context, malformed: [] }, [
      ...EXEC_CASES,
      ...SHELL_CASES,
      "resize reaches the terminal",
      "INT stops a sleeping command",
      "shell resize reaches the terminal",
      "close leaves no process or socket behind",
      "malformed parameters give a clear error",
    ]);
  },
});

const SSH_CASES = [
  ...EXEC_CASES,
  ...SHELL_CASES,
  "resize reaches the terminal",
  "INT stops a sleeping command",
  "shell resize reaches the terminal",
  "close leaves no process or socket behind",
  "malformed parameters give a clear error",
];
const INT_CASE = "INT stops a sleeping command";
const CLOSE_CASE = "close leaves no process or socket behind";

/** The ssh transport's suite against a started server (OpenSSH or dropbear). */
async function sshSuite(t: Deno.TestContext, server: SshdServer, peerLimits: Record<string, string>): Promise<void> {
  await using home = await isolatedHome();
  await Deno.writeTextFile(home.knownHosts, server.knownHostsLine() + "\n");
  await using strangers = await isolatedHome(); // a known_hosts that does not know the server
  const target = { host: server.host, port: server.port, user: server.user };
  const params = { KeyFilePath: [server.userKey] };
  const context = (signal: AbortSignal): OpenContext => sshContext(target, home, params, { signal });
  const base = sshContext(target, home, params).parameters;
  const options = (extra: Record<string, string>) => ({ ...base.Options as object, ...extra });
  await withLogOnFailure(server, () =>
    runSuite(t, {
      transport: ssh as Transport,
      context,
      peerLimits,
      malformed: [
        { what: "a malformed jump host", parameters: { ...base, ProxyJump: "@:" } },
        { what: "a ProxyCommand option", parameters: { ...base, Options: options({ ProxyCommand: "nc %h %p" }) } },
        // the server's own host key is a valid key that authorized_keys does not list
        {
          what: "a key the server does not accept",
          parameters: { ...base, KeyFilePath: [`${server.dir}/host_ed25519`] },
        },
        {
          what: "an unknown host key with nobody to ask",
          parameters: { ...base, Options: options({ UserKnownHostsFile: strangers.knownHosts }) },
        },
        { what: "a port nobody listens on", target: { port: 1 } },
      ],
    }, SSH_CASES.filter((c) => peerLimits[c] === undefined)));
}

Deno.test({
  name: "ssh transport passes the conformance suite against OpenSSH sshd",
  ...common,
  async fn(t) {
    await using sshd = await startSshd();
    // A root login runs without privilege separation, and then sshd refuses signal requests
    // (session.c session_signal_req): neither Ctrl-C nor the TERM sent on close reach the command.
    // The dropbear run below covers both for root too.
    const why = "OpenSSH refuses signal requests for a root login (no privilege separation)";
    const limits: Record<string, string> = isRoot() ? { [INT_CASE]: why, [CLOSE_CASE]: why } : {};
    await sshSuite(t, sshd, limits);
  },
});

Deno.test({
  name: "ssh transport passes the conformance suite against dropbear",
  ...common,
  async fn(t) {
    await using dropbear = await startDropbear();
    await sshSuite(t, dropbear, {});
  },
});

Deno.test({
  name: "winrm transport passes the conformance suite against the WS-Man test server",
  ...common,
  async fn(t) {
    await using server = await startWinrmServer();
    const credential = { user: "WIN01\\alice", password: "Secr3t-pässword" };
    const parameters = { ConnectionUri: server.url, Credential: credential };
    const context = (signal: AbortSignal): OpenContext => ({
      target: { transport: "winrm", host: "127.0.0.1", port: server.port, display: server.url },
      parameters,
      signal,
      prompt: nobody,
      notice: () => {},
    });
    await runSuite(t, {
      transport: winrm as Transport,
      context,
      commands: WINDOWS_CMD_COMMANDS,
      malformed: [
        { what: "a non-http connection uri", parameters: { ...parameters, ConnectionUri: "ftp://127.0.0.1/wsman" } },
        { what: "basic over http", parameters: { ...parameters, Authentication: "Basic" } },
        { what: "kerberos", parameters: { ...parameters, Authentication: "Kerberos" } },
        { what: "a PSRP-only configuration", parameters: { ...parameters, ConfigurationName: "Microsoft.Exchange" } },
        { what: "no user name", parameters: { ConnectionUri: server.url } },
        {
          what: "a wrong password",
          parameters: { ...parameters, Credential: { ...credential, password: "wrong" } },
        },
      ],
      assertNoLeaks() {
        assertEquals(server.shells(), [], "the WinRS shell was not deleted on close");
      },
    }, [
      ...EXEC_CASES,
      "INT stops a sleeping command",
      "close leaves no process or socket behind",
      "malformed parameters give a clear error",
    ]);
  },
});

Deno.test({
  name: "ssm transport passes the conformance suite's shell and command cases against the emulator",
  ...common,
  async fn(t) {
    await using emu = await startSsmEmulator({ offlineTargets: ["i-0ffffffffffffffff"] });
    const context = (signal: AbortSignal): OpenContext => ({ ...emulatorContext(emu), signal });
    const parameters = emulatorContext(emu).parameters;
    await runSuite(t, {
      transport: ssm as Transport,
      context,
      // the emulator's agent runs a scripted shell (echo, stty size, blob N printable bytes, exit) and scripted
      // commands (echo, warn to stderr, blob N, sleep N, cat, exit N)
      commands: {
        ...POSIX_COMMANDS,
        shellOutput: (bytes) => `blob ${bytes}`,
        writeStderr: (text) => `warn ${text}`,
        bigOutput: (bytes) => `blob ${bytes}`,
        printSizeAfterLine: "readline; size",
      },
      largeOutputBytes: 1024 * 1024,
      peerLimits: {
        "echo round trip": "Session Manager's data channel carries no end of input",
        "1 MiB of binary data both ways": "Session Manager's data channel carries no end of input",
        ...Object.fromEntries(
          ["stdout and stderr stay apart", "exit code 3 comes through", "exit code 255 comes through"].map((c) => [
            c,
            "AWS-StartNonInteractiveCommand merges stderr and reports no exit status; " +
            "tests/ssm_commands_test.ts runs a document with separateOutputStream",
          ]),
        ),
      },
      malformed: [
        { what: "no target", target: { host: "" } },
        { what: "an endpoint that is not a URL", parameters: { ...parameters, EndpointUrl: "not a url" } },
        { what: "an unknown document", parameters: { ...parameters, DocumentName: "No-Such-Document" } },
        { what: "an offline instance", target: { host: "i-0ffffffffffffffff" } },
      ],
    }, [
      ...SHELL_CASES,
      "shell resize reaches the terminal",
      "large output (1048576 bytes)",
      "exit code 0 comes through",
      "resize reaches the terminal",
      "close leaves no process or socket behind",
      "malformed parameters give a clear error",
    ]);
  },
});

/** The container transport's suite against a started engine, in a busybox container. */
async function containerSuite(t: Deno.TestContext, engine: ContainerEngine, scheme: string): Promise<void> {
  await engine.createContainer("web1");
  const parameters = { DockerHost: engine.host };
  const context = (signal: AbortSignal): OpenContext => ({
    target: { transport: "container", host: "web1", display: `${scheme}://web1` },
    parameters,
    signal,
    prompt: nobody,
    notice: () => {},
  });
  // what runs in the container besides its own sleep, as the engine's top reports it
  const strays = async () => {
    const top = await engine.api("GET", "/containers/web1/top?ps_args=-ef");
    // Podman runs the container's own ps (busybox: one column per row), Docker the host's
    return (top.body as { Processes: string[][] }).Processes.map((p) => p.join(" "))
      .filter((line) => !/sleep 86400/.test(line));
  };
  await runSuite(t, {
    transport: container as Transport,
    context,
    malformed: [
      { what: "a missing container", target: { host: "web9" }, parameters: {} },
      { what: "a container name with a slash", parameters: { ...parameters, ContainerId: "web1/../x" } },
      { what: "an engine address that is not one", parameters: { DockerHost: "http://127.0.0.1:2375" } },
      { what: "a socket nobody listens on", parameters: { DockerHost: `unix://${engine.dir}/none.sock` } },
      { what: "root and another user", parameters: { ...parameters, RunAsAdministrator: true, UserName: "nobody" } },
    ],
    async assertNoLeaks() {
      let left: string[] = [];
      for (let i = 0; i < 60 && (left = await strays()).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
      assertEquals(left, [], "processes of the exec left running in the container");
    },
  }, [
    ...EXEC_CASES,
    ...SHELL_CASES,
    "resize reaches the terminal",
    "INT stops a sleeping command",
    "shell resize reaches the terminal",
    "close leaves no process or socket behind",
    "malformed parameters give a clear error",
  ]);
}

Deno.test({
  name: "container transport passes the conformance suite against a real dockerd",
  ...common,
  async fn(t) {
    await using engine = await startDockerEngine();
    await containerSuite(t, engine, "docker");
  },
});

Deno.test({
  name: "container transport passes the conformance suite against a real podman",
  ...common,
  async fn(t) {
    await using engine = await startPodmanEngine();
    await containerSuite(t, engine, "podman");
  },
});

Deno.test({
  name: "k8s transport passes the conformance suite against the Kubernetes API test server",
  ...common,
  async fn(t) {
    await using server = await startK8sApiServer({ token: "conformance" });
    const dir = await Deno.makeTempDir({ prefix: "remote-k8s-" });
    try {
      const kubeconfig = `${dir}/config`;
      await Deno.writeTextFile(
        kubeconfig,
        JSON.stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [{ name: "c", cluster: { server: server.url } }],
          users: [{ name: "u", user: { token: "conformance" } }],
          contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
          "current-context": "x",
        }),
      );
      Deno.env.set("KUBECONFIG", kubeconfig);
      const context = (signal: AbortSignal): OpenContext => ({
        target: { transport: "k8s", host: "ns1", path: "/web", display: "k8s://ns1/web" },
        parameters: {},
        signal,
        prompt: nobody,
        notice: () => {},
      });
      await runSuite(t, {
        transport: k8s as Transport,
        context,
        malformed: [
          { what: "a missing pod", target: { host: "ns1", path: "/nope" }, parameters: {} },
          { what: "no pod in the target", target: { host: "ns1", path: "" }, parameters: {} },
          { what: "a context the kubeconfig lacks", parameters: { KubeContext: "nope" } },
        ],
        async assertNoLeaks() {
          for (let i = 0; i < 60 && server.running() > 0; i++) await new Promise((r) => setTimeout(r, 50));
          assertEquals(server.running(), 0, "exec'd processes left running");
        },
      }, [
        ...EXEC_CASES,
        ...SHELL_CASES,
        "resize reaches the terminal",
        "shell resize reaches the terminal",
        "close leaves no process or socket behind",
        "malformed parameters give a clear error",
      ]);
    } finally {
      Deno.env.delete("KUBECONFIG");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
