/**
 * `deno task bench`: remote against OpenSSH, alternating in the same run against one throwaway sshd on
 * loopback, so both meet the same machine load. Prints medians and ratios (remote ÷ ssh; < 1 means
 * remote is faster, except throughput where > 1 is better) and, with `--write`, replaces the results
 * section of BENCHMARKS.md. Asserts nothing: speed belongs here, never in tests.
 *
 * Run: deno task bench [--runs N] [--only start,first-byte,bulk,upload,fan-out,pty,copy,forward,psrp] [--mb 200]
 *   [--no-extra] [--write] [--base OLD/main.ts]
 *
 * `--base` adds a third contender, another checkout's main.ts (e.g. the unchanged tree), run in turn with
 * the other two so a change is measured against its own baseline under the same load; its median is
 * printed beside remote's (every SSH line).
 *
 * @module
 */
import { type SshdServer, startSshd } from "../tests/harness/sshd.ts";
import { type PtySession, spawnInPty } from "../tests/pty.ts";
import { benchCopy, benchForward } from "./copy_forward.ts";
import { benchPsrp } from "./psrp_bench.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const runsArg = Deno.args.indexOf("--runs");
const RUNS = runsArg >= 0 ? Number(Deno.args[runsArg + 1]) : 7;
const mbArg = Deno.args.indexOf("--mb");
/** size of the copy and -L transfers */
const MB_MOVED = mbArg >= 0 ? Number(Deno.args[mbArg + 1]) : 200;
const baseArg = Deno.args.indexOf("--base");
/** another tree's main.ts, measured alongside (see the module doc) */
const BASE: string | undefined = baseArg >= 0 ? Deno.args[baseArg + 1] : undefined;

/** One result line. */
interface Row {
  name: string;
  remote: number;
  ssh: number;
  /** the `--base` tree's median */
  base?: number;
  unit: string;
  goal: string;
  /** true when a larger value is better (throughput) */
  higherBetter?: boolean;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

interface Env {
  sshd: SshdServer;
  home: string;
  config: string;
  env: Record<string, string>;
}

/**
 * remote from source, loading its modules as the compiled binary and the bundle do: each on first use.
 * Without `--unstable-lazy-dynamic-imports`, `deno run` reads and prepares every module that a literal
 * `import()` names, transitively (the whole program, ~170 files, and the npm packages' resolution), before
 * running anything: 8–12 ms of CPU per start that the binary and the bundle never pay (BENCHMARKS.md).
 */
const remoteCmd = (args: string[], main = MAIN) => [
  Deno.execPath(),
  "run",
  "--allow-all",
  "--quiet",
  "--unstable-lazy-dynamic-imports",
  main,
  ...args,
];

async function setup(): Promise<Env> {
  const sshd = await startSshd({ config: "MaxStartups 100:30:200\nMaxSessions 100" });
  const home = await Deno.makeTempDir({ prefix: "remote-bench-" });
  await Deno.mkdir(`${home}/.ssh`, { mode: 0o700 });
  await Deno.mkdir(`${home}/run`, { mode: 0o700 });
  await Deno.writeTextFile(`${home}/.ssh/known_hosts`, sshd.knownHostsLine() + "\n");
  const lines = [];
  for (let i = 1; i <= 50; i++) lines.push(`Host h${String(i).padStart(2, "0")}`, `  HostName 127.0.0.1`);
  lines.push(
    "Host *",
    `  Port ${sshd.port}`,
    `  User ${sshd.user}`,
    `  IdentityFile ${sshd.userKey}`,
    "  IdentitiesOnly yes",
    `  UserKnownHostsFile ${home}/.ssh/known_hosts`,
    "  BatchMode yes",
    "",
  );
  const config = `${home}/ssh_config`;
  await Deno.writeTextFile(config, lines.join("\n"));
  const realHome = Deno.env.get("HOME") ?? "/root";
  const env = {
    // Deno's own cache stays the user's, as in real use (and as tests/run_remote.ts keeps it): under the
    // throwaway HOME each run of remote cost ~20 ms more CPU (--version 57 against 33 ms)
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("XDG_CACHE_HOME") ?? `${realHome}/.cache`}/deno`,
    HOME: home,
    XDG_RUNTIME_DIR: `${home}/run`,
    XDG_CONFIG_HOME: `${home}/.config`,
    XDG_STATE_HOME: `${home}/.local/state`,
    SSH_AUTH_SOCK: "",
    NO_COLOR: "1",
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  };
  return { sshd, home, config, env };
}

/** Wall time of a whole process in ms, its stdout discarded. */
async function wall(argv: string[], env: Record<string, string>): Promise<number> {
  const t = performance.now();
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    clearEnv: true,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  const ms = performance.now() - t;
  if (!out.success) throw new Error(`${argv.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  return ms;
}

/** Time to the first stdout byte, and bytes/ms over the whole run. */
async function firstByte(
  argv: string[],
  env: Record<string, string>,
): Promise<{ first: number; total: number; bytes: number }> {
  const t = performance.now();
  const child = new Deno.Command(argv[0], { args: argv.slice(1), env, clearEnv: true, stdout: "piped", stderr: "null" })
    .spawn();
  let first = 0;
  let bytes = 0;
  for await (const chunk of child.stdout) {
    if (bytes === 0) first = performance.now() - t;
    bytes += chunk.length;
  }
  const status = await child.status;
  if (!status.success) throw new Error(`${argv.join(" ")} exited ${status.code}`);
  return { first, total: performance.now() - t, bytes };
}

/**
 * Runs `a` (remote), `b` (ssh) and, with `--base`, `base(BASE)` in turn `runs` times; `a` is `base` with
 * this tree's main.ts.
 */
async function alternate(
  runs: number,
  a: (main: string) => Promise<number>,
  b: () => Promise<number>,
): Promise<{ a: number[]; b: number[]; base?: number[] }> {
  const out = { a: [] as number[], b: [] as number[], base: BASE ? [] as number[] : undefined };
  await a(MAIN); // warm all (page cache, sshd's first fork)
  await b();
  if (BASE) await a(BASE);
  for (let i = 0; i < runs; i++) {
    if (BASE && i % 2 === 1) out.base!.push(await a(BASE));
    out.a.push(await a(MAIN));
    out.b.push(await b());
    if (BASE && i % 2 === 0) out.base!.push(await a(BASE));
  }
  // every run's value on stderr, for spreads (the table has medians only)
  const fmt = (xs: number[]) =>
    `${xs.map((x) => x.toFixed(1)).join(" ")} (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
  console.error(`  runs: remote ${fmt(out.a)}; ssh ${fmt(out.b)}${out.base ? `; base ${fmt(out.base)}` : ""}`);
  return out;
}

const baseOf = (r: { base?: number[] }) => r.base ? { base: median(r.base) } : {};

async function benchStart(e: Env): Promise<Row> {
  const r = await alternate(RUNS, (m) => wall(remoteCmd(["--version"], m), e.env), () => wall(["ssh", "-V"], e.env));
  return {
    name: "(1) cold start: remote --version vs ssh -V",
    remote: median(r.a),
    ssh: median(r.b),
    ...baseOf(r),
    unit: "ms",
    goal: "-",
  };
}

async function benchFirstByte(e: Env): Promise<Row[]> {
  const remote = (extra: string[], main: string) =>
    remoteCmd(["invoke", "h01", "-F", e.config, ...extra, "--", "echo hi"], main);
  const ssh = (extra: string[]) => ["ssh", "-F", e.config, ...extra, "h01", "echo hi"];
  const cold = await alternate(
    RUNS,
    async (m) => (await firstByte(remote(["--no-reuse"], m), e.env)).first,
    async () => (await firstByte(ssh([]), e.env)).first,
  );
  const cm = ["-o", "ControlMaster=auto", "-o", `ControlPath=${e.home}/cm-%C`, "-o", "ControlPersist=120"];
  const reused = await alternate(
    RUNS,
    async (m) => (await firstByte(remote(["-o", "ControlPersist=120"], m), e.env)).first,
    async () => (await firstByte(ssh(cm), e.env)).first,
  );
  await new Deno.Command("ssh", { args: ["-F", e.config, ...cm, "-O", "exit", "h01"], stderr: "null" }).output();
  const coldSsh = median(cold.b);
  return [
    {
      name: "(2a) first byte of echo hi, cold",
      remote: median(cold.a),
      ssh: coldSsh,
      ...baseOf(cold),
      unit: "ms",
      goal: "≤ 1.0×",
    },
    {
      name: "(2b) first byte, reused vs ssh ControlMaster",
      remote: median(reused.a),
      ssh: median(reused.b),
      ...baseOf(reused),
      unit: "ms",
      goal: "≤ 1.1×",
    },
  ];
}

async function benchBulk(e: Env): Promise<Row> {
  const size = 200 * 1024 * 1024;
  const cmd = `head -c ${size} /dev/zero`;
  const r = await alternate(
    Math.max(3, Math.floor(RUNS / 2)),
    async (m) => {
      const x = await firstByte(remoteCmd(["invoke", "h01", "-F", e.config, "--no-reuse", "--", cmd], m), e.env);
      if (x.bytes !== size) throw new Error(`remote delivered ${x.bytes} bytes`);
      return x.bytes / 1e6 / (x.total / 1000);
    },
    async () => {
      const x = await firstByte(["ssh", "-F", e.config, "h01", cmd], e.env);
      return x.bytes / 1e6 / (x.total / 1000);
    },
  );
  return {
    name: "(3) 200 MB bulk output",
    remote: median(r.a),
    ssh: median(r.b),
    ...baseOf(r),
    unit: "MB/s",
    goal: "≥ 1.0×",
    higherBetter: true,
  };
}

/** MB/s of `size` bytes of zeros piped into `argv`'s stdin, which must print the count it received (`wc -c`). */
async function upload(argv: string[], env: Record<string, string>, size: number): Promise<number> {
  const t = performance.now();
  const out = await new Deno.Command("sh", {
    args: ["-c", `head -c ${size} /dev/zero | "$@"`, "sh", ...argv],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t;
  const got = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || got !== String(size)) {
    throw new Error(`${argv.join(" ")} received ${got}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return size / 1e6 / (ms / 1000);
}

async function benchUpload(e: Env): Promise<Row> {
  const size = 200 * 1024 * 1024;
  const r = await alternate(
    Math.max(3, Math.floor(RUNS / 2)),
    (m) => upload(remoteCmd(["invoke", "h01", "-F", e.config, "--no-reuse", "--", "wc -c"], m), e.env, size),
    () => upload(["ssh", "-F", e.config, "h01", "wc -c"], e.env, size),
  );
  return {
    name: "(3b) 200 MB bulk upload through stdin",
    remote: median(r.a),
    ssh: median(r.b),
    ...baseOf(r),
    unit: "MB/s",
    goal: "≥ 1.0×",
    higherBetter: true,
  };
}

async function benchFanOut(e: Env): Promise<Row> {
  const hosts = Array.from({ length: 50 }, (_, i) => `h${String(i + 1).padStart(2, "0")}`);
  const hostFile = `${e.home}/hosts`;
  await Deno.writeTextFile(hostFile, hosts.join("\n") + "\n");
  const r = await alternate(
    Math.max(3, Math.floor(RUNS / 2)),
    (m) =>
      wall(
        remoteCmd([
          "invoke",
          "--host-file",
          hostFile,
          "-F",
          e.config,
          "--no-reuse",
          "--throttle-limit",
          "32",
          "--",
          "hostname",
        ], m),
        e.env,
      ),
    () => wall(["sh", "-c", `xargs -P 32 -I{} ssh -F ${e.config} {} hostname < ${hostFile}`], e.env),
  );
  return {
    name: "(4) hostname on 50 aliases, throttle 32 vs xargs -P 32 ssh",
    remote: median(r.a),
    ssh: median(r.b),
    ...baseOf(r),
    unit: "ms",
    goal: "≤ 1.0×",
  };
}

/** A session in a PTY at an idle prompt, ready to have keystrokes timed. */
async function idleSession(argv: string[], env: Record<string, string>): Promise<PtySession> {
  const pty = await spawnInPty(argv[0], argv.slice(1), { env: { ...env, PS1: "READY$ " }, cols: 80, rows: 24 });
  await pty.waitFor(/[$#] $/m, 30_000);
  // The quotes keep the echoed command line from containing the prompt itself: waiting for "READY$ " must
  // stop after the real prompt, or the letters of the echoed line (s, t, y...) would match keystrokes early.
  pty.write("export PS1='RE''ADY$ '; stty -ixon\r");
  await pty.waitFor("READY$ ", 10_000);
  return pty;
}

/**
 * Keystroke echo latency in PTYs: the sessions of `argvs` are opened side by side and typed into in turn,
 * one character each, timing each until it is echoed — so every contender meets the same moment's load.
 * Also each session's peak resident set once idle.
 */
async function echoLatencies(
  argvs: string[][],
  env: Record<string, string>,
  keys: number,
): Promise<{ lat: number[]; rss: number }[]> {
  const ptys: PtySession[] = [];
  try {
    for (const argv of argvs) ptys.push(await idleSession(argv, env));
    await new Promise((r) => setTimeout(r, 1000)); // settle: the sessions are now idle
    const out = ptys.map((pty) => ({ lat: [] as number[], rss: peakRss(pty.pid) }));
    const letters = "abcdefghijklmnopqrstuvwxyz";
    for (let i = 0; i < keys; i++) {
      const ch = letters[i % letters.length];
      for (const [n, pty] of ptys.entries()) {
        const t = performance.now();
        const seen = pty.waitFor(ch, 5000);
        pty.write(ch);
        await seen;
        out[n].lat.push(performance.now() - t);
        if (i % 20 === 19) pty.write("\x15"); // Ctrl-U: clear the line, keep it short
      }
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 20));
    }
    return out;
  } finally {
    for (const pty of ptys) {
      pty.write("\x15exit\r");
      await Promise.race([pty.exited, new Promise((r) => setTimeout(r, 5000))]);
      await pty[Symbol.asyncDispose]();
    }
  }
}

/** Peak resident set (VmHWM) of a process and its descendants, in MB. */
function peakRss(pid: number): number {
  let total = 0;
  const children = (p: number): number[] => {
    try {
      return Deno.readTextFileSync(`/proc/${p}/task/${p}/children`).trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const walk = (p: number) => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${p}/status`));
      if (m) total += Number(m[1]) / 1024;
    } catch { /* gone */ }
    for (const c of children(p)) walk(c);
  };
  walk(pid);
  return total;
}

async function benchPty(e: Env): Promise<Row[]> {
  const keys = 100;
  const rounds = Math.max(1, Math.floor(RUNS / 3));
  const remote = { lat: [] as number[], rss: [] as number[] };
  const ssh = { lat: [] as number[], rss: [] as number[] };
  const base = { lat: [] as number[], rss: [] as number[] };
  const add = (into: typeof remote, got: { lat: number[]; rss: number }) => {
    into.lat.push(...got.lat);
    into.rss.push(got.rss);
  };
  for (let i = 0; i < rounds; i++) {
    const argvs = [remoteCmd(["enter", "h01", "-F", e.config]), ["ssh", "-tt", "-F", e.config, "h01"]];
    if (BASE) argvs.push(remoteCmd(["enter", "h01", "-F", e.config], BASE));
    const got = await echoLatencies(argvs, e.env, keys);
    add(remote, got[0]);
    add(ssh, got[1]);
    if (BASE) add(base, got[2]);
  }
  const with_ = (f: (x: typeof remote) => number) => BASE ? { base: f(base) } : {};
  return [
    {
      name: "(5) keystroke echo p50",
      remote: percentile(remote.lat, 0.5),
      ssh: percentile(ssh.lat, 0.5),
      ...with_((x) => percentile(x.lat, 0.5)),
      unit: "ms",
      goal: "≤ ssh + 0.3 ms",
    },
    {
      name: "(5) keystroke echo p99",
      remote: percentile(remote.lat, 0.99),
      ssh: percentile(ssh.lat, 0.99),
      ...with_((x) => percentile(x.lat, 0.99)),
      unit: "ms",
      goal: "≤ 2× ssh",
    },
    {
      name: "(6) peak RSS, idle interactive session",
      remote: median(remote.rss),
      ssh: median(ssh.rss),
      ...with_((x) => median(x.rss)),
      unit: "MB",
      goal: "≤ 45 MB",
    },
  ];
}

function table(rows: Row[]): string {
  const lines = [
    "| measurement | remote | ssh | ratio | goal |",
    "| --- | ---: | ---: | ---: | --- |",
    ...rows.map((r) =>
      `| ${r.name} | ${r.remote.toFixed(r.unit === "ms" && r.remote < 10 ? 2 : 1)} ${r.unit} | ` +
      `${r.ssh.toFixed(r.unit === "ms" && r.ssh < 10 ? 2 : 1)} ${r.unit} | ${
        (r.remote / r.ssh).toFixed(2)
      }× | ${r.goal} |`
    ),
  ];
  return lines.join("\n") + "\n";
}

async function machine(): Promise<string> {
  const cpu = /model name\s*:\s*(.*)/.exec(await Deno.readTextFile("/proc/cpuinfo").catch(() => ""))?.[1] ??
    "unknown cpu";
  const ssh = new TextDecoder().decode(
    (await new Deno.Command("ssh", { args: ["-V"], stderr: "piped" }).output()).stderr,
  ).trim();
  const load = (await Deno.readTextFile("/proc/loadavg").catch(() => "")).split(" ").slice(0, 3).join(" ");
  return `${cpu}, ${navigator.hardwareConcurrency} cores, ${Deno.build.os}/${Deno.build.arch}; deno ${Deno.version.deno}; ` +
    `${ssh}; load average at start ${load}; ${new Date().toISOString().slice(0, 10)}; ${RUNS} alternating runs`;
}

async function extraBenches(): Promise<string> {
  const lines: string[] = [];
  try {
    const { benchSsm } = await import("./ssm_bench.ts");
    for (const r of await benchSsm()) lines.push(`- ssm: ${r.name}: ${r.value.toFixed(1)} ${r.unit}`);
  } catch (err) {
    lines.push(`- ssm bench failed: ${(err as Error).message}`);
  }
  try {
    const { benchSsmPlugin } = await import("./ssm_plugin_bench.ts");
    const got = await benchSsmPlugin(16, Math.max(3, Math.floor(RUNS / 2)));
    if (typeof got === "string") lines.push(`- ssm vs session-manager-plugin: ${got}`);
    else {
      for (const r of got) {
        lines.push(
          `- ssm vs session-manager-plugin: ${r.name}: remote ${r.remote.toFixed(1)} MB/s, plugin ${
            r.plugin.toFixed(1)
          } MB/s, ratio ${(r.remote / r.plugin).toFixed(2)} (goal ≥ 1.0)`,
        );
      }
    }
  } catch (err) {
    lines.push(`- ssm vs session-manager-plugin failed: ${(err as Error).message}`);
  }
  const winrm = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", new URL("./winrm_bench.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(winrm.stdout).trim();
  lines.push(...(winrm.success ? text.split("\n").map((l) => `- winrm: ${l}`) : ["- winrm bench failed"]));
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  const e = await setup();
  const rows: Row[] = [];
  try {
    const header = await machine();
    console.log(header);
    const all = {
      start: benchStart,
      "first-byte": benchFirstByte,
      bulk: benchBulk,
      upload: benchUpload,
      "fan-out": benchFanOut,
      pty: benchPty,
      copy: (e: Env) => benchCopy(e, Math.max(3, Math.floor(RUNS / 2)), MB_MOVED, BASE),
      forward: (e: Env) => benchForward(e, Math.max(3, Math.floor(RUNS / 2)), MB_MOVED, BASE),
      psrp: (e: Env) => benchPsrp(e, Math.max(3, Math.floor(RUNS / 2))),
    };
    const onlyArg = Deno.args.indexOf("--only");
    const only = onlyArg >= 0 ? (Deno.args[onlyArg + 1] ?? "").split(",") : Object.keys(all);
    const unknown = only.filter((name) => !(name in all));
    if (unknown.length) throw new Error(`--only takes ${Object.keys(all).join(",")}; not ${unknown.join(",")}`);
    for (const bench of only.map((name) => all[name as keyof typeof all])) {
      const got = await bench(e);
      for (const row of [got].flat()) {
        rows.push(row);
        const base = row.base === undefined
          ? ""
          : `, base ${row.base.toFixed(2)} ${row.unit} (ratio ${(row.base / row.ssh).toFixed(2)})`;
        console.log(
          `${row.name}: remote ${row.remote.toFixed(2)} ${row.unit}, ssh ${row.ssh.toFixed(2)} ${row.unit}, ` +
            `ratio ${(row.remote / row.ssh).toFixed(2)}${base}`,
        );
      }
    }
    const extra = Deno.args.includes("--no-extra") ? "" : await extraBenches();
    if (extra) console.log(extra);
    const out = table(rows);
    console.log(out);
    if (Deno.args.includes("--write")) {
      const file = `${ROOT}BENCHMARKS.md`;
      const old = await Deno.readTextFile(file).catch(() => "");
      const start = "<!-- bench:start -->";
      const end = "<!-- bench:end -->";
      const section = `${start}\n${header}\n\n${out}\n${extra}${end}`;
      const next = old.includes(start)
        ? old.replace(new RegExp(`${start}[\\s\\S]*${end}`), section)
        : `${old}\n${section}\n`;
      await Deno.writeTextFile(file, next);
      // the table is written plainly; `deno fmt --check` (part of the test command) wants it laid out
      await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", file] }).output();
    }
  } finally {
    await e.sshd[Symbol.asyncDispose]();
    await Deno.remove(e.home, { recursive: true }).catch(() => {});
  }
}
