/**
 * The container transport: `remote enter --container-id web1`, `docker://web1`, `podman://web1`. A shell or one
 * command runs in a running container through the engine's exec API, as `docker exec` runs it: the container is
 * inspected first (so "no such container" and "not running" come before anything else), an exec is created and
 * started on a hijacked connection, stdout and stderr arrive apart (multiplexed) without a terminal and merged in a
 * real PTY with one, stdin's end is a half-close, and the exit code is read from the exec's record. The API cannot
 * signal an exec, so signals (and the end of a command still running at close) go through a second exec that signals
 * the processes carrying this exec's tag. docs/containers.md says it for users.
 *
 * @example A command in a container
 * ```ts ignore
 * import { open } from "./mod.ts";
 * await using channel = await open(ctx, { kind: "exec", command: "uname -a" });
 * const status = await channel.exit;
 * ```
 *
 * @module
 */
import {
  type Channel,
  type ExitStatus,
  type OpenContext,
  type OpenRequest,
  RemoteError,
  settlesWithin,
  SIGNAL_NAMES,
  type TargetRows,
  TransportError,
  UnsupportedError,
  UsageError,
  type WindowSize,
} from "../../plugins/mod.ts";
import { apiAtLeast } from "./api_version.ts";
import { closeQuietly, EngineClient, engineError, notRunning } from "./engine_client.ts";
import { type EngineKind, type EnvReader, processEnv, resolveEngineHost } from "./engine_host.ts";
import { StreamDecoder } from "./stream_decoder.ts";
import { type EngineConn, writeAll } from "./http.ts";
import { parameters } from "./manifest.ts";
export { manifest } from "./manifest.ts";

/** Output read ahead of the consumer before reading the engine's stream pauses. */
const BUFFER_BYTES = 64 * 1024;

/** What the exec's stream is read into, a read at a time (each read gets at least {@linkcode BUFFER_BYTES}). */
const SLAB_BYTES = 4 * BUFFER_BYTES;

/** How long the exit code may take to appear in the exec's record after its stream ended. */
const EXIT_CODE_WAIT_MS = 10_000;

/**
 * The variable that marks every process of one exec. The engine API has no way to signal an exec's process, so a
 * second exec finds the processes carrying the mark (in /proc/<pid>/environ, inherited by children) and signals
 * them: the whole command, as a terminal's Ctrl-C reaches a foreground process group.
 */
export const EXEC_TAG = "REMOTE_EXEC_TAG";

/** How long a command may take to end after HUP or TERM at dispose before it gets KILL. */
const GRACE_MS = 2_000;

/** What the transport reads from its parameters; one place, so it can follow the core's typed parameters. */
export interface ContainerOptions {
  engine: EngineKind;
  container: string;
  dockerHost?: string;
  user?: string;
  workingDirectory?: string;
  environment: Record<string, string>;
  privileged: boolean;
}

/**
 * Where the engine's address comes from besides `--docker-host`: this computer's environment (`DOCKER_HOST`, the
 * docker context, `CONTAINER_HOST`), except through `--via`, where those name engines here, not on the far host,
 * so the far host's default socket is used, as `docker -H ssh://host` does.
 */
function engineEnv(ctx: Pick<OpenContext, "dial">): EnvReader {
  return ctx.dial ? () => undefined : processEnv;
}

/**
 * Reads the bound parameters and the target into {@linkcode ContainerOptions}.
 *
 * @throws {UsageError} for a container name the engine could not have, or `--run-as-administrator` with another user
 */
export function containerOptions(ctx: Pick<OpenContext, "target" | "parameters">): ContainerOptions {
  const p = parameters.read(ctx.parameters);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(ctx.target.display)?.[1]?.toLowerCase();
  const engine: EngineKind = scheme === "podman" ? "podman" : "docker";
  const container = p.containerId || ctx.target.host;
  // Docker's and Podman's rule for names; IDs (hex) fit it too
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(container ?? "")) {
    throw new UsageError(`'${container}' is not a container ID or name`, {
      hint: `give one as ${engine} ps shows it: remote enter ${engine}://<container>`,
    });
  }
  let user = ctx.target.user ?? p.userName;
  if (p.runAsAdministrator === true) {
    if (user !== undefined && user !== "root" && user !== "0" && !user.startsWith("root:") && !user.startsWith("0:")) {
      throw new UsageError(`--run-as-administrator runs as root, but the user ${user} was also given`, {
        hint: "give one of the two",
      });
    }
    user ??= "root";
  }
  return {
    engine,
    container,
    dockerHost: p.dockerHost,
    user,
    workingDirectory: p.workingDirectory,
    environment: { ...p.environment },
    privileged: p.privileged === true,
  };
}

/**
 * Starts `request` in the container.
 *
 * @throws {UsageError} bad parameters or DOCKER_API_VERSION
 * @throws {RemoteError} no such container (233), not running (251), engine not running (241), permission denied
 * on the socket (245), API too old (244)
 */
export async function open(ctx: OpenContext, request: OpenRequest): Promise<Channel> {
  if (request.kind === "subsystem") throw new UnsupportedError("container", `subsystem ${request.name}`);
  const options = containerOptions(ctx);
  const endpoint = await resolveEngineHost(options.engine, options.dockerHost, engineEnv(ctx));
  const engine = await EngineClient.connect(
    endpoint,
    options.engine,
    processEnv("DOCKER_API_VERSION"),
    ctx.signal,
    ctx.dial,
  );
  const name = options.container;
  const path = `/containers/${encodeURIComponent(name)}`;

  const inspected = await engine.request("GET", `${path}/json`);
  if (inspected.status !== 200) throw engineError(inspected, engine, name);
  const info = parseJson(inspected.body, engine.name) as {
    State?: { Running?: boolean; Paused?: boolean; Restarting?: boolean; Status?: string };
    Config?: { Env?: unknown };
  };
  if (info.State?.Running !== true || info.State.Paused === true) {
    const status = info.State?.Status;
    throw notRunning(name, engine, info.State?.Paused ? "paused" : status ? `not running (${status})` : "not running");
  }
  if (options.workingDirectory !== undefined && !apiAtLeast(engine.version, "1.35")) {
    throw new UsageError(`--workdir needs API 1.35; ${engine.name} speaks ${engine.version}`, {
      hint: "leave out --workdir, or upgrade the engine",
    });
  }
  const shell = containerShell(info.Config?.Env);
  const cmd = request.kind === "exec" ? [shell, "-c", request.command] : [shell];
  const tty = request.pty !== undefined;
  const tag = crypto.randomUUID();
  const envList = Object.entries({
    ...(request.env ?? {}),
    ...options.environment,
    ...(request.pty ? { TERM: request.pty.term } : {}),
    [EXEC_TAG]: tag,
  }).map(([k, v]) => `${k}=${v}`);
  // ConsoleSize from API 1.42 (Docker); Podman takes the size as h and w in the start body instead
  const size = request.pty && apiAtLeast(engine.version, "1.42")
    ? { ConsoleSize: [request.pty.rows, request.pty.columns] }
    : {};
  const created = await engine.request("POST", `${path}/exec`, {
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: tty,
    Cmd: cmd,
    Env: envList,
    ...(options.user !== undefined ? { User: options.user } : {}),
    ...(options.workingDirectory !== undefined ? { WorkingDir: options.workingDirectory } : {}),
    ...(options.privileged ? { Privileged: true } : {}),
    ...size,
  });
  if (created.status !== 201 && created.status !== 200) throw engineError(created, engine, name);
  const execId = (parseJson(created.body, engine.name) as { Id?: unknown }).Id;
  if (typeof execId !== "string" || !/^[A-Za-z0-9]+$/.test(execId)) {
    throw new TransportError(`${engine.name} created an exec without a usable ID`, { layer: "protocol" });
  }
  const podmanSize = request.pty && engine.flavor === "podman" ? { h: request.pty.rows, w: request.pty.columns } : {};
  // the start body's Tty decides the framing, so it must say what create said
  const { conn, first } = await engine.hijack(`/exec/${execId}/start`, {
    Detach: false,
    Tty: tty,
    ...size,
    ...podmanSize,
  }, name);
  const sizer = new Sizer(engine, execId);
  const channel = execChannel(
    engine,
    execId,
    conn,
    first,
    tty,
    sizer,
    (signal) => signalTagged(engine, name, tag, signal),
  );
  // Podman took the size in the start body; a resize on top of it races it there and may land first
  if (request.pty && engine.flavor !== "podman") void sizer.initial(request.pty);
  const onAbort = () => void channel[Symbol.asyncDispose]();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  channel.exit.finally(() => ctx.signal.removeEventListener("abort", onAbort));
  return channel;
}

/** How Docker's in-stream start failures begin (runc's, and the engine's own for an unknown user or group). */
const START_FAILURES = ["OCI runtime exec failed", "unable to find user", "unable to find group"];

/** Whether `text` is, or may still become, one of {@linkcode START_FAILURES}. */
function mayBeStartFailure(text: string): boolean {
  return START_FAILURES.some((p) => text.startsWith(p) || p.startsWith(text));
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The container's `$SHELL` from its configured environment, else `/bin/sh`. */
function containerShell(env: unknown): string {
  if (Array.isArray(env)) {
    for (const entry of env) {
      if (typeof entry === "string" && entry.startsWith("SHELL=") && entry.length > 6) return entry.slice(6);
    }
  }
  return "/bin/sh";
}

/**
 * The engine's running containers, for `remote get --container`: what `docker ps` lists (`GET /containers/json`),
 * with the full ID, the name without its leading `/`, the image and the state.
 *
 * @throws {RemoteError} engine not running (241), permission denied on the socket (245), API too old (244)
 */
export async function targets(ctx: OpenContext): Promise<TargetRows> {
  const p = parameters.read(ctx.parameters);
  const endpoint = await resolveEngineHost("docker", p.dockerHost, engineEnv(ctx));
  const engine = await EngineClient.connect(
    endpoint,
    "docker",
    processEnv("DOCKER_API_VERSION"),
    ctx.signal,
    ctx.dial,
  );
  const reply = await engine.request("GET", "/containers/json");
  if (reply.status !== 200) throw engineError(reply, engine, "");
  const list = parseJson(reply.body, engine.name);
  if (!Array.isArray(list)) {
    throw new TransportError(`${engine.name} sent no list of containers`, { layer: "protocol" });
  }
  const text = (v: unknown) => (typeof v === "string" ? v : "");
  const rows = list.map((c: { Id?: unknown; Names?: unknown; Image?: unknown; State?: unknown }) => ({
    Id: text(c.Id),
    Name: Array.isArray(c.Names) ? text(c.Names[0]).replace(/^\//, "") : "",
    Image: text(c.Image),
    State: text(c.State),
  }));
  rows.sort((a, b) => a.Name.localeCompare(b.Name));
  return { columns: ["Id", "Name", "Image", "State"], rows };
}

function parseJson(body: Uint8Array, engine: string): unknown {
  try {
    const v = JSON.parse(new TextDecoder().decode(body));
    if (v !== null && typeof v === "object") return v;
  } catch {
    // falls through
  }
  throw new TransportError(`${engine} sent a reply that is not a JSON object`, { layer: "protocol" });
}

/**
 * Resizes an exec's terminal, one request at a time, each with the latest size asked for, so an older size never
 * lands after a newer one. The first resize races the exec's start: Docker refuses it (after a wait) while the exec
 * is not yet running, and without a size the PTY is 0×0; the docker CLI retries ten times, and so does this.
 */
class Sizer {
  #engine: EngineClient;
  #execId: string;
  #wanted: WindowSize | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #applied = false;

  constructor(engine: EngineClient, execId: string) {
    this.#engine = engine;
    this.#execId = execId;
  }

  #apply(): Promise<void> {
    const next = this.#queue.then(() => resize(this.#engine, this.#execId, this.#wanted!));
    this.#queue = next.then(() => this.#applied = true, () => {});
    return next;
  }

  async initial(size: WindowSize): Promise<void> {
    this.#wanted ??= size;
    for (let attempt = 1; attempt <= 10 && !this.#applied; attempt++) {
      if (await this.#apply().then(() => true, () => false)) return;
      await new Promise((r) => setTimeout(r, attempt * 10));
    }
  }

  /** @throws {RemoteError} when the engine refuses */
  set(size: WindowSize): Promise<void> {
    this.#wanted = size;
    return this.#apply();
  }
}

async function resize(engine: EngineClient, execId: string, size: WindowSize): Promise<void> {
  const rows = Math.max(1, Math.trunc(size.rows));
  const columns = Math.max(1, Math.trunc(size.columns));
  const reply = await engine.request("POST", `/exec/${execId}/resize?h=${rows}&w=${columns}`);
  // Docker answers 200, Podman 201
  if (reply.status !== 200 && reply.status !== 201) throw engineError(reply, engine, execId);
}

/** A readable stream fed by pushes, telling the pump when the reader has fallen behind. */
class Output {
  readonly stream: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #wake = Promise.withResolvers<void>();
  #done = false;

  constructor() {
    this.stream = new ReadableStream<Uint8Array>({
      start: (c) => void (this.#controller = c),
      pull: () => this.#wake.resolve(),
      cancel: () => {
        this.#done = true;
        this.#wake.resolve();
      },
    }, { highWaterMark: BUFFER_BYTES, size: (chunk) => chunk.byteLength });
  }

  push(bytes: Uint8Array): void {
    if (this.#done || bytes.length === 0) return;
    this.#controller.enqueue(bytes);
  }

  /** resolves once there is room again (or nobody reads any more) */
  async room(): Promise<void> {
    while (!this.#done && (this.#controller.desiredSize ?? 1) <= 0) {
      this.#wake = Promise.withResolvers<void>();
      await this.#wake.promise;
    }
  }

  close(): void {
    if (this.#done) return;
    this.#done = true;
    try {
      this.#controller.close();
    } catch {
      // cancelled by the reader
    }
  }

  error(reason: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#controller.error(reason);
  }
}

function execChannel(
  engine: EngineClient,
  execId: string,
  conn: EngineConn,
  first: Uint8Array,
  tty: boolean,
  sizer: Sizer,
  kill: (signal: string) => Promise<void>,
): Channel {
  const stdout = new Output();
  const stderr = new Output();
  if (tty) stderr.close(); // a terminal merges stderr into stdout
  const decoder = tty ? undefined : new StreamDecoder();
  let systemError = "";
  let disposed = false;
  // Docker 20.10 writes why an exec could not start (bad --workdir, unknown --user) into the stdout stream; such
  // text is held until it is clear whether anything else follows, and then goes to stderr, where errors belong
  const startFailure = { state: tty ? "released" : "watching", held: new Uint8Array(0) as Uint8Array };

  const deliver = async (chunk: Uint8Array) => {
    if (!decoder) {
      stdout.push(chunk);
      await stdout.room();
      return;
    }
    for (const piece of decoder.push(chunk)) {
      // Stream 3 carries the engine's own error text; the payload views a buffer read once, so no copy is needed
      if (piece.stream === "system") systemError += new TextDecoder().decode(piece.bytes);
      else if (piece.stream === "stderr") stderr.push(piece.bytes);
      else if (startFailure.state === "watching" && startFailure.held.length + piece.bytes.length <= 4096) {
        startFailure.held = concatBytes(startFailure.held, piece.bytes);
        if (!mayBeStartFailure(new TextDecoder().decode(startFailure.held.subarray(0, 40)))) {
          startFailure.state = "released";
          stdout.push(startFailure.held);
        }
      } else {
        if (startFailure.state === "watching") stdout.push(startFailure.held);
        startFailure.state = "released";
        stdout.push(piece.bytes);
      }
    }
    await stdout.room();
    await stderr.room();
  };

  const pumped = (async () => {
    if (first.length > 0) await deliver(first);
    // Reads go into one slab until less than a read's worth is left: the engine sends a few KiB at a time, and a
    // fresh 64 KiB buffer per read cost more to allocate and collect than the bytes it carried. The pieces passed
    // on view the slab, which is never written twice.
    let slab = new Uint8Array(SLAB_BYTES);
    let used = 0;
    while (true) {
      if (slab.length - used < BUFFER_BYTES) {
        slab = new Uint8Array(SLAB_BYTES);
        used = 0;
      }
      const buf = slab.subarray(used);
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (error) {
        if (disposed) return;
        throw new TransportError(`lost the connection to ${engine.name}`, { layer: "channel", cause: error });
      }
      if (n === null) break;
      used += n;
      await deliver(buf.subarray(0, n));
    }
    decoder?.finish();
    if (startFailure.state === "watching" && startFailure.held.length > 0) {
      (/\r?\n$/.test(new TextDecoder().decode(startFailure.held)) ? stderr : stdout).push(startFailure.held);
    }
    if (systemError !== "") {
      throw new TransportError(`${engine.name}: ${systemError.trim().split("\n")[0]}`, { layer: "server" });
    }
  })();
  pumped.then(() => {
    stdout.close();
    stderr.close();
  }, (error) => {
    stdout.error(error);
    stderr.error(error);
  });

  const exit: Promise<ExitStatus> = pumped.then(async (): Promise<ExitStatus> => {
    if (disposed) return { kind: "lost", error: new Error("closed") };
    return await exitCode(engine, execId);
  }).catch((error: Error): ExitStatus => ({ kind: "lost", error }));

  let stdinClosed = false;
  const stdin = new WritableStream<Uint8Array>({
    async write(chunk) {
      if (stdinClosed) return;
      try {
        await writeAll(conn, chunk);
      } catch (error) {
        // The command ended and the engine closed its end: the rest of the input has nobody to read it, as with
        // a pipe to a process that exited. ssh drops it the same way.
        stdinClosed = true;
        if (disposed || error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset) {
          return;
        }
        throw new TransportError(`lost the connection to ${engine.name}`, { layer: "channel", cause: error });
      }
    },
    async close() {
      // Without a terminal, the half-close is the command's end of input (the engine closes its stdin). With one,
      // Docker would answer a half-close by closing the output and leaving the process running, so a terminal gets
      // no end of file here, as the local transport's does not.
      if (tty || stdinClosed) return;
      stdinClosed = true;
      await conn.closeWrite().catch(() => {});
    },
  });

  let ended = false;
  void exit.then(() => ended = true);
  let disposing: Promise<void> | undefined;
  return {
    stdin,
    stdout: stdout.stream,
    stderr: stderr.stream,
    exit,
    async resize(size: WindowSize) {
      await sizer.set(size).catch((error) => {
        // the process may have just ended; a resize then has nothing to reach
        if (!(error instanceof RemoteError)) throw error;
      });
    },
    async signal(name: string) {
      if (!SIGNAL_NAMES.has(name)) {
        throw new UsageError(`unknown signal ${name}`, { hint: `use one of ${[...SIGNAL_NAMES].join(", ")}` });
      }
      if (!ended) await kill(name);
    },
    [Symbol.asyncDispose]() {
      disposing ??= (async () => {
        // Closing the connection alone would leave the command running in the container (as docker exec does).
        if (!ended) {
          // a terminal going away hangs up its session; a command without one is asked to end
          await kill(tty ? "HUP" : "TERM").catch(() => {});
          if (!await settlesWithin(exit.catch(() => {}), GRACE_MS)) {
            await kill("KILL").catch(() => {});
            await settlesWithin(exit.catch(() => {}), GRACE_MS);
          }
        }
        disposed = true;
        closeQuietly(conn);
        stdout.close();
        stderr.close();
        await pumped.catch(() => {});
      })();
      return disposing;
    },
  };
}

/**
 * Reads the exit code from `GET /exec/{id}/json` once the stream has ended. Docker has it at once; Podman says
 * `ExitCode: 0` while still running, so `Running` is checked first.
 */
async function exitCode(engine: EngineClient, execId: string): Promise<ExitStatus> {
  const deadline = Date.now() + EXIT_CODE_WAIT_MS;
  for (let attempt = 0;; attempt++) {
    const reply = await engine.request("GET", `/exec/${execId}/json`);
    if (reply.status === 404) {
      return {
        kind: "lost",
        error: new TransportError(`the exec vanished from ${engine.name} before its exit code was read`, {
          layer: "channel",
          hint: "the container may have stopped",
        }),
      };
    }
    if (reply.status !== 200) throw engineError(reply, engine, execId);
    const info = parseJson(reply.body, engine.name) as { Running?: unknown; ExitCode?: unknown };
    if (info.Running === false && typeof info.ExitCode === "number") return { kind: "exited", code: info.ExitCode };
    if (Date.now() > deadline) {
      return {
        kind: "lost",
        error: new TransportError(`${engine.name} never reported the command's exit code`, { layer: "channel" }),
      };
    }
    await new Promise((r) => setTimeout(r, Math.min(100, 5 * (attempt + 1))));
  }
}

/**
 * The shell script that sends `signal` to every process under `proc` (the container's /proc) whose environment
 * holds `tag`. The tagged processes are found first and signalled together by one `kill`, lowest PID (the command's
 * shell) first, as a terminal signals a whole process group at once. Signalled one at a time as the glob lists them
 * (as text: 100123 before 99987), a shell went on to its next command after its child had died of the signal and
 * before its own turn came.
 */
export function signalScript(tag: string, signal: string, proc = "/proc"): string {
  return `p=; for d in ${proc}/[0-9]*; do ` +
    `if tr '\\000' '\\n' < "$d/environ" 2>/dev/null | grep -qx '${EXEC_TAG}=${tag}'; then ` +
    `p="$p\${d##*/} "; fi; done; ` +
    `[ -z "$p" ] || kill -s ${signal} $(echo $p | tr ' ' '\\n' | sort -n) 2>/dev/null; true`;
}

/**
 * Sends `signal` to every process of the container that carries `tag`, through a second exec run as root (only
 * root may read every process's environ). A container without a shell, grep, tr and kill cannot be signalled; that
 * is reported, not hidden.
 *
 * @throws {RemoteError} when the engine refuses the second exec
 */
async function signalTagged(engine: EngineClient, container: string, tag: string, signal: string): Promise<void> {
  const script = signalScript(tag, signal);
  const created = await engine.request("POST", `/containers/${encodeURIComponent(container)}/exec`, {
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    User: "0",
    Cmd: ["/bin/sh", "-c", script],
  });
  if (created.status !== 201 && created.status !== 200) throw engineError(created, engine, container);
  const id = (parseJson(created.body, engine.name) as { Id?: unknown }).Id;
  if (typeof id !== "string" || !/^[A-Za-z0-9]+$/.test(id)) {
    throw new TransportError(`${engine.name} created an exec without a usable ID`, { layer: "protocol" });
  }
  // attached, so the reply ends when the killer does: by then the signal has been sent
  const { conn } = await engine.hijack(`/exec/${id}/start`, { Detach: false, Tty: false }, container);
  const timer = setTimeout(() => closeQuietly(conn), GRACE_MS);
  try {
    const sink = new Uint8Array(4096);
    while ((await conn.read(sink).catch(() => null)) !== null) { /* the script prints nothing worth reading */ }
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}
