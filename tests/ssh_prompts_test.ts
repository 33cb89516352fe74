/**
 * Questions asked while connecting (password, unknown host key), through the real `remote` CLI in a real PTY
 * against a real sshd: a link that dies after the answer ends in bounded time, and SIGHUP or SIGTERM during a
 * question give back the terminal as they found it, with 129 and 143.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import * as net from "node:net";
import { shellQuote } from "../plugins/mod.ts";
import { type SshdServer, startSshd, withLogOnFailure } from "./harness/sshd.ts";
import { type PtySession, spawnInPty } from "./pty.ts";
import { type TempHome, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
// deno start-up on a busy 2-core machine is slow; this is a bound, not a measurement
const WAIT = 60_000;
const STTY_G = /[0-9a-f]+(:[0-9a-f]+){10,}/;

/** A loopback TCP proxy to `port`; `freeze()` keeps both sides open but forwards nothing more, as a dead link. */
async function freezableProxy(port: number) {
  let frozen = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: "127.0.0.1", port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    client.on("data", (d) => frozen || upstream.write(d));
    upstream.on("data", (d) => frozen || client.write(d));
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    freeze: () => frozen = true,
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A throwaway HOME with an empty ssh_config and a known_hosts file (empty unless `keysFor` names a port). */
async function promptHome(sshd: SshdServer, keysFor?: number): Promise<TempHome & { options: string[] }> {
  const home = await tempHome();
  const config = `${home.dir}/ssh_config`;
  const knownHosts = `${home.dir}/known_hosts`;
  await Deno.writeTextFile(config, "");
  const lines = keysFor === undefined ? "" : sshd.knownHostsLine().replaceAll(`:${sshd.port} `, `:${keysFor} `) + "\n";
  await Deno.writeTextFile(knownHosts, lines);
  const options = ["-F", config, "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "GlobalKnownHostsFile=none"];
  return Object.assign(home, { options });
}

/**
 * `remote ...args` in a PTY, wrapped by a shell that prints the terminal modes (`stty -g`) before, remote's pid,
 * and after it ended its exit code and the modes again (`stty -g`, `stty -a`).
 */
async function remoteInPty(
  args: string[],
  home: TempHome,
): Promise<PtySession & { remotePid: number; modesBefore: string }> {
  const remote = [Deno.execPath(), "run", "-A", "--quiet", MAIN, ...args].map((w) => shellQuote(w)).join(" ");
  const script = `stty -g; sh -c 'echo "pid=$$"; exec "$0" "$@"' ${remote}; echo "rc=$?"; stty -g; stty -a`;
  const pty = await spawnInPty("/bin/sh", ["-c", script], { env: { ...home.env, SSH_AUTH_SOCK: "" } });
  const modesBefore = await pty.waitFor(STTY_G, WAIT);
  const remotePid = Number((await pty.waitFor(/pid=\d+/, WAIT)).slice(4));
  return Object.assign(pty, { remotePid, modesBefore });
}

/** Waits for remote's exit code, then checks that the terminal modes are what they were before it started. */
async function exitAndModes(pty: PtySession, before: string): Promise<number> {
  const code = Number((await pty.waitFor(/rc=\d+/, WAIT)).slice(3));
  assertEquals(await pty.waitFor(STTY_G, WAIT), before, `stty -g differs after remote ended:\n${pty.output()}`);
  const modes = await pty.waitFor(/[\s\S]*\bicanon\b[\s\S]*/, WAIT);
  match(modes, /(^|\s)echo(\s|$)/, "echo is off");
  match(modes, /(^|\s)icanon(\s|$)/, "icanon is off");
  return code;
}

for (const verb of ["invoke", "enter"] as const) {
  Deno.test(`remote ${verb}: a link that dies after the password was typed ends with 242 within the connect timeout`, async () => {
    await using sshd = await startSshd({ password: "pw", config: "KbdInteractiveAuthentication no" });
    await using link = await freezableProxy(sshd.port);
    await using home = await promptHome(sshd, link.port);
    await withLogOnFailure(sshd, async () => {
      const target = `${sshd.user}@127.0.0.1:${link.port}`;
      const command = verb === "invoke" ? ["--", "echo", "ok"] : [];
      await using pty = await remoteInPty([verb, ...home.options, "-o", "ConnectTimeout=3", target, ...command], home);
      await pty.waitFor(`${target}'s password: `, WAIT);
      link.freeze();
      pty.write("pw\r");
      // bounded by WAIT: before the fix the run waited forever here
      assertEquals(await exitAndModes(pty, pty.modesBefore), 242, pty.output());
      match(
        pty.output(),
        new RegExp(`remote: timed out logging in to 127\\.0\\.0\\.1:${link.port}: not logged in 3 s after the answer`),
      );
    });
  });
}

Deno.test("remote enter: a link that dies after yes to an unknown host key ends with 242 within the connect timeout", async () => {
  await using sshd = await startSshd();
  await using link = await freezableProxy(sshd.port);
  await using home = await promptHome(sshd);
  const target = `${sshd.user}@127.0.0.1:${link.port}`;
  await using pty = await remoteInPty([
    "enter",
    ...home.options,
    "-i",
    sshd.userKey,
    "--connecting-timeout",
    "3s",
    target,
  ], home);
  await pty.waitFor("Are you sure you want to continue connecting (yes/no/[fingerprint])? ", WAIT);
  link.freeze();
  pty.write("yes\r");
  assertEquals(await exitAndModes(pty, pty.modesBefore), 242, pty.output());
  match(pty.output(), /remote: timed out logging in to 127\.0\.0\.1:\d+: not logged in 3 s after the answer/);
});

for (
  const [what, code, message] of [
    ["SIGHUP", 129, "remote: the terminal hung up (SIGHUP)"],
    ["SIGTERM", 143, "remote: terminated by SIGTERM"],
    ["Ctrl-C", 130, "remote: interrupted"],
  ] as const
) {
  for (const verb of ["invoke", "enter"] as const) {
    Deno.test(`remote ${verb}: ${what} at the password prompt restores the terminal and exits ${code}`, async () => {
      await using sshd = await startSshd({ password: "pw", config: "KbdInteractiveAuthentication no" });
      await using home = await promptHome(sshd, sshd.port);
      await withLogOnFailure(sshd, async () => {
        const target = `${sshd.user}@127.0.0.1:${sshd.port}`;
        const command = verb === "invoke" ? ["--", "echo", "ok"] : [];
        await using pty = await remoteInPty([verb, ...home.options, target, ...command], home);
        await pty.waitFor(`${target}'s password: `, WAIT);
        if (what === "Ctrl-C") pty.write("\x03");
        else Deno.kill(pty.remotePid, what);
        assertEquals(await exitAndModes(pty, pty.modesBefore), code, pty.output());
        assert(pty.output().includes(message), pty.output());
        // ended by the user, not a failed login: no other method was tried and nothing else was asked
        assert(!pty.output().includes("permission denied"), pty.output());
        assertEquals(pty.output().split("password: ").length, 2, pty.output());
      });
    });
  }
}

for (const reuse of [true, false]) {
  Deno.test(`SIGTERM to remote invoke${reuse ? "" : " --no-reuse"} while it connects ends it with 143, not 130`, async () => {
    const connected = Promise.withResolvers<void>();
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
      connected.resolve();
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    await using home = await tempHome();
    try {
      await Deno.writeTextFile(`${home.dir}/ssh_config`, "");
      const port = (silent.address() as net.AddressInfo).port;
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          MAIN,
          "invoke",
          ...(reuse ? [] : ["--no-reuse"]),
          "-F",
          `${home.dir}/ssh_config`,
          `127.0.0.1:${port}`,
          "--",
          "true",
        ],
        env: { ...home.env, SSH_AUTH_SOCK: "" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      await connected.promise;
      child.kill("SIGTERM");
      // bounded: the connect timeout (30 s) is far beyond this
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const out = await child.output();
      clearTimeout(timer);
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 143, stderr);
      match(stderr, /^remote: terminated by SIGTERM while connecting$/m);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
}
