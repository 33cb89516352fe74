/**
 * A lock file shared by many processes: created with O_CREAT|O_EXCL, holding the owner's pid, host and
 * a random token. A lock whose owner is dead (same host) or that is older than a bound is stale and
 * is taken over. Works on any file system with atomic exclusive create, including NFSv3+, where the
 * pid test is skipped for locks from other hosts.
 *
 * @module
 */

import process from "node:process";
import { RemoteError } from "./errors.ts";
import { shellQuote } from "../plugins/mod.ts";

/** Timing of {@linkcode FileLock.acquire}. */
export interface FileLockOptions {
  /** give up after this long (milliseconds) */
  timeoutMs: number;
  /** a lock older than this (by its mtime) is stale even if its owner seems alive */
  staleMs: number;
  /** what the lock protects, for messages: "the session registry" */
  what: string;
}

/** The lock file as another process sees it. */
interface Holder {
  content: string;
  pid?: number;
  host?: string;
  ino: number | null;
  mtimeMs: number;
}

const encoder = new TextEncoder();

/** A held lock; release it with `await using` or {@linkcode FileLock.release}. */
export class FileLock implements AsyncDisposable {
  readonly path: string;
  readonly #token: string;
  #released = false;

  private constructor(path: string, token: string) {
    this.path = path;
    this.#token = token;
  }

  /**
   * Takes the lock at `path`, waiting with backoff while another live process holds it.
   *
   * @throws {RemoteError} code `timeout` when it stays held past `timeoutMs`; code `state` when the
   * lock file cannot be created at all
   */
  static async acquire(path: string, options: FileLockOptions): Promise<FileLock> {
    const token = crypto.randomUUID();
    const content = `${Deno.pid}\n${hostName()}\n${token}\n`;
    const deadline = Date.now() + options.timeoutMs;
    let delay = 2;
    let lastHolder: Holder | undefined;
    for (;;) {
      if (await tryCreate(path, content, options.what)) return new FileLock(path, token);
      const holder = await readHolder(path, options.what);
      if (holder === undefined) continue; // released between our create and our read: try again now
      lastHolder = holder;
      if (isStale(holder, options.staleMs)) {
        await breakStale(path, holder, options.staleMs);
        continue;
      }
      if (Date.now() >= deadline) throw timeoutError(path, lastHolder, options.what);
      // jitter keeps many waiters from retrying in lockstep
      await sleep(delay / 2 + Math.random() * delay);
      delay = Math.min(delay * 2, 100);
    }
  }

  /** Whether the lock file on disk is still ours (nobody broke it as stale meanwhile). */
  async held(): Promise<boolean> {
    if (this.#released) return false;
    try {
      const text = await Deno.readTextFile(this.path);
      return text.split("\n")[2] === this.#token;
    } catch {
      return false;
    }
  }

  /** Removes the lock file if it is still ours; safe to call twice. */
  async release(): Promise<void> {
    if (this.#released) return;
    // a lock broken as stale may now belong to someone else: never remove theirs
    if (await this.held()) {
      try {
        await Deno.remove(this.path);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
    this.#released = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

async function tryCreate(path: string, content: string, what: string): Promise<boolean> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return false;
    throw new RemoteError("state", `cannot create the lock file of ${what} ${path}: ${errorText(err)}`, {
      hint: `check the directory's owner and permissions: ls -ld ${shellQuote(dirName(path))}`,
      cause: err,
    });
  }
  try {
    await writeAll(file, encoder.encode(content));
  } catch (err) {
    // an empty lock (a full disk) has no pid to judge it by: others would wait for the age bound
    file.close();
    await Deno.remove(path).catch(() => {});
    throw new RemoteError("state", `cannot write the lock file of ${what} ${path}: ${errorText(err)}`, {
      hint: `check the free space there: df -h ${shellQuote(dirName(path))}`,
      cause: err,
    });
  }
  file.close();
  return true;
}

async function readHolder(path: string, what = "a lock"): Promise<Holder | undefined> {
  try {
    const [info, content] = await Promise.all([Deno.stat(path), Deno.readTextFile(path)]);
    const [pidText, host] = content.split("\n");
    const pid = /^\d+$/.test(pidText ?? "") ? Number(pidText) : undefined;
    return { content, pid, host: host || undefined, ino: info.ino, mtimeMs: info.mtime?.getTime() ?? 0 };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new RemoteError("state", `cannot read the lock file of ${what} ${path}: ${errorText(err)}`, {
      hint: `check its owner and permissions: ls -l ${shellQuote(path)}`,
      cause: err,
    });
  }
}

/** How long a lock may stay empty: its creator writes its pid right after creating it. */
const EMPTY_LOCK_MS = 1000;

function isStale(holder: Holder, staleMs: number): boolean {
  const age = Date.now() - holder.mtimeMs;
  if (age > staleMs) return true;
  // left by a process killed (or a disk filled) between create and write: no pid to wait for
  if (holder.content === "" && age > Math.min(EMPTY_LOCK_MS, staleMs)) return true;
  // a pid means nothing on another host (a shared home directory), so only the age bound applies there
  if (holder.pid !== undefined && holder.host === hostName()) return !processAlive(holder.pid);
  return false;
}

/**
 * Removes a stale lock without removing a fresh one by mistake: when two processes both see the same
 * stale lock, the first removes it and may create a new one before the second acts. So breaking is
 * serialised by a second exclusive file, and the lock is removed only if it is still the very file
 * (inode, mtime, content) that was judged stale.
 */
async function breakStale(path: string, stale: Holder, staleMs: number): Promise<void> {
  const breakPath = `${path}.break`;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(breakPath, { write: true, createNew: true, mode: 0o600 });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) {
      throw new RemoteError("state", `cannot take over the stale lock ${path}: ${errorText(err)}`, {
        hint: `check the directory's owner, permissions and free space: ls -ld ${shellQuote(dirName(path))}`,
        cause: err,
      });
    }
    // another process is breaking it; its own break file is stale only if that process died in between
    const other = await readHolder(breakPath);
    if (other !== undefined && Date.now() - other.mtimeMs > staleMs) await removeIfExists(breakPath);
    else await sleep(1 + Math.random() * 5);
    return;
  }
  try {
    // for people reading it only: its age is all that is judged, so a full disk does not matter here
    await writeAll(file, encoder.encode(`${Deno.pid}\n${hostName()}\n`)).catch(() => {});
    file.close();
    const now = await readHolder(path);
    if (now && now.ino === stale.ino && now.mtimeMs === stale.mtimeMs && now.content === stale.content) {
      await removeIfExists(path);
    }
  } finally {
    await removeIfExists(breakPath);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else
    return !(err instanceof Error && "code" in err && err.code === "ESRCH");
  }
}

function timeoutError(path: string, holder: Holder | undefined, what: string): RemoteError {
  const by = holder?.pid === undefined
    ? ""
    : ` by process ${holder.pid}${holder.host && holder.host !== hostName() ? ` on ${holder.host}` : ""}`;
  return new RemoteError("timeout", `cannot lock ${what}: ${path} is held${by}`, {
    hint: `if no remote process is running, remove the lock: rm ${shellQuote(path)}`,
  });
}

let cachedHostName: string | undefined;

function hostName(): string {
  if (cachedHostName === undefined) {
    try {
      cachedHostName = Deno.hostname();
    } catch {
      cachedHostName = "";
    }
  }
  return cachedHostName;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

function dirName(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
