/**
 * Port forwarding through the CLI, with ssh's spelling, against the real OpenSSH sshd: `remote forward`
 * and `remote enter -N` with several -L, -R and -D in one run, forwardings inside a `remote enter` shell,
 * ssh_config's LocalForward and ExitOnForwardFailure, with real TCP clients and curl as the SOCKS client.
 *
 * @module
 */
import { deepStrictEqual as assertEquals, match, rejects, strictEqual } from "node:assert/strict";
import { type SshdServer, startSshd } from "./harness/sshd.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, sshOptions, type TempHome, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A TCP echo server on loopback. */
function echoServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const handlers: Promise<void>[] = [];
    for await (const conn of listener) handlers.push(conn.readable.pipeTo(conn.writable).catch(() => {}));
    await Promise.all(handlers);
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving.catch(() => {});
    },
  };
}

/** Sends `text` to 127.0.0.1:`port`, half-closes, and returns what comes back until EOF. */
async function roundTrip(port: number, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const w = conn.writable.getWriter();
  await w.write(new TextEncoder().encode(text));
  w.releaseLock();
  await conn.closeWrite();
  return await new Response(conn.readable).text();
}

async function curl(args: string[]): Promise<{ code: number; stdout: string }> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "20", ...args],
    stdout: "piped",
    stderr: "null",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

/** A free loopback port (taken and released at once). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

async function setup(sshd: SshdServer, home: TempHome): Promise<string[]> {
  const knownHosts = `${home.dir}/known_hosts`;
  await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
  return [...sshOptions(sshd, knownHosts), `${sshd.user}@127.0.0.1`];
}

/** `remote …args` running in the background; stderr is read line by line. */
function spawnRemote(args: string[], env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN, ...args],
    env: { ...env, SSH_AUTH_SOCK: "" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  let stderr = "";
  const waiters: (() => void)[] = [];
  const reading = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write(chunk) {
        stderr += chunk;
        for (const w of waiters.splice(0)) w();
      },
    }),
  );
  const stdout = new Response(child.stdout).text();
  return {
    get stderr() {
      return stderr;
    },
    /** waits until stderr matches `pattern` (bounded), and returns the match */
    async waitFor(pattern: RegExp, ms = 30_000): Promise<RegExpMatchArray> {
      const deadline = Date.now() + ms;
      while (true) {
        const m = stderr.match(pattern);
        if (m) return m;
        if (Date.now() > deadline) throw new Error(`no ${pattern} on stderr; got:\n${stderr}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), new Promise((r) => setTimeout(r, 200))]);
      }
    },
    kill(signal: Deno.Signal) {
      child.kill(signal);
    },
    async exit(): Promise<{ code: number; stdout: string; stderr: string }> {
      const status = await child.status;
      clearTimeout(killer);
      await reading.catch(() => {});
      return { code: status.code, stdout: await stdout, stderr };
    },
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch { /* already ended */ }
      await child.status;
      clearTimeout(killer);
    },
  };
}

Deno.test("remote forward host -L -R -D: several forwardings in one run, real TCP clients and curl, Ctrl-C ends with 0", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await using echo = echoServer();
  await using web = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response("via-socks"));
  const target = await setup(sshd, home);
  await using run = spawnRemote([
    "forward",
    ...target,
    "-L",
    `0:127.0.0.1:${echo.port}`,
    "-D",
    "0",
    "-R",
    `0:127.0.0.1:${echo.port}`,
  ], home.env);
  const local = Number((await run.waitFor(/forwarding localhost:(\d+) to 127\.0\.0\.1:\d+ via/))[1]);
  const socks = Number((await run.waitFor(/SOCKS proxy on localhost:(\d+)/))[1]);
  const remote = Number((await run.waitFor(/allocated port (\d+) for remote forward/))[1]);
  strictEqual(await roundTrip(local, "through -L\n"), "through -L\n");
  // sshd listens on the server's loopback, which is this machine's: -R reaches the echo server from there
  strictEqual(await roundTrip(remote, "through -R\n"), "through -R\n");
  const got = await curl(["--socks5-hostname", `127.0.0.1:${socks}`, `http://localhost:${web.addr.port}/`]);
  assertEquals(got, { code: 0, stdout: "via-socks" });
  const got4a = await curl(["--socks4a", `127.0.0.1:${socks}`, `http://localhost:${web.addr.port}/`]);
  assertEquals(got4a, { code: 0, stdout: "via-socks" });
  run.kill("SIGINT");
  const out = await run.exit();
  strictEqual(out.code, 0, out.stderr);
  await rejects(Deno.connect({ hostname: "127.0.0.1", port: local }));
});

Deno.test("remote enter host -L … -N forwards with no shell until Ctrl-C", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await using echo = echoServer();
  const target = await setup(sshd, home);
  const port = freePort();
  await using run = spawnRemote(["enter", ...target, "-N", `-L${port}:127.0.0.1:${echo.port}`], home.env);
  await run.waitFor(new RegExp(`forwarding localhost:${port} to`));
  strictEqual(await roundTrip(port, "no command\n"), "no command\n");
  run.kill("SIGINT");
  const out = await run.exit();
  strictEqual(out.code, 0, out.stderr);
  strictEqual(out.stdout, "");
});

Deno.test("remote enter host -L forwards while the shell runs, and stops with it", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await using echo = echoServer();
  const target = await setup(sshd, home);
  const port = freePort();
  await using pty = await spawnInPty(
    Deno.execPath(),
    ["run", "-A", "--quiet", MAIN, "enter", ...target, "-L", `${port}:127.0.0.1:${echo.port}`],
    { env: { ...home.env, SSH_AUTH_SOCK: "", PS1: "$ " } },
  );
  // typed only once the shell prompts: a shell starting up may discard what was typed ahead
  await pty.waitFor(/[$#] $/, 20_000);
  pty.write("echo READY-$((6*7))\r");
  await pty.waitFor("READY-42", 20_000);
  strictEqual(await roundTrip(port, "in a session\n"), "in a session\n");
  pty.write("exit 4\r");
  strictEqual((await pty.exited).code, 4);
  await rejects(Deno.connect({ hostname: "127.0.0.1", port }));
});

Deno.test("ssh_config's LocalForward applies to remote forward; ExitOnForwardFailure makes a port in use fail in one line", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await using echo = echoServer();
  const target = await setup(sshd, home);
  const port = freePort();
  const config = `${home.dir}/ssh_config`;
  await Deno.writeTextFile(config, `Host *\n  LocalForward ${port} 127.0.0.1:${echo.port}\n`);
  {
    await using run = spawnRemote(["forward", ...target, "-F", config], home.env);
    await run.waitFor(new RegExp(`forwarding localhost:${port} to 127\\.0\\.0\\.1:${echo.port}`));
    strictEqual(await roundTrip(port, "from ssh_config\n"), "from ssh_config\n");
    run.kill("SIGINT");
    strictEqual((await run.exit()).code, 0);
  }
  using taken = Deno.listen({ hostname: "127.0.0.1", port });
  const failed = await runRemote(
    ["forward", ...target, "-F", config, "-o", "ExitOnForwardFailure=yes", "-D", "0"],
    { env: home.env, timeoutMs: 30_000 },
  );
  strictEqual(failed.code, 230, failed.stderr);
  match(failed.stderr, new RegExp(`^remote: .*${port}.*\\n(hint: .*\\n)?$`));
  // without ExitOnForwardFailure, a run whose one forwarding fails says so once, not as a warning and again
  const alone = await runRemote(["forward", ...target, "-L", `${port}:127.0.0.1:${echo.port}`], {
    env: home.env,
    timeoutMs: 30_000,
  });
  strictEqual(alone.code, 230, alone.stderr);
  match(alone.stderr, new RegExp(`^remote: local port localhost:${port} is already in use\\nhint: .*\\n$`));
  taken.close();
});

Deno.test("remote forward host with nothing to forward says so; a malformed -L fails before connecting", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const target = await setup(sshd, home);
  const nothing = await runRemote(["forward", ...target], { env: home.env, timeoutMs: 30_000 });
  strictEqual(nothing.code, 230, nothing.stderr);
  match(nothing.stderr, /^remote: nothing to forward\nhint: give -L/);
  // port 1 refuses connections: the malformed -L is reported first
  const bad = await runRemote(["forward", "nobody@127.0.0.1", "-p", "1", "-L", "notaport"], {
    env: home.env,
    timeoutMs: 30_000,
  });
  strictEqual(bad.code, 230, bad.stderr);
  match(bad.stderr, /^remote: bad local forwarding specification 'notaport'\nhint: write -L /);
});

Deno.test("AllowTcpForwarding no: -L warns per connection and keeps running; a lone -R refused ends with 251", async () => {
  await using sshd = await startSshd({ config: "AllowTcpForwarding no" });
  await using home = await tempHome();
  await using echo = echoServer();
  const target = await setup(sshd, home);
  {
    await using run = spawnRemote(["forward", ...target, "-L", `0:127.0.0.1:${echo.port}`], home.env);
    const port = Number((await run.waitFor(/forwarding localhost:(\d+) to/))[1]);
    strictEqual(await roundTrip(port, "refused\n"), "");
    await run.waitFor(
      /warning: .* refused to forward -L .*administratively prohibited\nhint: the server's sshd_config/,
    );
    run.kill("SIGINT");
    strictEqual((await run.exit()).code, 0);
  }
  const remote = await runRemote(["forward", ...target, "-R", `0:127.0.0.1:${echo.port}`], {
    env: home.env,
    timeoutMs: 30_000,
  });
  strictEqual(remote.code, 251, remote.stderr);
  match(remote.stderr, /refused remote port forwarding/);
});

Deno.test("remote forward through ProxyJump: -L leaves from the last hop", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await using echo = echoServer();
  const target = await setup(sshd, home);
  await using run = spawnRemote([
    "forward",
    ...target,
    "-J",
    `${sshd.user}@127.0.0.1:${sshd.port}`,
    "-L",
    `0:127.0.0.1:${echo.port}`,
  ], home.env);
  const port = Number((await run.waitFor(/forwarding localhost:(\d+) to/))[1]);
  strictEqual(await roundTrip(port, "two hops\n"), "two hops\n");
  run.kill("SIGINT");
  const out = await run.exit();
  strictEqual(out.code, 0, out.stderr);
  // two logins on the server: the jump host's and the target's through it
  strictEqual((await sshd.log()).match(/Accepted publickey/g)?.length, 2);
});
