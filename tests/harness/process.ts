/**
 * Small process and port helpers shared by the real-peer harnesses (sshd, dropbear, ssh-agent).
 *
 * @module
 */
import * as net from "node:net";

/** Says why a needed program is missing; always thrown, never skipped (a skipped test cannot fail). */
export function missingPeer(program: string, pkg: string): Error {
  const where = Deno.env.get("CI") === "true" ? "CI must install it" : "install it";
  return new Error(`${program} is not installed; ${where}: apt-get install ${pkg}`);
}

/** Throws {@linkcode missingPeer} unless `path` is an executable file. */
export async function requireProgram(path: string, pkg: string): Promise<void> {
  try {
    const info = await Deno.stat(path);
    if (info.isFile && ((info.mode ?? 0o755) & 0o111) !== 0) return;
  } catch {
    // falls through to the error below
  }
  throw missingPeer(path, pkg);
}

/** A loopback port that was free a moment ago; callers retry when a race takes it. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Runs a program to completion and returns its stdout; throws with its stderr when it fails. */
export async function run(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string> } = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env: options.env, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return text;
}

/** Resolves true once a TCP connection to 127.0.0.1:`port` succeeds, false when `alive()` turns false first. */
export async function waitForPort(port: number, alive: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect({ host: "127.0.0.1", port });
      sock.once("connect", () => {
        sock.destroy();
        resolve(true);
      });
      sock.once("error", () => {
        sock.destroy();
        resolve(false);
      });
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

/** A spawned child with its status tracked, stopped with SIGTERM (then SIGKILL) on dispose. */
export class Child implements AsyncDisposable {
  readonly process: Deno.ChildProcess;
  #exited = false;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(cmd: string, args: string[], options: { env?: Record<string, string>; stderrFile?: string } = {}) {
    this.process = new Deno.Command(cmd, {
      args,
      env: options.env,
      stdin: "null",
      stdout: "null",
      stderr: options.stderrFile ? "piped" : "null",
    }).spawn();
    if (options.stderrFile) {
      const file = Deno.openSync(options.stderrFile, { write: true, create: true, append: true });
      this.process.stderr.pipeTo(file.writable).catch(() => {});
    }
    this.status = this.process.status.then((s) => {
      this.#exited = true;
      return s;
    });
  }

  /** false once the process has ended */
  get alive(): boolean {
    return !this.#exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#exited) {
      await this.status;
      return;
    }
    try {
      this.process.kill("SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        this.process.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 3000);
    await this.status;
    clearTimeout(timer);
  }
}

/** Whether this process runs as root (sshd then needs /run/sshd and may log in any user). */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** The prefix that runs a command in a private mount namespace (as root, or in a user namespace otherwise). */
export function mountNamespacePrefix(): string[] {
  return isRoot()
    ? ["unshare", "-m", "--propagation", "private"]
    : ["unshare", "-U", "--map-current-user", "-m", "--propagation", "private"];
}
