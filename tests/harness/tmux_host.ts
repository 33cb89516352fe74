/**
 * A session host for persistent-session tests: a real sshd whose logins reach the real tmux of this
 * machine, on a tmux socket of the test's own, killed with its state when the test ends.
 *
 * @module
 */
import { type SshdServer, startSshd, withLogOnFailure } from "./sshd.ts";

/** Runs `fn` with a fresh sshd and a unique tmux socket name; cleans both up, printing sshd's log on failure. */
export async function withTmuxHost(
  fn: (sshd: SshdServer, socket: string) => Promise<void>,
  options: { config?: string; prefix?: string } = {},
): Promise<void> {
  await using sshd = await startSshd({ config: paneShell(options.config ?? "") });
  const socket = `${options.prefix ?? "remote-e2e"}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await withLogOnFailure(sshd, () => fn(sshd, socket));
  } finally {
    await tmux(socket, "kill-server");
    // tmux leaves its socket file behind when the last session ends
    await Deno.remove(`${Deno.env.get("TMUX_TMPDIR") ?? "/tmp"}/tmux-${Deno.uid()}/${socket}`).catch(() => {});
    const home = Deno.env.get("HOME") ?? "/root";
    await Deno.remove(`${home}/.local/state/remote-sessions/${socket}`, { recursive: true }).catch(() => {});
  }
}

/**
 * sshd_config that makes the sessions' shell `/bin/sh` (`$SHELL`, which the panes run): the user's own
 * login shell may run slow profile hooks (a version manager's rehash with its own lock file) that the
 * test's cleanup would kill half-way, leaving that lock behind for every later login on this machine.
 * sshd uses only the first `SetEnv` line, so the variable joins a given one.
 */
function paneShell(config: string): string {
  return /^SetEnv /m.test(config)
    ? config.replace(/^SetEnv .*$/m, (line) => `${line} SHELL=/bin/sh`)
    : `SetEnv SHELL=/bin/sh\n${config}`;
}

/** tmux on the host, which is this machine; the harness sshd logs in as this user. */
export async function tmux(socket: string, ...args: string[]): Promise<{ code: number; stdout: string }> {
  // a server this starts runs /bin/sh in its panes, as those started through the harness sshd do
  const out = await new Deno.Command("tmux", {
    args: ["-L", socket, ...args],
    env: { SHELL: "/bin/sh" },
    stdout: "piped",
    stderr: "null",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

/** Polls `probe` every 200 ms until it returns a value; fails naming `what` after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
