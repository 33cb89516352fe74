/**
 * The local registry of sessions: `sessions.json` under `$XDG_STATE_HOME/remote/` (default
 * `~/.local/state/remote/`), shared by every `remote` process of the user.
 *
 * Readers need no lock, because writers replace the file atomically (temp file in the same directory,
 * fsync, rename). Writers take `sessions.lock` (see `_file_lock.ts`), read, change, write, unlock. A file
 * that is corrupt or from a newer remote is reported and kept exactly as it is.
 *
 * The registry decides how later connections are made (hosts, ports, ssh options), so it is trusted only
 * as ssh trusts `~/.ssh/config`: the directory and the file must belong to this user (or root) and be
 * writable by nobody else, and the file must be a regular file, not a symbolic link. Anything else is
 * refused before a byte is read.
 *
 * @module
 */

import { join } from "./_path.ts";
import { hasWildcard, matchWildcard, shellQuote } from "../plugins/mod.ts";
import { RemoteError, UsageError } from "./errors.ts";
import {
  AVAILABILITIES,
  generateSessionName,
  SESSION_STATES,
  type SessionRecord,
  type SessionState,
} from "./session.ts";
import { FileLock } from "./_file_lock.ts";

/** The format version this remote writes; it reads this one and older ones. */
export const REGISTRY_FORMAT_VERSION = 1;

/** Which sessions to pick; every field given must match. */
export interface SessionSelector {
  id?: number;
  instanceId?: string;
  /** `*` and `?` wildcards allowed; case-insensitive */
  name?: string;
  /** `*` and `?` wildcards allowed; case-insensitive */
  computerName?: string;
  state?: SessionState;
}

/** Tuning of a {@linkcode Registry}; the defaults suit interactive use. */
export interface RegistryOptions {
  /** how long a writer waits for the lock before giving up, in milliseconds (default 20000) */
  lockTimeoutMs?: number;
  /** a lock older than this is taken over even if its owner seems alive, in milliseconds (default 10000) */
  staleLockMs?: number;
}

/** The file name of the registry inside its directory. */
export const REGISTRY_FILE = "sessions.json";
/** The file name of the writers' lock inside the registry directory. */
export const REGISTRY_LOCK_FILE = "sessions.lock";

// Parameter names that suggest a secret; the registry drops them, whatever the caller meant.
const SECRET_KEY = /password|passphrase|secret|credential|token|privatekey/i;

const TEMP_PREFIX = `.${REGISTRY_FILE}.`;
const TEMP_SUFFIX = ".tmp";

const encoder = new TextEncoder();

/**
 * The session registry in one directory.
 *
 * @example Recording a new session
 * ```ts ignore
 * import { Registry } from "./registry.ts";
 * const registry = new Registry();
 * const rec = await registry.add({
 *   instanceId: crypto.randomUUID(), name: "", computerName: "db1", transport: "ssh",
 *   state: "Disconnected", availability: "None", createdAt: new Date().toISOString(),
 *   lastSeenAt: new Date().toISOString(), target: { host: "db1", port: 22 }, parameters: { Port: 22 },
 * });
 * console.log(rec.id, rec.name); // 1 Session1
 * ```
 */
export class Registry {
  /** the directory holding the registry */
  readonly dir: string;
  /** the path of `sessions.json` */
  readonly path: string;
  /** the path of `sessions.lock` */
  readonly lockPath: string;
  readonly #lockTimeoutMs: number;
  readonly #staleLockMs: number;

  /** A registry in `dir`, by default {@linkcode Registry.defaultDir}; nothing is touched until used. */
  constructor(dir?: string, options: RegistryOptions = {}) {
    this.dir = dir ?? Registry.defaultDir();
    this.path = join(this.dir, REGISTRY_FILE);
    this.lockPath = join(this.dir, REGISTRY_LOCK_FILE);
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 20_000;
    this.#staleLockMs = options.staleLockMs ?? 10_000;
  }

  /**
   * The registry directory: `$XDG_STATE_HOME/remote` when that is an absolute path (the XDG Base
   * Directory spec says to ignore relative ones), else `$HOME/.local/state/remote`.
   *
   * @throws {RemoteError} code `state` when neither variable is usable
   */
  static defaultDir(env: Record<string, string | undefined> = Deno.env.toObject()): string {
    const state = env.XDG_STATE_HOME;
    if (state && state.startsWith("/")) return join(state, "remote");
    const home = env.HOME;
    if (home) return join(home, ".local", "state", "remote");
    throw new RemoteError("state", "cannot find a directory for the session registry: HOME is not set", {
      hint: "set HOME, or XDG_STATE_HOME to an absolute path",
    });
  }

  /** Every session, by id. */
  async list(): Promise<SessionRecord[]> {
    return sortById(await this.#read());
  }

  /** The sessions matching every field of `selector`, by id; an empty selector matches all. */
  async find(selector: SessionSelector): Promise<SessionRecord[]> {
    return (await this.list()).filter((rec) => matches(rec, selector));
  }

  /**
   * Records a new session and returns it with its id: the smallest one not in use, from 1. An empty
   * `name` gets the next free `SessionN` on that host, chosen under the lock so concurrent processes
   * never pick the same one; it also avoids the names in `options.avoid` (those the host already has)
   * and in `options.taken`, to which it is added. Parameters whose names suggest a secret (`Password`,
   * `Credential`, `*Token`…) are dropped, never written.
   *
   * @throws {UsageError} when the host already has a session of that name (case-insensitive)
   * @throws {Error} when the record is malformed or its instance id is recorded already (a caller bug)
   */
  async add(
    rec: Omit<SessionRecord, "id">,
    options: { avoid?: readonly string[]; taken?: Set<string> } = {},
  ): Promise<SessionRecord> {
    const fresh = this.#fresh(rec);
    return await this.#mutate((records) => {
      if (records.some((r) => r.instanceId === fresh.instanceId)) {
        throw new Error(`cannot add session to the registry: instance id ${fresh.instanceId} is already recorded`);
      }
      const sameHost = records.filter((r) => sameText(r.computerName, fresh.computerName));
      if (fresh.name === "") {
        const avoid = [...sameHost.map((r) => r.name), ...options.avoid ?? [], ...options.taken ?? []];
        fresh.name = generateSessionName(avoid);
        options.taken?.add(fresh.name);
      } else checkNameFree(sameHost, fresh);
      fresh.id = smallestFreeId(records);
      records.push(fresh);
      return { records, result: fresh };
    });
  }

  /**
   * Records a session found on a host, or refreshes the entry that already stands for it, in one step
   * under the lock. The entry is the one with the same instance id, whatever host name it was recorded
   * under (one host may be reached as an alias and as its address), else the one with the same name on
   * the same `computerName`. `refresh` gives the changes for an existing entry.
   *
   * @throws {UsageError} when the name is not valid
   * @throws {Error} when the record or the changes are malformed (a caller bug)
   */
  async upsert(
    rec: Omit<SessionRecord, "id">,
    refresh: (old: SessionRecord) => Partial<Omit<SessionRecord, "id">>,
  ): Promise<SessionRecord> {
    const fresh = this.#fresh(rec);
    return await this.#mutate((records) => {
      let i = records.findIndex((r) => sameText(r.instanceId, fresh.instanceId));
      if (i < 0) {
        i = records.findIndex((r) => sameText(r.computerName, fresh.computerName) && sameText(r.name, fresh.name));
      }
      if (i < 0) {
        checkNameFree(records.filter((r) => sameText(r.computerName, fresh.computerName)), fresh);
        fresh.id = smallestFreeId(records);
        records.push(fresh);
        return { records, result: fresh };
      }
      const changes = structuredClone(refresh(records[i]));
      if (changes.parameters !== undefined) {
        changes.parameters = withoutSecrets(changes.parameters) as Record<string, unknown>;
      }
      if (changes.instanceId !== undefined && records.some((r, j) => j !== i && r.instanceId === changes.instanceId)) {
        delete changes.instanceId;
      }
      const next: SessionRecord = { ...records[i], ...changes, id: records[i].id };
      const problem = recordProblem(next);
      if (problem) throw new Error(`cannot update session in the registry: ${problem}`);
      records[i] = next;
      return { records, result: next };
    });
  }

  #fresh(rec: Omit<SessionRecord, "id">): SessionRecord {
    const fresh = { ...structuredClone(rec), id: 1 } as SessionRecord;
    const problem = recordProblem(fresh);
    if (problem) throw new Error(`cannot add session to the registry: ${problem}`);
    fresh.parameters = withoutSecrets(fresh.parameters) as Record<string, unknown>;
    if (fresh.name !== "") checkName(fresh.name);
    return fresh;
  }

  /**
   * Changes fields of the session with `instanceId` and returns the result. It does not check the state
   * change against `LEGAL_TRANSITIONS` (the host may have moved on without us); callers use `transition`.
   *
   * @throws {RemoteError} code `notFound` when no such session is recorded
   * @throws {UsageError} when a new name is taken on the host
   * @throws {Error} when the patch changes `id` or `instanceId`, or is malformed (a caller bug)
   */
  async update(instanceId: string, patch: Partial<SessionRecord>): Promise<SessionRecord> {
    const changes = structuredClone(patch);
    if (changes.parameters !== undefined) {
      changes.parameters = withoutSecrets(changes.parameters) as Record<string, unknown>;
    }
    if (changes.name !== undefined) checkName(changes.name);
    return await this.#mutate((records) => {
      const i = records.findIndex((r) => r.instanceId === instanceId);
      if (i < 0) throw notFound(instanceId);
      const old = records[i];
      if (changes.id !== undefined && changes.id !== old.id) throw new Error("a session's id cannot change");
      if (changes.instanceId !== undefined && changes.instanceId !== instanceId) {
        throw new Error("a session's instance id cannot change");
      }
      const next: SessionRecord = { ...old, ...changes };
      const problem = recordProblem(next);
      if (problem) throw new Error(`cannot update session in the registry: ${problem}`);
      if (!sameText(next.name, old.name) || !sameText(next.computerName, old.computerName)) {
        checkNameFree(records.filter((r) => r !== old && sameText(r.computerName, next.computerName)), next);
      }
      records[i] = next;
      return { records, result: next };
    });
  }

  /**
   * Forgets the session with `instanceId`.
   *
   * @throws {RemoteError} code `notFound` when no such session is recorded
   */
  async remove(instanceId: string): Promise<void> {
    await this.#mutate((records) => {
      const rest = records.filter((r) => r.instanceId !== instanceId);
      if (rest.length === records.length) throw notFound(instanceId);
      return { records: rest, result: undefined };
    });
  }

  async #mutate<T>(change: (records: SessionRecord[]) => { records: SessionRecord[]; result: T }): Promise<T> {
    await this.#ensureDir();
    await using lock = await FileLock.acquire(this.lockPath, {
      timeoutMs: this.#lockTimeoutMs,
      staleMs: this.#staleLockMs,
      what: "the session registry",
    });
    const { records, result } = change(await this.#read());
    await this.#write(sortById(records), lock);
    return structuredClone(result);
  }

  async #ensureDir(): Promise<void> {
    let info: Deno.FileInfo;
    try {
      await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
      info = await Deno.stat(this.dir);
      if (!info.isDirectory) throw new Error("not a directory");
    } catch (err) {
      throw new RemoteError("state", `cannot use the session registry directory ${this.dir}: ${errorText(err)}`, {
        hint: `check its owner and permissions: ls -ld ${shellQuote(this.dir)}`,
        cause: err,
      });
    }
    this.#checkDir(info);
    // an existing directory from an older remote or a copy: the registry is private either way
    if (info.mode !== null && (info.mode & 0o077) !== 0) {
      await Deno.chmod(this.dir, 0o700).catch((err) => {
        throw new RemoteError("state", `cannot make the session registry directory ${this.dir} private`, {
          hint: `check its owner and permissions: ls -ld ${shellQuote(this.dir)}`,
          cause: err,
        });
      });
    }
  }

  /** Refuses a directory another user owns or may write to: they could swap the registry (ssh's rule). */
  #checkDir(info: Deno.FileInfo): void {
    const problem = ownershipProblem(info);
    if (problem) {
      throw new RemoteError(
        "state",
        `session registry directory ${this.dir} has bad owner or permissions: ${problem}`,
        {
          hint: `if it is yours, make it private: chown "$(id -u)" ${shellQuote(this.dir)} && chmod 700 ${
            shellQuote(this.dir)
          }`,
        },
      );
    }
  }

  /**
   * The registry's bytes, read only after checking who may have written them: never through a symbolic
   * link, never from a file or directory another user owns or may write to.
   */
  async #readTrusted(): Promise<Uint8Array | undefined> {
    // A writer replaces the file by an atomic rename, so the file checked and the file opened can differ
    // for a moment: look again rather than fail. Anything else that differs is refused.
    for (let attempt = 1;; attempt++) {
      const bytes = await this.#readTrustedOnce(attempt === 5);
      if (bytes !== "replaced") return bytes;
    }
  }

  async #readTrustedOnce(last: boolean): Promise<Uint8Array | undefined | "replaced"> {
    let dirInfo: Deno.FileInfo;
    let info: Deno.FileInfo;
    try {
      dirInfo = await Deno.stat(this.dir);
      info = await Deno.lstat(this.path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw this.#unreadable(err);
    }
    this.#checkDir(dirInfo);
    if (info.isSymlink) {
      const target = await Deno.readLink(this.path).catch(() => "?");
      throw new RemoteError(
        "state",
        `session registry ${this.path} is a symbolic link (to ${target}); remote reads and replaces only a regular file`,
        {
          hint: `replace the link by a copy of its file: cp ${shellQuote(this.path)} ${
            shellQuote(`${this.path}.copy`)
          } && mv ${shellQuote(`${this.path}.copy`)} ${shellQuote(this.path)}`,
        },
      );
    }
    if (!info.isFile) {
      throw new RemoteError("state", `session registry ${this.path} is not a regular file`, {
        hint: `move it aside: mv ${shellQuote(this.path)} ${shellQuote(`${this.path}.bad`)}`,
      });
    }
    const problem = ownershipProblem(info);
    if (problem) {
      throw new RemoteError("state", `session registry ${this.path} has bad owner or permissions: ${problem}`, {
        hint: `if it is yours: chown "$(id -u)" ${shellQuote(this.path)} && chmod 600 ${
          shellQuote(this.path)
        }; if not, move it aside: mv ${shellQuote(this.path)} ${shellQuote(`${this.path}.bad`)}`,
      });
    }
    try {
      using file = await Deno.open(this.path, { read: true });
      // the file checked above must be the file read: a swap in between is refused, not raced
      const opened = await file.stat();
      if (opened.ino !== info.ino || opened.dev !== info.dev) {
        if (!last) return "replaced";
        throw new Error("it changed while being checked");
      }
      return await readAll(file);
    } catch (err) {
      throw this.#unreadable(err);
    }
  }

  #unreadable(err: unknown): RemoteError {
    return new RemoteError("state", `cannot read the session registry ${this.path}: ${errorText(err)}`, {
      hint: `check its owner and permissions: ls -l ${shellQuote(this.path)}`,
      cause: err,
    });
  }

  async #read(): Promise<SessionRecord[]> {
    const bytes = await this.#readTrusted();
    if (bytes === undefined) return [];
    let data: unknown;
    try {
      data = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (err) {
      throw this.#corrupt(`not valid JSON (${errorText(err)})`);
    }
    if (!isObject(data)) throw this.#corrupt("not a JSON object");
    const version = data.formatVersion;
    if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
      throw this.#corrupt("no valid formatVersion");
    }
    if (version > REGISTRY_FORMAT_VERSION) {
      const aside = `${this.path}.v${version}`;
      throw new RemoteError(
        "state",
        `session registry ${this.path} has format version ${version}, but this remote reads only up to ${REGISTRY_FORMAT_VERSION}`,
        {
          hint: `use a newer remote, or move it aside: mv ${shellQuote(this.path)} ${
            shellQuote(aside)
          } ; remote will start a new one`,
        },
      );
    }
    if (!Array.isArray(data.sessions)) throw this.#corrupt("sessions is not a list");
    const ids = new Set<number>();
    const instanceIds = new Set<string>();
    for (const [i, rec] of data.sessions.entries()) {
      const problem = recordProblem(rec);
      if (problem) throw this.#corrupt(`session ${i + 1}: ${problem}`);
      const r = rec as SessionRecord;
      if (ids.has(r.id)) throw this.#corrupt(`id ${r.id} appears twice`);
      if (instanceIds.has(r.instanceId)) throw this.#corrupt(`instance id ${r.instanceId} appears twice`);
      ids.add(r.id);
      instanceIds.add(r.instanceId);
    }
    return data.sessions as SessionRecord[];
  }

  #corrupt(detail: string): RemoteError {
    return new RemoteError("state", `session registry ${this.path} is corrupt: ${detail}`, {
      hint: `move it aside: mv ${shellQuote(this.path)} ${
        shellQuote(`${this.path}.bad`)
      } ; remote will start a new one`,
    });
  }

  async #write(records: SessionRecord[], lock: FileLock): Promise<void> {
    const text = JSON.stringify({ formatVersion: REGISTRY_FORMAT_VERSION, sessions: records }, null, 2) + "\n";
    const temp = join(this.dir, `${TEMP_PREFIX}${Deno.pid}.${crypto.randomUUID()}${TEMP_SUFFIX}`);
    try {
      // created 0600 at open: there is never a moment when others may read it
      const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
      try {
        const bytes = encoder.encode(text);
        let done = 0;
        while (done < bytes.length) done += await file.write(bytes.subarray(done));
        await file.sync();
      } finally {
        file.close();
      }
      // a holder stalled past the stale bound (a stopped process) lost the lock: its view is outdated
      if (!(await lock.held())) {
        throw new RemoteError("state", `lost the lock of the session registry ${this.lockPath}`, {
          hint: "try again",
        });
      }
      await Deno.rename(temp, this.path);
    } catch (err) {
      await Deno.remove(temp).catch(() => {});
      if (err instanceof RemoteError) throw err;
      throw new RemoteError("state", `cannot write the session registry ${this.path}: ${errorText(err)}`, {
        hint: `check free space and the permissions of ${shellQuote(this.dir)}`,
        cause: err,
      });
    }
    await syncDir(this.dir);
    await this.#sweepTemps();
  }

  /** Removes temp files left by processes killed mid-write. */
  async #sweepTemps(): Promise<void> {
    const now = Date.now();
    try {
      for await (const entry of Deno.readDir(this.dir)) {
        if (!entry.isFile || !entry.name.startsWith(TEMP_PREFIX) || !entry.name.endsWith(TEMP_SUFFIX)) continue;
        const path = join(this.dir, entry.name);
        const info = await Deno.stat(path).catch(() => undefined);
        if (info?.mtime && now - info.mtime.getTime() > this.#staleLockMs) await Deno.remove(path).catch(() => {});
      }
    } catch { /* tidying only */ }
  }
}

/**
 * Why a file or directory of the registry cannot be trusted, or undefined: as ssh judges `~/.ssh/config`
 * (`secure_permissions()` in OpenSSH's misc.c), it must belong to this user or root and be writable by
 * nobody else.
 */
function ownershipProblem(info: Deno.FileInfo): string | undefined {
  const uid = Deno.uid();
  if (uid === null || info.uid === null || info.mode === null) return undefined; // no owners here (Windows)
  const mode = `mode ${(info.mode & 0o7777).toString(8).padStart(4, "0")}`;
  if (info.uid !== uid && info.uid !== 0) return `owned by uid ${info.uid}, not by you (uid ${uid}), ${mode}`;
  if ((info.mode & 0o022) !== 0) return `writable by others (${mode})`;
  return undefined;
}

async function readAll(file: Deno.FsFile): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const chunk = new Uint8Array(64 * 1024);
    const n = await file.read(chunk);
    if (n === null) break;
    chunks.push(chunk.subarray(0, n));
    size += n;
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all;
}

/** Makes the rename durable: on a crash right after, the directory entry could otherwise be lost. */
async function syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch { /* some file systems cannot fsync a directory; the rename itself is still atomic */ }
}

function matches(rec: SessionRecord, sel: SessionSelector): boolean {
  if (sel.id !== undefined && rec.id !== sel.id) return false;
  if (sel.instanceId !== undefined && rec.instanceId.toLowerCase() !== sel.instanceId.toLowerCase()) return false;
  if (sel.name !== undefined && !textMatches(sel.name, rec.name)) return false;
  if (sel.computerName !== undefined && !textMatches(sel.computerName, rec.computerName)) return false;
  if (sel.state !== undefined && rec.state !== sel.state) return false;
  return true;
}

function textMatches(pattern: string, text: string): boolean {
  return hasWildcard(pattern) ? matchWildcard(pattern, text, { ignoreCase: true }) : sameText(pattern, text);
}

function sameText(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function smallestFreeId(records: SessionRecord[]): number {
  const used = new Set(records.map((r) => r.id));
  let id = 1;
  while (used.has(id)) id++;
  return id;
}

function sortById(records: SessionRecord[]): SessionRecord[] {
  return records.sort((a, b) => a.id - b.id);
}

function checkName(name: string): void {
  if (name === "" || name.trim() !== name || hasWildcard(name)) {
    throw new UsageError(`invalid session name ${JSON.stringify(name)}`, {
      hint: "use a name with no spaces at either end and no * or ?",
    });
  }
}

function checkNameFree(sameHost: SessionRecord[], rec: SessionRecord): void {
  if (sameHost.some((r) => sameText(r.name, rec.name))) {
    throw new UsageError(`a session named ${rec.name} already exists on ${rec.computerName}`, {
      hint: `choose another name, or remove that session: remote remove --name ${shellQuote(rec.name)}`,
    });
  }
}

function notFound(instanceId: string): RemoteError {
  return new RemoteError("notFound", `no session with instance id ${instanceId}`, {
    hint: "list sessions with: remote get",
  });
}

/**
 * A copy of `value` without any key, at any depth, whose name suggests a secret: whatever the caller
 * passed, such a value never reaches the disk (WinRM's `Credential` is only a user name, but a plugin's
 * could be more).
 */
function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (!isObject(value)) return value;
  const kept: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!SECRET_KEY.test(key)) kept[key] = withoutSecrets(v);
  }
  return kept;
}

/** What is wrong with `value` as a session record, or undefined when it is one. */
function recordProblem(value: unknown): string | undefined {
  if (!isObject(value)) return "not an object";
  const r = value;
  if (typeof r.id !== "number" || !Number.isInteger(r.id) || r.id < 1) return "id is not a positive integer";
  for (const key of ["instanceId", "name", "computerName", "transport", "createdAt", "lastSeenAt"]) {
    if (typeof r[key] !== "string") return `${key} is not a string`;
  }
  if (r.instanceId === "") return "instanceId is empty";
  if (r.computerName === "") return "computerName is empty";
  if (r.configurationName !== undefined && typeof r.configurationName !== "string") {
    return "configurationName is not a string";
  }
  if (!(SESSION_STATES as readonly unknown[]).includes(r.state)) return `state ${JSON.stringify(r.state)} is unknown`;
  if (!(AVAILABILITIES as readonly unknown[]).includes(r.availability)) {
    return `availability ${JSON.stringify(r.availability)} is unknown`;
  }
  const t = r.target;
  if (!isObject(t) || typeof t.host !== "string") return "target has no host";
  if (t.port !== undefined && (typeof t.port !== "number" || !Number.isInteger(t.port))) {
    return "target.port is not an integer";
  }
  if (t.user !== undefined && typeof t.user !== "string") return "target.user is not a string";
  if (!isObject(r.parameters)) return "parameters is not an object";
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
