/**
 * The SSH copy and forwarding engines against OpenSSH, alternating in one run against one throwaway sshd on
 * loopback: SFTP copy of one file up and down (transports/ssh/sftp_copy.ts vs `scp` and `sftp`), bulk
 * throughput through `-L` (transports/ssh/forward.ts vs `ssh -N -L`) and time to first byte through `-D`
 * (vs `ssh -N -D`). The engines run in this process (the CLI wiring comes later), each run opening its own
 * connection, as scp/sftp/ssh do. Prints medians and ratios (> 1: remote is faster). Asserts nothing.
 *
 * Run: deno run -A bench/copy_forward_bench.ts [--runs N] [--mb 200] [--only copy,forward,socks]
 *   [--chunk BYTES] [--concurrency N]
 *
 * @module
 */
import process from "node:process";
import { startSshd } from "../tests/harness/sshd.ts";
import { isolatedHome, trustedContext } from "../tests/harness/ssh_context.ts";
import { connectSsh } from "../transports/ssh/connection.ts";
import { copyFiles, DEFAULT_CHUNK_SIZE, DEFAULT_CONCURRENCY } from "../transports/ssh/sftp_copy.ts";
import { startForwarding } from "../transports/ssh/forward.ts";
import { parseForwardSpec } from "../transports/ssh/forward_spec.ts";

const arg = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const RUNS = Number(arg("runs", "3"));
const SIZE_MB = Number(arg("mb", "200"));
const ONLY = new Set(arg("only", "copy,forward,socks").split(","));
const CHUNK = Number(arg("chunk", String(DEFAULT_CHUNK_SIZE)));
const CONCURRENCY = Number(arg("concurrency", String(DEFAULT_CONCURRENCY)));
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

/** CPU seconds (user + system) of the client side of the last measured transfer: this process, or the child */
let lastCpu = 0;

/** Runs a program to completion under bash, whose `times` reports the child's CPU (for lastCpu). */
async function run(cmd: string, args: string[], stdin?: string): Promise<void> {
  const child = new Deno.Command("bash", {
    args: ["-c", '"$@" >/dev/null; rc=$?; times; exit $rc', "bash", cmd, ...args],
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  const last = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s/.exec(last);
  lastCpu = m ? Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]) : NaN;
}

/** Wall time of `fn`; when it runs no child, lastCpu becomes this process's CPU time meanwhile. */
async function timed(fn: () => Promise<void>): Promise<number> {
  const cpu = process.cpuUsage();
  lastCpu = -1;
  const t = performance.now();
  await fn();
  const ms = performance.now() - t;
  if (lastCpu === -1) {
    const used = process.cpuUsage(cpu);
    lastCpu = (used.user + used.system) / 1e6;
  }
  return ms;
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
    const port = String(sshd.port);
    // each direction: who → how to run it; measured in turns so all three meet the same load
    const ways: Record<string, Record<string, () => Promise<void>>> = {
      up: {
        remote: async () => {
          await using c = await connectSsh(ctx);
          await copyFiles(c, [{ side: "local", path: src }], { side: "remote", path: `${work}/up/r.bin` }, opts);
        },
        scp: () => run("scp", ["-q", "-P", port, ...sshArgs, src, `${target}:${work}/up/s.bin`]),
        sftp: () => run("sftp", ["-q", "-b", "-", "-P", port, ...sshArgs, target], `put ${src} ${work}/up/f.bin\n`),
      },
      down: {
        remote: async () => {
          await using c = await connectSsh(ctx);
          await copyFiles(c, [{ side: "remote", path: src }], { side: "local", path: `${work}/down/r.bin` }, opts);
        },
        scp: () => run("scp", ["-q", "-P", port, ...sshArgs, `${target}:${src}`, `${work}/down/s.bin`]),
        sftp: () => run("sftp", ["-q", "-b", "-", "-P", port, ...sshArgs, target], `get ${src} ${work}/down/f.bin\n`),
      },
    };
    const opts = { chunkSize: CHUNK, concurrency: CONCURRENCY };
    const speed: Record<string, Record<string, number[]>> = {};
    const cpu: Record<string, Record<string, number[]>> = {};
    for (let i = 0; i < RUNS; i++) {
      for (const [direction, who] of Object.entries(ways)) {
        for (const [name, fn] of Object.entries(who)) {
          const ms = await timed(fn);
          ((speed[direction] ??= {})[name] ??= []).push(SIZE_MB / (ms / 1000));
          ((cpu[direction] ??= {})[name] ??= []).push(lastCpu);
        }
      }
    }
    for (const direction of Object.keys(ways)) {
      report(`copy ${SIZE_MB} MB ${direction}`, "MB/s", true, speed[direction]);
      // the client's CPU seconds for the same transfers: robust when other work shares the machine
      report(`copy ${SIZE_MB} MB ${direction}, client CPU`, "s", false, cpu[direction]);
    }
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
    const fwdCpu: Record<string, number[]> = { remote: [], ssh: [] };
    /** CPU seconds a running child has used so far, from /proc (utime + stime, in clock ticks of 1/100 s) */
    const childCpu = async (pid: number) => {
      const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
      return (Number(fields[11]) + Number(fields[12])) / 100;
    };
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
          fwdCpu.remote.push(lastCpu); // includes the test's own client and sink, as below for ssh they are not
        }
        const port = freePort();
        const child = await openssh("-L", `${port}:127.0.0.1:${sink.addr.port}`, port);
        const before = await childCpu(child.pid);
        fwd.ssh.push(SIZE_MB / ((await timed(() => pump(port))) / 1000));
        fwdCpu.ssh.push((await childCpu(child.pid)) - before);
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
    if (ONLY.has("forward")) {
      report(`-L ${SIZE_MB} MB through`, "MB/s", true, fwd);
      report(`-L ${SIZE_MB} MB through, client CPU (remote's includes the load generator)`, "s", false, fwdCpu);
    }
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
    `${k} ${v.toFixed(2)} (ratio ${(r.higherBetter ? ours / v : v / ours).toFixed(2)}×)`
  );
  console.log(`${r.name}: remote ${ours.toFixed(2)} ${r.unit}; ${ratios.join("; ")}`);
}
