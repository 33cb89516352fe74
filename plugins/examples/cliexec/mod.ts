/**
 * An example third-party transport, written only against the SDK (plugins/mod.ts): a shell or a command in
 * a pod, container or instance, through the CLI that already reaches it. docs/writing-a-plugin.md walks
 * through it.
 *
 * ```sh
 * remote --plugin plugins/examples/cliexec/mod.ts enter cliexec://web1 --namespace prod
 * remote --plugin plugins/examples/cliexec/mod.ts invoke cliexec://web1 \
 *   --exec-cli 'docker exec -i {tty} {instance}' -- uname -a
 * ```
 *
 * What it shows:
 * - open() maps one OpenRequest onto one run of the CLI: `<template> env VAR=… sh [-c command]`;
 * - without a PTY the CLI runs with three pipes, so stdout and stderr stay apart, closing stdin closes the
 *   CLI's (`-i` carries the end of input on), and the CLI's exit code is the command's;
 * - with a PTY the CLI runs in a local pseudo-terminal (npm `@lydell/node-pty`), because a CLI's `-t`
 *   gives the far side a terminal only when its own stdin is one; resizing the local terminal makes the
 *   CLI pass the new size on (SIGWINCH), as ssh -t does;
 * - an exec CLI forwards no signal to the far process, so signal() runs the CLI a second time to signal
 *   every process carrying this channel's tag in its environment (needs sh, grep and /proc there);
 * - the CLI's own failures (no such pod, no cluster) reach the user as its stderr and exit code: they
 *   cannot be told apart from the command's, so only what fails before the CLI starts is an error.
 *
 * Run directly, this file serves the same transport over stdio (`serve()`), so a `remote-transport-cliexec`
 * executable wrapping `deno run -A mod.ts` works with the prebuilt binary.
 *
 * @module
 */
import { spawn } from "@lydell/node-pty";
import { Buffer } from "node:buffer";
import { constants } from "node:os";
import {
  type Channel,
  type ExitStatus,
  killGroup,
  type OpenContext,
  type OpenRequest,
  type PtyRequest,
  serve,
  settlesWithin,
  TransportError,
  UnsupportedError,
  UsageError,
} from "../../mod.ts";
import { expandTemplate, remoteArgv } from "./command_line.ts";
import { DEFAULT_EXEC_CLI, manifest, parameters } from "./manifest.ts";
export { manifest };

/** The environment variable that marks every process of one channel, so signal() can find them. */
const TAG = "REMOTE_CLIEXEC_TAG";

/** The signals signal() takes, as RFC 4254 §6.10 names them (without `SIG`). */
const SIGNALS = new Set(["HUP", "INT", "KILL", "QUIT", "TERM", "USR1", "USR2"]);

/** Run inside by the second CLI: signals ($1) every process whose environment holds the tag ($2). */
const SIGNAL_SCRIPT = 'for d in /proc/[0-9]*; do if grep -q "$2" "$d/environ" 2>/dev/null; then ' +
  'kill -s "$1" "${d#/proc/}" 2>/dev/null; fi; done; true';

/** How long the signalling CLI may take, and how long the CLI may take to end after dispose. */
const SIGNAL_TIMEOUT_MS = 10_000;
const GRACE_MS = 2_000;

/** Output read ahead of the consumer before the CLI is made to wait. */
const BUFFER_BYTES = 64 * 1024;

/**
 * Starts a shell or a command through the exec CLI (`--exec-cli`, default kubectl) in the instance the
 * target names.
 *
 * @throws {UnsupportedError} for a subsystem request
 * @throws {TransportError} `config` (exit 230) for a bad template or name, `hostMissing` (exit 252) when the
 * CLI is not installed
 *
 * @example One command through docker exec
 * ```ts ignore
 * await using channel = await open(ctx, { kind: "exec", command: "uname -a" });
 * console.log(await channel.exit); // { kind: "exited", code: 0 }
 * ```
 */
export async function open(ctx: OpenContext, request: OpenRequest): Promise<Channel> {
  if (request.kind === "subsystem") throw new UnsupportedError("cliexec", `subsystem ${request.name}`);
  ctx.signal.throwIfAborted();
  if (ctx.target.host === "") {
    throw new TransportError("no pod, container or instance given", {
      layer: "config",
      hint: "name one: remote enter cliexec://<name>",
    });
  }
  // read through their declaration: `params.namespace: string | undefined`, never a cast
  const params = parameters.read(ctx.parameters);
  const template = params.execCli ?? DEFAULT_EXEC_CLI;
  const cliWords = (tty: boolean) =>
    expandTemplate(template, {
      instance: ctx.target.host,
      tty: tty ? "-t" : "",
      namespace: params.namespace,
      container: params.container,
      user: ctx.target.user,
    });
  const [cli, ...cliArgs] = cliWords(request.pty !== undefined);
  const path = await findExecutable(cli);

  const tag = crypto.randomUUID();
  const env = { [TAG]: tag, ...(request.pty ? { TERM: request.pty.term } : {}), ...request.env };
  const args = [...cliArgs, ...remoteArgv(env, request.kind === "exec" ? request.command : undefined)];

  const signalFar = async (name: string) => {
    if (!SIGNALS.has(name)) {
      throw new UsageError(`unknown signal ${name}`, { hint: `use one of ${[...SIGNALS].join(", ")}` });
    }
    const killer = await new Deno.Command(path, {
      args: [...cliWords(false).slice(1), "sh", "-c", SIGNAL_SCRIPT, "sh", name, `${TAG}=${tag}`],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(SIGNAL_TIMEOUT_MS),
    }).output();
    if (!killer.success) {
      const why = new TextDecoder().decode(killer.stderr).trim().split("\n").pop() || `exit code ${killer.code}`;
      throw new TransportError(`cannot send ${name} through ${cli}: ${why}`, { layer: "channel" });
    }
  };

  let channel: Channel;
  try {
    channel = request.pty ? openPty(path, args, request.pty, signalFar) : openPipes(path, args, signalFar);
  } catch (cause) {
    throw new TransportError(`cannot run ${path}: ${cause instanceof Error ? cause.message : cause}`, {
      layer: "config",
      code: "hostMissing",
      cause,
      hint: "check that the exec CLI is an executable program",
    });
  }
  // ctx.signal aborting means: end everything, as dispose does.
  const onAbort = () => void channel[Symbol.asyncDispose]();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  void channel.exit.finally(() => ctx.signal.removeEventListener("abort", onAbort));
  return channel;
}

/** The CLI's path: `name` itself when it has a slash, else the first executable `name` on PATH. */
async function findExecutable(name: string): Promise<string> {
  const candidates = name.includes("/")
    ? [name]
    : (Deno.env.get("PATH") ?? "").split(":").filter((dir) => dir !== "").map((dir) => `${dir}/${name}`);
  for (const candidate of candidates) {
    try {
      const info = await Deno.stat(candidate);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return candidate;
    } catch {
      // not there: try the next
    }
  }
  throw new TransportError(`${name} is not installed here (not found on PATH)`, {
    layer: "config",
    code: "hostMissing",
    hint: `install ${name}, or name another CLI with --exec-cli, e.g. 'docker exec -i {tty} {instance}'`,
  });
}

/** Without a PTY: three pipes, stderr apart; the CLI in a process group of its own. */
function openPipes(path: string, args: string[], signalFar: (name: string) => Promise<void>): Channel {
  const child = new Deno.Command(path, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  let ended = false;
  const status = child.status.finally(() => ended = true);
  const stdout = watchEnd(child.stdout);
  const stderr = watchEnd(child.stderr);
  const disposing = Promise.withResolvers<void>();
  // `exit` settles once the CLI has ended and both streams were taken in (or dispose gave up on them).
  const exit = Promise.all([status, Promise.race([Promise.all([stdout.done, stderr.done]), disposing.promise])])
    .then(([s]): ExitStatus =>
      s.signal === null
        ? { kind: "exited", code: s.code }
        : { kind: "signaled", signal: s.signal.replace(/^SIG/, ""), code: s.code }
    );
  let disposed: Promise<void> | undefined;
  return {
    stdin: child.stdin,
    stdout: stdout.stream,
    stderr: stderr.stream,
    exit,
    signal: (name) => ended ? undefined : signalFar(name),
    [Symbol.asyncDispose]() {
      disposed ??= (async () => {
        disposing.resolve();
        if (!ended) {
          // Ending the CLI would leave the far process running: end that first, then the CLI.
          await signalFar("KILL").catch(() => {});
          killGroup(child.pid, "SIGTERM");
          if (!await settlesWithin(status, GRACE_MS)) killGroup(child.pid, "SIGKILL");
          await status;
        }
        await child.stdin.close().catch(() => {});
        await stdout.stream.cancel().catch(() => {});
        await stderr.stream.cancel().catch(() => {});
      })();
      return disposed;
    },
  };
}

/** With a PTY: the CLI in a local pseudo-terminal of the asked size; stderr is merged into it. */
function openPty(path: string, args: string[], pty: PtyRequest, signalFar: (name: string) => Promise<void>): Channel {
  const term = spawn(path, args, {
    name: pty.term,
    cols: pty.columns,
    rows: pty.rows,
    cwd: Deno.cwd(),
    env: { ...Deno.env.toObject(), TERM: pty.term },
    encoding: null, // Buffers, so a UTF-8 character split across reads arrives intact
  });
  let ended = false;
  let output!: ReadableStreamDefaultController<Uint8Array>;
  // A reader that falls behind pauses the PTY, so the CLI waits instead of memory growing.
  const stdout = new ReadableStream<Uint8Array>({
    start: (controller) => void (output = controller),
    pull: () => term.resume(),
    cancel: () => term.resume(),
  }, { highWaterMark: BUFFER_BYTES, size: (chunk) => chunk.byteLength });
  term.onData((data: unknown) => {
    try {
      output.enqueue(new Uint8Array(data as Uint8Array)); // a copy: node-pty's Buffers share pooled memory
      if ((output.desiredSize ?? 1) <= 0) term.pause();
    } catch {
      // the reader cancelled
    }
  });
  // node-pty reports the exit once the PTY has been read to its end, so all output is enqueued by then.
  const exit = new Promise<ExitStatus>((resolve) =>
    term.onExit(({ exitCode, signal }) => {
      ended = true;
      try {
        output.close();
      } catch {
        // cancelled
      }
      const name = Object.entries(constants.signals).find(([, n]) => n === signal)?.[0];
      resolve(
        signal ? { kind: "signaled", signal: (name ?? String(signal)).replace(/^SIG/, ""), code: 128 + signal } : {
          kind: "exited",
          code: exitCode,
        },
      );
    })
  );
  let disposed: Promise<void> | undefined;
  return {
    stdin: new WritableStream<Uint8Array>({
      write(chunk) {
        if (ended) throw new TransportError(`${path} has ended`, { layer: "channel" });
        term.write(Buffer.from(chunk) as unknown as string); // typed as string, but Buffers pass unchanged
      },
      // a terminal has no end of input of its own: the far side reads until it exits or is disposed
    }),
    stdout,
    stderr: new ReadableStream({ start: (controller) => controller.close() }),
    exit,
    resize(size) {
      if (ended) return;
      // The CLI watches its terminal's size (SIGWINCH) and resizes the far one. The kernel signals only a
      // change, and a CLI still starting may not watch yet (docker exec installs its handler after the
      // stream is up), so it is told again: a resize repeated to the same size is not lost for good.
      term.resize(size.columns, size.rows);
      try {
        Deno.kill(term.pid, "SIGWINCH");
      } catch {
        // ended meanwhile
      }
    },
    signal: (name) => ended ? undefined : signalFar(name),
    [Symbol.asyncDispose]() {
      disposed ??= (async () => {
        if (!ended) {
          await signalFar("KILL").catch(() => {});
          term.kill("SIGHUP"); // what closing a terminal sends
          if (!await settlesWithin(exit, GRACE_MS)) term.kill("SIGKILL");
          await exit;
        }
      })();
      return disposed;
    },
  };
}

/** Passes `source` through and reports when its end was taken in, or the reader cancelled it. */
function watchEnd(source: ReadableStream<Uint8Array>): { stream: ReadableStream<Uint8Array>; done: Promise<void> } {
  const done = Promise.withResolvers<void>();
  const reader = source.getReader();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const chunk = await reader.read();
        if (chunk.done) controller.close(), done.resolve();
        else controller.enqueue(chunk.value);
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

if (import.meta.main) await serve({ manifest, open });
