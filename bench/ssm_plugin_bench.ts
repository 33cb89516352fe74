/**
 * remote's SSM client against AWS's own session-manager-plugin, both driven through tests/ssm_emulator.ts in one run,
 * alternating, so both meet the same machine load: shell output (`blob N` printed by the emulated agent) and port
 * forwarding each way (AWS-StartPortForwardingSession to a local TCP server). Both sides are whole processes: remote
 * as the CLI (`remote enter ssm://…`, `remote forward --target …`), the plugin as the AWS CLI starts it (the
 * StartSession response, the region, "StartSession", a profile, the request and the endpoint as arguments). Timing
 * starts once the session is up (the shell's prompt; for forwarding, the line each prints once its session is up and
 * its port takes connections), so start-up is not in it.
 *
 * Users install the plugin from AWS
 * (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html);
 * when `session-manager-plugin` is not on PATH this says so and measures nothing.
 *
 * Run: deno run --allow-all bench/ssm_plugin_bench.ts [MB] [runs] [--base OTHER/main.ts] [--only WORD]
 *
 * `--base` runs another checkout's main.ts (e.g. `git archive` of the unchanged tree, with a `node_modules` link)
 * in turn with the other two: a change measured against its baseline under the same load. `--only` keeps the
 * measurements whose name contains WORD (`shell`, `upload`, `download`). Each run's MB/s are printed as they come,
 * with the CPU time each client and this process (the emulator) used during the transfer where Linux's /proc tells it.
 *
 * @module
 */
import { blobBytes, startSsmEmulator, TEST_CREDENTIALS, useEmulatorCredentials } from "../tests/ssm_emulator.ts";
import type { SsmEmulator } from "../tests/ssm_emulator.ts";
import { signRequest } from "../tests/ssm_sigv4.ts";

const MB = 1024 * 1024;
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const TARGET = "i-0123456789abcdef0";
const encoder = new TextEncoder();

/** One comparison: MB/s of each, higher is better. */
export interface PluginRow {
  name: string;
  remote: number;
  plugin: number;
  /** the `base` checkout's remote, when one was given */
  base?: number;
}

/** The plugin's path, or undefined when it is not on PATH. */
export async function findPlugin(): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    const path = `${dir || "."}/session-manager-plugin`;
    try {
      const info = await Deno.stat(path);
      if (info.isFile && ((info.mode ?? 0) & 0o111)) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Environment for both processes: a throwaway HOME, the emulator's keys, Deno's own cache kept. */
function childEnv(home: string): Record<string, string> {
  const realHome = Deno.env.get("HOME") ?? "/root";
  return {
    HOME: home,
    XDG_CONFIG_HOME: `${home}/.config`,
    XDG_STATE_HOME: `${home}/.local/state`,
    XDG_RUNTIME_DIR: `${home}/run`,
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("XDG_CACHE_HOME") ?? `${realHome}/.cache`}/deno`,
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/remote-bench-credentials",
    AWS_CONFIG_FILE: "/nonexistent/remote-bench-config",
    NO_COLOR: "1",
  };
}

/** StartSession as the AWS CLI calls it before it starts the plugin; the response is the plugin's first argument. */
async function startSession(emu: SsmEmulator, request: Record<string, unknown>): Promise<unknown> {
  const body = JSON.stringify(request);
  const url = new URL(emu.endpoint);
  const { headers } = signRequest({
    method: "POST",
    url,
    headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AmazonSSM.StartSession" },
    body,
    region: emu.region,
    service: "ssm",
    credentials: TEST_CREDENTIALS,
    date: new Date(),
  });
  const res = await fetch(url, { method: "POST", headers, body });
  if (!res.ok) throw new Error(`StartSession: HTTP ${res.status} ${await res.text()}`);
  return await res.json();
}

async function pluginArgs(emu: SsmEmulator, request: Record<string, unknown>): Promise<string[]> {
  const response = await startSession(emu, request);
  return [JSON.stringify(response), emu.region, "StartSession", "", JSON.stringify(request), emu.endpoint];
}

/** Reads a child's stdout until `want` bytes after a mark, or a text, arrive. */
class Tail {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #text = "";
  bytes = 0;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }
  /**
   * waits until `bytes` reaches `least` and the output so far ends with `suffix`, or with `anywhere` contains it
   * (only its last bytes are kept)
   */
  async until(suffix: string, deadline: number, least = 0, anywhere = false): Promise<void> {
    const decoder = new TextDecoder();
    if (this.bytes < least) this.#text = "";
    const seen = () => anywhere ? this.#text.includes(suffix) : this.#text.endsWith(suffix);
    while (this.bytes < least || !seen()) {
      if (performance.now() > deadline) throw new Error(`no ${JSON.stringify(suffix)} in time`);
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`output ended before ${JSON.stringify(suffix)}`);
      this.bytes += value.length;
      const keep = anywhere ? 4096 : 64;
      this.#text = (this.#text + decoder.decode(value.subarray(Math.max(0, value.length - keep)))).slice(-keep);
    }
  }
  async drain(): Promise<void> {
    while (!(await this.#reader.read()).done) { /* discard */ }
  }
}

/**
 * CPU time (user and system, ms) the process `pid` has used so far, from Linux's /proc (clock ticks of 10 ms);
 * undefined elsewhere.
 */
function cpuMs(pid: number): number | undefined {
  try {
    const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/** The CPU time the client, and this process (the emulator, the TCP server), used during the last run's transfer. */
let lastCpuMs: { client: number; here: number } | undefined;

function cpuSince(pid: number, before: { client?: number; here?: number }): void {
  const client = cpuMs(pid);
  const here = cpuMs(Deno.pid);
  lastCpuMs = before.client === undefined || before.here === undefined || client === undefined || here === undefined
    ? undefined
    : { client: client - before.client, here: here - before.here };
}

const cpuNow = (pid: number) => ({ client: cpuMs(pid), here: cpuMs(Deno.pid) });

/** MB/s of `blob size` through one shell session of `argv`. */
async function shellRun(argv: string[], env: Record<string, string>, size: number): Promise<number> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const stdin = child.stdin.getWriter();
  const out = new Tail(child.stdout);
  try {
    await out.until("$ ", performance.now() + 30_000);
    const before = out.bytes;
    const cpu = cpuNow(child.pid);
    const start = performance.now();
    await stdin.write(encoder.encode(`blob ${size}\r`));
    await out.until("$ ", start + 120_000, before + size);
    const seconds = (performance.now() - start) / 1000;
    cpuSince(child.pid, cpu);
    await stdin.write(encoder.encode("exit\r"));
    await stdin.close().catch(() => {});
    await out.drain();
    return size / MB / seconds;
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // ended
    }
    await child.status;
  }
}

const blobs = new Map<number, Uint8Array>();

/**
 * The bytes a forward carries, made once: 16 MB take ~150 ms to make, which counted in every run's time when made
 * after the connection (in this process, beside the emulator).
 */
function blob(size: number): Uint8Array {
  let bytes = blobs.get(size);
  if (!bytes) blobs.set(size, bytes = blobBytes(size));
  return bytes;
}

/** A TCP server that takes one connection and sends or swallows `size` bytes. */
function tcpServer(size: number, direction: "upload" | "download") {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    try {
      if (direction === "upload") await drain(conn, size);
      else await writeAll(conn, blob(size));
    } finally {
      conn.close();
      listener.close();
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, served };
}

async function drain(conn: Deno.Conn, size: number): Promise<void> {
  const buf = new Uint8Array(256 * 1024);
  for (let got = 0; got < size;) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`connection ended after ${got} of ${size} bytes`);
    got += n;
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at, at + 256 * 1024));
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Connects to the forwarder's local port (it listens by the time it says so). */
async function connectWhenUp(port: number, deadline: number): Promise<Deno.Conn> {
  for (;;) {
    try {
      return await Deno.connect({ hostname: "127.0.0.1", port });
    } catch (err) {
      if (performance.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * What a forwarder prints once its session is up and the port takes connections: the plugin "Waiting for
 * connections..." on stdout (`muxportforwarding.go`), remote its `forwarding 127.0.0.1:…` notice on stderr. remote
 * listens before it starts the session (a port in use fails before anything starts on the instance), so a
 * connection accepted earlier would time its session start too.
 */
export interface Readiness {
  stream: "stdout" | "stderr";
  text: string;
}

/** MB/s of one forwarded connection carrying `size` bytes one way through `argv` listening on `localPort`. */
async function forwardRun(
  start: (localPort: number, remotePort: number) => Promise<string[]>,
  ready: Readiness,
  env: Record<string, string>,
  size: number,
  direction: "upload" | "download",
): Promise<number> {
  const server = tcpServer(size, direction);
  const localPort = freePort();
  const argv = await start(localPort, server.port);
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    clearEnv: true,
    stdin: "null",
    stdout: ready.stream === "stdout" ? "piped" : "null",
    stderr: ready.stream === "stderr" ? "piped" : "null",
  }).spawn();
  const said = new Tail(ready.stream === "stdout" ? child.stdout : child.stderr);
  try {
    await said.until(ready.text, performance.now() + 30_000, 0, true);
    void said.drain().catch(() => {}); // the rest of what it prints
    const conn = await connectWhenUp(localPort, performance.now() + 30_000);
    const cpu = cpuNow(child.pid);
    const began = performance.now();
    try {
      if (direction === "upload") await Promise.all([writeAll(conn, blob(size)), server.served]);
      else await drain(conn, size);
    } finally {
      conn.close();
    }
    const seconds = (performance.now() - began) / 1000;
    cpuSince(child.pid, cpu);
    return size / MB / seconds;
  } finally {
    try {
      child.kill("SIGTERM");
    } catch {
      // ended
    }
    await child.status;
    await server.served.catch(() => {});
  }
}

/**
 * Alternating runs of remote and the plugin; one row per measurement, or a line saying why nothing was measured.
 */
export async function benchSsmPlugin(
  megabytes = 16,
  runs = 3,
  base?: string,
  only?: string,
  log?: (line: string) => void,
): Promise<PluginRow[] | string> {
  const plugin = await findPlugin();
  if (!plugin) {
    return "session-manager-plugin is not on PATH, so remote's SSM client was not compared with AWS's " +
      "(install the plugin from AWS to compare)";
  }
  useEmulatorCredentials();
  const size = megabytes * MB;
  // no digest checks on the frames the clients send: the agent makes none, and they would cost the emulator, which
  // sets the pace here, the same per frame for either client
  await using emu = await startSsmEmulator({ checkClientDigests: false });
  const home = await Deno.makeTempDir({ prefix: "remote-bench-ssm-" });
  await Deno.mkdir(`${home}/run`, { mode: 0o700 });
  const env = childEnv(home);
  const remoteOf = (main: string) => (...args: string[]) => [
    Deno.execPath(),
    "run",
    "--allow-all",
    "--quiet",
    main,
    ...args,
    "--endpoint-url",
    emu.endpoint,
    "--region",
    emu.region,
  ];
  const shellRemote = (main: string) => () => shellRun(remoteOf(main)("enter", `ssm://${TARGET}`), env, size);
  const shell = {
    remote: shellRemote(MAIN),
    base: base ? shellRemote(base) : undefined,
    plugin: async () => shellRun([plugin, ...await pluginArgs(emu, { Target: TARGET })], env, size),
  };
  const forwardRemote = (main: string, direction: "upload" | "download") => () =>
    forwardRun(
      (l, r) =>
        Promise.resolve(
          remoteOf(main)("forward", "--target", TARGET, "--local-port", String(l), "--remote-port", String(r)),
        ),
      { stream: "stderr", text: "forwarding 127.0.0.1:" },
      env,
      size,
      direction,
    );
  const forwardSides = (direction: "upload" | "download") => ({
    remote: forwardRemote(MAIN, direction),
    base: base ? forwardRemote(base, direction) : undefined,
    plugin: () =>
      forwardRun(
        async (l, r) => [
          plugin,
          ...await pluginArgs(emu, {
            Target: TARGET,
            DocumentName: "AWS-StartPortForwardingSession",
            Parameters: { portNumber: [String(r)], localPortNumber: [String(l)] },
          }),
        ],
        { stream: "stdout", text: "Waiting for connections..." },
        env,
        size,
        direction,
      ),
  });
  const measurements = [
    { name: `ssm shell output (${megabytes} MB)`, sides: shell },
    { name: `ssm forward upload (${megabytes} MB)`, sides: forwardSides("upload") },
    { name: `ssm forward download (${megabytes} MB)`, sides: forwardSides("download") },
  ];
  const rows: PluginRow[] = [];
  try {
    for (const { name, sides } of measurements) {
      if (only && !name.includes(only)) continue;
      await sides.remote(); // warm all
      await sides.base?.();
      await sides.plugin();
      const a: number[] = [];
      const b: number[] = [];
      const c: number[] = [];
      const cpu = (): string =>
        lastCpuMs === undefined ? "" : ` (cpu ${lastCpuMs.client} ms, emulator ${lastCpuMs.here} ms)`;
      for (let i = 0; i < runs; i++) {
        a.push(await sides.remote());
        let line = `${name} run ${i + 1}: remote ${a[i].toFixed(1)}${cpu()}`;
        if (sides.base) {
          c.push(await sides.base());
          line += `, base ${c[i].toFixed(1)}${cpu()}`;
        }
        b.push(await sides.plugin());
        log?.(`${line}, plugin ${b[i].toFixed(1)}${cpu()} MB/s, ratio ${(a[i] / b[i]).toFixed(2)}`);
      }
      rows.push({ name, remote: median(a), plugin: median(b), ...(sides.base ? { base: median(c) } : {}) });
    }
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
  return rows;
}

if (import.meta.main) {
  const option = (flag: string) => {
    const at = Deno.args.indexOf(flag);
    return at >= 0 ? Deno.args[at + 1] : undefined;
  };
  const flagged = new Set(["--base", "--only"].flatMap((f) => {
    const at = Deno.args.indexOf(f);
    return at >= 0 ? [at, at + 1] : [];
  }));
  const numbers = Deno.args.filter((_, i) => !flagged.has(i));
  const got = await benchSsmPlugin(
    Number(numbers[0] ?? 16),
    Number(numbers[1] ?? 3),
    option("--base"),
    option("--only"),
    (line) => console.log(line),
  );
  if (typeof got === "string") console.log(got);
  else {
    for (const r of got) {
      const before = r.base === undefined
        ? ""
        : `; base ${r.base.toFixed(1)} MB/s, ratio ${(r.base / r.plugin).toFixed(2)}`;
      console.log(
        `${r.name}: remote ${r.remote.toFixed(1)} MB/s, session-manager-plugin ${r.plugin.toFixed(1)} MB/s, ` +
          `ratio ${(r.remote / r.plugin).toFixed(2)}${before}`,
      );
    }
  }
}
