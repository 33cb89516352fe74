/**
 * Starts a real `ssh-agent` on a socket in a temp directory and loads keys into it with `ssh-add`.
 *
 * @example
 * ```ts
 * import { startSshAgent } from "./ssh_agent.ts";
 * await using agent = await startSshAgent();
 * console.log(agent.socket);
 * ```
 *
 * @module
 */
import { Child, requireProgram, run } from "./process.ts";

/** A running agent; `await using` stops it. */
export interface SshAgent extends AsyncDisposable {
  /** the value for SSH_AUTH_SOCK */
  socket: string;
  /** loads an unencrypted private key */
  add(keyFile: string): Promise<void>;
}

/** Starts ssh-agent in the foreground (`-D`) with its socket in a fresh temp dir. */
export async function startSshAgent(): Promise<SshAgent> {
  await requireProgram("/usr/bin/ssh-agent", "openssh-client");
  const dir = await Deno.makeTempDir({ prefix: "remote-agent-" });
  const socket = `${dir}/agent.sock`;
  const child = new Child("ssh-agent", ["-D", "-a", socket]);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await Deno.stat(socket);
      break;
    } catch {
      if (!child.alive || Date.now() > deadline) {
        await child[Symbol.asyncDispose]();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        throw new Error("ssh-agent did not create its socket");
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  let stopped = false;
  return {
    socket,
    async add(keyFile: string) {
      await run("ssh-add", ["-q", keyFile], { env: { SSH_AUTH_SOCK: socket } });
    },
    async [Symbol.asyncDispose]() {
      if (stopped) return;
      stopped = true;
      await child[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
