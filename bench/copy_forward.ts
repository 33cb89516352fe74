/**
 * `deno task bench` lines for `remote copy` and `remote forward`, through the CLI as a user runs them, against
 * OpenSSH's clients in alternating turns on the same throwaway sshd: a file of `mb` MB up and down (vs scp and
 * sftp), `mb` MB through `-L` (vs `ssh -N -L`), and time to first byte through `-D` (vs `ssh -N -D`).
 *
 * @module
 */

/** What the benches need of bench/run.ts's setup. */
export interface BenchEnv {
  home: string;
  /** ssh_config with `h01`… pointing at the sshd */
  config: string;
  env: Record<string, string>;
}

/** One result line, as bench/run.ts prints them. */
export interface BenchRow {
  name: string;
  remote: number;
  ssh: number;
  /** the `--base` tree's median, where measured */
  base?: number;
  unit: string;
  goal: string;
  higherBetter?: boolean;
}

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const MB = 1024 * 1024;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function exec(argv: string[], e: BenchEnv, stdin?: string): Promise<void> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: e.env,
    clearEnv: true,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  if (!out.success) throw new Error(`${argv.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
}

async function seconds(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

async function writeRandom(path: string, mb: number): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  const block = new Uint8Array(MB);
  for (let i = 0; i < mb; i++) {
    crypto.getRandomValues(block.subarray(0, 65536));
    block.copyWithin(65536, 0, MB - 65536);
    block[0] = i;
    for (let at = 0; at < MB;) at += await f.write(block.subarray(at));
  }
}

/** `remote copy` of `mb` MB up and down, vs scp and sftp; MB/s. */
export async function benchCopy(e: BenchEnv, runs: number, mb: number, base?: string): Promise<BenchRow[]> {
  const work = await Deno.makeTempDir({ prefix: "remote-bench-copy-" });
  try {
    const src = `${work}/src.bin`;
    await writeRandom(src, mb);
    const remote = (
      a: string,
      b: string,
      main = MAIN,
    ) => [Deno.execPath(), "run", "-A", "--quiet", main, "copy", "-F", e.config, a, b];
    const scp = (a: string, b: string) => ["scp", "-q", "-F", e.config, a, b];
    const sftp = (cmd: string) => () => exec(["sftp", "-q", "-F", e.config, "-b", "-", "h01"], e, cmd + "\n");
    const ways: Record<string, Record<string, () => Promise<void>>> = {
      up: {
        remote: () => exec(remote(src, `h01:${work}/up-r.bin`), e),
        scp: () => exec(scp(src, `h01:${work}/up-s.bin`), e),
        sftp: sftp(`put ${src} ${work}/up-f.bin`),
        ...(base ? { base: () => exec(remote(src, `h01:${work}/up-b.bin`, base), e) } : {}),
      },
      down: {
        remote: () => exec(remote(`h01:${src}`, `${work}/down-r.bin`), e),
        scp: () => exec(scp(`h01:${src}`, `${work}/down-s.bin`), e),
        sftp: sftp(`get ${src} ${work}/down-f.bin`),
        ...(base ? { base: () => exec(remote(`h01:${src}`, `${work}/down-b.bin`, base), e) } : {}),
      },
    };
    const speed: Record<string, Record<string, number[]>> = {};
    for (let i = 0; i <= runs; i++) {
      for (const [direction, who] of Object.entries(ways)) {
        for (const [name, fn] of Object.entries(who)) {
          const s = await seconds(fn);
          if (i > 0) ((speed[direction] ??= {})[name] ??= []).push(mb / s); // turn 0 warms the page cache
        }
      }
    }
    return Object.entries(speed).flatMap(([direction, by]) =>
      ["scp", "sftp"].map((other) => ({
        name: `(7) remote copy ${mb} MB ${direction} vs ${other}`,
        remote: median(by.remote),
        ssh: median(by[other]),
        ...(by.base ? { base: median(by.base) } : {}),
        unit: "MB/s",
        goal: "≥ 1.0×",
        higherBetter: true,
      }))
    );
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

/** Starts a forwarding client (`remote forward …` or `ssh -N …`) and waits until `port` answers. */
async function forwarder(argv: string[], e: BenchEnv, port: number): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: e.env,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 400; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return child;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  child.kill();
  await child.status;
  throw new Error(`${argv.join(" ")} did not listen`);
}

/** `-L` throughput (`mb` MB into a counting sink) and `-D` time to first byte, remote forward vs ssh -N. */
export async function benchForward(e: BenchEnv, runs: number, mb: number, base?: string): Promise<BenchRow[]> {
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
  const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of echo) {
      conn.setNoDelay(true);
      conn.readable.pipeTo(conn.writable).catch(() => {});
    }
  })();
  const block = new Uint8Array(MB);
  crypto.getRandomValues(block.subarray(0, 65536));
  const pump = async (port: number) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    for (let i = 0; i < mb; i++) for (let at = 0; at < MB;) at += await conn.write(block.subarray(at));
    await conn.closeWrite();
    const got = await new Response(conn.readable).text();
    if (Number(got) !== mb * MB) throw new Error(`sink got ${got}`);
  };
  /** SOCKS5 CONNECT to the echo server by name, one byte, until it comes back: ms */
  const socksFirstByte = async (port: number) => {
    const t = performance.now();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    const p = echo.addr.port;
    const name = new TextEncoder().encode("localhost");
    await conn.write(new Uint8Array([5, 1, 0, 5, 1, 0, 3, name.length, ...name, p >> 8, p & 255, 42]));
    const buf = new Uint8Array(64);
    for (let got = 0; got < 13;) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) throw new Error("closed");
      got += n;
    }
    conn.close();
    return performance.now() - t;
  };
  const remote = (main: string) => (flag: string, spec: string) => [
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    main,
    "forward",
    "h01",
    "-F",
    e.config,
    flag,
    spec,
  ];
  const clients: Record<string, (flag: string, spec: string) => string[]> = {
    remote: remote(MAIN),
    ...(base ? { base: remote(base) } : {}),
    ssh: (
      flag: string,
      spec: string,
    ) => ["ssh", "-N", "-F", e.config, "-o", "ExitOnForwardFailure=yes", flag, spec, "h01"],
  };
  const through: Record<string, number[]> = { remote: [], ssh: [], base: [] };
  const ttfb: Record<string, number[]> = { remote: [], ssh: [], base: [] };
  try {
    for (let i = 0; i < runs; i++) {
      for (const [who, argv] of Object.entries(clients)) {
        let port = freePort();
        let child = await forwarder(argv("-L", `${port}:127.0.0.1:${sink.addr.port}`), e, port);
        try {
          through[who].push(mb / await seconds(() => pump(port)));
        } finally {
          child.kill();
          await child.status;
        }
        port = freePort();
        child = await forwarder(argv("-D", String(port)), e, port);
        try {
          await socksFirstByte(port); // warm
          const xs = [];
          for (let k = 0; k < 20; k++) xs.push(await socksFirstByte(port));
          ttfb[who].push(median(xs));
        } finally {
          child.kill();
          await child.status;
        }
      }
    }
  } finally {
    sink.close();
    echo.close();
  }
  return [
    {
      name: `(8) ${mb} MB through -L, remote forward vs ssh -N -L`,
      remote: median(through.remote),
      ssh: median(through.ssh),
      ...(base ? { base: median(through.base) } : {}),
      unit: "MB/s",
      goal: "≥ 1.0×",
      higherBetter: true,
    },
    {
      name: "(9) first byte through -D, remote forward vs ssh -N -D",
      remote: median(ttfb.remote),
      ssh: median(ttfb.ssh),
      ...(base ? { base: median(ttfb.base) } : {}),
      unit: "ms",
      goal: "≤ 1.0×",
    },
  ];
}
