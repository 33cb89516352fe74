/**
 * The ssh transport's port forwarding engine (transports/ssh/forward.ts) against the real OpenSSH sshd: -L
 * and -R with real TCP servers and clients on loopback, -D with curl as the SOCKS client, and the errors a
 * user meets (a port in use, AllowTcpForwarding no).
 *
 * @module
 */
import { deepStrictEqual as assertEquals, match, ok as assert, rejects, strictEqual } from "node:assert/strict";
import { createHash } from "node:crypto";
import { connectSsh, type SshConnection } from "../transports/ssh/connection.ts";
import { type Forwarding, type ForwardOptions, startForwarding } from "../transports/ssh/forward.ts";
import { type ForwardFlag, parseForwardSpec } from "../transports/ssh/forward_spec.ts";
import { RemoteError } from "../plugins/mod.ts";
import { isolatedHome, trustedContext } from "./harness/ssh_context.ts";
import { type SshdServer, startSshd, withLogOnFailure } from "./harness/sshd.ts";

const MB = 1024 * 1024;

async function withConnection(sshd: SshdServer, fn: (c: SshConnection) => Promise<void>): Promise<void> {
  await using home = await isolatedHome();
  const ctx = await trustedContext(sshd, home);
  await using connection = await connectSsh(ctx);
  await withLogOnFailure(sshd, () => fn(connection));
}

function forwarding(
  connection: SshConnection,
  specs: [ForwardFlag, string][],
  options: Partial<ForwardOptions> = {},
): Promise<Forwarding & { notices: string[] }> {
  const notices: string[] = [];
  return startForwarding(connection, specs.map(([f, t]) => parseForwardSpec(f, t)), {
    notice: (line) => notices.push(line),
    ...options,
  }).then((f) => Object.assign(f, { notices }));
}

function boundPort(f: Forwarding, i = 0): number {
  const b = f.active[i].bound;
  strictEqual(b.kind, "tcp");
  return b.kind === "tcp" ? b.port : 0;
}

/** A TCP echo server on loopback (also on ::1 when `v6`); counts its clients. */
function echoServer(hostname = "127.0.0.1") {
  const listener = Deno.listen({ hostname, port: 0 });
  let clients = 0;
  const serving = (async () => {
    const handlers: Promise<void>[] = [];
    for await (const conn of listener) {
      clients++;
      handlers.push(conn.readable.pipeTo(conn.writable).catch(() => {}));
    }
    await Promise.all(handlers);
  })();
  return {
    port: listener.addr.port,
    get clients() {
      return clients;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving.catch(() => {});
    },
  };
}

/** An HTTP server on loopback answering every request with `body`. */
function httpServer(body: string) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response(body));
  return {
    port: server.addr.port,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

/** Sends `data` to 127.0.0.1:`port`, half-closes, and returns all that comes back until EOF. */
async function roundTrip(port: number, data: Uint8Array, hostname = "127.0.0.1"): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname, port });
  const sending = (async () => {
    const w = conn.writable.getWriter();
    await w.write(data);
    w.releaseLock();
    await conn.closeWrite();
  })();
  const received = new Uint8Array(await new Response(conn.readable).arrayBuffer());
  await sending;
  return received;
}

function randomBytes(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(out.subarray(at, Math.min(size, at + 65536)));
  return out;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "20", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("startForwarding() -L carries bytes both ways to a TCP server through sshd, with half-close", async () => {
  await using sshd = await startSshd();
  await using echo = echoServer();
  await withConnection(sshd, async (connection) => {
    await using fwd = await forwarding(connection, [["L", `0:127.0.0.1:${echo.port}`]]);
    const port = boundPort(fwd);
    assertEquals(await roundTrip(port, new TextEncoder().encode("hello\n")), new TextEncoder().encode("hello\n"));
    // 8 MB both ways at once: flow control on both sides, nothing lost or reordered
    const big = randomBytes(8 * MB);
    const [a, b] = await Promise.all([roundTrip(port, big), roundTrip(port, big.subarray(0, MB))]);
    strictEqual(sha(a), sha(big));
    strictEqual(sha(b), sha(big.subarray(0, MB)));
    strictEqual(echo.clients, 3);
    assertEquals(fwd.notices, []);
  });
});

Deno.test("startForwarding() -L binds loopback only unless a bind address is given", async () => {
  await using sshd = await startSshd();
  await using echo = echoServer();
  await withConnection(sshd, async (connection) => {
    await using fwd = await forwarding(connection, [["L", `0:127.0.0.1:${echo.port}`], [
      "L",
      `*:0:127.0.0.1:${echo.port}`,
    ]]);
    // the default listener answers on 127.0.0.1 and ::1 with one port, as ssh's "localhost"
    assertEquals(await roundTrip(boundPort(fwd, 0), new Uint8Array([1, 2, 3]), "::1"), new Uint8Array([1, 2, 3]));
    const addrs = Deno.networkInterfaces().filter((i) => i.family === "IPv4" && i.address !== "127.0.0.1");
    if (addrs.length > 0) {
      // not reachable on another interface of this machine
      await rejects(Deno.connect({ hostname: addrs[0].address, port: boundPort(fwd, 0) }));
      assertEquals(
        await roundTrip(boundPort(fwd, 1), new Uint8Array([4]), addrs[0].address),
        new Uint8Array([4]),
      );
    }
  });
});

Deno.test("startForwarding() -L on a port in use fails with one line, a hint and exit 230 under ExitOnForwardFailure", async () => {
  await using sshd = await startSshd();
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = taken.addr.port;
  await withConnection(sshd, async (connection) => {
    const err = await forwarding(connection, [["L", `${port}:127.0.0.1:22`]], { exitOnForwardFailure: true }).then(
      () => undefined,
      (e) => e,
    );
    assert(err instanceof RemoteError);
    strictEqual(err.message, `local port localhost:${port} is already in use`);
    strictEqual(err.hint, `choose another port for -L ${port}:127.0.0.1:22, or stop the program listening there`);
    strictEqual(err.exitCode, 230);
    // without ExitOnForwardFailure: a warning, and the other forwardings run
    await using echo = echoServer();
    await using fwd = await forwarding(connection, [["L", `${port}:127.0.0.1:22`], [
      "L",
      `0:127.0.0.1:${echo.port}`,
    ]]);
    assertEquals(fwd.notices, [
      `warning: local port localhost:${port} is already in use`,
      `hint: choose another port for -L ${port}:127.0.0.1:22, or stop the program listening there`,
    ]);
    strictEqual(fwd.failures.length, 1);
    assertEquals(await roundTrip(boundPort(fwd), new Uint8Array([9])), new Uint8Array([9]));
  });
});

Deno.test("startForwarding() -L to a unix socket path here reaches a TCP server through sshd", async () => {
  await using sshd = await startSshd();
  await using echo = echoServer();
  const dir = await Deno.makeTempDir();
  try {
    await withConnection(sshd, async (connection) => {
      const path = `${dir}/fwd.sock`;
      {
        await using _fwd = await forwarding(connection, [["L", `${path}:127.0.0.1:${echo.port}`]]);
        const conn = await Deno.connect({ transport: "unix", path });
        await conn.write(new TextEncoder().encode("via socket"));
        await conn.closeWrite();
        strictEqual(await new Response(conn.readable).text(), "via socket");
      }
      // disposal removes the socket it created
      await rejects(Deno.stat(path), Deno.errors.NotFound);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startForwarding() -R makes sshd listen on loopback and connects its clients to a server here", async () => {
  await using sshd = await startSshd();
  await using echo = echoServer();
  await withConnection(sshd, async (connection) => {
    let port: number;
    {
      await using fwd = await forwarding(connection, [["R", `0:127.0.0.1:${echo.port}`]]);
      port = boundPort(fwd);
      assertEquals(fwd.notices, [`allocated port ${port} for remote forward to 127.0.0.1:${echo.port}`]);
      const big = randomBytes(4 * MB);
      strictEqual(sha(await roundTrip(port, big)), sha(big));
      strictEqual(echo.clients, 1);
    }
    // disposal cancels the listener on the server
    await rejects(Deno.connect({ hostname: "127.0.0.1", port }), Deno.errors.ConnectionRefused);
  });
});

Deno.test("startForwarding() -D serves SOCKS5 with host names, SOCKS5, SOCKS4 and SOCKS4a to curl", async () => {
  await using sshd = await startSshd();
  await using http = httpServer("through the tunnel\n");
  await withConnection(sshd, async (connection) => {
    await using fwd = await forwarding(connection, [["D", "0"]]);
    const socks = `127.0.0.1:${boundPort(fwd)}`;
    for (
      const [flag, host] of [["--socks5-hostname", "localhost"], ["--socks5", "127.0.0.1"], [
        "--socks4",
        "127.0.0.1",
      ], ["--socks4a", "localhost"]]
    ) {
      const r = await curl([flag, socks, `http://${host}:${http.port}/`]);
      assertEquals({ flag, ...r }, { flag, code: 0, stdout: "through the tunnel\n", stderr: "" });
    }
  });
});

Deno.test("startForwarding() -D answers SOCKS5 with an IPv6 destination and a refusal as a SOCKS error", async () => {
  await using sshd = await startSshd();
  await using echo = echoServer("::1");
  await withConnection(sshd, async (connection) => {
    await using fwd = await forwarding(connection, [["D", "0"]]);
    const socks5 = async (port: number) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: boundPort(fwd) });
      const ip6 = new Uint8Array(16);
      ip6[15] = 1;
      await conn.write(new Uint8Array([5, 1, 0, 5, 1, 0, 4, ...ip6, port >> 8, port & 255, 0x61, 0x62]));
      const reply = new Uint8Array(14);
      let at = 0;
      while (at < 14) {
        const n = await conn.read(reply.subarray(at));
        if (n === null) break;
        at += n;
      }
      conn.close();
      return reply.subarray(0, at);
    };
    // method choice, success, then the echo of the bytes sent right after the request
    assertEquals(await socks5(echo.port), new Uint8Array([5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x61, 0x62]));
    using closedPort = Deno.listen({ hostname: "::1", port: 0 });
    const nobody = closedPort.addr.port;
    closedPort.close();
    // the server could not connect: SOCKS5 "connection refused" (5), and a warning here
    assertEquals(await socks5(nobody), new Uint8Array([5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0]));
    match(fwd.notices.join("\n"), new RegExp(`cannot connect to \\[0:0:0:0:0:0:0:1\\]:${nobody}`));
  });
});

Deno.test("startForwarding() -R without a destination is a SOCKS proxy on the server whose connections leave from here", async () => {
  await using sshd = await startSshd();
  await using http = httpServer("reverse\n");
  await withConnection(sshd, async (connection) => {
    await using fwd = await forwarding(connection, [["R", "0"]]);
    const r = await curl(["--socks5-hostname", `127.0.0.1:${boundPort(fwd)}`, `http://localhost:${http.port}/`]);
    assertEquals(r, { code: 0, stdout: "reverse\n", stderr: "" });
  });
});

Deno.test("startForwarding() with AllowTcpForwarding no: -R fails with exit 251, -L connections get a warning", async () => {
  await using sshd = await startSshd({ config: "AllowTcpForwarding no" });
  await using echo = echoServer();
  await withConnection(sshd, async (connection) => {
    const err = await forwarding(connection, [["R", `0:127.0.0.1:${echo.port}`]], { exitOnForwardFailure: true })
      .then(() => undefined, (e) => e);
    assert(err instanceof RemoteError);
    strictEqual(err.message, `${connection.display} refused remote port forwarding on localhost:0`);
    match(err.hint ?? "", /AllowTcpForwarding/);
    strictEqual(err.exitCode, 251);

    await using fwd = await forwarding(connection, [["L", `0:127.0.0.1:${echo.port}`]]);
    // the listener is up (ssh does the same), each connection is closed at once with a warning
    assertEquals(await roundTrip(boundPort(fwd), new Uint8Array([1])), new Uint8Array());
    assertEquals(await roundTrip(boundPort(fwd), new Uint8Array([1])), new Uint8Array());
    assertEquals(fwd.notices, [
      `warning: ${connection.display} refused to forward -L 0:127.0.0.1:${echo.port} to 127.0.0.1:${echo.port}: administratively prohibited`,
      "hint: the server's sshd_config forbids it (AllowTcpForwarding, PermitOpen, DisableForwarding)",
      `warning: ${connection.display} refused to forward -L 0:127.0.0.1:${echo.port} to 127.0.0.1:${echo.port}: administratively prohibited`,
    ]);
    strictEqual(echo.clients, 0);
  });
});

Deno.test("startForwarding() disposal ends forwarded connections, also one still in its SOCKS handshake", async () => {
  await using sshd = await startSshd();
  await using echo = echoServer();
  await withConnection(sshd, async (connection) => {
    const fwd = await forwarding(connection, [["L", `0:127.0.0.1:${echo.port}`], ["D", "0"]]);
    const active = await Deno.connect({ hostname: "127.0.0.1", port: boundPort(fwd, 0) });
    await active.write(new Uint8Array([7]));
    const echoed = new Uint8Array(1);
    strictEqual(await active.read(echoed), 1);
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: boundPort(fwd, 1) }); // sends no SOCKS request
    await new Promise((r) => setTimeout(r, 100)); // accepted by the listener
    const disposed = fwd[Symbol.asyncDispose]().then(() => "disposed");
    // bounded, not timed: without tracking, the handshake would hold disposal for its 30 s limit
    const limit = new Promise((r) => setTimeout(() => r("still waiting"), 10_000));
    strictEqual(await Promise.race([disposed, limit]), "disposed");
    for (const conn of [active, silent]) {
      strictEqual(await conn.read(new Uint8Array(1)).catch(() => null), null);
      conn.close();
    }
    await rejects(
      Deno.connect({ hostname: "127.0.0.1", port: boundPort(fwd, 0) }),
      Deno.errors.ConnectionRefused,
    );
  });
});

Deno.test("startForwarding() -L holds a bounded number of bytes for a client that does not read, then delivers them all", async () => {
  await using sshd = await startSshd();
  const total = 128 * MB;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let written = 0;
  const serving = (async () => {
    const conn = await listener.accept();
    const block = new Uint8Array(64 * 1024).fill(0x5a);
    try {
      while (written < total) written += await conn.write(block.subarray(0, Math.min(block.length, total - written)));
    } finally {
      conn.close();
    }
  })();
  try {
    await withConnection(sshd, async (connection) => {
      await using fwd = await forwarding(connection, [["L", `0:127.0.0.1:${listener.addr.port}`]]);
      const client = await Deno.connect({ hostname: "127.0.0.1", port: boundPort(fwd) });
      // wait until the server's writes stall (no progress for half a second), at most 15 s
      let last = -1;
      for (let i = 0; i < 30 && written !== last; i++) {
        last = written;
        await new Promise((r) => setTimeout(r, 500));
      }
      assert(written < 48 * MB, `the server could write ${written} bytes to a client that reads nothing`);
      let got = 0;
      const buf = new Uint8Array(256 * 1024);
      for (;;) {
        const n = await client.read(buf);
        if (n === null) break;
        got += n;
      }
      client.close();
      strictEqual(got, total);
    });
    await serving;
  } finally {
    listener.close();
  }
});

Deno.test("startForwarding() -L to a socket path on the server and -R from a socket path on the server", async () => {
  await using sshd = await startSshd();
  await using echo = echoServer();
  const dir = await Deno.makeTempDir();
  // a unix-socket echo server standing on the server's side (the same machine)
  const unixListener = Deno.listen({ transport: "unix", path: `${dir}/echo.sock` });
  const serving = (async () => {
    for await (const conn of unixListener) conn.readable.pipeTo(conn.writable).catch(() => {});
  })();
  try {
    await withConnection(sshd, async (connection) => {
      await using fwd = await forwarding(connection, [
        ["L", `0:${dir}/echo.sock`],
        ["R", `${dir}/served.sock:127.0.0.1:${echo.port}`],
      ]);
      assertEquals(fwd.notices, []);
      strictEqual(new TextDecoder().decode(await roundTrip(boundPort(fwd, 0), new TextEncoder().encode("L"))), "L");
      const conn = await Deno.connect({ transport: "unix", path: `${dir}/served.sock` });
      await conn.write(new TextEncoder().encode("R"));
      await conn.closeWrite();
      strictEqual(await new Response(conn.readable).text(), "R");
      strictEqual(echo.clients, 1);
    });
  } finally {
    unixListener.close();
    await serving.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startForwarding() when the connection drops: open forwarded connections end, new ones get a warning", async () => {
  await using sshd = await startSshd();
  await using echo = echoServer();
  await withConnection(sshd, async (connection) => {
    await using fwd = await forwarding(connection, [["L", `0:127.0.0.1:${echo.port}`]]);
    const open = await Deno.connect({ hostname: "127.0.0.1", port: boundPort(fwd) });
    await open.write(new Uint8Array([1]));
    strictEqual(await open.read(new Uint8Array(1)), 1);
    connection.client.end();
    await connection.lost;
    strictEqual(await open.read(new Uint8Array(1)).catch(() => null), null);
    open.close();
    assertEquals(await roundTrip(boundPort(fwd), new Uint8Array([2])), new Uint8Array());
    assertEquals(fwd.notices, [
      `warning: connection to ${connection.display} is lost: cannot forward -L 0:127.0.0.1:${echo.port} to 127.0.0.1:${echo.port}`,
      "hint: run the command again to reconnect",
    ]);
  });
});

Deno.test("startForwarding() -R delivers every byte back to a client that reads late (nothing cut off at close)", async () => {
  await using sshd = await startSshd();
  await using echo = echoServer();
  await withConnection(sshd, async (connection) => {
    await using fwd = await forwarding(connection, [["R", `0:127.0.0.1:${echo.port}`]]);
    const port = boundPort(fwd);
    const big = randomBytes(6 * MB);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const sending = (async () => {
      const w = conn.writable.getWriter();
      await w.write(big);
      w.releaseLock();
      await conn.closeWrite();
    })();
    // everything backs up behind sshd's channel window while nobody reads, so the echo's end arrives
    // at remote while the last bytes still wait for window: they must still go out before the channel closes
    await new Promise((r) => setTimeout(r, 1500));
    const received = new Uint8Array(await new Response(conn.readable).arrayBuffer());
    await sending;
    strictEqual(received.length, big.length);
    strictEqual(sha(received), sha(big));
  });
});
