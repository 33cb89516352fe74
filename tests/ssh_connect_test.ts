/**
 * How ssh connections fail and break, as a user sees it: exit codes and one-line messages for DNS,
 * refused ports, silent servers, non-SSH servers, ProxyJump chains, and links lost mid-session.
 */
import { deepStrictEqual as assertEquals, match, ok as assert, rejects } from "node:assert/strict";
import * as net from "node:net";
import { freePort } from "./harness/process.ts";
import { isolatedHome, readText, sshContext } from "./harness/ssh_context.ts";
import { startSshd, withLogOnFailure } from "./harness/sshd.ts";
import { open } from "../transports/ssh/mod.ts";
import { RemoteError } from "../plugins/mod.ts";

function isCode(code: number, pattern: RegExp) {
  return (err: unknown) => {
    assert(err instanceof RemoteError, `not a RemoteError: ${err}`);
    assertEquals(err.exitCode, code, err.message);
    match(err.message, pattern);
    assert(err.hint, "no hint");
    assert(!err.message.includes("\n"), "message is not one line");
    return true;
  };
}

/** A loopback TCP server; `onSocket` decides what each connection gets. */
async function tcpServer(onSocket: (s: net.Socket) => void): Promise<{ port: number } & AsyncDisposable> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

Deno.test("open() reports a name that does not resolve with code 240", async () => {
  await using home = await isolatedHome();
  const ctx = sshContext({ host: "no-such-host.invalid" }, home, {});
  await rejects(open(ctx, { kind: "shell" }), isCode(240, /^cannot resolve host name no-such-host\.invalid$/));
});

Deno.test("open() reports a refused port with code 241", async () => {
  await using home = await isolatedHome();
  const port = freePort();
  const ctx = sshContext({ host: "127.0.0.1", port }, home, {});
  await rejects(
    open(ctx, { kind: "shell" }),
    isCode(241, new RegExp(`^connection refused by 127\\.0\\.0\\.1:${port}$`)),
  );
});

Deno.test("open() gives up on a server that never speaks with code 242 after ConnectingTimeout", async () => {
  await using home = await isolatedHome();
  await using silent = await tcpServer(() => {});
  const ctx = sshContext({ host: "127.0.0.1", port: silent.port }, home, { ConnectingTimeout: 300 });
  await rejects(open(ctx, { kind: "shell" }), isCode(242, /timed out waiting for the ssh handshake with 127\.0\.0\.1/));
});

Deno.test("open() reports a server that hangs up during the handshake with code 244", async () => {
  await using home = await isolatedHome();
  await using rude = await tcpServer((s) => s.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
  const ctx = sshContext({ host: "127.0.0.1", port: rude.port }, home, {});
  await rejects(open(ctx, { kind: "shell" }), isCode(244, /127\.0\.0\.1/));
});

Deno.test("open() connects through a ProxyJump host, verifying both host keys", async () => {
  await using home = await isolatedHome();
  await using jump = await startSshd({ config: "AllowTcpForwarding yes" });
  await using target = await startSshd();
  await withLogOnFailure(jump, async () => {
    // the jump host trusts the target's user key too, so one -i serves both hops
    const userPub = (await Deno.readTextFile(`${target.userKey}.pub`)).trim();
    await Deno.writeTextFile(`${jump.dir}/authorized_keys`, userPub + "\n", { append: true });
    await Deno.writeTextFile(home.knownHosts, target.knownHostsLine() + "\n");
    const ctx = sshContext({ host: target.host, port: target.port, user: target.user }, home, {
      KeyFilePath: [target.userKey],
      ProxyJump: `${jump.user}@127.0.0.1:${jump.port}`,
    });
    // the jump host's key is unknown: refused, and the message names the jump host
    await rejects(
      open(ctx, { kind: "exec", command: "true" }),
      isCode(246, new RegExp(`\\[127\\.0\\.0\\.1\\]:${jump.port} is not known`)),
    );
    await Deno.writeTextFile(home.knownHosts, jump.knownHostsLine() + "\n", { append: true });
    await using ch = await open(ctx, { kind: "exec", command: "echo through" });
    await ch.stdin.close();
    assertEquals(await readText(ch.stdout), "through\n");
    assertEquals(await ch.exit, { kind: "exited", code: 0 });
    match(await jump.log(), /direct-tcpip/);
  });
});

/** Forwards to `port`; `cut()` drops both sides, `silence()` keeps them open but forwards nothing. */
async function proxy(port: number) {
  let silent = false;
  const pairs: net.Socket[] = [];
  const server = await tcpServer((client) => {
    const upstream = net.connect({ host: "127.0.0.1", port });
    upstream.on("error", () => client.destroy());
    pairs.push(client, upstream);
    client.on("data", (d) => silent || upstream.write(d));
    upstream.on("data", (d) => silent || client.write(d));
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  return {
    port: server.port,
    cut: () => pairs.forEach((s) => s.destroy()),
    silence: () => silent = true,
    async [Symbol.asyncDispose]() {
      pairs.forEach((s) => s.destroy());
      await server[Symbol.asyncDispose]();
    },
  };
}

Deno.test("a running command whose connection drops ends as lost, not as an exit code", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  await using link = await proxy(sshd.port);
  await Deno.writeTextFile(
    home.knownHosts,
    sshd.knownHostsLine().replaceAll(`:${sshd.port} `, `:${link.port} `) + "\n",
  );
  const ctx = sshContext({ host: "127.0.0.1", port: link.port, user: sshd.user }, home, {
    KeyFilePath: [sshd.userKey],
  });
  await using ch = await open(ctx, { kind: "exec", command: "echo started; sleep 30" });
  const reader = ch.stdout.getReader();
  assertEquals(new TextDecoder().decode((await reader.read()).value), "started\n");
  link.cut();
  const status = await ch.exit;
  assertEquals(status.kind, "lost");
  assert(status.kind === "lost" && status.error instanceof RemoteError);
  assertEquals(status.error.exitCode, 250);
  match(status.error.message, /connection to .* lost/);
});

Deno.test("a silent link is declared lost after ServerAliveInterval x ServerAliveCountMax", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  await using link = await proxy(sshd.port);
  await Deno.writeTextFile(
    home.knownHosts,
    sshd.knownHostsLine().replaceAll(`:${sshd.port} `, `:${link.port} `) + "\n",
  );
  const ctx = sshContext({ host: "127.0.0.1", port: link.port, user: sshd.user }, home, {
    KeyFilePath: [sshd.userKey],
    Options: { ServerAliveInterval: "1", ServerAliveCountMax: "2" },
  });
  await using ch = await open(ctx, { kind: "exec", command: "echo started; sleep 60" });
  const reader = ch.stdout.getReader();
  assertEquals(new TextDecoder().decode((await reader.read()).value), "started\n");
  link.silence();
  const status = await ch.exit;
  assert(status.kind === "lost", JSON.stringify(status));
  assert(status.error instanceof RemoteError);
  assertEquals(status.error.exitCode, 250);
  match(status.error.message, /stopped answering keepalives/);
});
