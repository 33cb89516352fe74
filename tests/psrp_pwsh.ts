/**
 * Starts the real PowerShell in server mode (`pwsh -NoLogo -NoProfile -s`, what Enter-PSSession with no
 * target runs) as a child over stdio and opens a runspace pool on it through plugins/psrp. Every use is
 * bounded in time and the child is always killed. pwsh comes from scripts/test.sh (a .NET global tool under
 * ~/.dotnet/tools); a missing pwsh fails the test, it never skips.
 *
 * @module
 */
import {
  connectOutOfProc,
  type OutOfProcWire,
  type PSHost,
  RunspacePool,
  type RunspacePoolOptions,
} from "../plugins/psrp/mod.ts";
import { missingPeer } from "./harness/process.ts";

/** How to start pwsh: a program and the arguments before pwsh's own. */
export interface PwshCommand {
  program: string;
  prefix: string[];
}

/**
 * The pwsh to run: PATH first, then the .NET global tool folder. The global tool's `pwsh` is a shim that
 * starts `dotnet …/pwsh.dll` as its child, so killing the shim would orphan the real server with our pipes;
 * the tool's pwsh.dll is therefore run through `dotnet` directly.
 */
export async function findPwsh(): Promise<PwshCommand> {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), `${Deno.env.get("HOME")}/.dotnet/tools`];
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      if (!(await Deno.stat(`${dir}/pwsh`)).isFile) continue;
    } catch {
      continue;
    }
    const dll = await toolDll(`${dir}/.store/powershell`);
    return dll ? { program: "dotnet", prefix: [dll] } : { program: `${dir}/pwsh`, prefix: [] };
  }
  throw missingPeer("pwsh", "(not in Debian) PowerShell: dotnet tool install --global PowerShell --version 7.6.9");
}

/** The folder holding a `pwsh` command (the .NET tool's launcher), for PATH. */
export async function pwshDir(): Promise<string> {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), `${Deno.env.get("HOME")}/.dotnet/tools`]) {
    try {
      if (dir && (await Deno.stat(`${dir}/pwsh`)).isFile) return dir;
    } catch { /* not here */ }
  }
  throw new Error("pwsh not found: dotnet tool install --global PowerShell --version 7.6.9");
}

async function toolDll(store: string): Promise<string | undefined> {
  // .store/powershell/<version>/powershell/<version>/tools/<tfm>/any/unix/pwsh.dll
  const list = async (dir: string) => {
    try {
      return (await Array.fromAsync(Deno.readDir(dir))).filter((e) => e.isDirectory).map((e) => e.name).sort();
    } catch {
      return [];
    }
  };
  for (const version of (await list(store)).reverse()) {
    const tools = `${store}/${version}/powershell/${version}/tools`;
    for (const tfm of await list(tools)) {
      const dll = `${tools}/${tfm}/any/unix/pwsh.dll`;
      try {
        if ((await Deno.stat(dll)).isFile) return dll;
      } catch {
        // not this one
      }
    }
  }
  return undefined;
}

/** A pool open on a live `pwsh -s`. */
export interface PwshSession {
  pool: RunspacePool;
  /** what pwsh wrote to stderr so far */
  stderr(): string;
  /** the child, for tests that watch it exit */
  child: Deno.ChildProcess;
  /** the wire, for tests that watch its buffers */
  wire: OutOfProcWire;
  /** closes stdin, as a client does after the pool's CloseAck */
  closeInput(): Promise<void>;
}

/** Options of {@linkcode withPwsh}. */
export interface WithPwshOptions extends Partial<Omit<RunspacePoolOptions, "wire">> {
  host?: PSHost;
  /** whole-test deadline (default 60 s) */
  timeoutMs?: number;
  fragmentSize?: number;
  /** leave the pool unopened */
  noOpen?: boolean;
  /** the program speaking the out-of-process framing on its stdio instead of `pwsh -s` (e.g. `ssh -s h powershell`) */
  command?: { program: string; args: string[] };
}

/**
 * Runs `fn` with a pool open on a fresh `pwsh -s`, closes the pool afterwards unless `fn` did, and kills the
 * child whatever happens. The deadline kills the child, which ends its stdout and fails every pending call,
 * so nothing waits forever.
 */
export async function withPwsh<T>(options: WithPwshOptions, fn: (s: PwshSession) => Promise<T>): Promise<T> {
  const pwsh = options.command ? undefined : await findPwsh();
  const child = new Deno.Command(options.command?.program ?? pwsh!.program, {
    args: options.command?.args ?? [...pwsh!.prefix, "-NoLogo", "-NoProfile", "-s"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { POWERSHELL_TELEMETRY_OPTOUT: "1", POWERSHELL_UPDATECHECK: "Off", DOTNET_CLI_TELEMETRY_OPTOUT: "1" },
  }).spawn();
  let stderr = "";
  const stderrDone = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk.slice(0, 65536);
  })().catch(() => {});
  const conn = connectOutOfProc({ readable: child.stdout, writable: child.stdin, fragmentSize: options.fragmentSize });
  const pool = new RunspacePool({ ...options, wire: conn.wire });
  conn.wire.attach(pool);
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      reject(new Error(`pwsh test did not finish within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
  });
  deadline.catch(() => {});
  try {
    return await Promise.race([
      (async () => {
        if (!options.noOpen) await pool.open();
        const result = await fn({ pool, stderr: () => stderr, child, wire: conn.wire, closeInput: conn.closeInput });
        if (pool.state !== 3 && !pool.failure) await pool.close();
        return result;
      })(),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch { /* exited already */ }
    await child.status;
    await conn.finished.catch(() => {});
    await stderrDone;
  }
}

/** Runs a script in the pool and collects its output and error messages. */
export async function runScript(
  pool: RunspacePool,
  script: string,
  args: unknown[] = [],
): Promise<{ output: unknown[]; errors: string[]; state: number }> {
  const output: unknown[] = [];
  const errors: string[] = [];
  const p = pool.createPipeline({
    commands: [{ cmd: script, isScript: true, args: args.map((value) => ({ value: value as never })) }],
    output: (v) => output.push(v),
    error: (e) => errors.push(e.message),
  });
  const { state } = await p.done;
  return { output, errors, state };
}
