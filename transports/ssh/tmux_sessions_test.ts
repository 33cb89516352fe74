/**
 * The tmux session host against a real tmux. The host-side helper runs through a local stand-in for
 * the SSH connection's `run()` (sh on this machine, as sshd would start it); tests/sessions_test.ts covers
 * the same through a real sshd and the real CLI.
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import type { OpenContext, SessionHost } from "../../plugins/mod.ts";
import { RemoteError, shellQuote, UsageError } from "../../plugins/mod.ts";
import type { SshConnection } from "./connection.ts";
import { parseSessionList, tmuxSessionHost } from "./tmux_sessions.ts";

const PTY = { term: "xterm-256color", columns: 80, rows: 24 };

/** An SshConnection whose `run` is `sh -c` here; only `run` is used by the operations tested. */
function localConnection(env: Record<string, string>): SshConnection {
  const connection = {
    async run(command: string, options: { stdin?: Uint8Array } = {}) {
      const child = new Deno.Command("/bin/sh", {
        args: ["-c", command],
        env,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      if (options.stdin) await writer.write(options.stdin);
      await writer.close();
      const out = await child.output();
      return { stdout: out.stdout, stderr: out.stderr, code: out.code };
    },
    async [Symbol.asyncDispose]() {},
  };
  return connection as unknown as SshConnection;
}

function context(notices: string[] = []): OpenContext {
  return {
    target: { transport: "ssh", host: "db1", display: "db1" },
    parameters: {},
    signal: AbortSignal.timeout(60_000),
    prompt: { interactive: false, ask: () => Promise.reject(new Error("no prompt")) },
    notice: (line) => notices.push(line),
  };
}

/** A tmux socket of its own, killed with everything in it at the end. */
async function withHost(
  fn: (host: SessionHost, tmux: (...args: string[]) => Promise<string>) => Promise<void>,
  { env = {}, bufferLimit }: { env?: Record<string, string>; bufferLimit?: number } = {},
): Promise<void> {
  const socket = `remote-test-${crypto.randomUUID().slice(0, 8)}`;
  const home = await Deno.makeTempDir({ prefix: "remote-tmux-home-" });
  const fullEnv = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: home, ...env };
  const host = tmuxSessionHost({ socket, bufferLimit, connect: () => Promise.resolve(localConnection(fullEnv)) });
  const tmux = async (...args: string[]) => {
    const out = await new Deno.Command("tmux", { args: ["-L", socket, ...args], stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout);
  };
  try {
    await fn(host, tmux);
  } finally {
    await new Deno.Command("tmux", { args: ["-L", socket, "kill-server"], stderr: "null" }).output();
    // tmux leaves its socket file behind when the last session ends
    await Deno.remove(`${Deno.env.get("TMUX_TMPDIR") ?? "/tmp"}/tmux-${Deno.uid()}/${socket}`).catch(() => {});
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function typeLine(tmux: (...args: string[]) => Promise<string>, name: string, line: string) {
  await tmux("send-keys", "-t", `=${name}:`, "-l", line);
  await tmux("send-keys", "-t", `=${name}:`, "Enter");
}

Deno.test("shellQuote() single-quotes and escapes embedded quotes", () => {
  assertEquals(shellQuote("plain", { always: true }), "'plain'");
  assertEquals(shellQuote("it's $HOME", { always: true }), `'it'\\''s $HOME'`);
});

Deno.test("parseSessionList() maps attached, never-detached and detached sessions", () => {
  const [ida, idb, idc] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  const sessions = parseSessionList(
    `1|1700000000|${ida}||a\n0|1700000000|${idb}||b\n0|1700000000|${idc}|1700000100|c\n`,
  );
  assertEquals(sessions.map((s) => [s.name, s.state, s.availability, s.instanceId, s.foreign]), [
    ["a", "Opened", "Busy", ida, undefined],
    ["b", "Opened", "Available", idb, undefined],
    ["c", "Disconnected", "None", idc, undefined],
  ]);
  assertEquals(sessions[2].lastSeenAt, "2023-11-14T22:15:00.000Z");
  assertEquals(parseSessionList(""), []);
});

Deno.test("parseSessionList() marks sessions remote did not make foreign, whatever their names", () => {
  const id = crypto.randomUUID();
  const sessions = parseSessionList(
    `0|1700000000|||my sess\n0|1700000000||| lead\n0|1700000000|||star*\n0|1700000000|||a|b\n` +
      `0|1700000000|${id}||bad name\n0|1700000000|||plain\n`,
  );
  assertEquals(sessions.map((s) => [s.name, s.foreign, s.instanceId]), [
    ["my sess", true, undefined],
    [" lead", true, undefined],
    ["star*", true, undefined],
    ["a|b", true, undefined],
    ["bad name", true, undefined],
    ["plain", true, undefined],
  ]);
});

Deno.test("tmuxSessionHost() creates, lists and refuses a duplicate or unsafe name", async () => {
  await withHost(async (host) => {
    assertEquals(await host.list(context()), []);
    const id = crypto.randomUUID();
    const created = await host.create(context(), "ITTask", { instanceId: id, pty: PTY });
    assertEquals([created.name, created.state, created.availability], ["ITTask", "Opened", "Available"]);
    const listed = await host.list(context());
    assertEquals(listed.map((s) => [s.name, s.state, s.availability, s.instanceId]), [
      ["ITTask", "Opened", "Available", id],
    ]);
    await rejects(host.create(context(), "ITTask", { instanceId: crypto.randomUUID(), pty: PTY }), (e) => {
      assert(e instanceof UsageError);
      assertEquals(e.message, "db1 already has a session named ITTask");
      return true;
    });
    await rejects(host.create(context(), "a.b", { instanceId: id, pty: PTY }), UsageError);
    assertEquals((await host.list(context())).length, 1);
  });
});

Deno.test("tmuxSessionHost() receive returns the output no client has seen, once", async () => {
  await withHost(async (host, tmux) => {
    await host.create(context(), "job", { instanceId: crypto.randomUUID(), pty: PTY });
    await host.disconnect(context(), "job", {});
    assertEquals((await host.list(context()))[0].state, "Disconnected");
    await typeLine(tmux, "job", "echo first-$((6*7))");
    const first = await eventually("the output in receive", async () => {
      const got = new TextDecoder().decode(await host.receive(context(), "job"));
      return got.includes("first-42") ? got : undefined;
    });
    await typeLine(tmux, "job", "echo second-$((6*7))");
    const second = await eventually("the next output in receive", async () => {
      const got = new TextDecoder().decode(await host.receive(context(), "job"));
      return got.includes("second-42") ? got : undefined;
    });
    assert(first.includes("first-42") && !second.includes("first-42"), `received twice: ${JSON.stringify(second)}`);
    assertEquals((await host.receive(context(), "job")).length, 0);
  });
});

Deno.test("tmuxSessionHost() create with a command runs it Disconnected, misses no output, and keeps the session", async () => {
  await withHost(async (host, tmux) => {
    const id = crypto.randomUUID();
    const created = await host.create(context(), "job", {
      instanceId: id,
      pty: PTY,
      command: "echo early-$((6*7)); exit 3",
    });
    assertEquals([created.state, created.availability, created.instanceId], ["Disconnected", "None", id]);
    const listed = await host.list(context());
    assertEquals(listed.map((s) => [s.name, s.state, s.availability]), [["job", "Disconnected", "None"]]);
    // printed at once, yet in the log: the command waits for pipe-pane
    const got = await eventually("the command's output in receive", async () => {
      const text = new TextDecoder().decode(await host.receive(context(), "job"));
      return text.includes("early-42") ? text : undefined;
    });
    assert(!got.includes("echo early"), `the command was typed, not run: ${JSON.stringify(got)}`);
    // the command has ended (exit 3); an interactive shell keeps the session
    await typeLine(tmux, "job", "echo after-$((6*7))");
    await eventually("the shell after the command", async () => {
      const text = new TextDecoder().decode(await host.receive(context(), "job"));
      return text.includes("after-42") ? true : undefined;
    });
    assertEquals((await host.list(context())).length, 1);
  });
});

Deno.test("tmuxSessionHost() disconnect with an idle timeout ends the session on the host", async () => {
  await withHost(async (host, tmux) => {
    await host.create(context(), "idle", { instanceId: crypto.randomUUID(), pty: PTY });
    await host.create(context(), "stays", { instanceId: crypto.randomUUID(), pty: PTY });
    await host.disconnect(context(), "idle", { idleTimeoutMs: 2000 });
    await eventually("the session to end", async () => {
      const names = (await host.list(context())).map((s) => s.name);
      return names.includes("idle") ? undefined : names;
    });
    assertEquals((await host.list(context())).map((s) => s.name), ["stays"]);
    assertEquals(await tmux("has-session", "-t", "=idle"), "");
  });
});

Deno.test("tmuxSessionHost() drop keeps the newest output and says how much was dropped", async () => {
  await withHost(async (host, tmux) => {
    await host.create(context(), "drop", { instanceId: crypto.randomUUID(), pty: PTY });
    await host.disconnect(context(), "drop", { outputBufferingMode: "drop" });
    await typeLine(tmux, "drop", "seq 1 5000; echo END-$((1+1))");
    // read only once it is all printed: a receive in between would leave nothing to drop
    await eventually(
      "END-2 on the screen",
      async () => (await tmux("capture-pane", "-p", "-t", "=drop:")).includes("END-2") || undefined,
    );
    const notices: string[] = [];
    let text = "";
    await eventually("END-2 in receive", async () => {
      text += new TextDecoder().decode(await host.receive(context(notices), "drop"));
      return text.includes("END-2") || undefined;
    });
    assert(!text.includes("\n1\r\n2\r\n3\r\n"), "the oldest output was kept");
    assert(text.includes("5000\r\n"), "the newest output was dropped");
    assert(
      notices.some((n) => /bytes of older output were dropped while drop was disconnected/.test(n)),
      notices.join(),
    );
  }, { bufferLimit: 4096 });
});

Deno.test("tmuxSessionHost() block keeps every byte of unread output", async () => {
  await withHost(async (host, tmux) => {
    await host.create(context(), "block", { instanceId: crypto.randomUUID(), pty: PTY });
    // far below what the job prints: block must keep it all the same
    await host.disconnect(context(), "block", { outputBufferingMode: "block" });
    await typeLine(tmux, "block", "seq 1 5000; echo END-$((1+1))");
    await eventually(
      "END-2 on the screen",
      async () => (await tmux("capture-pane", "-p", "-t", "=block:")).includes("END-2") || undefined,
    );
    const notices: string[] = [];
    let text = "";
    await eventually("END-2 in receive", async () => {
      text += new TextDecoder().decode(await host.receive(context(notices), "block"));
      return text.includes("END-2") || undefined;
    });
    const numbers = text.split(/\r?\n|\r/).filter((l) => /^\d+$/.test(l)).map(Number);
    assertEquals(numbers, Array.from({ length: 5000 }, (_, i) => i + 1));
    assertEquals(notices, []);
  }, { bufferLimit: 4096 });
});

Deno.test("tmuxSessionHost() remove ends the session and every process in it", async () => {
  await withHost(async (host, tmux) => {
    await host.create(context(), "gone", { instanceId: crypto.randomUUID(), pty: PTY });
    const marker = `${1000 + Math.floor(Math.random() * 1000)}.5`;
    await typeLine(tmux, "gone", `(trap '' HUP; sleep ${marker}) &`);
    const sleeping = async () => {
      const out = await new Deno.Command("pgrep", { args: ["-f", `^sleep ${marker}$`], stdout: "piped" }).output();
      return new TextDecoder().decode(out.stdout).trim();
    };
    await eventually("the background job", async () => (await sleeping()) || undefined);
    await host.remove(context(), "gone");
    assertEquals(await host.list(context()), []);
    assertEquals(await sleeping(), "");
    await rejects(host.remove(context(), "gone"), (e) => e instanceof RemoteError && e.code === "notFound");
  });
});

Deno.test("tmuxSessionHost() without tmux on the host fails with the package to install, creating nothing", async () => {
  const bin = await Deno.makeTempDir({ prefix: "remote-no-tmux-" });
  try {
    for (const tool of ["sh", "mkdir", "chmod", "cat", "mv"]) {
      const found = new TextDecoder().decode(
        (await new Deno.Command("/bin/sh", { args: ["-c", `command -v ${tool}`], stdout: "piped" }).output()).stdout,
      ).trim();
      await Deno.symlink(found, `${bin}/${tool}`);
    }
    await withHost(async (host) => {
      await rejects(host.create(context(), "x", { instanceId: crypto.randomUUID(), pty: PTY }), (e) => {
        assert(e instanceof RemoteError);
        assertEquals([e.code, e.exitCode, e.message], ["hostMissing", 252, "tmux is not installed on db1"]);
        assert(e.hint?.includes("apt-get install tmux"));
        return true;
      });
    }, { env: { PATH: bin } });
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});
