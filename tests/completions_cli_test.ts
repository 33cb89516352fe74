/**
 * Shell completion that knows the user's world, through the real CLI: the script `remote completions
 * bash|zsh|fish` prints, loaded in the real shell, with a `remote` on PATH that runs this source tree,
 * in a HOME holding an ssh_config (with an Include and wildcard Hosts) and a session registry. Bash is
 * driven through its completion function (COMPREPLY); zsh through the script's function with the
 * completion builtins it calls replaced by ones that print what they are given; fish through its own
 * completion engine (`complete -C`). Remote paths for `copy host:path` come only over a connection the
 * SSH reuse master holds, against the harness's real sshd.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { Registry } from "../core/registry.ts";
import type { SessionRecord } from "../core/session.ts";
import { startSshd } from "./harness/sshd.ts";
import { spawnInPty } from "./pty.ts";
import { tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

interface World extends AsyncDisposable {
  dir: string;
  env: Record<string, string>;
  /** an empty folder to complete in, so local file names do not mix in */
  cwd: string;
  script(shell: "bash" | "zsh" | "fish"): Promise<string>;
}

function session(overrides: Partial<Omit<SessionRecord, "id">>): Omit<SessionRecord, "id"> {
  return {
    instanceId: crypto.randomUUID(),
    name: "",
    computerName: "db1",
    transport: "ssh",
    state: "Disconnected",
    availability: "None",
    createdAt: "2026-01-02T03:04:05.000Z",
    lastSeenAt: "2026-01-02T03:04:05.000Z",
    target: { host: "db1", port: 22, user: "me" },
    parameters: {},
    ...overrides,
  };
}

/** A HOME with an ssh_config, two recorded sessions and `remote` on PATH; `extraConfig` is added to ssh_config. */
async function world(extraConfig = ""): Promise<World> {
  const home = await tempHome();
  const bin = `${home.dir}/bin`;
  await Deno.mkdir(bin);
  await Deno.writeTextFile(
    `${bin}/remote`,
    `#!/bin/sh\nexec ${JSON.stringify(Deno.execPath())} run --allow-all --quiet ${JSON.stringify(MAIN)} "$@"\n`,
    { mode: 0o755 },
  );
  await Deno.mkdir(`${home.dir}/.ssh/conf.d`, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(
    `${home.dir}/.ssh/config`,
    `Host db1 db2 *.corp !bad\n  Port 2222\nHost web?\n  User www\nInclude conf.d/*.conf\n${extraConfig}`,
    { mode: 0o600 },
  );
  await Deno.writeTextFile(`${home.dir}/.ssh/conf.d/lab.conf`, "Host lab-gpu\n  HostName 10.0.0.9\n", { mode: 0o600 });
  const registry = new Registry(`${home.env.XDG_STATE_HOME}/remote`);
  await registry.add(session({ name: "ITTask" }));
  await registry.add(session({ name: "Build", computerName: "db2" }));
  const cwd = `${home.dir}/empty`;
  await Deno.mkdir(cwd);
  const env = { ...home.env, PATH: `${bin}:/usr/bin:/bin` };
  return {
    dir: home.dir,
    env,
    cwd,
    async script(shell) {
      const out = await new Deno.Command(`${bin}/remote`, { args: ["completions", shell], env, stdout: "piped" })
        .output();
      assertEquals(out.code, 0);
      const file = `${home.dir}/remote.${shell}`;
      await Deno.writeFile(file, out.stdout);
      return file;
    },
    [Symbol.asyncDispose]: () => home[Symbol.asyncDispose](),
  };
}

async function shellRun(w: World, command: string, args: string[]): Promise<string[]> {
  const out = await new Deno.Command(command, {
    args,
    cwd: w.cwd,
    env: w.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  assertEquals(out.code, 0, decoder.decode(out.stderr));
  return decoder.decode(out.stdout).split("\n").filter((l) => l !== "");
}

/** COMPREPLY for `words` (as bash splits them; the last is the word under the cursor). */
async function bash(w: World, file: string, words: string[]): Promise<string[]> {
  const driver = `
    source "$1"; shift
    spec=$(complete -p remote)
    fn=\${spec##*-F }; fn=\${fn%% *}
    COMP_WORDS=("$@")
    COMP_CWORD=$(( $# - 1 ))
    COMP_LINE="$*"
    COMP_POINT=\${#COMP_LINE}
    "$fn" remote "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
    printf '%s\\n' "\${COMPREPLY[@]}"
  `;
  return await shellRun(w, "bash", ["--norc", "--noprofile", "-c", driver, "bash", file, ...words]);
}

/** What the zsh function offers for `words` (the last under the cursor): compadd's words with their suffix. */
async function zsh(w: World, file: string, words: string[]): Promise<string[]> {
  const driver = `
    compdef() { : }
    compadd() {
      local suffix=""
      while [[ $1 != -- ]]; do
        if [[ $1 == -S ]]; then suffix=$2; shift; fi
        shift
      done
      shift
      local word
      for word in "$@"; do print -r -- "$word$suffix"; done
    }
    _describe() { local item; for item in "\${(@P)4}"; do print -r -- "\${item%%:*}"; done }
    _files() { print -r -- "<files>" }
    _default() { print -r -- "<default>" }
    source "$1"; shift
    words=("$@")
    CURRENT=$#
    PREFIX=\${words[CURRENT]}
    _remote_complete
  `;
  return await shellRun(w, "zsh", ["-f", "-c", driver, "zsh", file, ...words]);
}

/** What fish's own engine completes for the command line `line` (without the descriptions). */
async function fish(w: World, file: string, line: string): Promise<string[]> {
  const lines = await shellRun(w, "fish", ["--no-config", "-c", `source ${file}; complete -C ${JSON.stringify(line)}`]);
  return lines.map((l) => l.split("\t")[0]);
}

async function installed(command: string): Promise<boolean> {
  const out = await new Deno.Command("sh", { args: ["-c", `command -v ${command}`], stdout: "null" }).output();
  return out.code === 0;
}

Deno.test("bash completes verbs and commands, ssh_config hosts, session names and ids, help topics, copy's hosts", async () => {
  await using w = await world();
  const file = await w.script("bash");
  const first = await bash(w, file, ["remote", ""]);
  for (const word of ["enter", "invoke", "copy", "forward", "help", "plugin", "completions"]) {
    assert(first.includes(word), `${word} in ${first}`);
  }
  // Host names of ssh_config and its Include, never a pattern (*.corp, !bad, web?)
  assertEquals(await bash(w, file, ["remote", "enter", ""]), ["db1", "db2", "lab-gpu", "1", "2"]);
  assertEquals(await bash(w, file, ["remote", "enter", "d"]), ["db1", "db2"]);
  assertEquals(await bash(w, file, ["remote", "invoke", "db1", "l"]), ["lab-gpu"]);
  assertEquals(await bash(w, file, ["remote", "enter", "--computer-name", "l"]), ["lab-gpu"]);
  assertEquals(await bash(w, file, ["remote", "enter", "--host-name=d"]), ["--host-name=db1", "--host-name=db2"]);
  // recorded sessions: names for --name, ids for --id and as the argument of a verb taking an Id
  assertEquals(await bash(w, file, ["remote", "connect", "--name", "I"]), ["ITTask"]);
  assertEquals(await bash(w, file, ["remote", "remove", "--name", ""]), ["ITTask", "Build"]);
  assertEquals(await bash(w, file, ["remote", "receive", "--id", ""]), ["1", "2"]);
  assertEquals(await bash(w, file, ["remote", "remove", ""]), ["1", "2"]);
  // a new session's name is new: nothing to offer
  assertEquals(await bash(w, file, ["remote", "new", "db1", "--name", ""]), []);
  // the commands' own arguments
  assertEquals(await bash(w, file, ["remote", "help", "exit"]), ["exit-codes"]);
  assertEquals((await bash(w, file, ["remote", "help", "co"])).sort(), [
    "completions",
    "config",
    "connect",
    "containers",
    "copy",
    "copy.md",
  ]);
  assertEquals(await bash(w, file, ["remote", "completions", ""]), ["bash", "zsh", "fish"]);
  assertEquals(await bash(w, file, ["remote", "plugin", "i"]), ["info"]);
  // copy: hosts with their colon, then local files
  await Deno.writeTextFile(`${w.cwd}/dump.sql`, "");
  assertEquals(await bash(w, file, ["remote", "copy", "d"]), ["db1:", "db2:", "dump.sql"]);
  assertEquals(await bash(w, file, ["remote", "copy", "./d"]), ["./dump.sql"]);
});

Deno.test("zsh completes ssh_config hosts, session names and ids, help topics and copy's hosts", async () => {
  assert(await installed("zsh"), "zsh is needed (apt package zsh; scripts/test.sh installs it)");
  await using w = await world();
  const file = await w.script("zsh");
  const first = await zsh(w, file, ["remote", ""]);
  for (const word of ["enter", "copy", "help", "plugin", "completions"]) assert(first.includes(word), `${word}`);
  assertEquals(await zsh(w, file, ["remote", "enter", "d"]), ["db1", "db2"]);
  assertEquals(await zsh(w, file, ["remote", "enter", "--host-name", "l"]), ["lab-gpu"]);
  assertEquals(await zsh(w, file, ["remote", "connect", "--name", "B"]), ["Build"]);
  assertEquals(await zsh(w, file, ["remote", "remove", ""]), ["1", "2"]);
  assertEquals(await zsh(w, file, ["remote", "help", "ex"]).then((l) => l.includes("exit-codes")), true);
  assertEquals(await zsh(w, file, ["remote", "copy", "d"]), ["db1:", "db2:", "<files>"]);
});

Deno.test("fish completes ssh_config hosts, session names and ids, help topics and copy's hosts", async () => {
  assert(await installed("fish"), "fish is needed (apt package fish; scripts/test.sh installs it)");
  await using w = await world();
  const file = await w.script("fish");
  const first = await fish(w, file, "remote ");
  for (const word of ["enter", "copy", "help", "plugin", "completions"]) assert(first.includes(word), `${word}`);
  assertEquals(await fish(w, file, "remote enter d"), ["db1", "db2"]);
  assertEquals(await fish(w, file, "remote enter --host-name l"), ["lab-gpu"]);
  assertEquals(await fish(w, file, "remote connect --name I"), ["ITTask"]);
  assertEquals(await fish(w, file, "remote remove --id "), ["1", "2"]);
  assertEquals(await fish(w, file, "remote help exit"), ["exit-codes"]);
  await Deno.writeTextFile(`${w.cwd}/dump.sql`, "");
  assertEquals((await fish(w, file, "remote copy d")).sort(), ["db1:", "db2:", "dump.sql"]);
});

/** Processes whose command line names `text` (a reuse master's argv carries its socket path). */
function masterPids(text: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (cmdline.includes("__transport-background") && cmdline.includes(text)) pids.push(Number(e.name));
    } catch { /* ended meanwhile */ }
  }
  return pids;
}

Deno.test("copy completes host:path with remote paths only while the reuse master holds a connection to the host", async () => {
  await using sshd = await startSshd();
  const knownHosts = `${sshd.dir}/completion_known_hosts`;
  await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
  await using w = await world(
    `Host box\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ${sshd.userKey}\n` +
      `  UserKnownHostsFile ${knownHosts}\n  IdentitiesOnly yes\n`,
  );
  const files = `${w.dir}/far side`;
  await Deno.mkdir(`${files}/alpine`, { recursive: true });
  await Deno.writeTextFile(`${files}/alpha.txt`, "a");
  await Deno.writeTextFile(`${files}/beta`, "b");
  const bashFile = await w.script("bash");
  const zshFile = await w.script("zsh");
  const fishFile = await w.script("fish");
  try {
    // no master: nothing is offered, and a Tab starts none and connects nowhere
    assertEquals(await bash(w, bashFile, ["remote", "copy", "box", ":", `${files}/a`]), []);
    assertEquals(masterPids(w.dir), []);
    assertEquals((await sshd.log()).includes("Accepted publickey"), false);

    // a command through the master leaves a held connection to box; paths come over it
    const invoked = await new Deno.Command("remote", { args: ["invoke", "box", "--", "true"], env: w.env }).output();
    assertEquals(invoked.code, 0, decoder.decode(invoked.stderr));
    assertEquals(masterPids(w.dir).length, 1);
    // bash splits box:path at the colon: the path part replaces the word after it, shell-quoted as typed
    const typed = files.replaceAll(" ", "\\ ");
    assertEquals(await bash(w, bashFile, ["remote", "copy", "box", ":", `${typed}/a`]), [
      `${typed}/alpha.txt`,
      `${typed}/alpine/`,
    ]);
    // one word where COMP_WORDBREAKS lacks the colon
    assertEquals(await bash(w, bashFile, ["remote", "copy", "-r", `box:${typed}/al`]), [
      `box:${typed}/alpha.txt`,
      `box:${typed}/alpine/`,
    ]);
    // and in an interactive bash, as the user presses Tab: readline splits the words itself
    {
      await using term = await spawnInPty("bash", ["--norc", "--noprofile", "-i"], {
        cwd: w.cwd,
        env: { ...w.env, PS1: "$ ", TERM: "dumb" },
      });
      await term.waitFor("$ ");
      term.write(`source ${bashFile}\r`);
      await term.waitFor("$ ");
      term.write(`remote copy box:${typed}/alph\t`);
      await term.waitFor(`remote copy box:${typed}/alpha.txt `, 30_000);
      // Ctrl-U empties the line without running it
      term.write("\x15remote copy bo\t");
      await term.waitFor("remote copy box:", 30_000);
      term.write("\x15exit 0\r");
      assertEquals((await term.exited).code, 0);
    }
    assertEquals(await zsh(w, zshFile, ["remote", "copy", `box:${files}/b`]), [`box:${files}/beta`]);
    assertEquals(await fish(w, fishFile, `remote copy box:'${files}/al'`), [
      `box:${files}/alpha.txt`,
      `box:${files}/alpine/`,
    ]);
    // another host has no held connection: nothing, at once
    assertEquals(await bash(w, bashFile, ["remote", "copy", "db1", ":", "/"]), []);
  } finally {
    for (const pid of masterPids(w.dir)) Deno.kill(pid, "SIGTERM");
    for (let i = 0; i < 50 && masterPids(w.dir).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  }
});
