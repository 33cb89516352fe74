/**
 * The local transport: the user's shell, or one command, on this machine. It is the reference plugin: it
 * uses nothing but the SDK (`plugins/mod.ts`), so it shows every part of a {@linkcode Channel}.
 *
 * A request with a PTY runs in a real pseudo-terminal (npm `@lydell/node-pty`, which needs `--allow-ffi`);
 * one without runs with three pipes, stderr apart. The shell is `$SHELL` (`/bin/sh` when unset), started
 * in the current directory, and a command runs as `$SHELL -c command`, as sshd does it.
 *
 * @example Running one command
 * ```ts ignore
 * import { open } from "./mod.ts";
 * await using channel = await open(ctx, { kind: "exec", command: "uname -a" });
 * const status = await channel.exit;
 * ```
 *
 * @module
 */
import type * as NodePty from "@lydell/node-pty";
import type { Buffer } from "node:buffer";
import {
  type Channel,
  type ExitStatus,
  killGroup,
  type OpenContext,
  type OpenRequest,
  type PtyRequest,
  settlesWithin,
  SIGNAL_NAMES,
  TransportError,
  UnsupportedError,
  UsageError,
  type WindowSize,
} from "../../plugins/mod.ts";
import { addonMissing } from "./pty_addon.ts";
export { manifest } from "./manifest.ts";
export { probe } from "./pty_addon.ts";

/** Output read ahead of the consumer before the process is made to wait. */
const BUFFER_BYTES = 64 * 1024;

/** How long a process may take to end after SIGHUP/SIGTERM at dispose before it gets SIGKILL. */
const GRACE_MS = 2_000;

/**
 * Starts `request` on this machine.
 *
 * The subsystem `powershell` is PowerShell in server mode, `pwsh -NoLogo -NoProfile -s` (what Enter-PSSession
 * with no target runs): its stdio carries PSRP's out-of-process framing, as the SSH subsystem does.
 *
 * @throws {UnsupportedError} for another subsystem
 * @throws {TransportError} when the shell (or pwsh) cannot be started
 * @throws {RemoteError} `unsupported` (234) for a PTY when node-pty's addon is not in this installation
 */
export function open(ctx: OpenContext, request: OpenRequest): Promise<Channel> {
  if (request.kind === "subsystem" && request.name.toLowerCase() !== "powershell") {
    return Promise.reject(new UnsupportedError("local", `subsystem ${request.name}`));
  }
  if (ctx.signal.aborted) return Promise.reject(ctx.signal.reason);
  if (request.kind === "subsystem") return openPowerShell(ctx);
  const shell = readEnv("SHELL") || "/bin/sh";
  const args = request.kind === "exec" ? ["-c", request.command] : [];
  const env = { ...Deno.env.toObject(), ...request.env };
  const pty = request.pty;
  if (!pty) return started(ctx, shell, () => openPipes(shell, args, env));
  // node-pty (a native addon) loads with the first PTY: commands on pipes work without it
  return loadNodePty().then((nodePty) =>
    started(ctx, shell, () => openPty(nodePty.spawn, nodePty.Buffer, shell, args, env, pty))
  );
}

let nodePtyLoading: Promise<typeof NodePty & { Buffer: typeof Buffer }> | undefined;

/** node-pty, loaded once; rejects with a one-line error when its addon is not in this installation. */
function loadNodePty(): Promise<typeof NodePty & { Buffer: typeof Buffer }> {
  return nodePtyLoading ??= Promise.all([import("@lydell/node-pty"), import("node:buffer"), signalTable()]).then(
    ([nodePty, { Buffer }]) => ({ ...nodePty, Buffer }),
    (cause) => {
      throw addonMissing(cause);
    },
  );
}

let signalsLoading: Promise<Record<string, number>> | undefined;
/** signal numbers to names without `SIG`, once {@linkcode signalTable} has loaded */
let signalNames = new Map<number, string>();

/**
 * Node's signal numbers (node:os), loaded with the first process: `remote --version` loads this module for
 * its {@linkcode probe}, and a static `node:` import would start Deno's Node layer there (~10 ms).
 */
function signalTable(): Promise<Record<string, number>> {
  return signalsLoading ??= import("node:os").then(({ constants }) => {
    const table = constants.signals as Record<string, number>;
    signalNames = new Map(Object.entries(table).map(([name, n]) => [n, name.replace(/^SIG/, "")]));
    return table;
  });
}

/** Starts a channel with `start`, tied to `ctx.signal`; a shell that cannot start is a clear error. */
function started(ctx: OpenContext, shell: string, start: () => Channel): Promise<Channel> {
  if (ctx.signal.aborted) return Promise.reject(ctx.signal.reason);
  let channel: Channel;
  try {
    channel = start();
  } catch (cause) {
    return Promise.reject(
      new TransportError(`cannot start ${shell}`, {
        layer: "channel",
        code: "hostMissing",
        cause,
        hint: "set SHELL to a shell that exists, or unset it to use /bin/sh",
      }),
    );
  }
  const onAbort = () => void channel[Symbol.asyncDispose]();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  channel.exit.finally(() => ctx.signal.removeEventListener("abort", onAbort));
  return Promise.resolve(channel);
}

function openPowerShell(ctx: OpenContext): Promise<Channel> {
  let channel: Channel;
  try {
    channel = openPipes("pwsh", ["-NoLogo", "-NoProfile", "-s"], Deno.env.toObject());
  } catch (cause) {
    return Promise.reject(
      new TransportError("cannot start pwsh (PowerShell 7) on this computer", {
        layer: "channel",
        code: "hostMissing",
        cause,
        hint: "install PowerShell 7 and put pwsh on PATH, e.g. dotnet tool install --global PowerShell",
      }),
    );
  }
  const onAbort = () => void channel[Symbol.asyncDispose]();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  channel.exit.finally(() => ctx.signal.removeEventListener("abort", onAbort));
  return Promise.resolve(channel);
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function checkSignal(name: string): Deno.Signal {
  if (!SIGNAL_NAMES.has(name)) {
    throw new UsageError(`unknown signal ${name}`, { hint: `use one of ${[...SIGNAL_NAMES].join(", ")}` });
  }
  return `SIG${name}` as Deno.Signal;
}

function signaled(n: number): ExitStatus {
  return { kind: "signaled", signal: signalNames.get(n) ?? String(n), code: 128 + n };
}

function openPty(
  spawn: typeof NodePty.spawn,
  Buffer: typeof import("node:buffer").Buffer,
  shell: string,
  args: string[],
  env: Record<string, string>,
  pty: PtyRequest,
): Channel {
  const term = spawn(shell, args, {
    name: pty.term,
    cols: pty.columns,
    rows: pty.rows,
    cwd: Deno.cwd(),
    env: { ...env, TERM: pty.term },
    // Buffers, not strings: a UTF-8 character split across reads must reach the user intact
    encoding: null,
  });
  const pid = term.pid;
  let ended = false;
  let output!: ReadableStreamDefaultController<Uint8Array>;
  const stdout = new ReadableStream<Uint8Array>({
    start(controller) {
      output = controller;
    },
    // a slow reader pauses the PTY, so the child blocks instead of memory growing
    pull() {
      term.resume();
    },
    cancel() {
      term.resume();
    },
  }, { highWaterMark: BUFFER_BYTES, size: (chunk) => chunk.byteLength });
  term.onData((data: unknown) => {
    if (ended) return;
    // node-pty hands out Node Buffers (views into pooled memory); copy into a plain Uint8Array
    output.enqueue(new Uint8Array(data as Uint8Array));
    if ((output.desiredSize ?? 1) <= 0) term.pause();
  });
  // node-pty reports exit only after the PTY has been read to its end, so all output is enqueued by now
  const exit = new Promise<ExitStatus>((resolve) => {
    term.onExit(({ exitCode, signal }) => {
      ended = true;
      try {
        output.close();
      } catch {
        // cancelled by the reader
      }
      resolve(signal ? signaled(signal) : { kind: "exited", code: exitCode });
    });
  });
  const stdin = new WritableStream<Uint8Array>({
    write(chunk) {
      if (ended) throw new TransportError("the local process has ended", { layer: "channel" });
      // node-pty's typings say string, but it writes Buffers as they are (no re-encoding)
      term.write(Buffer.from(chunk) as unknown as string);
    },
    // a terminal has no end of file of its own; the process reads until it exits or the channel is disposed
  });
  return {
    stdin,
    stdout,
    stderr: closedStream(),
    exit,
    resize(size: WindowSize) {
      if (!ended) term.resize(size.columns, size.rows);
    },
    signal(name: string) {
      const sig = checkSignal(name);
      if (!ended) Deno.kill(pid, sig);
    },
    async [Symbol.asyncDispose]() {
      if (!ended) {
        // closing a terminal hangs up everything in its session
        killSession(pid, "SIGHUP");
        if (!await settlesWithin(exit, GRACE_MS)) killSession(pid, "SIGKILL");
        await exit;
      }
      // children that left the shell's process group but stayed in the PTY's session
      killSession(pid, "SIGKILL");
    },
  };
}

function openPipes(shell: string, args: string[], env: Record<string, string>): Channel {
  const child = new Deno.Command(shell, {
    args,
    env,
    clearEnv: true,
    cwd: Deno.cwd(),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    // a process group of its own, so dispose can end the command's children too
    detached: true,
  }).spawn();
  const pid = child.pid;
  let ended = false;
  const status = child.status.then((s) => {
    ended = true;
    return s;
  });
  const stdout = watchEnd(child.stdout);
  const stderr = watchEnd(child.stderr);
  // once disposed, nobody waits for the rest of the output
  const disposed = Promise.withResolvers<void>();
  const delivered = Promise.race([Promise.all([stdout.done, stderr.done]), disposed.promise]);
  const exit = Promise.all([status, delivered, signalTable()]).then(([s, , signals]): ExitStatus => {
    if (s.signal !== null) {
      const n = signals[s.signal];
      return n ? signaled(n) : { kind: "signaled", signal: s.signal.replace(/^SIG/, ""), code: s.code };
    }
    return { kind: "exited", code: s.code };
  });
  return {
    stdin: child.stdin,
    stdout: stdout.stream,
    stderr: stderr.stream,
    exit,
    signal(name: string) {
      const sig = checkSignal(name);
      // To the command's whole process group, as a terminal's Ctrl-C goes to its foreground group: a shell
      // such as dash runs `sleep 60` as a child and waits, so a signal to the shell alone would not stop it.
      if (!ended) killGroup(pid, sig);
    },
    async [Symbol.asyncDispose]() {
      disposed.resolve();
      if (!ended) {
        killGroup(pid, "SIGTERM");
        if (!await settlesWithin(status, GRACE_MS)) killGroup(pid, "SIGKILL");
        await status;
      }
      killGroup(pid, "SIGKILL");
      await child.stdin.close().catch(() => {});
      stdout.stream.cancel().catch(() => {});
      stderr.stream.cancel().catch(() => {});
    },
  };
}

/**
 * Passes a stream through and reports when its end has been taken in (or it was cancelled). It reads
 * ahead up to a buffer's worth, so a reader that is slow, or only reads stdout, still sees `exit` settle.
 */
function watchEnd(source: ReadableStream<Uint8Array>): { stream: ReadableStream<Uint8Array>; done: Promise<void> } {
  const done = Promise.withResolvers<void>();
  const reader = source.getReader();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const chunk = await reader.read();
        if (chunk.done) {
          controller.close();
          done.resolve();
        } else {
          controller.enqueue(chunk.value);
        }
      } catch (error) {
        controller.error(error);
        done.resolve();
      }
    },
    cancel(reason) {
      done.resolve();
      return reader.cancel(reason);
    },
  }, { highWaterMark: BUFFER_BYTES, size: (chunk) => chunk.byteLength });
  return { stream, done: done.promise };
}

function closedStream(): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.close();
    },
  });
}

/**
 * Signals every process in the session `sid` leads (a PTY's child calls setsid), found in /proc, so job
 * control's process groups are reached too. A session's ID stays reserved while any member lives, so
 * this never reaches a stranger. Without /proc, only the leader and its group.
 */
function killSession(sid: number, signal: Deno.Signal): void {
  let pids: number[];
  try {
    pids = [];
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
        // the command name may hold spaces and parentheses: the fields resume after the last ")"
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        if (Number(fields[3]) === sid) pids.push(Number(entry.name));
      } catch {
        // ended while we looked
      }
    }
  } catch {
    pids = [sid, -sid];
  }
  for (const pid of pids) {
    try {
      Deno.kill(pid, signal);
    } catch {
      // gone already
    }
  }
}
