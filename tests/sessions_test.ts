/**
 * Persistent sessions end to end: the real `remote` CLI against a real OpenSSH sshd and the real tmux
 * on the host, interactive attaches in real PTYs. The enterprise scenario of Connect-PSSession: start a
 * long job in a new session, disconnect, pick it up from a second `remote` with a fresh HOME.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import type { SshdServer } from "./harness/sshd.ts";
import { eventually, tmux, withTmuxHost } from "./harness/tmux_host.ts";
import { spawnInPty } from "./pty.ts";
import { mountNamespacePrefix } from "./harness/process.ts";
import { escapeRegExp, runRemote, type TempHome, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A client of one sshd: its own HOME with only credentials, and the tmux socket of this test. */
interface Client extends AsyncDisposable {
  home: TempHome;
  env: Record<string, string>;
  /** the options that reach the harness sshd: -p, -i, -o UserKnownHostsFile */
  ssh: string[];
  run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

async function client(sshd: SshdServer, socket: string, port = sshd.port): Promise<Client> {
  const home = await tempHome();
  const knownHosts = `${home.dir}/known_hosts`;
  await Deno.writeTextFile(knownHosts, sshd.knownHostsLine().replaceAll(`:${sshd.port} `, `:${port} `) + "\n");
  const env = { ...home.env, REMOTE_TMUX_SOCKET: socket };
  const ssh = ["-p", String(port), "-i", sshd.userKey, "-o", `UserKnownHostsFile=${knownHosts}`];
  return {
    home,
    env,
    ssh,
    run: (...args: string[]) => runRemote(args, { env }),
    [Symbol.asyncDispose]: () => home[Symbol.asyncDispose](),
  };
}

/** One test's host: sshd plus a tmux socket of its own. */
function withHostFor(fn: (sshd: SshdServer, socket: string) => Promise<void>, config?: string): Promise<void> {
  return withTmuxHost(fn, { config, prefix: "remote-e2e" });
}

function attachInPty(c: Client, ...args: string[]) {
  return spawnInPty(Deno.execPath(), ["run", "--allow-all", "--quiet", MAIN, ...args], {
    env: { ...c.env, SSH_AUTH_SOCK: "" },
    cols: 100,
    rows: 30,
  });
}

Deno.test("remote new, ~&, then get, receive and connect from a fresh HOME pick up the finished job", async () => {
  await withHostFor(async (sshd, socket) => {
    await using first = await client(sshd, socket);
    const created = await first.run("new", "127.0.0.1", ...first.ssh, "--name", "ITTask");
    assertEquals(created.code, 0, created.stderr);
    match(created.stdout, /^Id +Name +ComputerName +Transport +State +ConfigurationName +Availability\n/);
    match(created.stdout, /\n1 +ITTask +127\.0\.0\.1 +ssh +Opened +Available\n$/);

    {
      await using pty = await attachInPty(first, "enter", "--name", "ITTask");
      await pty.waitFor("#", 20_000);
      pty.write("for i in 1 2 3; do echo step-$i; sleep 1; done; echo JOB-$((40+2))\r");
      await pty.waitFor("step-1", 20_000);
      pty.write("~&");
      await pty.waitFor("disconnected from ITTask; it keeps running on 127.0.0.1", 20_000);
      assertEquals((await pty.exited).code, 0);
    }
    const mine = await first.run("get", "--json");
    assertEquals(JSON.parse(mine.stdout).state, "Disconnected");

    await using second = await client(sshd, socket);
    const found = await second.run("get", "--computer-name", "127.0.0.1", ...second.ssh);
    assertEquals(found.code, 0, found.stderr);
    match(found.stdout, /\n1 +ITTask +127\.0\.0\.1 +ssh +Disconnected +None\n$/);
    let output = "";
    await eventually("the job's end in receive", async () => {
      const r = await second.run("receive", "--name", "ITTask");
      assertEquals(r.code, 0, r.stderr);
      output += r.stdout;
      return output.includes("JOB-42") ? true : undefined;
    });
    assert(output.includes("step-3"), output);
    assertEquals((await second.run("receive", "--name", "ITTask")).stdout.includes("JOB-42"), false);

    await using pty = await attachInPty(second, "connect", "--name", "ITTask");
    await pty.waitFor("JOB-42", 20_000);
    pty.write("exit\r");
    assertEquals((await pty.exited).code, 0);
    assertEquals((await tmux(socket, "has-session", "-t", "=ITTask")).code, 1);
    assertEquals((await second.run("get")).stdout, "");
  });
});

Deno.test("remote disconnect --idle-timeout ends the session on the host with nobody attached", async () => {
  await withHostFor(async (sshd, socket) => {
    await using c = await client(sshd, socket);
    assertEquals((await c.run("new", "127.0.0.1", ...c.ssh, "--name", "Idle")).code, 0);
    const d = await c.run("disconnect", "--name", "Idle", "--idle-timeout", "2s");
    assertEquals(d.code, 0, d.stderr);
    match(d.stdout, /Idle +127\.0\.0\.1 +ssh +Disconnected +None/);
    await eventually(
      "Idle to end",
      async () => (await tmux(socket, "has-session", "-t", "=Idle")).code ? true : undefined,
    );
    const got = await c.run("get", "--computer-name", "127.0.0.1", ...c.ssh);
    assertEquals(got.code, 0, got.stderr);
    match(got.stdout, /Idle +127\.0\.0\.1 +ssh +Broken \(stale\) +None/);
  });
});

Deno.test("remote connect refuses a Busy session and --force takes it over", async () => {
  await withHostFor(async (sshd, socket) => {
    await using first = await client(sshd, socket);
    assertEquals((await first.run("new", "127.0.0.1", ...first.ssh, "--name", "Shared")).code, 0);
    await using one = await attachInPty(first, "enter", "--name", "Shared");
    await one.waitFor("#", 20_000);

    await using second = await client(sshd, socket);
    const busy = await second.run("connect", "--computer-name", "127.0.0.1", ...second.ssh, "--name", "Shared");
    assertEquals(busy.code, 230);
    assertEquals(
      busy.stderr,
      "remote: session Shared on 127.0.0.1 is in use by another client\n" +
        "hint: take it over with: remote connect --name Shared --force\n",
    );
    await using two = await attachInPty(second, "connect", "--name", "Shared", "--force");
    await one.waitFor("disconnected from Shared; it keeps running on 127.0.0.1", 20_000);
    assertEquals((await one.exited).code, 0);
    two.write("echo took-$((1+1))\r");
    await two.waitFor("took-2", 20_000);
    two.write("~&");
    assertEquals((await two.exited).code, 0);
  });
});

/** A TCP relay in front of sshd whose connections the test can cut. */
function relay(targetPort: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const inbound of listener) {
      const outbound = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      open.add(inbound).add(outbound);
      const close = () => {
        for (const c of [inbound, outbound]) {
          open.delete(c);
          try {
            c.close();
          } catch { /* closed already */ }
        }
      };
      inbound.readable.pipeTo(outbound.writable).catch(() => {}).finally(close);
      outbound.readable.pipeTo(inbound.writable).catch(() => {}).finally(close);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    cut() {
      for (const c of [...open]) {
        open.delete(c);
        try {
          c.close();
        } catch { /* closed already */ }
      }
    },
    async [Symbol.asyncDispose]() {
      this.cut();
      listener.close();
      await serving;
    },
  };
}

Deno.test("a connection cut mid-session leaves the session Disconnected, and connect resumes it", async () => {
  await withHostFor(async (sshd, socket) => {
    await using link = relay(sshd.port);
    await using c = await client(sshd, socket, link.port);
    assertEquals((await c.run("new", "127.0.0.1", ...c.ssh, "--name", "Flaky")).code, 0);
    {
      await using pty = await attachInPty(c, "enter", "--name", "Flaky");
      await pty.waitFor("#", 20_000);
      pty.write("echo before-$((2+3))\r");
      await pty.waitFor("before-5", 20_000);
      link.cut();
      await pty.waitFor("resume it with: remote connect --name Flaky", 30_000);
      assertEquals((await pty.exited).code, 250);
    }
    assertEquals(JSON.parse((await c.run("get", "--json")).stdout).state, "Disconnected");
    await eventually("tmux to see the client gone", async () => {
      const r = await tmux(socket, "list-sessions", "-F", "#{session_name} #{session_attached}");
      return r.stdout === "Flaky 0\n" ? true : undefined;
    });
    await using pty = await attachInPty(c, "connect", "--name", "Flaky");
    await pty.waitFor("before-5", 20_000);
    pty.write("~&");
    assertEquals((await pty.exited).code, 0);
  });
});

Deno.test("remote remove ends the session and every process in it, --what-if ends nothing", async () => {
  await withHostFor(async (sshd, socket) => {
    await using c = await client(sshd, socket);
    assertEquals((await c.run("new", "127.0.0.1", ...c.ssh, "--name", "Doomed")).code, 0);
    const marker = `${2000 + Math.floor(Math.random() * 1000)}.25`;
    await tmux(socket, "send-keys", "-t", "=Doomed:", "-l", `(trap '' HUP; sleep ${marker}) &`);
    await tmux(socket, "send-keys", "-t", "=Doomed:", "Enter");
    const sleeping = async () => {
      const out = await new Deno.Command("pgrep", { args: ["-f", `^sleep ${marker}$`], stdout: "piped" }).output();
      return new TextDecoder().decode(out.stdout).trim();
    };
    await eventually("the job", async () => (await sleeping()) || undefined);
    const whatIf = await c.run("remove", "--name", "Doomed", "--what-if");
    assertEquals(whatIf.stdout, "What if: removing session Doomed (Id 1) on 127.0.0.1\n");
    assertEquals((await tmux(socket, "has-session", "-t", "=Doomed")).code, 0);
    const removed = await c.run("remove", "--name", "Doomed");
    assertEquals(removed.code, 0, removed.stderr);
    assertEquals((await tmux(socket, "list-sessions")).stdout, "");
    assertEquals(await sleeping(), "");
    assertEquals((await c.run("get")).stdout, "");
  });
});

Deno.test("remote new on a host without tmux fails once, naming the package, and creates nothing", async () => {
  const bin = await Deno.makeTempDir({ prefix: "remote-no-tmux-" });
  try {
    for (const tool of ["sh", "bash", "mkdir", "chmod", "cat", "mv"]) {
      const found = await new Deno.Command("/bin/sh", { args: ["-c", `command -v ${tool}`], stdout: "piped" }).output();
      await Deno.symlink(new TextDecoder().decode(found.stdout).trim(), `${bin}/${tool}`);
    }
    await withHostFor(async (sshd, socket) => {
      await using c = await client(sshd, socket);
      const r = await c.run("new", "127.0.0.1", ...c.ssh, "--name", "NoTmux");
      assertEquals(r.code, 252);
      assertEquals(
        r.stderr,
        "remote: tmux is not installed on 127.0.0.1\n" +
          "hint: install it there: sudo apt-get install tmux (Debian/Ubuntu), sudo dnf install tmux (Fedora/RHEL)\n",
      );
      assertEquals((await c.run("get")).stdout, "");
      assertEquals((await tmux(socket, "list-sessions")).code, 1);
    }, `SetEnv PATH=${bin}`);
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("remote new without --name, ten at once, gives each run its own SessionN", async () => {
  await withHostFor(async (sshd, socket) => {
    await using c = await client(sshd, socket);
    const runs = await Promise.all(Array.from({ length: 10 }, () => c.run("new", "127.0.0.1", ...c.ssh)));
    for (const r of runs) assertEquals([r.code, r.stderr], [0, ""]);
    const names = runs.map((r) => /\n\d+ +(Session\d+) /.exec(r.stdout)?.[1]).sort();
    assertEquals(names, Array.from({ length: 10 }, (_, i) => `Session${i + 1}`).sort());
    const onHost = (await tmux(socket, "list-sessions", "-F", "#{session_name}")).stdout.split("\n").filter(Boolean);
    assertEquals(onHost.sort(), names);
  });
});

Deno.test("one session reached as an ssh_config alias and as its address stays one registry entry", async () => {
  await withHostFor(async (sshd, socket) => {
    await using c = await client(sshd, socket);
    await Deno.mkdir(`${c.home.dir}/.ssh`, { mode: 0o700 });
    await Deno.writeTextFile(
      `${c.home.dir}/.ssh/config`,
      `Host box\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  IdentityFile ${sshd.userKey}\n` +
        `  UserKnownHostsFile ${c.home.dir}/known_hosts\n`,
      { mode: 0o600 },
    );
    assertEquals((await c.run("new", "box", "--name", "Twice")).code, 0);
    const byAddress = await c.run("get", "--computer-name", "127.0.0.1", ...c.ssh);
    assertEquals([byAddress.code, byAddress.stderr], [0, ""]);
    match(byAddress.stdout, /\n1 +Twice +box +ssh +Opened +Available\n$/);
    const byAlias = await c.run("get", "--computer-name", "box");
    assertEquals([byAlias.code, byAlias.stderr], [0, ""]);
    match(byAlias.stdout, /\n1 +Twice +box +ssh +Opened +Available\n$/);
    const all = await c.run("get", "--json");
    assertEquals(all.stdout.trim().split("\n").length, 1);
    {
      await using pty = await attachInPty(c, "connect", "--computer-name", "127.0.0.1", ...c.ssh, "--name", "Twice");
      await pty.waitFor("#", 20_000);
      pty.write("~&");
      assertEquals((await pty.exited).code, 0);
    }
    const after = await c.run("get", "--json");
    assertEquals(after.stdout.trim().split("\n").map((l) => JSON.parse(l).state), ["Disconnected"]);
  });
});

/**
 * Runs `remote new 127.0.0.1 --name <name>` with its registry directory on a 16 KiB tmpfs of which only
 * `freePages` pages of 4 KiB are left, in a mount namespace of that run only; returns what it printed
 * and the names left in the directory.
 */
async function newOnSmallDisk(c: Client, name: string, freePages: number) {
  const state = `${c.env.XDG_STATE_HOME}/remote`;
  await Deno.mkdir(state, { recursive: true, mode: 0o700 });
  const script = `mount -t tmpfs -o size=16k,mode=0700 tmpfs "$1" && ` +
    `{ dd if=/dev/zero of="$1/fill" bs=4k count=${4 - freePages} 2>/dev/null; ` +
    `shift; "$@"; rc=$?; ls -A "$STATE" > "$HOME/after"; exit $rc; }`;
  const [unshare, ...prefix] = mountNamespacePrefix();
  const out = await new Deno.Command(unshare, {
    args: [...prefix, "sh", "-c", script, "sh", state, Deno.execPath(), "run", "--allow-all", "--quiet", MAIN]
      .concat(["new", "127.0.0.1", ...c.ssh, "--name", name]),
    env: { ...c.env, STATE: state, SSH_AUTH_SOCK: "" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const left = (await Deno.readTextFile(`${c.home.dir}/after`)).split("\n").filter(Boolean);
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr), state, left };
}

Deno.test("remote new with a full state directory exits 232, leaves no lock and nothing on the host", async () => {
  await withHostFor(async (sshd, socket) => {
    await using c = await client(sshd, socket);
    const r = await newOnSmallDisk(c, "Full", 0);
    assertEquals(r.code, 232, r.stderr);
    match(
      r.stderr,
      new RegExp(
        `^remote: cannot write the lock file of the session registry ${escapeRegExp(r.state)}/sessions\\.lock: ` +
          `No space left on device \\(os error 28\\); nothing was created on 127\\.0\\.0\\.1\\nhint: .+\\n$`,
      ),
    );
    assertEquals(r.left, ["fill"]);
    assertEquals((await tmux(socket, "list-sessions")).stdout, "");
  });
});

Deno.test("remote new whose registry fills up after the host made the session removes it there, and says so", async () => {
  await withHostFor(async (sshd, socket) => {
    await using c = await client(sshd, socket);
    // two pages: the name is reserved (lock and temp file), then recording the result needs a third
    const r = await newOnSmallDisk(c, "Late", 2);
    assertEquals(r.code, 232, r.stderr);
    match(
      r.stderr,
      new RegExp(
        `^remote: cannot write the session registry ${escapeRegExp(r.state)}/sessions\\.json: ` +
          `No space left on device \\(os error 28\\); the new session Late was removed from 127\\.0\\.0\\.1 ` +
          `\\(its entry Id 1 stays Opening until: remote remove --id 1\\)\\nhint: .+\\n$`,
      ),
    );
    assertEquals(r.left.sort(), ["fill", "sessions.json"]);
    assertEquals((await tmux(socket, "list-sessions")).stdout, "");
  });
});

Deno.test("remote get --computer-name lists sessions made by hand as foreign and never records them", async () => {
  await withHostFor(async (sshd, socket) => {
    await using c = await client(sshd, socket);
    assertEquals((await c.run("new", "127.0.0.1", ...c.ssh, "--name", "Mine")).code, 0);
    for (const name of ["my sess", " lead", "star*"]) {
      assertEquals((await tmux(socket, "new-session", "-d", "-s", name)).code, 0);
    }
    const got = await c.run("get", "--computer-name", "127.0.0.1", ...c.ssh);
    assertEquals([got.code, got.stderr], [0, ""]);
    const rows = got.stdout.split("\n").slice(2).filter(Boolean).map((l) => l.replace(/ +$/, "")).sort();
    assertEquals(rows.length, 4, got.stdout);
    match(rows.join("\n"), /^- +lead +127\.0\.0\.1 +ssh +Opened \(foreign\) +Available$/m);
    match(rows.join("\n"), /^- +my sess +127\.0\.0\.1 +ssh +Opened \(foreign\) +Available$/m);
    match(rows.join("\n"), /^- +star\* +127\.0\.0\.1 +ssh +Opened \(foreign\) +Available$/m);
    match(rows.join("\n"), /^1 +Mine +127\.0\.0\.1 +ssh +Opened +Available$/m);
    const json = (await c.run("get", "--computer-name", "127.0.0.1", ...c.ssh, "--json")).stdout.trim().split("\n")
      .map((l) => JSON.parse(l));
    assertEquals(json.filter((s) => s.foreign).map((s) => [s.id, s.name]).sort(), [
      [null, " lead"],
      [null, "my sess"],
      [null, "star*"],
    ]);
    const recorded = (await c.run("get", "--json")).stdout.trim().split("\n").map((l) => JSON.parse(l).name);
    assertEquals(recorded, ["Mine"]);

    const attach = await c.run("connect", "--computer-name", "127.0.0.1", ...c.ssh, "--name", "my sess");
    assertEquals(attach.code, 230);
    assertEquals(
      attach.stderr,
      `remote: session "my sess" on 127.0.0.1 was not created by remote\n` +
        "hint: remote attaches only to sessions it created; use the host's own tools for this one\n",
    );
    assertEquals((await c.run("remove", "--name", "Mine")).code, 0);
    assertEquals((await tmux(socket, "has-session", "-t", "=my sess")).code, 0);
  });
});

Deno.test("an entry an older remote recorded for a session made by hand is forgotten by remove, not stuck", async () => {
  await withHostFor(async (sshd, socket) => {
    await using c = await client(sshd, socket);
    assertEquals((await tmux(socket, "new-session", "-d", "-s", "my sess")).code, 0);
    assertEquals((await c.run("new", "127.0.0.1", ...c.ssh, "--name", "Mine")).code, 0);
    // what remote recorded for it before sessions made by hand were told apart
    const path = `${c.env.XDG_STATE_HOME}/remote/sessions.json`;
    const registry = JSON.parse(await Deno.readTextFile(path));
    registry.sessions.push({ ...registry.sessions[0], id: 2, name: "my sess", instanceId: crypto.randomUUID() });
    await Deno.writeTextFile(path, JSON.stringify(registry));
    const attach = await c.run("connect", "--name", "my sess");
    assertEquals(attach.code, 230);
    match(
      attach.stderr,
      /\nremote: session "my sess" on 127\.0\.0\.1 was not created by remote\nhint: remote attaches only to sessions it created; forget this entry with: remote remove --id 2\n$/,
    );
    const removed = await c.run("remove", "--name", "my sess");
    assertEquals(removed.code, 0, removed.stderr);
    match(removed.stderr, /^remote: session my sess uses options recorded at its creation: UserKnownHostsFile=\S+\n$/);
    assertEquals((await c.run("get", "--json")).stdout.trim().split("\n").map((l) => JSON.parse(l).name), ["Mine"]);
    assertEquals((await tmux(socket, "has-session", "-t", "=my sess")).code, 0);
  });
});

Deno.test("a persistent session's shell exit status is remote's, and its transcript goes with it", async () => {
  await withHostFor(async (sshd, socket) => {
    await using c = await client(sshd, socket);
    const state = `${Deno.env.get("HOME") ?? "/root"}/.local/state/remote-sessions/${socket}`;
    assertEquals((await c.run("new", "127.0.0.1", ...c.ssh, "--name", "Three")).code, 0);
    assertEquals((await Deno.stat(`${state}/Three.log`)).isFile, true);
    {
      await using pty = await attachInPty(c, "enter", "--name", "Three");
      await pty.waitFor("#", 20_000);
      pty.write("exit 3\r");
      assertEquals((await pty.exited).code, 3);
    }
    assertEquals((await tmux(socket, "has-session", "-t", "=Three")).code, 1);
    assertEquals((await c.run("get")).stdout, "");
    await eventually("Three's log to go", async () => await exists(`${state}/Three.log`) ? undefined : true);
    assertEquals(await exists(`${state}/Three.status`), false);

    // ended with nobody attached: the transcript goes too
    assertEquals((await c.run("new", "127.0.0.1", ...c.ssh, "--name", "Alone")).code, 0);
    await tmux(socket, "send-keys", "-t", "=Alone:", "exit 4", "Enter");
    await eventually(
      "Alone to end",
      async () => (await tmux(socket, "has-session", "-t", "=Alone")).code ? true : undefined,
    );
    await eventually("Alone's log to go", async () => await exists(`${state}/Alone.log`) ? undefined : true);
    assertEquals(await exists(`${state}/Alone.status`), false);
  });
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
