/**
 * The SFTP copy engine (transports/ssh/sftp_copy.ts) against the real OpenSSH sshd and its sftp server:
 * files are checked by SHA-256 and by what OpenSSH's own `sftp` client sees on the server; errors are those a
 * user meets (permission denied, a full disk, a missing folder), with partial files removed.
 *
 * @module
 */
import {
  deepStrictEqual as assertEquals,
  match,
  notStrictEqual,
  ok as assert,
  rejects,
  strictEqual,
} from "node:assert/strict";
import { createHash } from "node:crypto";
import { connectSsh, type SshConnection } from "../transports/ssh/connection.ts";
import type { CopyProgress } from "../plugins/mod.ts";
import { copyFiles, type CopyOptions } from "../transports/ssh/sftp_copy.ts";
import { RemoteError } from "../plugins/mod.ts";
import { type IsolatedHome, isolatedHome, trustedContext } from "./harness/ssh_context.ts";
import { type SshdOptions, type SshdServer, startSshd, withLogOnFailure } from "./harness/sshd.ts";

const MB = 1024 * 1024;

interface Setup {
  sshd: SshdServer;
  home: IsolatedHome;
  connection: SshConnection;
  /** a folder on the server (the same machine, so tests can prepare and inspect it) */
  remoteDir: string;
  /** a local folder */
  localDir: string;
}

async function withSetup(options: SshdOptions, fn: (s: Setup) => Promise<void>): Promise<void> {
  const remoteDir = await Deno.makeTempDir({ prefix: "remote-copy-server-" });
  const localDir = await Deno.makeTempDir({ prefix: "remote-copy-local-" });
  try {
    await using sshd = await startSshd(options);
    await using home = await isolatedHome();
    const ctx = await trustedContext(sshd, home);
    await using connection = await connectSsh(ctx);
    await withLogOnFailure(sshd, () => fn({ sshd, home, connection, remoteDir, localDir }));
  } finally {
    await Deno.remove(remoteDir, { recursive: true }).catch(() => {});
    await Deno.remove(localDir, { recursive: true }).catch(() => {});
  }
}

const remote = (path: string) => ({ side: "remote" as const, path });
const local = (path: string) => ({ side: "local" as const, path });

function copy(s: Setup, sources: { side: "local" | "remote"; path: string }[], dest: {
  side: "local" | "remote";
  path: string;
}, options: CopyOptions = {}) {
  return copyFiles(s.connection, sources, dest, { remoteName: "db1", ...options });
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
    block.copyWithin(65536, 0, MB - 65536); // cheap variety past 64 KiB
    const n = Math.min(left, block.length);
    for (let at = 0; at < n;) at += await f.write(block.subarray(at, n));
  }
}

/** Runs OpenSSH's sftp client in batch mode against the server and returns what it printed. */
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
      `UserKnownHostsFile=${s.home.knownHosts}`,
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      "BatchMode=yes",
      `${s.sshd.user}@127.0.0.1`,
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

/** name → size as `sftp`'s `ls -ln` shows a folder (names without newlines). */
async function sftpSizes(s: Setup, dir: string): Promise<Record<string, number>> {
  const text = await sftpBatch(s, `ls -ln "${dir}"`);
  const sizes: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^[-dl][rwxsStT-]{9}\s+\S+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\d+\s+[\d:]+\s+(.*)$/.exec(line);
    if (m) sizes[m[2].slice(m[2].lastIndexOf("/") + 1)] = Number(m[1]);
  }
  return sizes;
}

/** The awkward files every copy must carry exactly: empty, 1 byte, large, sparse, odd names. */
async function makeTree(dir: string, largeSize: number): Promise<Record<string, string>> {
  await Deno.mkdir(`${dir}/sub dir`, { recursive: true });
  await Deno.writeFile(`${dir}/empty`, new Uint8Array());
  await Deno.writeFile(`${dir}/one`, new Uint8Array([0x7f]));
  await writeRandom(`${dir}/large.bin`, largeSize);
  {
    using f = await Deno.open(`${dir}/sparse`, { write: true, create: true });
    await f.truncate(6 * MB + 17);
    await f.seek(3 * MB, Deno.SeekMode.Start);
    await f.write(new TextEncoder().encode("island"));
  }
  await Deno.writeTextFile(`${dir}/sub dir/with space`, "a");
  await Deno.writeTextFile(`${dir}/sub dir/it's "quoted"`, "b");
  await Deno.writeTextFile(`${dir}/sub dir/new\nline`, "c");
  const hashes: Record<string, string> = {};
  for (
    const name of [
      "empty",
      "one",
      "large.bin",
      "sparse",
      "sub dir/with space",
      `sub dir/it's "quoted"`,
      "sub dir/new\nline",
    ]
  ) {
    hashes[name] = await fileHash(`${dir}/${name}`);
  }
  return hashes;
}

async function hashesOf(dir: string, names: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of names) out[name] = await fileHash(`${dir}/${name}`);
  return out;
}

Deno.test("copyFiles() uploads and downloads a tree binary-exact: empty, 1 byte, 20 MB, sparse, odd names", async () => {
  await withSetup({}, async (s) => {
    const hashes = await makeTree(`${s.localDir}/tree`, 20 * MB);
    const names = Object.keys(hashes);
    const up = await copy(s, [local(`${s.localDir}/tree`)], remote(s.remoteDir), { recursive: true });
    assertEquals(up, { files: 7, bytes: 26 * MB + 1 + 17 + 3, resumedBytes: 0 });
    assertEquals(await hashesOf(`${s.remoteDir}/tree`, names), hashes);
    // what OpenSSH's sftp sees on the server
    assertEquals(await sftpSizes(s, `${s.remoteDir}/tree`), {
      empty: 0,
      one: 1,
      "large.bin": 20 * MB,
      sparse: 6 * MB + 17,
      "sub dir": (await Deno.stat(`${s.remoteDir}/tree/sub dir`)).size,
    });
    // and what it reads back from the server is the same bytes
    await sftpBatch(s, `get "${s.remoteDir}/tree/sparse" "${s.localDir}/via-sftp"`);
    strictEqual(await fileHash(`${s.localDir}/via-sftp`), hashes.sparse);
    await Deno.remove(`${s.localDir}/via-sftp`);
    const odd = await sftpBatch(s, `ls -1a "${s.remoteDir}/tree/sub dir"`);
    for (const name of ["with space", `it's "quoted"`, "new\nline"]) assert(odd.includes(name), odd);

    await Deno.mkdir(`${s.localDir}/back`);
    const down = await copy(s, [remote(`${s.remoteDir}/tree`)], local(`${s.localDir}/back`), { recursive: true });
    strictEqual(down.files, 7);
    assertEquals(await hashesOf(`${s.localDir}/back/tree`, names), hashes);
  });
});

Deno.test("copyFiles() keeps modes and times with preserve, and not without", async () => {
  await withSetup({}, async (s) => {
    const src = `${s.localDir}/script.sh`;
    await Deno.writeTextFile(src, "#!/bin/sh\n");
    await Deno.chmod(src, 0o750);
    await Deno.utime(src, 1_000_000_000, 1_100_000_000);
    await copy(s, [local(src)], remote(`${s.remoteDir}/kept.sh`), { preserve: true });
    await copy(s, [local(src)], remote(`${s.remoteDir}/plain.sh`));
    const kept = await Deno.stat(`${s.remoteDir}/kept.sh`);
    strictEqual(kept.mode! & 0o7777, 0o750);
    strictEqual(kept.mtime!.getTime(), 1_100_000_000_000);
    strictEqual(kept.atime!.getTime(), 1_000_000_000_000);
    notStrictEqual((await Deno.stat(`${s.remoteDir}/plain.sh`)).mtime!.getTime(), 1_100_000_000_000);
    // sftp sees the preserved time too
    match(await sftpBatch(s, `ls -l "${s.remoteDir}/kept.sh"`), /^-rwxr-x---\s.*\sNov\s+\d+\s+2004\s/m);

    await copy(s, [remote(`${s.remoteDir}/kept.sh`)], local(`${s.localDir}/down.sh`), { preserve: true });
    const down = await Deno.stat(`${s.localDir}/down.sh`);
    strictEqual(down.mode! & 0o7777, 0o750);
    strictEqual(down.mtime!.getTime(), 1_100_000_000_000);
  });
});

Deno.test("copyFiles() expands remote globs as scp does, dot files only by name", async () => {
  await withSetup({}, async (s) => {
    for (const name of ["a.log", "b.log", ".hidden.log", "c.txt"]) {
      await Deno.writeTextFile(`${s.remoteDir}/${name}`, name);
    }
    await Deno.mkdir(`${s.remoteDir}/x1`);
    await Deno.mkdir(`${s.remoteDir}/x2`);
    await Deno.writeTextFile(`${s.remoteDir}/x1/f.log`, "x1");
    await Deno.writeTextFile(`${s.remoteDir}/x2/f.log`, "x2");
    const r = await copy(s, [remote(`${s.remoteDir}/*.log`)], local(s.localDir));
    strictEqual(r.files, 2);
    assertEquals((await Array.fromAsync(Deno.readDir(s.localDir))).map((e) => e.name).sort(), ["a.log", "b.log"]);
    await Deno.mkdir(`${s.localDir}/q`);
    await copy(s, [remote(`${s.remoteDir}/[b-c].*`), remote(`${s.remoteDir}/.h*`)], local(`${s.localDir}/q`));
    assertEquals((await Array.fromAsync(Deno.readDir(`${s.localDir}/q`))).map((e) => e.name).sort(), [
      ".hidden.log",
      "b.log",
      "c.txt",
    ]);
    await rejects(copy(s, [remote(`${s.remoteDir}/x?/f.log`)], local(`${s.localDir}/one-file`)), {
      message: `${s.localDir}/one-file is not a directory`,
    });
    await rejects(copy(s, [remote(`${s.remoteDir}/*.none`)], local(s.localDir)), (e) => {
      assert(e instanceof RemoteError);
      strictEqual(e.message, `no match for db1:${s.remoteDir}/*.none`);
      strictEqual(e.exitCode, 253);
      return true;
    });
  });
});

Deno.test("copyFiles() removes the partial file of an interrupted download, and resume continues one", async () => {
  await withSetup({}, async (s) => {
    const src = `${s.remoteDir}/big.bin`;
    await writeRandom(src, 12 * MB);
    const want = await fileHash(src);
    const dest = `${s.localDir}/big.bin`;
    const interrupt = (after: number) => {
      const ac = new AbortController();
      return {
        signal: ac.signal,
        progress: (p: CopyProgress) => {
          if (p.bytes >= after) ac.abort();
        },
      };
    };
    await rejects(copy(s, [remote(src)], local(dest), interrupt(3 * MB)), (e) => {
      assert(e instanceof RemoteError);
      strictEqual(e.message, "copy interrupted");
      strictEqual(e.exitCode, 130);
      return true;
    });
    await rejects(Deno.stat(dest), Deno.errors.NotFound);

    // with resume the partial file stays, and the next run fetches only the rest
    await rejects(copy(s, [remote(src)], local(dest), { resume: true, ...interrupt(5 * MB) }));
    const partial = (await Deno.stat(dest)).size;
    assert(partial >= 5 * MB && partial < 12 * MB, String(partial));
    const seen: CopyProgress[] = [];
    const r = await copy(s, [remote(src)], local(dest), { resume: true, progress: (p) => seen.push(p) });
    assertEquals(r, { files: 1, bytes: 12 * MB - partial, resumedBytes: partial });
    strictEqual(seen[0].bytes, partial);
    strictEqual(seen.at(-1)!.done, true);
    strictEqual(seen.at(-1)!.bytes, 12 * MB);
    strictEqual(await fileHash(dest), want);

    // a partial file that is not a prefix of the source is fetched whole, with a warning
    using f = await Deno.open(dest, { write: true });
    await f.truncate(2 * MB);
    await f.write(new Uint8Array([1, 2, 3]));
    const notices: string[] = [];
    const again = await copy(s, [remote(src)], local(dest), { resume: true, notice: (l) => notices.push(l) });
    assertEquals(again, { files: 1, bytes: 12 * MB, resumedBytes: 0 });
    assertEquals(notices, [`warning: ${dest} is not a part of its source; copying it whole`]);
    strictEqual(await fileHash(dest), want);
  });
});

Deno.test("copyFiles() resumes by reading the prefix over SFTP when the server runs no commands", async () => {
  await withSetup({ config: "ForceCommand internal-sftp" }, async (s) => {
    const src = `${s.remoteDir}/data`;
    await writeRandom(src, 3 * MB);
    const dest = `${s.localDir}/data`;
    const whole = await Deno.readFile(src);
    await Deno.writeFile(dest, whole.subarray(0, MB + 5));
    const r = await copy(s, [remote(src)], local(dest), { resume: true });
    assertEquals(r, { files: 1, bytes: 2 * MB - 5, resumedBytes: MB + 5 });
    strictEqual(await fileHash(dest), await fileHash(src));
  });
});

Deno.test("copyFiles() says permission denied in one line with exit 253 and leaves nothing behind", async () => {
  await withSetup({ sftpServer: "internal-sftp -R" }, async (s) => {
    await Deno.writeTextFile(`${s.localDir}/f`, "data");
    await rejects(copy(s, [local(`${s.localDir}/f`)], remote(`${s.remoteDir}/f`)), (e) => {
      assert(e instanceof RemoteError);
      strictEqual(e.message, `permission denied creating db1:${s.remoteDir}/f`);
      strictEqual(e.hint, `check the owner and mode of ${s.remoteDir}/f and its folder on db1 (ls -ld)`);
      strictEqual(e.exitCode, 253);
      return true;
    });
    assertEquals(await sftpSizes(s, s.remoteDir), {});
  });
});

Deno.test("copyFiles() says when the remote disk is full and removes the partial upload", async () => {
  const mountPoint = await Deno.makeTempDir({ prefix: "remote-copy-tmpfs-" });
  try {
    await withSetup({ tmpfs: { path: mountPoint, size: "1m" } }, async (s) => {
      await writeRandom(`${s.localDir}/big`, 3 * MB);
      await rejects(copy(s, [local(`${s.localDir}/big`)], remote(`${mountPoint}/big`)), (e) => {
        assert(e instanceof RemoteError);
        strictEqual(e.message, `no space left on db1 writing db1:${mountPoint}/big`);
        strictEqual(e.hint, `free some space there (df -h ${mountPoint}), or copy somewhere else`);
        strictEqual(e.exitCode, 253);
        return true;
      });
      // the tmpfs exists only in the server's mount namespace: ask sftp what is there
      assertEquals(await sftpSizes(s, mountPoint), {});
      // a file that fits goes through
      await Deno.writeTextFile(`${s.localDir}/small`, "fits");
      await copy(s, [local(`${s.localDir}/small`)], remote(`${mountPoint}/small`));
      assertEquals(await sftpSizes(s, mountPoint), { small: 4 });
    });
  } finally {
    await Deno.remove(mountPoint, { recursive: true });
  }
});

Deno.test("copyFiles() names a missing remote folder, a missing file, and a full local disk", async () => {
  await withSetup({}, async (s) => {
    await Deno.writeTextFile(`${s.localDir}/f`, "data");
    await rejects(copy(s, [local(`${s.localDir}/f`)], remote(`${s.remoteDir}/no/such/f`)), (e) => {
      assert(e instanceof RemoteError);
      strictEqual(e.message, `no such directory: db1:${s.remoteDir}/no/such`);
      strictEqual(e.exitCode, 253);
      return true;
    });
    await rejects(copy(s, [local(`${s.localDir}/f`)], remote(`${s.remoteDir}/nodir/`)), {
      message: `no such directory: db1:${s.remoteDir}/nodir`,
    });
    await rejects(copy(s, [remote(`${s.remoteDir}/nothing`)], local(s.localDir)), {
      message: `no such file or directory: db1:${s.remoteDir}/nothing`,
    });
    await rejects(copy(s, [remote(s.remoteDir)], local(s.localDir)), {
      message: `db1:${s.remoteDir} is a directory`,
      hint: "copy folders with -r",
    });
    await writeRandom(`${s.remoteDir}/r`, MB);
    await rejects(copy(s, [remote(`${s.remoteDir}/r`)], local("/dev/full")), (e) => {
      assert(e instanceof RemoteError);
      strictEqual(e.message, "no space left on the local disk writing /dev/full");
      strictEqual(e.exitCode, 253);
      return true;
    });
    assert((await Deno.stat("/dev/full")).isCharDevice, "a device is never removed as a partial file");
  });
});

Deno.test("copyFiles() resumes an upload from the server's partial file and reports rate and time left", async () => {
  await withSetup({}, async (s) => {
    const src = `${s.localDir}/up.bin`;
    await writeRandom(src, 6 * MB);
    const whole = await Deno.readFile(src);
    const dest = `${s.remoteDir}/up.bin`;
    await Deno.writeFile(dest, whole.subarray(0, 4 * MB + 3));
    const seen: CopyProgress[] = [];
    const r = await copy(s, [local(src)], remote(dest), { resume: true, progress: (p) => seen.push(p) });
    assertEquals(r, { files: 1, bytes: 2 * MB - 3, resumedBytes: 4 * MB + 3 });
    strictEqual(await fileHash(dest), await fileHash(src));
    strictEqual(seen[0].bytes, 4 * MB + 3);
    assert(seen.every((p) => p.path === src && p.size === 6 * MB));
    const mid = seen.find((p) => !p.done && p.bytes > 4 * MB + 3);
    assert(mid && mid.rate > 0 && mid.etaSeconds !== undefined && mid.etaSeconds >= 0, JSON.stringify(mid));
    assertEquals([seen.at(-1)!.done, seen.at(-1)!.bytes, seen.at(-1)!.etaSeconds], [true, 6 * MB, 0]);
    // without resume the same upload starts over and replaces the file
    await Deno.writeFile(dest, new Uint8Array([9, 9, 9]));
    assertEquals(await copy(s, [local(src)], remote(dest)), { files: 1, bytes: 6 * MB, resumedBytes: 0 });
    strictEqual(await fileHash(dest), await fileHash(src));
  });
});

Deno.test("copyFiles() follows links in a tree but stops a link loop with one line", async () => {
  await withSetup({}, async (s) => {
    await Deno.mkdir(`${s.localDir}/tree/a`, { recursive: true });
    await Deno.writeTextFile(`${s.localDir}/tree/a/f`, "f");
    await Deno.writeTextFile(`${s.localDir}/target`, "linked");
    await Deno.symlink(`${s.localDir}/target`, `${s.localDir}/tree/link`);
    await copy(s, [local(`${s.localDir}/tree`)], remote(s.remoteDir), { recursive: true });
    strictEqual(await Deno.readTextFile(`${s.remoteDir}/tree/link`), "linked");
    assert((await Deno.lstat(`${s.remoteDir}/tree/link`)).isFile);

    await Deno.symlink(`${s.localDir}/tree`, `${s.localDir}/tree/a/loop`);
    await rejects(copy(s, [local(`${s.localDir}/tree`)], remote(`${s.remoteDir}/again`), { recursive: true }), {
      message: new RegExp(`^${s.localDir}/tree(/a/loop)+(/a)?: more than 64 folders deep$`),
    });
    await Deno.mkdir(`${s.localDir}/down`);
    await rejects(copy(s, [remote(`${s.localDir}/tree`)], local(`${s.localDir}/down`), { recursive: true }), {
      message: /^db1:.*: more than 64 folders deep$/,
    });
  });
});

Deno.test("copyFiles() ends with one line (exit 250) when the connection drops mid-transfer, keeping a partial download for resume", async () => {
  await withSetup({}, async (s) => {
    const src = `${s.remoteDir}/big.bin`;
    await writeRandom(src, 40 * MB);
    const dest = `${s.localDir}/big.bin`;
    let dropped = false;
    const err = await copy(s, [remote(src)], local(dest), {
      resume: true,
      progress: (p) => {
        if (p.bytes >= 4 * MB && !dropped) {
          dropped = true;
          s.connection.client.end(); // the link goes away under the transfer
        }
      },
    }).then(() => undefined, (e) => e);
    assert(err instanceof RemoteError, String(err));
    assertEquals([err.message, err.hint, err.exitCode], [
      "connection to db1 lost during the copy",
      "run the same copy again to continue",
      250,
    ]);
    const partial = (await Deno.stat(dest)).size;
    assert(partial >= 4 * MB && partial < 40 * MB, String(partial));

    await using home = await isolatedHome();
    await using again = await connectSsh(await trustedContext(s.sshd, home));
    const r = await copyFiles(again, [remote(src)], local(dest), { resume: true });
    assertEquals(r, { files: 1, bytes: 40 * MB - partial, resumedBytes: partial });
    strictEqual(await fileHash(dest), await fileHash(src));

    // an upload that loses its connection ends too, with the hint to resume
    let droppedUp = false;
    const upErr = await copyFiles(again, [local(dest)], remote(`${s.remoteDir}/up.bin`), {
      remoteName: "db1",
      progress: (p) => {
        if (p.bytes >= 4 * MB && !droppedUp) {
          droppedUp = true;
          again.client.end();
        }
      },
    }).then(() => undefined, (e) => e);
    assert(upErr instanceof RemoteError, String(upErr));
    assertEquals([upErr.message, upErr.hint, upErr.exitCode], [
      "connection to db1 lost during the copy",
      "run it again, with --resume to keep what arrived",
      250,
    ]);
  });
});
