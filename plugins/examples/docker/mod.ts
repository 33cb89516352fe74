/**
 * An example third-party transport: `docker exec` over the Docker Engine API's unix socket, written
 * only against the SDK (plugins/mod.ts). docs/writing-a-plugin.md walks through it.
 *
 * Run in-process with `remote --plugin plugins/examples/docker/mod.ts enter docker://web1`, or as an
 * executable: this file calls `serve()` when run directly, so a `remote-transport-docker` wrapper
 * running `deno run -A mod.ts` works with the prebuilt binary.
 *
 * Engine API v1.43: POST /containers/{id}/exec, POST /exec/{id}/start (hijacked stream, 8-byte
 * multiplexing headers without a TTY), POST /exec/{id}/resize, GET /exec/{id}/json.
 *
 * @module
 */
import {
  type Channel,
  type ExitStatus,
  type OpenContext,
  type OpenRequest,
  serve,
  TransportError,
  type WindowSize,
} from "../../mod.ts";
import { engineMessage, hijack, request, socketPath } from "./_engine.ts";
import { manifest, parameters } from "./manifest.ts";
export { manifest };

/** The environment variable that marks every process of one exec, so it can be signalled and ended. */
const TAG = "REMOTE_EXEC_TAG";
const STREAM_HEADER = 8;

/**
 * Starts a shell or a command in the container named by `ContainerId` (or the target's host).
 *
 * @throws {TransportError} when the engine is unreachable, the container unknown or stopped
 *
 * @example
 * ```ts ignore
 * const channel = await open(ctx, { kind: "exec", command: "uname -a" });
 * ```
 */
export async function open(ctx: OpenContext, req: OpenRequest): Promise<Channel> {
  const params = parameters.read(ctx.parameters);
  const container = params.containerId ?? ctx.target.host ?? "";
  if (container === "" || /[/?#\s]/.test(container)) {
    throw new TransportError(`"${container}" is not a container ID or name`, {
      layer: "config",
      hint: "give one as shown by docker ps: remote enter docker://<container>",
    });
  }
  const path = socketPath(params.dockerHost);
  if (req.kind === "subsystem") {
    throw new TransportError("docker exec has no subsystems", { layer: "config", code: "unsupported" });
  }
  const tty = req.pty !== undefined;
  const tag = crypto.randomUUID();
  const env = [`${TAG}=${tag}`, ...Object.entries(req.env ?? {}).map(([k, v]) => `${k}=${v}`)];
  if (req.pty) env.push(`TERM=${req.pty.term}`);
  const created = await request(path, "POST", `/containers/${encodeURIComponent(container)}/exec`, {
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: tty,
    Env: env,
    Cmd: req.kind === "exec" ? ["/bin/sh", "-c", req.command] : ["/bin/sh"],
    ...(ctx.target.user ? { User: ctx.target.user } : {}),
    ...(req.pty ? { ConsoleSize: [req.pty.rows, req.pty.columns] } : {}),
  });
  if (created.status === 404) {
    throw new TransportError(`no container ${container}: ${engineMessage(created)}`, {
      layer: "server",
      code: "notFound",
      hint: "list running containers with: docker ps",
    });
  }
  if (created.status !== 201) {
    throw new TransportError(`cannot exec in ${container}: ${engineMessage(created)}`, { layer: "server" });
  }
  const execId = String(JSON.parse(new TextDecoder().decode(created.body)).Id);
  const { conn, rest } = await hijack(path, `/exec/${execId}/start`, {
    Detach: false,
    Tty: tty,
    ...(req.pty ? { ConsoleSize: [req.pty.rows, req.pty.columns] } : {}),
  });

  let stdoutCtl!: ReadableStreamDefaultController<Uint8Array>;
  let stderrCtl!: ReadableStreamDefaultController<Uint8Array>;
  // Reading the socket waits while a reader is behind, so a slow terminal slows the container down.
  let pulled = Promise.withResolvers<void>();
  const wake = () => pulled.resolve();
  const stdout = new ReadableStream<Uint8Array>({ start: (c) => void (stdoutCtl = c), pull: wake, cancel: wake });
  const stderr = new ReadableStream<Uint8Array>({ start: (c) => void (stderrCtl = c), pull: wake, cancel: wake });
  const behind = () => (stdoutCtl.desiredSize ?? 1) <= 0 || (!tty && (stderrCtl.desiredSize ?? 1) <= 0);
  if (tty) stderrCtl.close(); // a TTY merges stderr into stdout

  // Without a TTY each payload has an 8-byte header: stream (1 stdout, 2 stderr), 3 zero bytes, u32 size.
  let pending = new Uint8Array(0);
  const demux = (bytes: Uint8Array) => {
    if (tty) {
      try {
        stdoutCtl.enqueue(bytes);
      } catch { /* cancelled */ }
      return;
    }
    const buf = pending.length ? new Uint8Array([...pending, ...bytes]) : bytes;
    let at = 0;
    while (buf.length - at >= STREAM_HEADER) {
      const size = new DataView(buf.buffer, buf.byteOffset + at).getUint32(4);
      if (buf.length - at - STREAM_HEADER < size) break;
      const payload = buf.slice(at + STREAM_HEADER, at + STREAM_HEADER + size);
      const ctl = buf[at] === 2 ? stderrCtl : stdoutCtl;
      try {
        ctl.enqueue(payload);
      } catch { /* the reader cancelled this stream */ }
      at += STREAM_HEADER + size;
    }
    pending = buf.slice(at);
  };

  let closed = false;
  const reading = (async () => {
    if (rest.length) demux(rest);
    const chunk = new Uint8Array(64 * 1024);
    while (true) {
      const n = await conn.read(chunk).catch(() => null);
      if (n === null) break;
      demux(chunk.slice(0, n));
      while (behind() && !closed) {
        pulled = Promise.withResolvers<void>();
        await pulled.promise;
      }
    }
  })().finally(() => {
    for (const c of tty ? [stdoutCtl] : [stdoutCtl, stderrCtl]) {
      try {
        c.close();
      } catch { /* cancelled */ }
    }
  });

  const exit: Promise<ExitStatus> = reading.then(async (): Promise<ExitStatus> => {
    if (closed) return { kind: "lost", error: new Error("closed") } as ExitStatus;
    // The stream ends when the process does; the engine may record the code a moment later.
    for (let i = 0; i < 50; i++) {
      const r = await request(path, "GET", `/exec/${execId}/json`);
      const info = JSON.parse(new TextDecoder().decode(r.body));
      if (info.Running === false && typeof info.ExitCode === "number") {
        return { kind: "exited", code: Number(info.ExitCode) };
      }
      await new Promise((done) => setTimeout(done, 20));
    }
    return { kind: "lost", error: new TransportError("the engine never reported an exit code", { layer: "server" }) };
  }).catch((error) => ({ kind: "lost", error }) as ExitStatus);

  const signalAll = async (name: string) => {
    if (!/^[A-Z0-9]+$/.test(name)) throw new TransportError(`bad signal name ${name}`, { layer: "config" });
    // Exec processes cannot be signalled through the API; a second exec signals every process
    // carrying this exec's tag in its environment.
    const script = `for d in /proc/[0-9]*; do if grep -q "${TAG}=${tag}" "$d/environ" 2>/dev/null; then ` +
      `kill -s ${name} "\${d#/proc/}" 2>/dev/null; fi; done; true`;
    const made = await request(path, "POST", `/containers/${encodeURIComponent(container)}/exec`, {
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      Cmd: ["/bin/sh", "-c", script],
    });
    if (made.status !== 201) throw new TransportError(`cannot signal: ${engineMessage(made)}`, { layer: "server" });
    const killer = await hijack(path, `/exec/${JSON.parse(new TextDecoder().decode(made.body)).Id}/start`, {
      Detach: false,
      Tty: false,
    });
    const sink = new Uint8Array(4096);
    while ((await killer.conn.read(sink).catch(() => null)) !== null) { /* wait for it to finish */ }
    killer.conn.close();
  };

  let writeClosed = false;
  const stdin = new WritableStream<Uint8Array>({
    async write(chunk) {
      let at = 0;
      while (at < chunk.length) at += await conn.write(chunk.subarray(at));
    },
    async close() {
      writeClosed = true;
      await conn.closeWrite().catch(() => {});
    },
  });

  let disposed: Promise<void> | undefined;
  return {
    stdin,
    stdout,
    stderr,
    exit,
    async resize(size: WindowSize) {
      await request(path, "POST", `/exec/${execId}/resize?h=${size.rows}&w=${size.columns}`);
    },
    signal: signalAll,
    [Symbol.asyncDispose]() {
      disposed ??= (async () => {
        const info = await request(path, "GET", `/exec/${execId}/json`).catch(() => undefined);
        const running = info !== undefined && JSON.parse(new TextDecoder().decode(info.body)).Running === true;
        closed = true;
        wake();
        if (running) {
          await signalAll("KILL").catch(() => {});
        }
        if (!writeClosed) await conn.closeWrite().catch(() => {});
        await reading.catch(() => {});
        try {
          conn.close();
        } catch { /* closed */ }
      })();
      return disposed;
    },
  };
}

if (import.meta.main) await serve({ manifest, open });
