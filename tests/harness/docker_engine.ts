/**
 * Starts real container engines for tests: Docker Engine (Debian's docker.io: dockerd, which starts its own
 * containerd) and Podman's API service (Debian's podman), each with its own data folders and socket in a temp dir,
 * no systemd, no iptables, no bridge, no registry. The one image is made offline from Debian's busybox-static: a
 * root filesystem of /bin/busybox and its applet links, imported through the engine's API (`POST /images/create`
 * with `fromSrc=-`, what `docker import` sends). Disposing stops the containers and the engine, ends every process
 * started for it (containerd, shims, conmon) and removes its folder.
 *
 * @example A container on a fresh dockerd
 * ```ts ignore
 * import { startDockerEngine } from "./docker_engine.ts";
 * await using engine = await startDockerEngine();
 * await engine.createContainer("web1");
 * console.log(engine.host); // unix:///tmp/remote-dockerd-…/docker.sock
 * ```
 *
 * @module
 */
import { Child, missingPeer, requireProgram } from "./process.ts";

/** How long an engine may take to answer its first ping. */
export const ENGINE_START_TIMEOUT_MS = 60_000;

/** The busybox binary of busybox-static. */
export const BUSYBOX = "/bin/busybox";

/** A running engine; `await using` stops it and removes everything it made. */
export interface ContainerEngine extends AsyncDisposable {
  kind: "docker" | "podman";
  /** the API socket's path */
  socketPath: string;
  /** `unix://<socketPath>`, as `--docker-host` and DOCKER_HOST take it */
  host: string;
  dir: string;
  /** the imported busybox image's ID */
  image: string;
  /** milliseconds from spawning the engine to its image being ready */
  startupMs: number;
  /** creates and (unless `running: false`) starts a container running `sleep`; returns its ID */
  createContainer(name: string, options?: { running?: boolean; env?: string[] }): Promise<string>;
  /** stops a container (SIGKILL, no grace) */
  stopContainer(name: string): Promise<void>;
  /** one API request; the reply parsed as JSON when it is JSON */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  /** the engine's log so far */
  log(): Promise<string>;
}

/** Starts dockerd (as root) with its own data root, exec root, socket and pidfile. */
export async function startDockerEngine(): Promise<ContainerEngine> {
  await requireProgram("/usr/sbin/dockerd", "docker.io");
  await requireProgram(BUSYBOX, "busybox-static");
  if (Deno.uid() !== 0) throw new Error("dockerd needs root here: run the container tests as root");
  const started = performance.now();
  const dir = await Deno.makeTempDir({ prefix: "remote-dockerd-" });
  const socketPath = `${dir}/docker.sock`;
  const logFile = `${dir}/dockerd.log`;
  const child = new Child("/usr/sbin/dockerd", [
    "--data-root",
    `${dir}/data`,
    "--exec-root",
    `${dir}/exec`,
    "--host",
    `unix://${socketPath}`,
    "--pidfile",
    `${dir}/docker.pid`,
    "--iptables=false",
    "--ip-masq=false",
    "--bridge=none",
    // vfs works on any file system (overlayfs does not nest in every sandbox)
    "--storage-driver=vfs",
    // no other dockerd's containerd: this one starts its own under the exec root
    "--containerd-namespace",
    "remote-test",
  ], { stderrFile: logFile, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } });
  return await finishStart("docker", dir, socketPath, logFile, child, started, {
    createExtra: {},
  });
}

/** Starts `podman system service` (as root) with its own root, runroot, tmpdir and socket. */
export async function startPodmanEngine(): Promise<ContainerEngine> {
  await requireProgram("/usr/bin/podman", "podman");
  await requireProgram(BUSYBOX, "busybox-static");
  if (Deno.uid() !== 0) throw new Error("podman's service needs root here: run the container tests as root");
  const started = performance.now();
  const dir = await Deno.makeTempDir({ prefix: "remote-podman-" });
  const socketPath = `${dir}/podman.sock`;
  const logFile = `${dir}/podman.log`;
  await Deno.mkdir(`${dir}/tmp`);
  const child = new Child("/usr/bin/podman", [
    "--root",
    `${dir}/root`,
    "--runroot",
    `${dir}/run`,
    "--tmpdir",
    `${dir}/tmp`,
    "--storage-driver",
    "vfs",
    "--cgroup-manager",
    "cgroupfs",
    "--events-backend",
    "file",
    "system",
    "service",
    "--time=0",
    `unix://${socketPath}`,
  ], { stderrFile: logFile, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: dir } });
  return await finishStart("podman", dir, socketPath, logFile, child, started, {
    // this machine's limits are below podman's defaults, which it then fails to set
    createExtra: {
      Ulimits: [{ Name: "nofile", Soft: 1024, Hard: 1024 }, { Name: "nproc", Soft: 1024, Hard: 1024 }],
    },
  });
}

async function finishStart(
  kind: "docker" | "podman",
  dir: string,
  socketPath: string,
  logFile: string,
  child: Child,
  started: number,
  options: { createExtra: Record<string, unknown> },
): Promise<ContainerEngine> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socketPath } });
  const api = async (method: string, path: string, body?: unknown, raw?: Uint8Array<ArrayBuffer>) => {
    const reply = await fetch(`http://engine/v1.41${path}`, {
      method,
      client,
      headers: raw ? { "Content-Type": "application/x-tar" } : body === undefined ? {} : {
        "Content-Type": "application/json",
      },
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      signal: AbortSignal.timeout(ENGINE_START_TIMEOUT_MS),
    });
    const text = await reply.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch { /* not JSON */ }
    return { status: reply.status, body: parsed, text };
  };
  const log = () => Deno.readTextFile(logFile).catch(() => "");
  const stop = async () => {
    for (const name of created) await api("DELETE", `/containers/${name}?force=1`).catch(() => {});
    await child[Symbol.asyncDispose]();
    client.close();
    // containerd and its shims (docker), conmon (podman, which keeps one per exec for five minutes) outlive the
    // engine; each names this folder in its command line
    await killLeftovers(dir);
    await unmountUnder(dir);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const created: string[] = [];
  try {
    const deadline = Date.now() + ENGINE_START_TIMEOUT_MS;
    while (true) {
      if (!child.alive) throw new Error(`${kind} engine exited at start:\n${await log()}`);
      const ok = await fetch("http://engine/_ping", { client, signal: AbortSignal.timeout(2_000) })
        .then(async (r) => (await r.text(), r.ok), () => false);
      if (ok) break;
      if (Date.now() > deadline) {
        throw new Error(`${kind} engine did not answer within ${ENGINE_START_TIMEOUT_MS / 1000} s:\n${await log()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const imported = await api("POST", "/images/create?fromSrc=-&repo=remote-test&tag=busybox", undefined, rootfsTar());
    const ids = [...imported.text.matchAll(/"status":"(sha256:[0-9a-f]{64})"/g)].map((m) => m[1]);
    if (imported.status !== 200 || ids.length === 0) {
      throw new Error(`${kind}: importing the busybox image failed (${imported.status}): ${imported.text}`);
    }
    const image = ids[ids.length - 1];
    const engine: ContainerEngine = {
      kind,
      socketPath,
      host: `unix://${socketPath}`,
      dir,
      image,
      startupMs: Math.round(performance.now() - started),
      async createContainer(name, opts = {}) {
        const made = await api("POST", `/containers/create?name=${encodeURIComponent(name)}`, {
          Image: image,
          Cmd: ["/bin/sleep", "86400"],
          Env: opts.env ?? [],
          HostConfig: { NetworkMode: "none", ...options.createExtra },
        });
        if (made.status !== 201) throw new Error(`${kind}: creating ${name} failed: ${made.text}`);
        created.push(name);
        if (opts.running !== false) {
          const run = await api("POST", `/containers/${name}/start`);
          if (run.status !== 204) throw new Error(`${kind}: starting ${name} failed: ${run.text}`);
        }
        return (made.body as { Id: string }).Id;
      },
      async stopContainer(name) {
        const r = await api("POST", `/containers/${name}/stop?t=0`);
        if (r.status !== 204 && r.status !== 304) throw new Error(`${kind}: stopping ${name} failed: ${r.text}`);
      },
      api: async (method, path, body) => {
        const r = await api(method, path, body);
        return { status: r.status, body: r.body };
      },
      log,
      [Symbol.asyncDispose]: stop,
    };
    return engine;
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A tar (POSIX ustar) of a root filesystem: /bin/busybox, a link per applet, /etc/passwd and /etc/group, /tmp. */
function rootfsTar(): Uint8Array<ArrayBuffer> {
  const applets = new TextDecoder().decode(
    new Deno.Command(BUSYBOX, { args: ["--list"], stdout: "piped", stderr: "null" }).outputSync().stdout,
  ).split("\n").filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== "busybox");
  if (applets.length === 0) throw missingPeer(`${BUSYBOX} --list`, "busybox-static");
  const entries: Uint8Array[] = [];
  const enc = new TextEncoder();
  const dirEntry = (name: string, mode = 0o755) => entries.push(header(name, "5", 0, mode));
  const file = (name: string, data: Uint8Array, mode = 0o644) => {
    entries.push(header(name, "0", data.length, mode), data, new Uint8Array((512 - (data.length % 512)) % 512));
  };
  for (const d of ["bin/", "etc/", "root/", "proc/", "sys/", "dev/"]) dirEntry(d);
  dirEntry("tmp/", 0o1777);
  const busybox = Deno.readFileSync(BUSYBOX);
  // a dynamically linked busybox (Debian's plain busybox package) names its loader; the image has no libraries
  if (new TextDecoder("latin1").decode(busybox.subarray(0, 4096)).includes("ld-linux")) {
    throw missingPeer(`a static ${BUSYBOX}`, "busybox-static");
  }
  file("bin/busybox", busybox, 0o755);
  for (const a of applets) entries.push(header(`bin/${a}`, "2", 0, 0o777, "busybox"));
  file("etc/passwd", enc.encode("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"));
  file("etc/group", enc.encode("root:x:0:\nnogroup:x:65534:\n"));
  entries.push(new Uint8Array(1024));
  const out = new Uint8Array(entries.reduce((n, e) => n + e.length, 0));
  let at = 0;
  for (const e of entries) {
    out.set(e, at);
    at += e.length;
  }
  return out;
}

function header(name: string, type: string, size: number, mode: number, link = ""): Uint8Array {
  const h = new Uint8Array(512);
  const enc = new TextEncoder();
  const put = (text: string, offset: number) => h.set(enc.encode(text), offset);
  const octal = (n: number, width: number) => n.toString(8).padStart(width - 1, "0") + "\0";
  put(name, 0);
  put(octal(mode, 8), 100);
  put(octal(0, 8), 108);
  put(octal(0, 8), 116);
  put(octal(size, 12), 124);
  put(octal(0, 12), 136);
  put("        ", 148);
  put(type, 156);
  put(link, 157);
  put("ustar\0", 257);
  put("00", 263);
  const sum = h.reduce((s, b) => s + b, 0);
  put(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  return h;
}

/** Ends, by process ID, every process whose command line names `dir` (all of them started for this engine). */
async function killLeftovers(dir: string): Promise<void> {
  for (let round = 0; round < 50; round++) {
    const pids: number[] = [];
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
      try {
        const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
        if (cmdline.includes(dir)) pids.push(Number(entry.name));
      } catch {
        // gone
      }
    }
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        Deno.kill(pid, round < 5 ? "SIGTERM" : "SIGKILL");
      } catch {
        // gone
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Unmounts what an engine left mounted under `dir` (its data root bind mount, shm, network namespaces). */
async function unmountUnder(dir: string): Promise<void> {
  let mounts: string[];
  try {
    mounts = Deno.readTextFileSync("/proc/self/mounts").split("\n").map((l) => l.split(" ")[1] ?? "")
      .map((p) => p.replace(/\\040/g, " "))
      .filter((p) => p === dir || p.startsWith(`${dir}/`));
  } catch {
    return;
  }
  // deepest first
  for (const mount of mounts.sort((a, b) => b.length - a.length)) {
    await new Deno.Command("umount", { args: ["-l", mount], stdout: "null", stderr: "null" }).output()
      .catch(() => {});
  }
}
