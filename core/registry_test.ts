import { AssertionError, deepStrictEqual as assertEquals, ok as assert, strictEqual, throws } from "node:assert/strict";
import { RemoteError } from "./errors.ts";
import { Registry, REGISTRY_FORMAT_VERSION } from "./registry.ts";
import type { SessionRecord } from "./session.ts";
import { FileLock } from "./_file_lock.ts";

const WORKER = new URL("../tests/fixtures/registry_worker.ts", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "remote-registry-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function session(overrides: Partial<Omit<SessionRecord, "id">> = {}): Omit<SessionRecord, "id"> {
  return {
    instanceId: crypto.randomUUID(),
    name: "",
    computerName: "db1",
    transport: "ssh",
    state: "Opened",
    availability: "Available",
    createdAt: "2025-01-02T03:04:05.000Z",
    lastSeenAt: "2025-01-02T03:04:05.000Z",
    target: { host: "db1", port: 22, user: "me" },
    parameters: { Port: 22, KeyFilePath: "/home/me/.ssh/id_ed25519" },
    ...overrides,
  };
}

async function rejectsWith<E extends Error>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => E,
  includes: string,
): Promise<E> {
  try {
    await promise;
  } catch (err) {
    assert(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    assert(
      err.message.includes(includes),
      `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(includes)}`,
    );
    return err;
  }
  throw new AssertionError({ message: `expected a rejection with ${type.name}` });
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** The pid of a process that has certainly ended. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
  await child.status;
  return child.pid;
}

Deno.test("Registry.defaultDir() follows XDG_STATE_HOME, ignoring a relative one, then HOME", () => {
  strictEqual(Registry.defaultDir({ XDG_STATE_HOME: "/x/state", HOME: "/home/me" }), "/x/state/remote");
  strictEqual(Registry.defaultDir({ XDG_STATE_HOME: "rel/state", HOME: "/home/me" }), "/home/me/.local/state/remote");
  strictEqual(Registry.defaultDir({ HOME: "/home/me" }), "/home/me/.local/state/remote");
  throws(
    () => Registry.defaultDir({}),
    (err: unknown) => err instanceof RemoteError && err.code === "state" && err.message.includes("HOME"),
  );
});

Deno.test("FileLock.acquire() creates the lock 0600 with the pid first, and release() removes it once", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/sessions.lock`;
    const lock = await FileLock.acquire(path, { timeoutMs: 1_000, staleMs: 10_000, what: "the test" });
    strictEqual((await Deno.stat(path)).mode! & 0o777, 0o600);
    strictEqual((await Deno.readTextFile(path)).split("\n")[0], String(Deno.pid));
    strictEqual(await lock.held(), true);
    await lock.release();
    await lock.release();
    strictEqual(await exists(path), false);
    strictEqual(await lock.held(), false);
  });
});

Deno.test("FileLock.release() leaves alone a lock that was taken over meanwhile", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/sessions.lock`;
    const lock = await FileLock.acquire(path, { timeoutMs: 1_000, staleMs: 10_000, what: "the test" });
    await Deno.writeTextFile(path, `${Deno.pid}\n${Deno.hostname()}\nsomeone-else\n`);
    strictEqual(await lock.held(), false);
    await lock.release();
    strictEqual(await Deno.readTextFile(path), `${Deno.pid}\n${Deno.hostname()}\nsomeone-else\n`);
  });
});

Deno.test("Registry.add() creates the directory 0700 and the file 0600, and leaves no lock", async () => {
  await withTempDir(async (tmp) => {
    const dir = `${tmp}/state/remote`;
    const registry = new Registry(dir);
    strictEqual(await exists(dir), false, "constructing must touch nothing");
    await registry.add(session());
    strictEqual((await Deno.stat(dir)).mode! & 0o777, 0o700);
    strictEqual((await Deno.stat(`${dir}/sessions.json`)).mode! & 0o777, 0o600);
    strictEqual(await exists(`${dir}/sessions.lock`), false, "the lock is released after each change");
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["sessions.json"]);
  });
});

Deno.test("Registry.add() tightens an existing directory that others may read", async () => {
  await withTempDir(async (dir) => {
    await Deno.chmod(dir, 0o755);
    await new Registry(dir).add(session());
    strictEqual((await Deno.stat(dir)).mode! & 0o777, 0o700);
  });
});

Deno.test("Registry round-trips records through sessions.json with a format version", async () => {
  await withTempDir(async (dir) => {
    const registry = new Registry(dir);
    assertEquals(await registry.list(), [], "a missing file is an empty registry");
    const input = session({ name: "ITTask", configurationName: "Microsoft.PowerShell" });
    const added = await registry.add(input);
    assertEquals(added, { ...input, id: 1 });
    assertEquals(await new Registry(dir).list(), [added]);
    const file = JSON.parse(await Deno.readTextFile(`${dir}/sessions.json`));
    strictEqual(file.formatVersion, REGISTRY_FORMAT_VERSION);
    assertEquals(file.sessions, [added]);

    const updated = await registry.update(added.instanceId, { state: "Disconnected", availability: "None" });
    strictEqual(updated.state, "Disconnected");
    strictEqual(updated.name, "ITTask");
    assertEquals(await registry.list(), [updated]);

    await registry.remove(added.instanceId);
    assertEquals(await registry.list(), []);
  });
});

Deno.test("Registry.add() gives the smallest free id and fills the gap a removal left", async () => {
  await withTempDir(async (dir) => {
    const registry = new Registry(dir);
    const a = await registry.add(session());
    const b = await registry.add(session());
    const c = await registry.add(session());
    assertEquals([a.id, b.id, c.id], [1, 2, 3]);
    assertEquals([a.name, b.name, c.name], ["Session1", "Session2", "Session3"]);
    await registry.remove(b.instanceId);
    const d = await registry.add(session());
    strictEqual(d.id, 2);
    strictEqual(d.name, "Session2");
    const e = await registry.add(session({ computerName: "web1" }));
    strictEqual(e.id, 4);
    strictEqual(e.name, "Session1", "names are numbered per host");
  });
});

Deno.test("Registry.add() rejects a name already used on the same host, ignoring case", async () => {
  await withTempDir(async (dir) => {
    const registry = new Registry(dir);
    await registry.add(session({ name: "ITTask" }));
    const err = await rejectsWith(
      registry.add(session({ name: "ittask", computerName: "DB1" })),
      RemoteError,
      "a session named ittask already exists on DB1",
    );
    strictEqual(err.code, "usage");
    assert(err.hint);
    strictEqual(await exists(`${dir}/sessions.lock`), false, "a failed change releases the lock");
    await registry.add(session({ name: "ITTask", computerName: "web1" }));
    strictEqual((await registry.list()).length, 2);
  });
});

Deno.test("Registry.update() rejects renaming onto a taken name and unknown instance ids", async () => {
  await withTempDir(async (dir) => {
    const registry = new Registry(dir);
    await registry.add(session({ name: "A" }));
    const b = await registry.add(session({ name: "B" }));
    await rejectsWith(registry.update(b.instanceId, { name: "a" }), RemoteError, "already exists");
    const renamed = await registry.update(b.instanceId, { name: "C" });
    strictEqual(renamed.name, "C");
    const missing = await rejectsWith(registry.update("nope", { state: "Closed" }), RemoteError, "nope");
    strictEqual(missing.code, "notFound");
    const gone = await rejectsWith(registry.remove("nope"), RemoteError, "no session with instance id nope");
    strictEqual(gone.code, "notFound");
    await rejectsWith(registry.update(b.instanceId, { id: 7 }), Error, "id cannot change");
  });
});

Deno.test("Registry.add() rejects invalid names", async () => {
  await withTempDir(async (dir) => {
    const registry = new Registry(dir);
    for (const name of ["a*", "b?", " pad", "   "]) {
      const err = await rejectsWith(registry.add(session({ name })), RemoteError, "invalid session name");
      strictEqual(err.code, "usage");
    }
  });
});

Deno.test("Registry.find() selects by id, instance id, wildcard name, host and state", async () => {
  await withTempDir(async (dir) => {
    const registry = new Registry(dir);
    const a = await registry.add(session({ name: "build-1" }));
    const b = await registry.add(session({ name: "build-2", state: "Disconnected", availability: "None" }));
    const c = await registry.add(session({ name: "deploy", computerName: "web1.corp" }));
    const names = async (sel: Parameters<Registry["find"]>[0]) => (await registry.find(sel)).map((r) => r.name);
    assertEquals(await names({}), ["build-1", "build-2", "deploy"]);
    assertEquals(await names({ id: 2 }), ["build-2"]);
    assertEquals(await names({ instanceId: c.instanceId.toUpperCase() }), ["deploy"]);
    assertEquals(await names({ name: "BUILD-*" }), ["build-1", "build-2"]);
    assertEquals(await names({ name: "build-?" }), ["build-1", "build-2"]);
    assertEquals(await names({ name: "build" }), []);
    assertEquals(await names({ computerName: "*.corp" }), ["deploy"]);
    assertEquals(await names({ computerName: "DB1", state: "Opened" }), ["build-1"]);
    assertEquals(await names({ name: "build-*", state: "Disconnected" }), [b.name]);
    strictEqual(a.id, 1);
  });
});

Deno.test("Registry never writes parameters whose names suggest secrets", async () => {
  await withTempDir(async (dir) => {
    const registry = new Registry(dir);
    const parameters = {
      Port: 22,
      Password: "hunter2",
      Credential: "hunter2",
      Extra: { apiToken: "hunter2", Keep: [{ KeyPassphrase: "hunter2", Path: "/k" }] },
    };
    const a = await registry.add(session({ parameters }));
    const expected = { Port: 22, Extra: { Keep: [{ Path: "/k" }] } };
    assertEquals(a.parameters, expected);
    assertEquals((await registry.list())[0].parameters, expected);
    const b = await registry.update(a.instanceId, { parameters: { Port: 2222, SecretKey: "hunter2" } });
    assertEquals(b.parameters, { Port: 2222 });
    assert(!(await Deno.readTextFile(`${dir}/sessions.json`)).includes("hunter2"));
    strictEqual(parameters.Password, "hunter2", "the caller's object is left alone");
  });
});

Deno.test("Registry reports a corrupt file with code state and the fix, and keeps it unchanged", async () => {
  const cases: [string | Uint8Array, string][] = [
    ["{ this is not json", "not valid JSON"],
    ["[]", "not a JSON object"],
    ['{"sessions": []}', "no valid formatVersion"],
    ['{"formatVersion": 1, "sessions": {}}', "sessions is not a list"],
    ['{"formatVersion": 1, "sessions": [{"id": 1}]}', "session 1: instanceId is not a string"],
    [new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]), "not valid JSON"],
  ];
  for (const [content, detail] of cases) {
    await withTempDir(async (dir) => {
      const path = `${dir}/sessions.json`;
      const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
      await Deno.writeFile(path, bytes, { mode: 0o600 });
      const before = await Deno.readFile(path);
      const registry = new Registry(dir);
      for (const attempt of [() => registry.list(), () => registry.add(session()), () => registry.remove("x")]) {
        const err = await rejectsWith(attempt(), RemoteError, `session registry ${path} is corrupt: ${detail}`);
        strictEqual(err.code, "state");
        strictEqual(err.exitCode, 232);
        strictEqual(err.hint, `move it aside: mv ${path} ${path}.bad ; remote will start a new one`);
      }
      assertEquals(await Deno.readFile(path), before, "the corrupt file is kept as it was");
      assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["sessions.json"]);
    });
  }
});

Deno.test("Registry refuses a file from a newer remote and keeps it unchanged", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/sessions.json`;
    const content = JSON.stringify({ formatVersion: REGISTRY_FORMAT_VERSION + 1, sessions: [{ future: true }] });
    await Deno.writeTextFile(path, content, { mode: 0o600 });
    const registry = new Registry(dir);
    for (const attempt of [() => registry.list(), () => registry.add(session())]) {
      const err = await rejectsWith(
        attempt(),
        RemoteError,
        `${path} has format version ${REGISTRY_FORMAT_VERSION + 1}`,
      );
      strictEqual(err.code, "state");
      assert(err.hint?.includes(`mv ${path} ${path}.v${REGISTRY_FORMAT_VERSION + 1}`));
    }
    strictEqual(await Deno.readTextFile(path), content);
  });
});

Deno.test("Registry takes over a lock left by a dead process at once", async () => {
  await withTempDir(async (dir) => {
    const pid = await deadPid();
    await Deno.writeTextFile(`${dir}/sessions.lock`, `${pid}\n${Deno.hostname()}\nleftover\n`, { mode: 0o600 });
    // the age bound is far away, so only the dead pid can explain the takeover
    const registry = new Registry(dir, { lockTimeoutMs: 5_000, staleLockMs: 600_000 });
    const rec = await registry.add(session());
    strictEqual(rec.id, 1);
    strictEqual(await exists(`${dir}/sessions.lock`), false);
    strictEqual(await exists(`${dir}/sessions.lock.break`), false);
  });
});

Deno.test("Registry takes over a lock older than the bound even from another host", async () => {
  await withTempDir(async (dir) => {
    const lock = `${dir}/sessions.lock`;
    await Deno.writeTextFile(lock, `1\nsome-other-host\nleftover\n`, { mode: 0o600 });
    const old = new Date(Date.now() - 60_000);
    await Deno.utime(lock, old, old);
    const registry = new Registry(dir, { lockTimeoutMs: 5_000, staleLockMs: 30_000 });
    strictEqual((await registry.add(session())).id, 1);
    strictEqual(await exists(lock), false);
  });
});

Deno.test("Registry gives up on a live lock with code timeout, naming the holder and the lock file", async () => {
  await withTempDir(async (dir) => {
    const lock = `${dir}/sessions.lock`;
    const content = `${Deno.pid}\n${Deno.hostname()}\nheld-by-test\n`;
    await Deno.writeTextFile(lock, content, { mode: 0o600 });
    const registry = new Registry(dir, { lockTimeoutMs: 300, staleLockMs: 600_000 });
    const err = await rejectsWith(registry.add(session()), RemoteError, `${lock} is held by process ${Deno.pid}`);
    strictEqual(err.code, "timeout");
    strictEqual(err.hint, `if no remote process is running, remove the lock: rm ${lock}`);
    strictEqual(await Deno.readTextFile(lock), content, "a live lock is never broken");
    strictEqual(await exists(`${dir}/sessions.json`), false);
    assertEquals(await registry.list(), [], "readers need no lock");
  });
});

Deno.test("Registry removes temp files left by a killed writer once they are old", async () => {
  await withTempDir(async (dir) => {
    const old = `${dir}/.sessions.json.99999.dead.tmp`;
    const fresh = `${dir}/.sessions.json.99998.busy.tmp`;
    await Deno.writeTextFile(old, "{", { mode: 0o600 });
    await Deno.writeTextFile(fresh, "{", { mode: 0o600 });
    const then = new Date(Date.now() - 60_000);
    await Deno.utime(old, then, then);
    await new Registry(dir, { staleLockMs: 30_000 }).add(session());
    strictEqual(await exists(old), false);
    strictEqual(await exists(fresh), true, "a young one may belong to a live writer");
  });
});

Deno.test("Registry serialises concurrent changes within one process", async () => {
  await withTempDir(async (dir) => {
    const registry = new Registry(dir);
    const added = await Promise.all(Array.from({ length: 10 }, () => registry.add(session())));
    assertEquals(added.map((r) => r.id).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    strictEqual((await registry.list()).length, 10);
  });
});

/** Runs `workers` registry_worker.ts processes at once, each adding `each` sessions, and checks the result. */
async function runWorkers(dir: string, workers: number, each: number): Promise<void> {
  const signal = AbortSignal.timeout(180_000);
  const outputs = await Promise.all(
    Array.from({ length: workers }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", WORKER, dir, String(each)],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
        signal,
      }).output()),
  );
  const decoder = new TextDecoder();
  const reported: number[] = [];
  for (const out of outputs) {
    strictEqual(out.code, 0, `a worker failed: ${decoder.decode(out.stderr)}`);
    reported.push(...JSON.parse(decoder.decode(out.stdout)));
  }
  const expectedIds = Array.from({ length: workers * each }, (_, i) => i + 1);
  assertEquals(reported.sort((a, b) => a - b), expectedIds, "each worker owns distinct ids");

  const file = JSON.parse(await Deno.readTextFile(`${dir}/sessions.json`));
  strictEqual(file.formatVersion, REGISTRY_FORMAT_VERSION);
  const records: SessionRecord[] = file.sessions;
  strictEqual(records.length, workers * each);
  assertEquals(records.map((r) => r.id), expectedIds);
  strictEqual(new Set(records.map((r) => r.instanceId)).size, workers * each);
  const names = records.map((r) => r.name).sort();
  assertEquals(names, expectedIds.map((i) => `Session${i}`).sort(), "generated names are distinct");
  assert(records.every((r) => r.state === "Opened"), "every update landed");
  const perWorker = new Map<unknown, number>();
  for (const r of records) perWorker.set(r.parameters.Worker, (perWorker.get(r.parameters.Worker) ?? 0) + 1);
  strictEqual(perWorker.size, workers);
  assert([...perWorker.values()].every((n) => n === each), "nothing lost");
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["sessions.json"], "no lock or temp file left");
  strictEqual((await Deno.stat(`${dir}/sessions.json`)).mode! & 0o777, 0o600);
}

Deno.test("Registry stays consistent under 20 concurrent processes", async () => {
  await withTempDir((dir) => runWorkers(dir, 20, 5));
});

Deno.test("Registry stays consistent when 20 processes find a dead process's lock at once", async () => {
  await withTempDir(async (dir) => {
    const pid = await deadPid();
    await Deno.writeTextFile(`${dir}/sessions.lock`, `${pid}\n${Deno.hostname()}\nleftover\n`, { mode: 0o600 });
    await runWorkers(dir, 20, 2);
  });
});

Deno.test("Registry.add() picks a name free in the registry, in avoid and in taken, and adds it to taken", async () => {
  await withTempDir(async (dir) => {
    const registry = new Registry(dir);
    await registry.add(session({ name: "Session1" }));
    const taken = new Set(["Session3"]);
    const rec = await registry.add(session(), { avoid: ["session2"], taken });
    strictEqual(rec.name, "Session4");
    assertEquals([...taken].sort(), ["Session3", "Session4"]);
  });
});

Deno.test("Registry.upsert() finds a session by instance id under another host name and keeps one entry", async () => {
  await withTempDir(async (dir) => {
    const registry = new Registry(dir);
    const first = await registry.add(session({ name: "Job", computerName: "box", state: "Opened" }));
    const again = await registry.upsert(
      session({ instanceId: first.instanceId, name: "Job", computerName: "10.0.0.5", state: "Disconnected" }),
      () => ({ state: "Disconnected", availability: "None" }),
    );
    assertEquals([again.id, again.computerName, again.state], [first.id, "box", "Disconnected"]);
    strictEqual((await registry.list()).length, 1);
    // same name on the same host, another instance id: the host's session replaced the one recorded
    const replaced = crypto.randomUUID();
    const next = await registry.upsert(
      session({ instanceId: replaced, name: "job", computerName: "BOX" }),
      () => ({ instanceId: replaced }),
    );
    assertEquals([next.id, next.instanceId], [first.id, replaced]);
    const added = await registry.upsert(session({ name: "Other", computerName: "box" }), () => ({}));
    strictEqual(added.id, 2);
  });
});

Deno.test("Registry refuses a file or directory that others may write, or a symbolic link, before reading", async () => {
  await withTempDir(async (dir) => {
    const registry = new Registry(dir);
    await registry.add(session({ name: "Job" }));
    await Deno.chmod(registry.path, 0o620);
    await rejectsWith(registry.list(), RemoteError, "has bad owner or permissions: writable by others (mode 0620)");
    await Deno.chmod(registry.path, 0o600);
    await Deno.chmod(dir, 0o770);
    await rejectsWith(registry.add(session()), RemoteError, "directory");
    await Deno.chmod(dir, 0o700);
    await Deno.rename(registry.path, `${dir}/real.json`);
    await Deno.symlink(`${dir}/real.json`, registry.path);
    const err = await rejectsWith(registry.add(session()), RemoteError, "is a symbolic link");
    strictEqual(err.code, "state");
    strictEqual((await Deno.lstat(registry.path)).isSymlink, true);
  });
});

Deno.test("Registry takes over an empty lock after a second, not after the stale bound", async () => {
  await withTempDir(async (dir) => {
    const registry = new Registry(dir, { lockTimeoutMs: 5_000, staleLockMs: 60_000 });
    await Deno.writeTextFile(registry.lockPath, "");
    const old = new Date(Date.now() - 2_000);
    await Deno.utime(registry.lockPath, old, old);
    const rec = await registry.add(session({ name: "Job" }));
    strictEqual(rec.name, "Job");
    strictEqual(await exists(registry.lockPath), false);
  });
});
