/**
 * File copy over SFTP (draft-ietf-secsh-filexfer-02, the version OpenSSH's sftp-server speaks), on an
 * authenticated SSH connection, as scp(1) in its SFTP mode does it: upload or download of files and, with
 * `recursive`, directories; `preserve` keeps modes and times; remote operands are expanded as globs (glob(3):
 * `*`, `?`, `[...]`, dot files only by name), as scp's remote_glob() does.
 *
 * Throughput comes from pipelining: up to {@linkcode DEFAULT_CONCURRENCY} reads or writes of
 * {@linkcode DEFAULT_CHUNK_SIZE} bytes are in flight per file (2 MiB, the window OpenSSH's sshd gives a session
 * channel; OpenSSH's sftp client keeps 64 requests of 32 KiB, sftp.c `-R`/`-B`, and fewer, larger requests cost
 * less CPU here). Memory stays bounded by that window: a download holds at most that many chunks, written in
 * order.
 *
 * A download that fails leaves no partial file, unless `resume`: then the partial file stays and a later
 * `resume` run checks that it is a prefix of the remote file (same SHA-256 over its length, computed on the
 * server by `head -c N | sha256sum` when a shell is there, else by reading the prefix over SFTP) and fetches
 * only the rest. Uploads resume the same way.
 *
 * @example Download a folder
 * ```ts
 * import { copyFiles } from "./sftp_copy.ts";
 * import type { SshConnection } from "./connection.ts";
 * declare const connection: SshConnection;
 * const result = await copyFiles(connection, [{ side: "remote", path: "logs" }], { side: "local", path: "." }, {
 *   recursive: true,
 *   progress: (p) => console.error(p.path, p.bytes, p.size),
 * });
 * console.log(result.files, result.bytes);
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { SFTPWrapper, Stats } from "ssh2";
import { type CopyProgress, RemoteError, shellQuote, TransportError, UsageError } from "../../plugins/mod.ts";
import type { SshConnection } from "./connection.ts";
import { corked } from "./socket.ts";

/** Bytes per SFTP read or write request; OpenSSH's sftp-server accepts up to 255 KiB (limits@openssh.com). */
export const DEFAULT_CHUNK_SIZE = 128 * 1024;
/** Requests in flight per file. */
export const DEFAULT_CONCURRENCY = 16;

/** One side of a copy: a path on this machine or on the connection's host. */
export interface CopyEndpoint {
  side: "local" | "remote";
  /** for `remote`, relative paths start at the login directory; `""` is the login directory */
  path: string;
}

/** Options of {@linkcode copyFiles}. */
export interface CopyOptions {
  /** copy directories and their contents (scp -r) */
  recursive?: boolean;
  /** keep modes and modification/access times (scp -p) */
  preserve?: boolean;
  /** continue a partial destination file that is a prefix of the source; keep partial files on failure */
  resume?: boolean;
  progress?(p: CopyProgress): void;
  /** one-line notices for the user (a skipped special file, a resume that starts over) */
  notice?(line: string): void;
  signal?: AbortSignal;
  /** how remote paths are shown in messages (the host as the user typed it); default the connection's display */
  remoteName?: string;
  chunkSize?: number;
  concurrency?: number;
}

/** What a copy did. */
export interface CopyResult {
  files: number;
  /** bytes moved by this run */
  bytes: number;
  /** bytes kept from partial files by `resume` */
  resumedBytes: number;
}

/** What the copy engine needs of a connection. */
export type CopyConnection = Pick<SshConnection, "client" | "display" | "run">;

/**
 * Local reads and writes go in blocks of this size: each one is a trip through Deno's blocking thread pool, and
 * on a busy machine every trip waits for a thread to be scheduled.
 */
const LOCAL_IO_BYTES = 1024 * 1024;

/** How deep -r descends, as OpenSSH's sftp-client.c MAX_DIR_DEPTH: links are followed, so a loop must end. */
export const MAX_DIR_DEPTH = 64;

/** SFTP status codes (draft-ietf-secsh-filexfer-02 section 7). */
const FX = { eof: 1, noSuchFile: 2, permissionDenied: 3, failure: 4 } as const;

function sftpCode(err: unknown): number | undefined {
  const code = typeof err === "object" && err !== null && "code" in err ? err.code : undefined;
  return typeof code === "number" ? code : undefined;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const posixBase = (p: string) => {
  const t = p.replace(/\/+$/, "");
  return t === "" ? p : t.slice(t.lastIndexOf("/") + 1);
};
const posixDir = (p: string) => {
  const t = p.replace(/\/+$/, "");
  const at = t.lastIndexOf("/");
  return at < 0 ? "." : at === 0 ? "/" : t.slice(0, at);
};
const join = (dir: string, name: string) =>
  dir === "" || dir === "." ? name : dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`;

/** glob(3) of one path component as a RegExp: `*`, `?`, `[...]`/`[!...]`, `\` escapes. */
function globRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\" && i + 1 < pattern.length) re += `\\${pattern[++i]}`.replace(/^\\([A-Za-z0-9])$/, "$1");
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        let body = pattern.slice(i + 1, end);
        const negate = body.startsWith("!");
        if (negate) body = body.slice(1);
        re += `[${negate ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
        i = end;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${re}$`, "s");
}

const hasGlob = (s: string) => /[*?[]/.test(s);

/** Promisified SFTP calls, each turning the server's status into a one-line {@linkcode RemoteError}. */
class Remote {
  /** set once the SFTP channel or the connection under it is gone: requests would never be answered */
  lost: TransportError | undefined;
  /** rejects with {@linkcode Remote.lost} */
  readonly gone: Promise<never>;
  readonly #stop: () => void;

  constructor(readonly sftp: SFTPWrapper, readonly name: string, client: CopyConnection["client"], resume: boolean) {
    let fail!: (e: TransportError) => void;
    this.gone = new Promise<never>((_, reject) => fail = reject);
    this.gone.catch(() => {});
    const onGone = () => {
      this.lost ??= new TransportError(`connection to ${name} lost during the copy`, {
        layer: "channel",
        code: "lost",
        hint: resume ? "run the same copy again to continue" : "run it again, with --resume to keep what arrived",
      });
      fail(this.lost);
    };
    sftp.once("end", onGone);
    sftp.once("close", onGone);
    client.once("close", onGone);
    this.#stop = () => {
      sftp.off("end", onGone);
      sftp.off("close", onGone);
      client.off("close", onGone);
    };
  }

  /** stops watching the connection (it outlives the copy) */
  stop(): void {
    this.#stop();
  }

  /** `p`, or the loss of the connection, whichever comes first */
  guard<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.gone]);
  }

  show(path: string): string {
    return `${this.name}:${path}`;
  }

  error(err: unknown, path: string, doing: string): RemoteError {
    if (err instanceof RemoteError) return err;
    // ssh2 answers every pending request so when the channel closes under it
    if (this.lost || message(err) === "No response from server") {
      return this.lost ?? new TransportError(`connection to ${this.name} lost during the copy`, {
        layer: "channel",
        code: "lost",
        hint: "run it again, with --resume to keep what arrived",
        cause: err,
      });
    }
    const code = sftpCode(err);
    if (code === FX.noSuchFile) {
      return new RemoteError("file", `no such file or directory: ${this.show(path)}`, {
        hint: "check the path; relative remote paths start at the login directory",
        cause: err,
      });
    }
    if (code === FX.permissionDenied) {
      return new RemoteError("file", `permission denied ${doing} ${this.show(path)}`, {
        hint: `check the owner and mode of ${path} and its folder on ${this.name} (ls -ld)`,
        cause: err,
      });
    }
    return new RemoteError("file", `${doing} ${this.show(path)} failed: ${message(err)}`, {
      hint: `see why on ${this.name} (the sftp-server's log), or try the same with sftp`,
      cause: err,
    });
  }

  call<T>(
    path: string,
    doing: string,
    fn: (cb: (err: Error | undefined | null, value: T) => void) => void,
  ): Promise<T> {
    if (this.lost) return Promise.reject(this.lost);
    return this.guard(
      new Promise<T>((resolve, reject) => {
        try {
          fn((err, value) => err ? reject(this.error(err, path, doing)) : resolve(value));
        } catch (err) {
          reject(new TransportError(`the SFTP session with ${this.name} ended`, { layer: "channel", cause: err }));
        }
      }),
    );
  }

  stat(path: string): Promise<Stats | undefined> {
    if (this.lost) return Promise.reject(this.lost);
    return this.guard(
      new Promise((resolve, reject) => {
        this.sftp.stat(path || ".", (err, st) => {
          if (!err) return resolve(st);
          if (sftpCode(err) === FX.noSuchFile) return resolve(undefined);
          reject(this.error(err, path, "reading"));
        });
      }),
    );
  }

  /** free bytes and inodes of the file system holding `path`, when the server tells (statvfs@openssh.com) */
  async free(path: string): Promise<{ bytes: number; inodes: number } | undefined> {
    try {
      const info = await this.guard(
        new Promise<Record<string, unknown>>((resolve, reject) =>
          this.sftp.ext_openssh_statvfs(path, (err, v) => err ? reject(err) : resolve(v))
        ),
      );
      return { bytes: Number(info.f_bavail) * Number(info.f_frsize), inodes: Number(info.f_favail) };
    } catch {
      return undefined;
    }
  }
}

function localError(err: unknown, path: string, doing: string): RemoteError {
  if (err instanceof RemoteError) return err;
  if (err instanceof Deno.errors.NotFound) {
    return new RemoteError("file", `no such file or directory: ${path}`, { hint: "check the path", cause: err });
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return new RemoteError("file", `permission denied ${doing} ${path}`, {
      hint: `check the owner and mode of ${path} and its folder (ls -ld)`,
      cause: err,
    });
  }
  if (/os error 28\b|ENOSPC|No space left/i.test(message(err))) {
    return new RemoteError("file", `no space left on the local disk writing ${path}`, {
      hint: "free some space (df -h), or copy somewhere else",
      cause: err,
    });
  }
  if (err instanceof Deno.errors.IsADirectory) {
    return new RemoteError("file", `${path} is a directory`, { hint: "name a file, or the folder to copy into" });
  }
  return new RemoteError("file", `${doing} ${path} failed: ${message(err)}`, { hint: "check the path", cause: err });
}

function tooDeep(shown: string): RemoteError {
  return new RemoteError("file", `${shown}: more than ${MAX_DIR_DEPTH} folders deep`, {
    hint: "a symbolic link may point to a folder above it; copy the parts you need",
  });
}

async function lstatLocal(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw localError(err, path, "reading");
  }
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await file.write(data.subarray(at));
}

/** Gathers chunks into writes of {@linkcode LOCAL_IO_BYTES}. */
class LocalWriter {
  #parts: Uint8Array[] = [];
  #size = 0;
  constructor(readonly file: Deno.FsFile, readonly path: string) {}

  async write(data: Uint8Array): Promise<void> {
    this.#parts.push(data);
    this.#size += data.length;
    if (this.#size >= LOCAL_IO_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#size === 0) return;
    const buf = this.#parts.length === 1 ? this.#parts[0] : new Uint8Array(this.#size);
    if (this.#parts.length > 1) {
      let at = 0;
      for (const p of this.#parts) {
        buf.set(p, at);
        at += p.length;
      }
    }
    this.#parts = [];
    this.#size = 0;
    try {
      await writeAll(this.file, buf);
    } catch (err) {
      throw localError(err, this.path, "writing");
    }
  }
}

async function readFull(file: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let at = 0;
  while (at < buf.length) {
    const n = await file.read(buf.subarray(at));
    if (n === null) break;
    at += n;
  }
  return at;
}

/** SHA-256 of the first `length` bytes of a local file. */
async function localPrefixHash(path: string, length: number): Promise<string> {
  using file = await Deno.open(path, { read: true });
  const hash = createHash("sha256");
  const buf = new Uint8Array(1024 * 1024);
  let left = length;
  while (left > 0) {
    const n = await file.read(buf.subarray(0, Math.min(buf.length, left)));
    if (n === null) break;
    hash.update(buf.subarray(0, n));
    left -= n;
  }
  return hash.digest("hex");
}

const times = (info: { atime: Date | null; mtime: Date | null }) => ({
  atime: Math.floor((info.atime ?? info.mtime ?? new Date()).getTime() / 1000),
  mtime: Math.floor((info.mtime ?? new Date()).getTime() / 1000),
});

/**
 * Copies `sources` to `destination` over SFTP on `connection`, as scp does: every source on one side and the
 * destination on the other; several sources (or a glob matching several) need a destination folder; a folder
 * source needs `recursive`.
 *
 * @throws {RemoteError} `file` (253) for a missing file or folder, permission denied, no space left, a folder
 * without `recursive`; `usage` (230) for operands on the same side; `interrupted` (130) when `signal` aborts
 */
export async function copyFiles(
  connection: CopyConnection,
  sources: readonly CopyEndpoint[],
  destination: CopyEndpoint,
  options: CopyOptions = {},
): Promise<CopyResult> {
  if (sources.length === 0) throw new UsageError("nothing to copy", { hint: "name at least one source" });
  if (sources.some((s) => s.side === destination.side)) {
    throw new UsageError(
      destination.side === "remote"
        ? "copy between two remote paths is not supported"
        : "copy between two local paths is not remote's business",
      { hint: "give sources on one side and the destination on the other (host:path for the remote one)" },
    );
  }
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) =>
    connection.client.sftp((err, s) =>
      err
        ? reject(
          new TransportError(`${connection.display} offers no SFTP: ${err.message}`, {
            layer: "server",
            hint: "the server's sshd_config needs a Subsystem sftp line",
            cause: err,
          }),
        )
        : resolve(s)
    )
  );
  try {
    const remote = new Remote(sftp, options.remoteName ?? connection.display, connection.client, !!options.resume);
    try {
      const engine = new Engine(connection, remote, options);
      return destination.side === "remote"
        ? await engine.upload(sources.map((s) => s.path), destination.path)
        : await engine.download(sources.map((s) => s.path), destination.path);
    } finally {
      remote.stop();
    }
  } finally {
    sftp.end();
  }
}

class Engine {
  readonly result: CopyResult = { files: 0, bytes: 0, resumedBytes: 0 };
  readonly chunk: number;
  readonly concurrency: number;
  readonly signal: AbortSignal;

  constructor(readonly connection: CopyConnection, readonly remote: Remote, readonly options: CopyOptions) {
    this.chunk = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.signal = options.signal ?? new AbortController().signal;
  }

  checkAbort(): void {
    if (this.signal.aborted) throw new RemoteError("interrupted", "copy interrupted");
  }

  notice(line: string): void {
    this.options.notice?.(line);
  }

  progressFor(path: string, size: number, start: number): (bytes: number, done?: boolean) => void {
    const began = performance.now();
    return (bytes, done = false) => {
      const seconds = (performance.now() - began) / 1000;
      const moved = bytes - start;
      const rate = seconds > 0 ? moved / seconds : 0;
      this.options.progress?.({
        path,
        bytes,
        size,
        rate,
        etaSeconds: rate > 0 ? Math.max(0, size - bytes) / rate : undefined,
        totalBytes: this.result.bytes,
        done,
      });
    };
  }

  // ---- download ----

  /** remote operands with their globs expanded, as scp's remote_glob() */
  async expandRemote(pattern: string): Promise<string[]> {
    if (!hasGlob(pattern)) return [pattern];
    const absolute = pattern.startsWith("/");
    const parts = pattern.split("/").filter((p, i) => p !== "" || i === 0);
    let bases = [absolute ? "/" : ""];
    for (const [i, part] of parts.entries()) {
      if (i === 0 && absolute) continue;
      const last = i === parts.length - 1;
      if (!hasGlob(part)) {
        bases = bases.map((b) => join(b, part.replace(/\\(.)/g, "$1")));
        continue;
      }
      const re = globRegExp(part);
      const next: string[] = [];
      for (const base of bases) {
        const list = await this.remote.guard(
          new Promise<{ filename: string; attrs: Stats }[]>((resolve) =>
            this.remote.sftp.readdir(base || ".", (err, l) => resolve(err ? [] : l))
          ),
        );
        for (const e of list) {
          if (e.filename === "." || e.filename === "..") continue;
          if (e.filename.startsWith(".") && !part.startsWith(".")) continue;
          if (!re.test(e.filename)) continue;
          if (!last && !e.attrs.isDirectory()) continue;
          next.push(join(base, e.filename));
        }
      }
      bases = next.sort();
    }
    if (bases.length === 0) {
      throw new RemoteError("file", `no match for ${this.remote.show(pattern)}`, {
        hint: "check the pattern; * does not match names starting with a dot",
      });
    }
    return bases;
  }

  async download(patterns: string[], dest: string): Promise<CopyResult> {
    const sources: string[] = [];
    for (const p of patterns) sources.push(...await this.expandRemote(p));
    const destInfo = await lstatLocal(dest);
    const intoDir = destInfo?.isDirectory ?? false;
    if (!intoDir) {
      if (sources.length > 1) {
        throw new RemoteError("file", `${dest} is not a directory`, {
          hint: "copying several files needs an existing destination folder",
        });
      }
      if (dest.endsWith("/")) {
        throw new RemoteError("file", `no such directory: ${dest}`, { hint: "create it first" });
      }
      const parent = await lstatLocal(posixDir(dest));
      if (!parent?.isDirectory) {
        throw new RemoteError("file", `no such directory: ${posixDir(dest)}`, { hint: "create it first" });
      }
    }
    for (const src of sources) {
      this.checkAbort();
      const st = await this.remote.stat(src);
      if (!st) throw this.remote.error(Object.assign(new Error("No such file"), { code: FX.noSuchFile }), src, "");
      const target = intoDir ? join(dest, posixBase(src)) : dest;
      if (st.isDirectory()) {
        if (!this.options.recursive) {
          throw new RemoteError("file", `${this.remote.show(src)} is a directory`, {
            hint: "copy folders with -r",
          });
        }
        await this.downloadDir(src, target, st);
      } else if (st.isFile()) await this.downloadFile(src, target, st);
      else this.notice(`warning: skipping ${this.remote.show(src)}: not a regular file`);
    }
    return this.result;
  }

  async downloadDir(src: string, target: string, st: Stats, depth = 0): Promise<void> {
    if (depth > MAX_DIR_DEPTH) throw tooDeep(this.remote.show(src));
    const existing = await lstatLocal(target);
    if (existing && !existing.isDirectory) {
      throw new RemoteError("file", `${target} exists and is not a directory`, { hint: "remove it or copy elsewhere" });
    }
    if (!existing) {
      try {
        await Deno.mkdir(target, { mode: (st.mode & 0o777) | 0o700 });
      } catch (err) {
        throw localError(err, target, "creating");
      }
    }
    const list = await this.remote.call<{ filename: string; attrs: Stats }[]>(
      src,
      "listing",
      (cb) => this.remote.sftp.readdir(src || ".", cb),
    );
    list.sort((a, b) => a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0);
    for (const e of list) {
      this.checkAbort();
      if (e.filename === "." || e.filename === "..") continue;
      const path = join(src, e.filename);
      // symbolic links are followed, as scp does
      const attrs = e.attrs.isSymbolicLink() ? await this.remote.stat(path) : e.attrs;
      if (!attrs) continue; // a dangling link
      if (attrs.isDirectory()) await this.downloadDir(path, join(target, e.filename), attrs, depth + 1);
      else if (attrs.isFile()) await this.downloadFile(path, join(target, e.filename), attrs);
      else this.notice(`warning: skipping ${this.remote.show(path)}: not a regular file`);
    }
    try {
      if (this.options.preserve) {
        await Deno.chmod(target, st.mode & 0o7777);
        await Deno.utime(target, st.atime, st.mtime);
      }
    } catch (err) {
      throw localError(err, target, "setting the mode and times of");
    }
  }

  /** Where a resumed transfer may start: the partial file's length if it is a prefix of the source, else 0. */
  async resumeOffset(
    partial: { size: number; hash: (n: number) => Promise<string> },
    source: { size: number; hash: (n: number) => Promise<string> },
    shown: string,
  ): Promise<number> {
    if (partial.size === 0) return 0;
    if (partial.size > source.size) {
      this.notice(`warning: ${shown} is longer than its source; copying it whole`);
      return 0;
    }
    const [a, b] = await Promise.all([partial.hash(partial.size), source.hash(partial.size)]);
    if (a !== b) {
      this.notice(`warning: ${shown} is not a part of its source; copying it whole`);
      return 0;
    }
    return partial.size;
  }

  /** SHA-256 of a remote file's first `length` bytes: by `head -c | sha256sum` there, else by reading it. */
  async remotePrefixHash(handle: Buffer, path: string, length: number): Promise<string> {
    try {
      const r = await this.connection.run(`head -c ${length} -- ${shellQuote(path, { always: true })} | sha256sum`);
      const m = /^([0-9a-f]{64})\s/.exec(new TextDecoder().decode(r.stdout));
      if (r.code === 0 && m) return m[1];
    } catch { /* no shell, or exec refused: read it */ }
    const hash = createHash("sha256");
    await this.pipelinedRead(handle, path, 0, length, (data) => {
      hash.update(data);
      return Promise.resolve();
    });
    return hash.digest("hex");
  }

  /**
   * Reads [start, end) with `concurrency` requests in flight, handing chunks to `sink` in order; short
   * reads are asked again for the rest. Returns where it stopped (before `end` at an early EOF).
   */
  async pipelinedRead(
    handle: Buffer,
    path: string,
    start: number,
    end: number,
    sink: (data: Uint8Array) => Promise<void>,
  ): Promise<number> {
    type Req = { offset: number; length: number; data: Promise<Uint8Array> };
    const queue: Req[] = [];
    const read = (offset: number, length: number): Req => {
      const data = this.remote.guard(
        new Promise<Uint8Array>((resolve, reject) => {
          const buf = Buffer.allocUnsafe(length);
          this.remote.sftp.read(handle, buf, 0, length, offset, (err, n) => {
            if (err) reject(this.remote.error(err, path, "reading"));
            else resolve(new Uint8Array(buf.buffer, buf.byteOffset, n));
          });
        }),
      );
      data.catch(() => {}); // awaited in order below; a failure after an earlier one is not news
      return { offset, length, data };
    };
    let next = start;
    let at = start;
    const fill = () => {
      while (queue.length < this.concurrency && next < end) {
        const length = Math.min(this.chunk, end - next);
        queue.push(read(next, length));
        next += length;
      }
    };
    fill();
    while (queue.length > 0) {
      this.checkAbort();
      if (this.remote.lost) throw this.remote.lost;
      const req = queue.shift()!;
      const data = await req.data;
      if (data.length === 0) return at; // EOF before `end`: the file shrank
      await sink(data);
      at += data.length;
      if (data.length < req.length) queue.unshift(read(at, req.length - data.length));
      fill();
    }
    return at;
  }

  async downloadFile(src: string, target: string, st: Stats): Promise<void> {
    const shown = this.remote.show(src);
    const handle = await this.remote.call<Buffer>(src, "opening", (cb) => this.remote.sftp.open(src, "r", cb));
    const before = await lstatLocal(target);
    if (before && !before.isFile && !before.isCharDevice) {
      await this.closeRemote(handle);
      throw new RemoteError("file", `${target} exists and is not a regular file`, {
        hint: "remove it or copy elsewhere",
      });
    }
    // only a file this run created or emptied is removed after a failure (never /dev/null and friends)
    const removable = !before || before.isFile;
    let start = 0;
    if (this.options.resume && before?.isFile) {
      start = await this.resumeOffset(
        { size: before.size, hash: (n) => localPrefixHash(target, n) },
        { size: st.size, hash: (n) => this.remotePrefixHash(handle, src, n) },
        target,
      );
      this.result.resumedBytes += start;
    }
    let file: Deno.FsFile;
    try {
      file = await Deno.open(target, {
        write: true,
        create: true,
        truncate: start === 0,
        mode: st.mode & 0o777,
      });
    } catch (err) {
      await this.closeRemote(handle);
      throw localError(err, target, "creating");
    }
    const progress = this.progressFor(shown, st.size, start);
    const writer = new LocalWriter(file, target);
    let bytes = start;
    try {
      if (start > 0) await file.seek(start, Deno.SeekMode.Start);
      progress(bytes);
      const sink = async (data: Uint8Array) => {
        await writer.write(data);
        bytes += data.length;
        this.result.bytes += data.length;
        progress(bytes);
      };
      let end = await this.pipelinedRead(handle, src, start, st.size, sink);
      if (end === st.size) {
        // read to EOF, as sftp does: a file that grew meanwhile is copied whole
        for (;;) {
          const more = await this.pipelinedRead(handle, src, end, end + this.chunk, sink);
          if (more === end) break;
          end = more;
        }
      }
      await writer.flush();
      file.close();
      if (this.options.preserve) {
        try {
          await Deno.chmod(target, st.mode & 0o7777);
          await Deno.utime(target, st.atime, st.mtime);
        } catch (err) {
          throw localError(err, target, "setting the mode and times of");
        }
      }
      progress(bytes, true);
      this.result.files++;
    } catch (err) {
      // what arrived is kept for the next --resume run
      if (this.options.resume) await writer.flush().catch(() => {});
      try {
        file.close();
      } catch { /* closed above */ }
      if (removable && !this.options.resume) await Deno.remove(target).catch(() => {});
      throw err;
    } finally {
      await this.closeRemote(handle);
    }
  }

  /** closes a remote handle; settles at once when the connection is gone */
  closeRemote(handle: Buffer): Promise<void> {
    return this.quietly((done) => this.remote.sftp.close(handle, done));
  }

  /** runs a best-effort request; resolves when it is answered, fails, or the connection goes */
  quietly(fn: (done: () => void) => void): Promise<void> {
    if (this.remote.lost) return Promise.resolve();
    return this.remote.guard(
      new Promise<void>((resolve) => {
        try {
          fn(() => resolve());
        } catch {
          resolve();
        }
      }),
    ).catch(() => {});
  }

  // ---- upload ----

  async upload(sources: string[], dest: string): Promise<CopyResult> {
    const destInfo = await this.remote.stat(dest);
    const intoDir = destInfo?.isDirectory() ?? false;
    if (!intoDir) {
      if (sources.length > 1) {
        throw new RemoteError("file", `${this.remote.show(dest)} is not a directory`, {
          hint: "copying several files needs an existing destination folder",
        });
      }
      const parent = dest.endsWith("/") ? dest : posixDir(dest);
      const parentInfo = await this.remote.stat(dest.endsWith("/") ? dest : parent);
      if (!parentInfo?.isDirectory()) {
        throw new RemoteError("file", `no such directory: ${this.remote.show(parent.replace(/(.)\/+$/, "$1"))}`, {
          hint: `create it first (remote invoke ${this.remote.name} -- mkdir -p …)`,
        });
      }
    }
    for (const src of sources) {
      this.checkAbort();
      const st = await lstatLocal(src);
      if (!st) throw new RemoteError("file", `no such file or directory: ${src}`, { hint: "check the path" });
      const target = intoDir ? join(dest, posixBase(src)) : dest;
      if (st.isDirectory) {
        if (!this.options.recursive) {
          throw new RemoteError("file", `${src} is a directory`, { hint: "copy folders with -r" });
        }
        await this.uploadDir(src, target, st);
      } else if (st.isFile) await this.uploadFile(src, target, st);
      else this.notice(`warning: skipping ${src}: not a regular file`);
    }
    return this.result;
  }

  async uploadDir(src: string, target: string, st: Deno.FileInfo, depth = 0): Promise<void> {
    if (depth > MAX_DIR_DEPTH) throw tooDeep(src);
    const existing = await this.remote.stat(target);
    if (existing && !existing.isDirectory()) {
      throw new RemoteError("file", `${this.remote.show(target)} exists and is not a directory`, {
        hint: "remove it or copy elsewhere",
      });
    }
    if (!existing) {
      await this.remote.call<void>(
        target,
        "creating",
        (cb) => this.remote.sftp.mkdir(target, { mode: ((st.mode ?? 0o755) & 0o777) | 0o700 }, cb),
      );
    }
    const entries: Deno.DirEntry[] = [];
    try {
      for await (const e of Deno.readDir(src)) entries.push(e);
    } catch (err) {
      throw localError(err, src, "listing");
    }
    entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    for (const e of entries) {
      this.checkAbort();
      const path = join(src, e.name);
      const info = await lstatLocal(path); // follows links, as scp
      if (!info) continue;
      if (info.isDirectory) await this.uploadDir(path, join(target, e.name), info, depth + 1);
      else if (info.isFile) await this.uploadFile(path, join(target, e.name), info);
      else this.notice(`warning: skipping ${path}: not a regular file`);
    }
    if (this.options.preserve) {
      await this.remote.call<void>(
        target,
        "setting the mode and times of",
        (cb) => this.remote.sftp.setstat(target, { mode: (st.mode ?? 0o755) & 0o7777, ...times(st) }, cb),
      );
    }
  }

  async uploadFile(src: string, target: string, st: Deno.FileInfo): Promise<void> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(src, { read: true });
    } catch (err) {
      throw localError(err, src, "opening");
    }
    using _file = file;
    let start = 0;
    const before = await this.remote.stat(target);
    if (before && !before.isFile()) {
      throw new RemoteError("file", `${this.remote.show(target)} exists and is not a regular file`, {
        hint: "remove it or copy elsewhere",
      });
    }
    const mode = (st.mode ?? 0o644) & 0o777;
    if (this.options.resume && before) {
      const handle = await this.remote.call<Buffer>(target, "opening", (cb) => this.remote.sftp.open(target, "r", cb));
      try {
        start = await this.resumeOffset(
          { size: before.size, hash: (n) => this.remotePrefixHash(handle, target, n) },
          { size: st.size, hash: (n) => localPrefixHash(src, n) },
          this.remote.show(target),
        );
      } finally {
        await this.closeRemote(handle);
      }
      this.result.resumedBytes += start;
    }
    const handle = await this.remote.call<Buffer>(
      target,
      "creating",
      (cb) => this.remote.sftp.open(target, start > 0 ? "r+" : "w", { mode }, cb),
    );
    const progress = this.progressFor(src, st.size, start);
    let acked = start;
    try {
      if (start > 0) await file.seek(start, Deno.SeekMode.Start);
      progress(acked);
      const inflight = new Set<Promise<void>>();
      // the first refused write; a write that fails while no one awaits it must still fail the copy
      let failed: { err: unknown } | undefined;
      let at = start;
      let eof = false;
      while (!eof) {
        this.checkAbort();
        const block = Buffer.allocUnsafe(Math.max(LOCAL_IO_BYTES, this.chunk));
        let size: number;
        try {
          size = await readFull(file, block);
        } catch (err) {
          throw localError(err, src, "reading");
        }
        eof = size < block.length;
        for (let off = 0; off < size; off += this.chunk) {
          const n = Math.min(this.chunk, size - off);
          while (inflight.size >= this.concurrency) await Promise.race(inflight);
          if (failed) throw failed.err;
          const offset = at;
          const p: Promise<void> = this.remote.guard(
            new Promise<void>((resolve, reject) => {
              // one socket write for the request's packets (socket.ts corked)
              corked(this.remote.sftp, () =>
                this.remote.sftp.write(handle, block, off, n, offset, (err) => {
                  if (err) return reject(err);
                  acked += n;
                  this.result.bytes += n;
                  progress(acked);
                  resolve();
                }));
            }),
          ).catch((err) => this.writeError(err, target))
            .catch((err) => {
              failed ??= { err };
            })
            .finally(() => inflight.delete(p));
          inflight.add(p);
          at += n;
        }
      }
      await Promise.all(inflight);
      if (failed) throw failed.err;
      if (this.options.preserve) {
        await this.remote.call<void>(
          target,
          "setting the mode and times of",
          (cb) => this.remote.sftp.fsetstat(handle, { mode: (st.mode ?? 0o644) & 0o7777, ...times(st) }, cb),
        );
      }
      await this.remote.call<void>(target, "writing", (cb) => this.remote.sftp.close(handle, cb));
      progress(acked, true);
      this.result.files++;
    } catch (err) {
      await this.closeRemote(handle);
      if (!this.options.resume) await this.quietly((done) => this.remote.sftp.unlink(target, done));
      throw err;
    }
  }

  /** A write the server refused; sftp-server reports a full disk as plain "Failure", so statvfs tells. */
  async writeError(err: unknown, target: string): Promise<never> {
    if (sftpCode(err) === FX.failure) {
      const free = await this.remote.free(posixDir(target));
      if (free && (free.bytes < this.chunk * this.concurrency || free.inodes === 0)) {
        throw new RemoteError("file", `no space left on ${this.remote.name} writing ${this.remote.show(target)}`, {
          hint: `free some space there (df -h ${posixDir(target)}), or copy somewhere else`,
          cause: err,
        });
      }
    }
    throw this.remote.error(err, target, "writing");
  }
}
