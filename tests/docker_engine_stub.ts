/**
 * A stand-in for the Docker Engine, because no Docker engine can run on this machine. It serves the
 * exec endpoints of the Docker Engine API v1.43 (https://docs.docker.com/reference/api/engine/version/v1.43/,
 * sections "Exec": ContainerExec, ExecStart, ExecResize, ExecInspect; and "Attach to a container" for
 * the stream format) on a unix socket, and really runs each exec's `Cmd` as a local process (in a PTY
 * when `Tty` is set), so the plugin's bytes, exit codes and signals are real.
 *
 * Followed from the documents: `/v1.43` path prefix optional; ContainerExec → 201 `{"Id"}`, 404
 * `{"message": "No such container: x"}`; ExecStart with `Upgrade: tcp` → `101 UPGRADED` then the
 * hijacked stream, raw with a TTY, otherwise 8-byte headers `[stream, 0, 0, 0, u32 size]` (1 stdout,
 * 2 stderr); the client's half-close ends the process's stdin; the engine closes the stream when the
 * process has exited and its output was sent; ExecResize `?h=&w=` → 201; ExecInspect → `Running`,
 * `ExitCode` (null while running), `Pid`. As in the real engine, closing the stream does not end the
 * process. Containers are plain directories here: a container "is" a working directory.
 *
 * @module
 */
import { spawn } from "@lydell/node-pty";

/** A running stub. */
export interface DockerEngineStub extends AsyncDisposable {
  /** the unix socket path; use as `unix://<socketPath>` */
  socketPath: string;
  /** pids of every exec process ever started, for leak checks */
  pids: number[];
  /** requests received, as `METHOD /path` */
  requests: string[];
}

interface Exec {
  id: string;
  container: string;
  config: Record<string, unknown>;
  running: boolean;
  exitCode: number | null;
  pid: number;
  started: boolean;
  resize?(columns: number, rows: number): void;
  done?: Promise<void>;
  kill?(): void;
}

const encoder = new TextEncoder();

function hex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Starts the stub with the given containers (names) on a fresh socket in a temp directory.
 *
 * @example
 * ```ts ignore
 * await using engine = await startDockerEngineStub(["web1"]);
 * ```
 */
export async function startDockerEngineStub(containers: readonly string[]): Promise<DockerEngineStub> {
  const dir = await Deno.makeTempDir({ prefix: "docker-stub-" });
  const socketPath = `${dir}/docker.sock`;
  const listener = Deno.listen({ transport: "unix", path: socketPath });
  const known = new Map<string, string>();
  for (const name of containers) {
    const workdir = `${dir}/${name}`;
    await Deno.mkdir(workdir);
    known.set(name, workdir);
  }
  const execs = new Map<string, Exec>();
  const conns = new Set<Deno.Conn>();
  const pids: number[] = [];
  const requests: string[] = [];

  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      handle(conn).catch(() => {}).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* hijacked stream already closed */ }
      });
    }
  })().catch(() => {});

  async function handle(conn: Deno.Conn): Promise<void> {
    const { method, url, headers, body, rest } = await readRequest(conn);
    const path = url.pathname.replace(/^\/v[0-9.]+/, "");
    requests.push(`${method} ${path}`);
    let m: RegExpMatchArray | null;
    if (method === "POST" && (m = path.match(/^\/containers\/([^/]+)\/exec$/))) {
      const container = decodeURIComponent(m[1]);
      if (!known.has(container)) return reply(conn, 404, { message: `No such container: ${container}` });
      const config = JSON.parse(body || "{}");
      if (!Array.isArray(config.Cmd) || config.Cmd.length === 0) {
        return reply(conn, 400, { message: "No exec command specified" });
      }
      const id = hex(32);
      execs.set(id, { id, container, config, running: false, exitCode: null, pid: 0, started: false });
      return reply(conn, 201, { Id: id });
    }
    if (method === "POST" && (m = path.match(/^\/exec\/([^/]+)\/start$/))) {
      const exec = execs.get(m[1]);
      if (!exec) return reply(conn, 404, { message: `No such exec instance: ${m[1]}` });
      if (exec.started) return reply(conn, 409, { message: `Exec ${exec.id} has already been started` });
      exec.started = true;
      const tty = exec.config.Tty === true;
      const upgrade = headers.get("upgrade")?.toLowerCase() === "tcp";
      const type = tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
      await writeAll(
        conn,
        encoder.encode(
          upgrade
            ? `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${type}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`
            : `HTTP/1.1 200 OK\r\nContent-Type: ${type}\r\n\r\n`,
        ),
      );
      return await runExec(conn, exec, known.get(exec.container)!, rest);
    }
    if (method === "POST" && (m = path.match(/^\/exec\/([^/]+)\/resize$/))) {
      const exec = execs.get(m[1]);
      if (!exec) return reply(conn, 404, { message: `No such exec instance: ${m[1]}` });
      const h = Number(url.searchParams.get("h")), w = Number(url.searchParams.get("w"));
      if (!(h > 0 && w > 0)) return reply(conn, 400, { message: "bad h or w" });
      exec.resize?.(w, h);
      return reply(conn, 201, undefined);
    }
    if (method === "GET" && (m = path.match(/^\/exec\/([^/]+)\/json$/))) {
      const exec = execs.get(m[1]);
      if (!exec) return reply(conn, 404, { message: `No such exec instance: ${m[1]}` });
      return reply(conn, 200, {
        ID: exec.id,
        Running: exec.running,
        ExitCode: exec.exitCode,
        Pid: exec.pid,
        ContainerID: exec.container,
        ProcessConfig: { tty: exec.config.Tty === true, entrypoint: (exec.config.Cmd as string[])[0] },
      });
    }
    return reply(conn, 404, { message: "page not found" });
  }

  async function runExec(conn: Deno.Conn, exec: Exec, cwd: string, early: Uint8Array): Promise<void> {
    const cmd = exec.config.Cmd as string[];
    const env: Record<string, string> = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: cwd };
    for (const kv of (exec.config.Env as string[] | undefined) ?? []) {
      const eq = kv.indexOf("=");
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    const attachStdin = exec.config.AttachStdin === true;
    exec.running = true;
    if (exec.config.Tty === true) {
      const size = (exec.config.ConsoleSize as number[] | undefined) ?? [24, 80];
      const pty = spawn(cmd[0], cmd.slice(1), { cwd, env, cols: size[1], rows: size[0], encoding: null });
      exec.pid = pty.pid;
      pids.push(pty.pid);
      exec.resize = (w, h) => pty.resize(w, h);
      exec.kill = () => pty.kill("SIGKILL");
      const exited = new Promise<number>((done) => pty.onExit((e) => done(e.signal ? 128 + e.signal : e.exitCode)));
      let writing = Promise.resolve();
      pty.onData((data: unknown) => {
        const bytes = data as Uint8Array;
        writing = writing.then(() => writeAll(conn, new Uint8Array(bytes))).catch(() => {});
      });
      if (attachStdin) {
        (async () => {
          if (early.length) pty.write(new TextDecoder().decode(early));
          const buf = new Uint8Array(32 * 1024);
          while (true) {
            const n = await conn.read(buf).catch(() => null);
            if (n === null) break;
            pty.write(new TextDecoder().decode(buf.subarray(0, n)));
          }
        })();
      }
      const code = await exited;
      await writing;
      exec.exitCode = code;
      exec.running = false;
      return;
    }
    const child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      cwd,
      env,
      clearEnv: true,
      stdin: attachStdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    exec.pid = child.pid;
    pids.push(child.pid);
    exec.kill = () => child.kill("SIGKILL");
    let writing = Promise.resolve();
    const frame = (stream: number, data: Uint8Array) => {
      const out = new Uint8Array(8 + data.length);
      out[0] = stream;
      new DataView(out.buffer).setUint32(4, data.length);
      out.set(data, 8);
      writing = writing.then(() => writeAll(conn, out));
      return writing;
    };
    const pump = async (stream: ReadableStream<Uint8Array>, n: number) => {
      for await (const chunk of stream) await frame(n, chunk).catch(() => {});
    };
    if (attachStdin) {
      (async () => {
        const w = child.stdin.getWriter();
        try {
          if (early.length) await w.write(early);
          const buf = new Uint8Array(64 * 1024);
          while (true) {
            const n = await conn.read(buf).catch(() => null);
            if (n === null) break; // the client's half-close: end the process's stdin
            await w.write(buf.slice(0, n));
          }
        } catch { /* the process closed its stdin */ }
        await w.close().catch(() => {});
      })();
    }
    const [status] = await Promise.all([child.status, pump(child.stdout, 1), pump(child.stderr, 2)]);
    await writing.catch(() => {});
    exec.exitCode = status.code;
    exec.running = false;
  }

  return {
    socketPath,
    pids,
    requests,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const exec of execs.values()) if (exec.running) exec.kill?.();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await serving;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

async function reply(conn: Deno.Conn, status: number, json: unknown): Promise<void> {
  const body = json === undefined ? new Uint8Array(0) : encoder.encode(JSON.stringify(json));
  const reason = { 200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found", 409: "Conflict" }[status] ?? "";
  await writeAll(
    conn,
    encoder.encode(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n` +
        `Connection: close\r\n\r\n`,
    ),
  );
  await writeAll(conn, body);
}

async function readRequest(
  conn: Deno.Conn,
): Promise<{ method: string; url: URL; headers: Headers; body: string; rest: Uint8Array }> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(16 * 1024);
  const append = (n: number) => {
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
  };
  let end = -1;
  while ((end = findHeadEnd(buf)) < 0) {
    const n = await conn.read(chunk);
    if (n === null) throw new Error("client left before the request head");
    append(n);
  }
  const lines = new TextDecoder().decode(buf.subarray(0, end)).split("\r\n");
  const [method, target] = lines[0].split(" ");
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const length = Number(headers.get("content-length") ?? 0);
  while (buf.length < end + 4 + length) {
    const n = await conn.read(chunk);
    if (n === null) throw new Error("client left inside the request body");
    append(n);
  }
  return {
    method,
    url: new URL(target, "http://docker"),
    headers,
    body: new TextDecoder().decode(buf.subarray(end + 4, end + 4 + length)),
    rest: buf.slice(end + 4 + length),
  };
}

function findHeadEnd(buf: Uint8Array): number {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}
