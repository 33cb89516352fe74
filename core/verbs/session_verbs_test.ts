/** The session verbs' handlers, run with a registry in a temp folder, a fake host and captured output. */
import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import type {
  Channel,
  DisconnectOptions,
  HostSession,
  SessionHost,
  Transport,
  TransportManifest,
} from "../../plugins/mod.ts";
import { RemoteError } from "../errors.ts";
import { resolveParameterSet } from "../parameter_set.ts";
import { Registry } from "../registry.ts";
import type { SessionRecord } from "../session.ts";
import type { TransportEntry } from "../transport_catalog.ts";
import { loadVerb } from "./mod.ts";

const manifest: TransportManifest = {
  id: "fake",
  sdk: 1,
  version: "1.0.0",
  summary: "a host that keeps sessions in memory",
  capabilities: ["shell", "disconnect", "list", "receive", "remove"],
  parameters: [],
};

/** A host holding `sessions`, recording each call. */
function fakeHost(
  sessions: HostSession[],
  attach: SessionHost["attach"] = () => Promise.reject(new Error("not in these tests")),
): { entry: TransportEntry; calls: string[] } {
  const calls: string[] = [];
  const host: SessionHost = {
    list: () => Promise.resolve(sessions),
    create: (_ctx, name) => {
      calls.push(`create ${name}`);
      const s: HostSession = { name, state: "Disconnected", availability: "None" };
      sessions.push(s);
      return Promise.resolve(s);
    },
    attach,
    disconnect: (_ctx, name, options: DisconnectOptions) => {
      calls.push(`disconnect ${name} ${options.idleTimeoutMs}`);
      return Promise.resolve();
    },
    receive: (_ctx, name) => {
      calls.push(`receive ${name}`);
      return Promise.resolve(new TextEncoder().encode(`output of ${name}\n`));
    },
    remove: (_ctx, name) => {
      calls.push(`remove ${name}`);
      return Promise.resolve();
    },
  };
  const transport: Transport = {
    manifest,
    open: () => Promise.reject(new Error("not in these tests")),
    sessions: host,
  };
  return { entry: { manifest, origin: { kind: "builtin" }, load: () => Promise.resolve(transport) }, calls };
}

async function recorded(registry: Registry, name: string, state: SessionRecord["state"]): Promise<SessionRecord> {
  const now = "2025-01-02T03:04:05.000Z";
  return await registry.add({
    instanceId: crypto.randomUUID(),
    name,
    computerName: "db1",
    transport: "fake",
    state,
    availability: "None",
    createdAt: now,
    lastSeenAt: now,
    target: { host: "db1" },
    parameters: {},
  });
}

/** Runs `remote <verb> ...argv` through its handler alone; returns the exit code and what it printed. */
async function runVerb(
  verb: string,
  argv: string[],
  registry: Registry,
  entry: TransportEntry,
): Promise<{ code: number; out: string; err: string }> {
  const module = (await loadVerb(verb))!;
  const spec = module.spec([entry.manifest]);
  let out = "";
  let err = "";
  const text = (data: string | Uint8Array) => typeof data === "string" ? data : new TextDecoder().decode(data);
  const code = await module.run({
    spec,
    resolution: resolveParameterSet(spec, argv),
    entries: [entry],
    config: { defaults: {}, hosts: [], plugins: [] },
    prompter: { interactive: false, ask: () => Promise.reject(new Error("nobody to ask")) },
    registry: () => Promise.resolve(registry),
    io: {
      out: (data) => Promise.resolve(void (out += text(data))),
      err: (data) => Promise.resolve(void (err += text(data))),
    },
  });
  return { code, out, err };
}

async function tempRegistry(): Promise<Registry & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "remote-verbs-" });
  return Object.assign(new Registry(dir), {
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  });
}

Deno.test("get.run() prints the registry as Get-PSSession's table, and JSON lines with --json", async () => {
  await using registry = await tempRegistry();
  const { entry } = fakeHost([]);
  const rec = await recorded(registry, "ITTask", "Disconnected");
  const table = await runVerb("get", [], registry, entry);
  assertEquals(table.code, 0);
  assertEquals(
    table.out,
    "Id Name   ComputerName Transport State        ConfigurationName Availability\n" +
      "-- ------ ------------ --------- ------------ ----------------- ------------\n" +
      "1  ITTask db1          fake      Disconnected                   None\n",
  );
  const json = await runVerb("get", ["--json"], registry, entry);
  assertEquals(JSON.parse(json.out), {
    id: 1,
    name: "ITTask",
    computerName: "db1",
    transport: "fake",
    state: "Disconnected",
    configurationName: null,
    availability: "None",
    instanceId: rec.instanceId,
    createdAt: rec.createdAt,
    lastSeenAt: rec.lastSeenAt,
    stale: false,
    foreign: false,
  });
});

Deno.test("get.run() --computer-name merges the host's sessions and marks those it lost as stale", async () => {
  await using registry = await tempRegistry();
  const { entry } = fakeHost([{ name: "Found", state: "Opened", availability: "Busy" }]);
  await recorded(registry, "Lost", "Disconnected");
  const { code, out } = await runVerb("get", ["--computer-name", "fake://db1", "--json"], registry, entry);
  assertEquals(code, 0);
  const rows = out.trimEnd().split("\n").map((line) => JSON.parse(line));
  assertEquals(rows.map((r) => [r.name, r.state, r.availability, r.stale]), [
    ["Lost", "Broken", "None", true],
    ["Found", "Opened", "Busy", false],
  ]);
});

Deno.test("disconnect.run() detaches on the host and records the session as Disconnected", async () => {
  await using registry = await tempRegistry();
  const { entry, calls } = fakeHost([]);
  await recorded(registry, "ITTask", "Opened");
  const { code, out } = await runVerb("disconnect", ["--name", "ITTask", "--idle-timeout", "15m"], registry, entry);
  assertEquals([code, calls], [0, ["disconnect ITTask 900000"]]);
  ok(out.includes("ITTask db1          fake      Disconnected"), out);
  assertEquals((await registry.list()).map((r) => r.state), ["Disconnected"]);
});

Deno.test("receive.run() prints what the host kept for the session", async () => {
  await using registry = await tempRegistry();
  const { entry } = fakeHost([]);
  await recorded(registry, "ITTask", "Disconnected");
  assertEquals(await runVerb("receive", ["--id", "1"], registry, entry), {
    code: 0,
    out: "output of ITTask\n",
    err: "",
  });
});

Deno.test("remove.run() --what-if removes nothing; without it the host and the registry forget the session", async () => {
  await using registry = await tempRegistry();
  const { entry, calls } = fakeHost([]);
  await recorded(registry, "ITTask", "Disconnected");
  const whatIf = await runVerb("remove", ["--name", "IT*", "--what-if"], registry, entry);
  assertEquals(whatIf.out, "What if: removing session ITTask (Id 1) on db1\n");
  assertEquals([calls, (await registry.list()).length], [[], 1]);
  await runVerb("remove", ["--name", "ITTask"], registry, entry);
  assertEquals([calls, (await registry.list()).length], [["remove ITTask"], 0]);
});

Deno.test("new.run() names the session after those the registry and the host have", async () => {
  await using registry = await tempRegistry();
  const { entry, calls } = fakeHost([{ name: "Session2", state: "Disconnected", availability: "None" }]);
  await recorded(registry, "Session1", "Disconnected");
  const { code } = await runVerb("new", ["fake://db1"], registry, entry);
  assertEquals([code, calls], [0, ["create Session3"]]);
});

Deno.test("a session verb names the session it cannot find, and how to look", async () => {
  await using registry = await tempRegistry();
  const { entry } = fakeHost([]);
  await rejects(
    runVerb("receive", ["--name", "Nope"], registry, entry),
    (e) => e instanceof RemoteError && e.code === "notFound" && e.message === "no session Nope in the local registry",
  );
});

Deno.test("connect.run() refuses a Broken or Closed session and closes the channel it opened", async () => {
  for (const state of ["Broken", "Closed"] as const) {
    await using registry = await tempRegistry();
    let disposed = 0;
    const channel = { [Symbol.asyncDispose]: () => Promise.resolve(void disposed++) } as unknown as Channel;
    const { entry } = fakeHost(
      [{ name: "ITTask", state: "Disconnected", availability: "None" }],
      () => Promise.resolve(channel),
    );
    await recorded(registry, "ITTask", state);
    await rejects(
      runVerb("connect", ["--name", "ITTask"], registry, entry),
      (e) => e instanceof RemoteError && e.code === "notFound" && e.message === `session ITTask on db1 is ${state}`,
    );
    assertEquals(disposed, 1);
  }
});
