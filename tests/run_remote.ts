/**
 * Runs remote as a user would — a separate process from the source tree — with an isolated HOME and
 * XDG folders, and collects what it printed.
 */

/** What one run of remote printed and returned. */
export interface RemoteRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** A throwaway HOME with XDG folders inside it; removed on dispose. */
export interface TempHome extends AsyncDisposable {
  dir: string;
  env: Record<string, string>;
}

/** Makes a throwaway HOME with its own XDG config, state and data folders. */
export async function tempHome(): Promise<TempHome> {
  const dir = await Deno.makeTempDir({ prefix: "remote-home-" });
  const realHome = Deno.env.get("HOME") ?? "/root";
  const env = {
    // Deno's own module cache stays the real one: a fresh HOME would make every run fetch npm metadata.
    DENO_DIR: Deno.env.get("DENO_DIR") ??
      `${Deno.env.get("XDG_CACHE_HOME") ?? `${realHome}/.cache`}/deno`,
    HOME: dir,
    XDG_CONFIG_HOME: `${dir}/.config`,
    XDG_STATE_HOME: `${dir}/.local/state`,
    XDG_DATA_HOME: `${dir}/.local/share`,
    XDG_RUNTIME_DIR: `${dir}/run`,
    NO_COLOR: "1",
  };
  await Deno.mkdir(env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
  return {
    dir,
    env,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Runs `remote ...args` (main.ts under the current Deno) with `env` added; bounded by `timeoutMs`. */
export async function runRemote(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string | Uint8Array; timeoutMs?: number; cwd?: string } = {},
): Promise<RemoteRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN, ...args],
    env: { ...options.env, SSH_AUTH_SOCK: options.env?.SSH_AUTH_SOCK ?? "" },
    cwd: options.cwd,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin);
      await writer.close();
    }
    const out = await child.output();
    const decoder = new TextDecoder();
    return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The options that point `remote` at a harness sshd as a user would: its port, its user key, and a
 * known_hosts file the test wrote.
 */
export function sshOptions(server: { port: number; userKey: string }, knownHosts: string): string[] {
  return ["-p", String(server.port), "-i", server.userKey, "-o", `UserKnownHostsFile=${knownHosts}`];
}

/** `text` matched literally inside a RegExp (fingerprints hold `+` and `/`, paths hold `.`). */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
