/**
 * SSH over Session Manager (`remote enter ec2-user@i-0abc --via ssm`), through the CLI: the SSH transport runs its
 * connection over an `AWS-StartSSHSession` port session of tests/ssm_emulator.ts, whose agent connects to the
 * harness's real sshd on loopback, as the SSM agent connects to the instance's own sshd. Keys, known_hosts (under the
 * instance ID) and exit codes are the SSH transport's.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort } from "./harness/process.ts";
import { startSshd } from "./harness/sshd.ts";
import { tmux, withTmuxHost } from "./harness/tmux_host.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, tempHome } from "./run_remote.ts";
import { startSsmEmulator, TEST_CREDENTIALS } from "./ssm_emulator.ts";

const INSTANCE = "i-0123456789abcdef0";
const PRIVATE_HOST = "db.internal";
const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A loopback TCP server that echoes each connection back; its port. */
function echoServer(): { port: number } & Disposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  void (async () => {
    for await (const conn of listener) void conn.readable.pipeTo(conn.writable).catch(() => {});
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, [Symbol.dispose]: () => listener.close() };
}

/** Sends `text` to a local port and reads it back. */
async function roundTrip(port: number, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(text));
    const buf = new Uint8Array(text.length);
    let at = 0;
    while (at < buf.length) {
      const n = await conn.read(buf.subarray(at));
      if (n === null) break;
      at += n;
    }
    return new TextDecoder().decode(buf.subarray(0, at));
  } finally {
    conn.close();
  }
}

Deno.test({
  name: "remote enter user@i-… --via ssm runs SSH over an AWS-StartSSHSession port session to the real sshd",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using home = await tempHome();
    await using sshd = await startSshd();
    // a host in the instance's network, as its resolver names it
    await using emu = await startSsmEmulator({ hosts: { [PRIVATE_HOST]: "127.0.0.1" } });
    const knownHosts = `${home.dir}/known_hosts`;
    // the instance ID is the host name ssh checks the key under, as with ProxyCommand's %h
    const keys = sshd.hostKeys.map((k) =>
      `[${INSTANCE}]:${sshd.port} ${k.publicLine.split(" ").slice(0, 2).join(" ")}`
    );
    await Deno.writeTextFile(knownHosts, keys.join("\n") + "\n");
    const env = {
      ...home.env,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_SESSION_TOKEN: "",
      AWS_PROFILE: "",
      AWS_SHARED_CREDENTIALS_FILE: `${home.dir}/.aws/credentials`,
      AWS_CONFIG_FILE: `${home.dir}/.aws/config`,
    };
    const aws = ["--endpoint-url", emu.endpoint, "--region", emu.region];
    const ssh = (known = knownHosts, port = sshd.port) => [
      "-p",
      String(port),
      "-i",
      sshd.userKey,
      "-o",
      `UserKnownHostsFile=${known}`,
      "-o",
      "StrictHostKeyChecking=yes",
    ];
    const target = `${sshd.user}@${INSTANCE}`;
    let failed = 0;
    const step = async (name: string, fn: () => Promise<void>) => {
      if (!await t.step(name, fn)) failed++;
    };

    await step("a command: stdout and stderr apart, exit 5 is 5, over one AWS-StartSSHSession session", async () => {
      const before = emu.stats.startedTargets.length;
      const run = await runRemote(
        ["enter", target, "--via", "ssm", ...aws, ...ssh(), "-T", "--", "echo out; echo err >&2; exit 5"],
        { env },
      );
      assertEquals(run, { code: 5, stdout: "out\n", stderr: "err\n" });
      assertEquals(emu.stats.startedTargets.slice(before), [INSTANCE]);
      assertEquals(emu.stats.portMode, "basic");
    });

    await step("remote invoke --via ssm: the exit code of the command", async () => {
      const run = await runRemote(["invoke", target, "--via", "ssm", ...aws, ...ssh(), "--", "echo $((6*7)); exit 3"], {
        env,
      });
      assertEquals(run, { code: 3, stdout: "42\n", stderr: "" });
    });

    await step(
      "8 MiB of output arrive whole: the port session's output resumes once the reader catches up",
      async () => {
        const size = 8 * 1024 * 1024;
        const run = await runRemote(
          ["invoke", target, "--via", "ssm", ...aws, ...ssh(), "--", `head -c ${size} /dev/zero | tr '\\0' x; echo`],
          { env, timeoutMs: 120_000 },
        );
        assertEquals([run.code, run.stderr, run.stdout.length], [0, "", size + 1]);
        assert(/^x+\n$/.test(run.stdout));
      },
    );

    await step("a shell reads its commands from stdin and exits with their status", async () => {
      const run = await runRemote(["enter", target, "--via", "ssm", ...aws, ...ssh()], {
        env,
        stdin: "echo shell-$((1+1))\nexit 4\n",
      });
      assertEquals([run.code, run.stdout, run.stderr], [4, "shell-2\n", ""]);
    });

    await step(
      'the config\'s [hosts."i-*"] via = "ssm" does it without --via, as an ssh_config Host block does',
      async () => {
        await Deno.mkdir(`${home.env.XDG_CONFIG_HOME}/remote`, { recursive: true });
        const config = `${home.env.XDG_CONFIG_HOME}/remote/config.toml`;
        await Deno.writeTextFile(config, `[hosts."i-*"]\nvia = "ssm"\nuser = "${sshd.user}"\n`);
        try {
          const run = await runRemote(["invoke", INSTANCE, ...aws, ...ssh(), "--", "echo mapped"], { env });
          assertEquals(run, { code: 0, stdout: "mapped\n", stderr: "" });
        } finally {
          await Deno.remove(config);
        }
      },
    );

    await step("a shell in a real terminal, with -L forwarding through the same SSH-over-SSM connection", async () => {
      using echo = echoServer();
      const port = freePort();
      await using pty = await spawnInPty(
        Deno.execPath(),
        [
          "run",
          "-A",
          "--quiet",
          MAIN,
          "enter",
          target,
          "--via",
          "ssm",
          ...aws,
          ...ssh(),
          "-L",
          `${port}:127.0.0.1:${echo.port}`,
        ],
        { env: { ...env, SSH_AUTH_SOCK: "", PS1: "$ " } },
      );
      pty.write("echo READY-$((6*7)); tty\r");
      await pty.waitFor("READY-42", 30_000);
      await pty.waitFor("/dev/pts/", 10_000);
      assertEquals(await roundTrip(port, "over ssm\n"), "over ssm\n");
      pty.write("exit 4\r");
      assertEquals((await pty.exited).code, 4);
    });

    await step("remote copy --via ssm uploads over SFTP through the port session", async () => {
      const dir = await Deno.makeTempDir({ prefix: "remote-via-copy-" });
      try {
        await Deno.writeTextFile(`${home.dir}/up.txt`, "copied through ssm\n");
        const copyOptions = ssh().map((a) => a === "-p" ? "-P" : a);
        // copy takes only copying transports' options: Session Manager's endpoint and region come from the environment
        const run = await runRemote(
          ["copy", "--via", "ssm", ...copyOptions, `${home.dir}/up.txt`, `${target}:${dir}/`],
          { env: { ...env, AWS_ENDPOINT_URL_SSM: emu.endpoint, AWS_REGION: emu.region } },
        );
        assertEquals([run.code, run.stderr], [0, ""]);
        assertEquals(await Deno.readTextFile(`${dir}/up.txt`), "copied through ssm\n");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });

    await step("ssh_config's ProxyCommand aws ssm start-session is refused with a hint naming --via ssm", async () => {
      const config = `${home.dir}/ssh_config_ssm`;
      await Deno.writeTextFile(
        config,
        'Host i-*\n  ProxyCommand sh -c "aws ssm start-session --target %h --document-name AWS-StartSSHSession ' +
          "--parameters 'portNumber=%p'\"\n",
      );
      const run = await runRemote(["invoke", target, "-F", config, ...ssh(), "--", "true"], { env });
      assertEquals(run.code, 230);
      assertEquals(
        run.stderr,
        [
          "remote: ProxyCommand is not supported by remote's ssh transport",
          `hint: remote speaks Session Manager itself: remote enter ${sshd.user}@${INSTANCE} --via ssm`,
          "",
        ].join("\n"),
      );
      // with --via, the ProxyCommand is not run: --via takes its place, as -J would
      const via = await runRemote(["invoke", target, "-F", config, "--via", "ssm", ...aws, ...ssh(), "--", "echo ok"], {
        env,
      });
      assertEquals(via, { code: 0, stdout: "ok\n", stderr: "" });
    });

    await step("ssm://i-… as the via, with the SSH host named as the instance sees it (localhost)", async () => {
      const local = `${home.dir}/known_local`;
      const lines = sshd.hostKeys.map((k) =>
        `[localhost]:${sshd.port} ${k.publicLine.split(" ").slice(0, 2).join(" ")}`
      );
      await Deno.writeTextFile(local, lines.join("\n") + "\n");
      const run = await runRemote(
        ["invoke", `${sshd.user}@localhost`, "--via", `ssm://${INSTANCE}`, ...aws, ...ssh(local), "--", "echo via-url"],
        { env },
      );
      assertEquals(run, { code: 0, stdout: "via-url\n", stderr: "" });
    });

    await step(
      "ssm://i-… to another host the instance reaches: AWS-StartPortForwardingSessionToRemoteHost, one smux stream",
      async () => {
        const known = `${home.dir}/known_private`;
        const lines = sshd.hostKeys.map((k) =>
          `[${PRIVATE_HOST}]:${sshd.port} ${k.publicLine.split(" ").slice(0, 2).join(" ")}`
        );
        await Deno.writeTextFile(known, lines.join("\n") + "\n");
        const documents = emu.stats.startedDocuments.length;
        const destinations = emu.stats.destinations.length;
        const size = 300_000; // many 1 KiB payloads and smux frames each way through the stream
        const run = await runRemote(
          [
            "invoke",
            `${sshd.user}@${PRIVATE_HOST}`,
            "--via",
            `ssm://${INSTANCE}`,
            ...aws,
            ...ssh(known),
            "--",
            `echo private; head -c ${size} /dev/zero | tr '\\0' y; echo; echo err >&2; exit 4`,
          ],
          { env },
        );
        assertEquals([run.code, run.stderr], [4, "err\n"]);
        assertEquals(run.stdout, `private\n${"y".repeat(size)}\n`);
        assertEquals(emu.stats.startedDocuments.slice(documents), ["AWS-StartPortForwardingSessionToRemoteHost"]);
        assertEquals(emu.stats.destinations.slice(destinations), [`${PRIVATE_HOST}:${sshd.port}`]);
        assertEquals(emu.stats.portMode, "mux");
        assertEquals(emu.stats.smuxProtocolErrors, 0);
      },
    );

    await step(
      "host-key verification still applies: an unknown key under the instance ID is refused (246)",
      async () => {
        const empty = `${home.dir}/known_empty`;
        await Deno.writeTextFile(empty, "");
        const run = await runRemote(["invoke", target, "--via", "ssm", ...aws, ...ssh(empty), "--", "echo no"], {
          env,
        });
        assertEquals([run.code, run.stdout], [246, ""]);
        assert(run.stderr.includes(INSTANCE), run.stderr);
      },
    );

    await step("a changed host key under the instance ID is refused (246)", async () => {
      const wrong = `${home.dir}/known_wrong`;
      // another server's keys, listed under this instance's name
      await using other = await startSshd();
      const lines = other.hostKeys.map((k) =>
        `[${INSTANCE}]:${sshd.port} ${k.publicLine.split(" ").slice(0, 2).join(" ")}`
      );
      await Deno.writeTextFile(wrong, lines.join("\n") + "\n");
      const run = await runRemote(["invoke", target, "--via", "ssm", ...aws, ...ssh(wrong), "--", "echo no"], { env });
      assertEquals([run.code, run.stdout], [246, ""]);
      assert(/changed|does not match|REMOTE HOST IDENTIFICATION/i.test(run.stderr), run.stderr);
    });

    await step("nothing listening on the instance's port: one line from Session Manager, exit 241", async () => {
      const run = await runRemote(["invoke", target, "--via", "ssm", ...aws, ...ssh(knownHosts, 1), "--", "echo no"], {
        env,
      });
      assertEquals([run.code, run.stdout], [241, ""]);
      const lines = run.stderr.trimEnd().split("\n");
      assertEquals(lines.length, 2, run.stderr);
      assert(lines[0].startsWith(`remote: ${INSTANCE} could not connect to port 1: `), lines[0]);
      assert(lines[1].startsWith("hint: "), lines[1]);
    });

    if (failed > 0) throw new Error(`${failed} step(s) failed`);
  },
});

Deno.test({
  name: "a session left running on an instance without open ports: the config's via reaches it to receive and remove",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withTmuxHost(async (sshd, socket) => {
      await using home = await tempHome();
      await using emu = await startSsmEmulator();
      await Deno.mkdir(`${home.dir}/.ssh`, { recursive: true, mode: 0o700 });
      const keys = sshd.hostKeys.map((k) =>
        `[${INSTANCE}]:${sshd.port} ${k.publicLine.split(" ").slice(0, 2).join(" ")}`
      );
      await Deno.writeTextFile(`${home.dir}/.ssh/known_hosts`, keys.join("\n") + "\n");
      await Deno.writeTextFile(
        `${home.dir}/.ssh/config`,
        `Host i-*\n  Port ${sshd.port}\n  IdentityFile ${sshd.userKey}\n  StrictHostKeyChecking yes\n`,
      );
      await Deno.mkdir(`${home.env.XDG_CONFIG_HOME}/remote`, { recursive: true });
      await Deno.writeTextFile(
        `${home.env.XDG_CONFIG_HOME}/remote/config.toml`,
        `[hosts."i-*"]\nvia = "ssm"\nuser = "${sshd.user}"\n`,
      );
      const env = {
        ...home.env,
        REMOTE_TMUX_SOCKET: socket,
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
        AWS_SESSION_TOKEN: "",
        AWS_PROFILE: "",
        AWS_SHARED_CREDENTIALS_FILE: `${home.dir}/.aws/credentials`,
        AWS_CONFIG_FILE: `${home.dir}/.aws/config`,
        AWS_ENDPOINT_URL_SSM: emu.endpoint,
        AWS_REGION: emu.region,
      };
      const started = await runRemote(
        ["invoke", INSTANCE, "--in-disconnected-session", "--session-name", "Kept", "--", "echo kept-$((2*21))"],
        { env },
      );
      assertEquals([started.code, started.stderr], [0, ""]);
      assertEquals((await tmux(socket, "has-session", "-t", "=Kept")).code, 0);
      const sessionsBefore = emu.stats.startedTargets.length;
      let received = "";
      for (let i = 0; i < 50 && !received.includes("kept-42"); i++) {
        const run = await runRemote(["receive", "--name", "Kept"], { env });
        assertEquals([run.code, run.stderr], [0, ""]);
        received += run.stdout;
        if (!received.includes("kept-42")) await new Promise((r) => setTimeout(r, 100));
      }
      assert(received.includes("kept-42"), received);
      assert(emu.stats.startedTargets.length > sessionsBefore, "receive did not go through Session Manager");
      // without the config's via, --via with the session's name reaches its host too
      await Deno.rename(`${home.env.XDG_CONFIG_HOME}/remote/config.toml`, `${home.dir}/config.toml.off`);
      const dir = await Deno.makeTempDir({ prefix: "remote-via-kept-" });
      try {
        await Deno.writeTextFile(`${home.dir}/note.txt`, "for Kept\n");
        const direct = await runRemote(["copy", "--name", "Kept", `${home.dir}/note.txt`, `Kept:${dir}/`], { env });
        assert(direct.code !== 0, "reached the instance without a via");
        const copied = await runRemote(
          ["copy", "--name", "Kept", "--via", "ssm", `${home.dir}/note.txt`, `Kept:${dir}/`],
          { env },
        );
        assertEquals([copied.code, copied.stderr], [0, ""]);
        assertEquals(await Deno.readTextFile(`${dir}/note.txt`), "for Kept\n");
      } finally {
        await Deno.remove(dir, { recursive: true });
        await Deno.rename(`${home.dir}/config.toml.off`, `${home.env.XDG_CONFIG_HOME}/remote/config.toml`);
      }
      const removed = await runRemote(["remove", "--name", "Kept"], { env });
      assertEquals([removed.code, removed.stderr], [0, ""]);
      assertEquals((await tmux(socket, "has-session", "-t", "=Kept")).code, 1);
    });
  },
});
