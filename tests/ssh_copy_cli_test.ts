/**
 * `remote copy` through the CLI against the real OpenSSH sshd and its SFTP server: scp's operands, -r, -p,
 * remote globs, --resume, --name, the progress line on a real terminal (and none without one or with -q),
 * and the engine's exit codes in one line. Files are checked by SHA-256 and by OpenSSH's own `sftp -b`.
 *
 * @module
 */
import { deepStrictEqual as assertEquals, doesNotMatch, match, strictEqual } from "node:assert/strict";
import { createHash } from "node:crypto";
import { type SshdServer, startSshd } from "./harness/sshd.ts";
import { withTmuxHost } from "./harness/tmux_host.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, sshOptions, type TempHome, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const MB = 1024 * 1024;

interface Setup {
  sshd: SshdServer;
  home: TempHome;
  knownHosts: string;
  /** -p, -i, -o UserKnownHostsFile for remote copy (which spells the port -P, as scp) */
  ssh: string[];
  /** `user@127.0.0.1` */
  host: string;
  /** a folder on the server (this machine, so tests can prepare and inspect it) */
  remoteDir: string;
  localDir: string;
  copy(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

async function withSetup(fn: (s: Setup) => Promise<void>, sshd?: SshdServer): Promise<void> {
  const remoteDir = await Deno.makeTempDir({ prefix: "remote-copy-cli-server-" });
  const localDir = await Deno.makeTempDir({ prefix: "remote-copy-cli-local-" });
  try {
    await using own = sshd ? undefined : await startSshd();
    const server = (sshd ?? own)!;
    await using home = await tempHome();
    const knownHosts = `${home.dir}/known_hosts`;
    await Deno.writeTextFile(knownHosts, server.knownHostsLine() + "\n");
    const ssh = sshOptions(server, knownHosts).map((a) => a === "-p" ? "-P" : a);
    const copy = (...args: string[]) =>
      runRemote(["copy", ...ssh, ...args], { env: home.env, timeoutMs: 120_000, cwd: localDir });
    await fn({ sshd: server, home, knownHosts, ssh, host: `${server.user}@127.0.0.1`, remoteDir, localDir, copy });
  } finally {
    await Deno.remove(remoteDir, { recursive: true }).catch(() => {});
    await Deno.remove(localDir, { recursive: true }).catch(() => {});
  }
}

async function fileHash(path: string): Promise<string> {
  const hash = createHash("sha256");
  using f = await Deno.open(path);
  for await (const chunk of f.readable) hash.update(chunk);
  return hash.digest("hex");
}

async function writeRandom(path: string, size: number): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  const block = new Uint8Array(MB);
  for (let left = size; left > 0; left -= block.length) {
    crypto.getRandomValues(block.subarray(0, 65536));
    block.copyWithin(65536, 0, MB - 65536);
    const n = Math.min(left, block.length);
    for (let at = 0; at < n;) at += await f.write(block.subarray(at, n));
  }
}

/** OpenSSH's sftp client in batch mode against the server: what it printed. */
async function sftpBatch(s: Setup, commands: string): Promise<string> {
  const child = new Deno.Command("sftp", {
    args: [
      "-q",
      "-b",
      "-",
      "-F",
      "none",
      "-P",
      String(s.sshd.port),
      "-i",
      s.sshd.userKey,
      "-o",
      `UserKnownHostsFile=${s.knownHosts}`,
      "-o",
      "BatchMode=yes",
      s.host,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(commands + "\n"));
  await w.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  strictEqual(out.code, 0, `sftp failed: ${new TextDecoder().decode(out.stderr)}\n${text}`);
  return text;
}

Deno.test("remote copy up and down: bytes exact by SHA-256 and as OpenSSH's sftp sees them, odd names, no output without a terminal", async () => {
  await withSetup(async (s) => {
    const names = ["empty", "one byte", 'it\'s, "quoted"', "big.bin"];
    await Deno.writeFile(`${s.localDir}/empty`, new Uint8Array());
    await Deno.writeFile(`${s.localDir}/one byte`, new Uint8Array([7]));
    await Deno.writeTextFile(`${s.localDir}/it's, "quoted"`, "commas and quotes\n");
    await writeRandom(`${s.localDir}/big.bin`, 5 * MB + 3);
    const up = await s.copy(...names, `${s.host}:${s.remoteDir}/`);
    assertEquals(up, { code: 0, stdout: "", stderr: "" });
    for (const n of names) strictEqual(await fileHash(`${s.remoteDir}/${n}`), await fileHash(`${s.localDir}/${n}`), n);
    // OpenSSH's sftp reads back what arrived
    await sftpBatch(s, `get "${s.remoteDir}/big.bin" "${s.localDir}/via-sftp"`);
    strictEqual(await fileHash(`${s.localDir}/via-sftp`), await fileHash(`${s.localDir}/big.bin`));
    const listing = await sftpBatch(s, `ls -l "${s.remoteDir}"`);
    match(listing, /\s5242883\s.*big\.bin/);

    await Deno.mkdir(`${s.localDir}/back`);
    const down = await s.copy(`${s.host}:${s.remoteDir}/big.bin`, `${s.host}:${s.remoteDir}/one byte`, "back");
    assertEquals(down, { code: 0, stdout: "", stderr: "" });
    strictEqual(await fileHash(`${s.localDir}/back/big.bin`), await fileHash(`${s.localDir}/big.bin`));
    assertEquals(await Deno.readFile(`${s.localDir}/back/one byte`), new Uint8Array([7]));
  });
});

Deno.test("remote copy -r -p copies a folder keeping modes and times; a remote glob picks files on the server", async () => {
  await withSetup(async (s) => {
    await Deno.mkdir(`${s.localDir}/site/sub`, { recursive: true });
    await Deno.writeTextFile(`${s.localDir}/site/a.log`, "a\n");
    await Deno.writeTextFile(`${s.localDir}/site/b.log`, "b\n");
    await Deno.writeTextFile(`${s.localDir}/site/sub/c.txt`, "c\n");
    await Deno.chmod(`${s.localDir}/site/a.log`, 0o640);
    const then = new Date("2020-01-02T03:04:05Z");
    await Deno.utime(`${s.localDir}/site/a.log`, then, then);
    const up = await s.copy("-r", "-p", "site", `${s.host}:${s.remoteDir}`);
    strictEqual(up.code, 0, up.stderr);
    const st = await Deno.stat(`${s.remoteDir}/site/a.log`);
    strictEqual(st.mode! & 0o777, 0o640);
    strictEqual(st.mtime?.getTime(), then.getTime());
    strictEqual(await Deno.readTextFile(`${s.remoteDir}/site/sub/c.txt`), "c\n");

    await Deno.mkdir(`${s.localDir}/logs`);
    const glob = await s.copy(`${s.host}:${s.remoteDir}/site/*.log`, "logs");
    strictEqual(glob.code, 0, glob.stderr);
    assertEquals([...Deno.readDirSync(`${s.localDir}/logs`)].map((e) => e.name).sort(), ["a.log", "b.log"]);
  });
});

Deno.test("remote copy --resume fetches only the rest of a partial download", async () => {
  await withSetup(async (s) => {
    await writeRandom(`${s.remoteDir}/big.bin`, 4 * MB);
    const whole = await Deno.readFile(`${s.remoteDir}/big.bin`);
    await Deno.writeFile(`${s.localDir}/big.bin`, whole.subarray(0, MB + 5));
    const resumed = await s.copy("--resume", `${s.host}:${s.remoteDir}/big.bin`, ".");
    assertEquals(resumed, { code: 0, stdout: "", stderr: "" });
    strictEqual(await fileHash(`${s.localDir}/big.bin`), await fileHash(`${s.remoteDir}/big.bin`));
    // a prefix that is not one: a warning, and the file copied whole
    await Deno.writeTextFile(`${s.localDir}/big.bin`, "not the same bytes");
    const again = await s.copy("--resume", `${s.host}:${s.remoteDir}/big.bin`, ".");
    strictEqual(again.code, 0, again.stderr);
    match(again.stderr, /^warning: .*big\.bin.* not a part of its source/);
    strictEqual(await fileHash(`${s.localDir}/big.bin`), await fileHash(`${s.remoteDir}/big.bin`));
  });
});

Deno.test("remote copy errors: one line and the engine's exit code", async () => {
  await withSetup(async (s) => {
    const missing = await s.copy(`${s.host}:${s.remoteDir}/nothing`, ".");
    strictEqual(missing.code, 253, missing.stderr);
    match(missing.stderr, /^remote: no such file or directory: .*nothing\n(hint: .*\n)?$/);
    await Deno.writeTextFile(`${s.localDir}/f`, "x");
    const noDir = await s.copy("f", `${s.host}:${s.remoteDir}/no/such/f`);
    strictEqual(noDir.code, 253, noDir.stderr);
    match(noDir.stderr, /^remote: no such directory: .*no\/such\n/);
    const folder = await s.copy(`${s.host}:${s.remoteDir}`, ".");
    strictEqual(folder.code, 253, folder.stderr);
    match(folder.stderr, /is a directory\nhint: copy folders with -r\n$/);
    const noGlob = await s.copy(`${s.host}:${s.remoteDir}/*.none`, ".");
    strictEqual(noGlob.code, 253, noGlob.stderr);
    match(noGlob.stderr, /^remote: no match for /);
    const local = await s.copy("f", "g");
    strictEqual(local.code, 230, local.stderr);
    match(local.stderr, /^remote: no remote operand.*\nhint: write the remote side as host:path/);
    const one = await s.copy("f");
    strictEqual(one.code, 230);
    match(one.stderr, /^remote: missing destination\n/);
  });
});

Deno.test("remote copy draws a progress line on a terminal, and none with -q", async () => {
  await withSetup(async (s) => {
    await writeRandom(`${s.remoteDir}/big.bin`, 8 * MB);
    const run = async (...extra: string[]) => {
      await using pty = await spawnInPty(
        Deno.execPath(),
        ["run", "-A", "--quiet", MAIN, "copy", ...s.ssh, ...extra, `${s.host}:${s.remoteDir}/big.bin`, s.localDir],
        { cols: 100, rows: 30, env: { ...s.home.env, SSH_AUTH_SOCK: "" } },
      );
      const exit = await pty.exited;
      return { code: exit.code, output: pty.output() };
    };
    const shown = await run();
    strictEqual(shown.code, 0, shown.output);
    // the last draw of the file: name, 100%, its size, a rate
    match(shown.output, /big\.bin +100% +8\.0MB +[\d.]+[KMG]?B\/s +\d\d:\d\d/);
    strictEqual(await fileHash(`${s.localDir}/big.bin`), await fileHash(`${s.remoteDir}/big.bin`));
    const quiet = await run("-q");
    strictEqual(quiet.code, 0, quiet.output);
    doesNotMatch(quiet.output, /%/);
  });
});

Deno.test("remote copy --name copies to the host of a persistent session", async () => {
  await withTmuxHost(async (sshd, socket) => {
    await withSetup(async (s) => {
      const env = { ...s.home.env, REMOTE_TMUX_SOCKET: socket };
      const ssh = ["-p", String(sshd.port), "-i", sshd.userKey, "-o", `UserKnownHostsFile=${s.knownHosts}`];
      const created = await runRemote(["new", "127.0.0.1", ...ssh, "--name", "Build"], { env });
      strictEqual(created.code, 0, created.stderr);
      await Deno.writeTextFile(`${s.localDir}/f.txt`, "to the session's host\n");
      const run = (...args: string[]) => runRemote(["copy", ...args], { env, cwd: s.localDir, timeoutMs: 60_000 });
      const up = await run("--name", "Build", "f.txt", `Build:${s.remoteDir}/`);
      strictEqual(up.code, 0, up.stderr);
      strictEqual(up.stdout, "");
      strictEqual(await Deno.readTextFile(`${s.remoteDir}/f.txt`), "to the session's host\n");
      const wrong = await run("--name", "Build", "f.txt", `elsewhere:${s.remoteDir}/`);
      strictEqual(wrong.code, 230);
      match(wrong.stderr, /^remote: elsewhere is not the host of session Build \(127\.0\.0\.1\)\nhint: write/);
    }, sshd);
  }, { prefix: "remote-copy" });
});
