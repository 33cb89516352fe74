/**
 * The SSH copy and forwarding engines against OpenSSH, alternating in one run against one throwaway sshd on
 * loopback: SFTP copy of one file up and down (transports/ssh/sftp_copy.ts vs `scp` and `sftp`), bulk
 * throughput through `-L` (transports/ssh/forward.ts vs `ssh -N -L`) and time to first byte through `-D`
 * (vs `ssh -N -D`). The engines run in this process (the CLI wiring comes later), each run opening its own
 * connection, as scp/sftp/ssh do. Prints medians and ratios (> 1: remote is faster). Asserts nothing.
 *
 * Run: deno run -A bench/copy_forward_bench.ts [--runs N] [--mb 200] [--only copy,forward,socks]
 *   [--chunk 65536] [--concurrency 32]
 *
 * @module
 */
import { startSshd } from "../tests/harness/sshd.ts";
import { isolatedHome, trustedContext } from "../tests/harness/ssh_context.ts";
import { connectSsh } from "../transports/ssh/connection.ts";
import { copyFiles } from "../transports/ssh/sftp_copy.ts";
import { startForwarding } from "../transports/ssh/forward.ts";
import { parseForwardSpec } from "../transports/ssh/forward_spec.ts";

const arg = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const RUNS = Number(arg("runs", "3"));
const SIZE_MB = Number(arg("mb", "200"));
const ONLY = new Set(arg("only", "copy,forward,socks").split(","));
const CHUNK = Number(arg("chunk", "65536"));
const CONCURRENCY = Number(arg("concurrency", "32"));
const MB = 1024 * 1024;
const SIZE = SIZE_MB * MB;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

await using sshd = await startSshd({ config: "MaxStartups 100:30:200\nMaxSessions 100" });
await using home = await isolatedHome();
const ctx = await trustedContext(sshd, home);
const work = await Deno.makeTempDir({ prefix: "remote-copy-bench-" });
const sshArgs = [
  "-F",
  "none",
  "-i",
  sshd.userKey,
  "-o",
  `UserKnownHostsFile=${home.knownHosts}`,
  "-o",
  "StrictHostKeyChecking=yes",
  "-o",
  "BatchMode=yes",
];
const target = `${sshd.user}@127.0.0.1`;

async function run(cmd: string, args: string[], stdin?: string): Promise<void> {
  const child = new Deno.Command(cmd, { args, stdin: stdin ? "piped" : "null", stdout: "null", stderr: "piped" })
    .spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const rows: { name: string; values: Record<string, number>; unit: string; higherBetter: boolean }[] = [];
function report(name: string, unit: string, higherBetter: boolean, samples: Record<string, number[]>) {
  const values = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  rows.push({ name, values, unit, higherBetter });
}

try {
  if (ONLY.has("copy")) {
    const src = `${work}/src.bin`;
    {
      using f = await Deno.open(src, { write: true, create: true });
      const block = new Uint8Array(MB);
      for (let i = 0; i < SIZE_MB; i++) {
        crypto.getRandomValues(block.subarray(0, 65536));
        block.copyWithin(65536, 0, MB - 65536);
        block[0] = i;
        for (let at = 0; at < MB;) at += await f.write(block.subarray(at));
      }
    }
    await Deno.mkdir(`${work}/up`);
    await Deno.mkdir(`${work}/down`);
    const up: Record<string, number[]> = { remote: [], scp: [], sftp: [] };
    const down: Record<string, number[]> = { remote: [], scp: [], sftp: [] };
    const mbps = (ms: number) => SIZE_MB / (ms / 1000);
    const opts = { chunkSize: CHUNK, concurrency: CONCURRENCY };
    for (let i = 0; i < RUNS; i++) {
      up.remote.push(mbps(
        await timed(async () => {
          await using c = await connectSsh(ctx);
          await copyFiles(c, [{ side: "local", path: src }], { side: "remote", path: `${work}/up/r.bin` }, opts);
        }),
      ));
      up.scp.push(
        mbps(
          await timed(() => run("scp", ["-q", "-P", String(sshd.port), ...sshArgs, src, `${target}:${work}/up/s.bin`])),
        ),
      );
      up.sftp.push(mbps(
        await timed(() =>
          run("sftp", ["-q", "-b", "-", "-P", String(sshd.port), ...sshArgs, target], `put ${src} ${work}/up/f.bin\n`)
        ),
      ));
      down.remote.push(mbps(
        await timed(async () => {
          await using c = await connectSsh(ctx);
          await copyFiles(c, [{ side: "remote", path: src }], { side: "local", path: `${work}/down/r.bin` }, opts);
        }),
      ));
      down.scp.push(
        mbps(
          await timed(() =>
            run("scp", ["-q", "-P", String(sshd.port), ...sshArgs, `${target}:${src}`, `${work}/down/s.bin`])
          ),
        ),
      );
      down.sftp.push(mbps(
        await timed(() =>
          run("sftp", ["-q", "-b", "-", "-P", String(sshd.port), ...sshArgs, target], `get ${src} ${work}/down/f.bin\n`)
        ),
      ));
    }
    report(`copy ${SIZE_MB} MB up`, "MB/s", true, up);
    report(`copy ${SIZE_MB} MB down`, "MB/s", true, down);
  }

  if (ONLY.has("forward") || ONLY.has("socks")) {
    // a sink that reads everything then says how much; and a server that speaks first (for time to first byte)
    const sink = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    (async () => {
      for await (const conn of sink) {
        (async () => {
          let n = 0;
          const buf = new Uint8Array(256 * 1024);
          for (;;) {
            const r = await conn.read(buf).catch(() => null);
            if (r === null) break;
            n += r;
          }
          await conn.write(new TextEncoder().encode(String(n))).catch(() => {});
          conn.close();
        })();
      }
    })();
    // time to first byte: a request byte sent right after the SOCKS request, echoed back (a server that
    // speaks first on accept costs OpenSSH's sshd ~40 ms either way, which would hide the difference)
    const hello = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    (async () => {
      for await (const conn of hello) {
        conn.setNoDelay(true);
        conn.readable.pipeTo(conn.writable).catch(() => {});
      }
    })();

    const block = new Uint8Array(MB);
    crypto.getRandomValues(block.subarray(0, 65536));
    const pump = async (port: number) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      for (let i = 0; i < SIZE_MB; i++) for (let at = 0; at < MB;) at += await conn.write(block.subarray(at));
      await conn.closeWrite();
      const got = await new Response(conn.readable).text();
      if (Number(got) !== SIZE) throw new Error(`sink got ${got}`);
    };
    const socksFirstByte = async (port: number) => {
      const t = performance.now();
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const p = hello.addr.port;
      const name = new TextEncoder().encode(arg("socks-host", "localhost"));
      conn.setNoDelay(true);
      await conn.write(new Uint8Array([5, 1, 0, 5, 1, 0, 3, name.length, ...name, p >> 8, p & 255, 42]));
      const buf = new Uint8Array(64);
      let got = 0;
      while (got < 13) {
        const n = await conn.read(buf.subarray(got));
        if (n === null) throw new Error("closed");
        got += n;
      }
      conn.close();
      return performance.now() - t;
    };

    /** starts `ssh -N` with `flag spec` and waits until the port answers */
    const openssh = async (flag: string, spec: string, port: number) => {
      const child = new Deno.Command("ssh", {
        args: ["-N", "-p", String(sshd.port), ...sshArgs, "-o", "ExitOnForwardFailure=yes", flag, spec, target],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      for (let i = 0; i < 200; i++) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          return child;
        } catch {
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      throw new Error("ssh did not listen");
    };
    const freePort = () => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const p = l.addr.port;
      l.close();
      return p;
    };

    const fwd: Record<string, number[]> = { remote: [], ssh: [] };
    const ttfb: Record<string, number[]> = { remote: [], ssh: [] };
    await using c = await connectSsh(ctx);
    for (let i = 0; i < RUNS; i++) {
      if (ONLY.has("forward")) {
        {
          await using f = await startForwarding(c, [parseForwardSpec("L", `0:127.0.0.1:${sink.addr.port}`)], {
            notice: () => {},
          });
          const port = f.active[0].bound.kind === "tcp" ? f.active[0].bound.port : 0;
          fwd.remote.push(SIZE_MB / ((await timed(() => pump(port))) / 1000));
        }
        const port = freePort();
        const child = await openssh("-L", `${port}:127.0.0.1:${sink.addr.port}`, port);
        fwd.ssh.push(SIZE_MB / ((await timed(() => pump(port))) / 1000));
        child.kill();
        await child.status;
      }
      if (ONLY.has("socks")) {
        {
          await using f = await startForwarding(c, [parseForwardSpec("D", "0")], { notice: () => {} });
          const port = f.active[0].bound.kind === "tcp" ? f.active[0].bound.port : 0;
          await socksFirstByte(port); // warm
          const xs = [];
          for (let k = 0; k < 20; k++) xs.push(await socksFirstByte(port));
          ttfb.remote.push(median(xs));
        }
        const port = freePort();
        const child = await openssh("-D", String(port), port);
        await socksFirstByte(port);
        const xs = [];
        for (let k = 0; k < 20; k++) xs.push(await socksFirstByte(port));
        ttfb.ssh.push(median(xs));
        child.kill();
        await child.status;
      }
    }
    if (ONLY.has("forward")) report(`-L ${SIZE_MB} MB through`, "MB/s", true, fwd);
    if (ONLY.has("socks")) report("-D time to first byte", "ms", false, ttfb);
    sink.close();
    hello.close();
  }
} finally {
  await Deno.remove(work, { recursive: true }).catch(() => {});
}

console.log(`runs: ${RUNS}, chunk ${CHUNK}, concurrency ${CONCURRENCY}`);
for (const r of rows) {
  const ours = r.values.remote;
  const others = Object.entries(r.values).filter(([k]) => k !== "remote");
  const ratios = others.map(([k, v]) =>
    `${k} ${v.toFixed(1)} (ratio ${(r.higherBetter ? ours / v : v / ours).toFixed(2)}×)`
  );
  console.log(`${r.name}: remote ${ours.toFixed(1)} ${r.unit}; ${ratios.join("; ")}`);
}
