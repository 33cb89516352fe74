/**
 * `remote enter docker://NAME` (and podman://) as a person uses it: a real PTY on our side, a real engine's
 * container on the other (tests/harness/docker_engine.ts), the terminal bridge between: the shell's prompt, the
 * window size (set at start and on resize), Ctrl-C through the terminal, and the shell's exit code. Also the pipe
 * mode, without a terminal.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { type ContainerEngine, startDockerEngine, startPodmanEngine } from "./harness/docker_engine.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

const engines: [string, () => Promise<ContainerEngine>][] = [
  ["docker", startDockerEngine],
  ["podman", startPodmanEngine],
];

for (const [scheme, start] of engines) {
  Deno.test({
    name: `remote enter ${scheme}://NAME gives a PTY shell: prompt, stty size, resize, Ctrl-C, exit 3`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await using home = await tempHome();
      await using engine = await start();
      await engine.createContainer("web1");
      try {
        await using pty = await spawnInPty(
          Deno.execPath(),
          ["run", "-A", "--quiet", MAIN, "enter", `${scheme}://web1`, "--docker-host", engine.host],
          { cols: 100, rows: 30, env: home.env },
        );
        // busybox sh's prompt for root in /
        await pty.waitFor("/ # ", 30_000);
        pty.write("stty size\r");
        await pty.waitFor(/^30 100\r?$/m);
        pty.resize(120, 40);
        await new Promise((r) => setTimeout(r, 500));
        pty.write("stty size\r");
        await pty.waitFor(/^40 120\r?$/m);
        pty.write("echo $TERM\r");
        await pty.waitFor(/^xterm-256color\r?$/m);
        pty.write("sleep 60\r");
        await new Promise((r) => setTimeout(r, 300));
        pty.write("\x03");
        pty.write("echo status=$?\r");
        await pty.waitFor(/^status=130\r?$/m, 20_000);
        pty.write("exit 3\r");
        assertEquals((await pty.exited).code, 3);
      } catch (error) {
        console.error(`--- ${scheme} log ---\n${(await engine.log()).slice(-4000)}\n--- end of log ---`);
        throw error;
      }
    },
  });

  Deno.test({
    name: `remote enter ${scheme}://NAME without a terminal streams stdin and returns the shell's status`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await using home = await tempHome();
      await using engine = await start();
      await engine.createContainer("web1");
      const run = await runRemote(["enter", `${scheme}://web1`, "--docker-host", engine.host], {
        env: home.env,
        stdin: "echo piped-$((2+3))\necho to-err >&2\nexit 4\n",
      });
      assertEquals(run, { code: 4, stdout: "piped-5\n", stderr: "to-err\n" });
    },
  });
}
