import { deepStrictEqual as assertEquals, ok as assert, rejects, throws } from "node:assert/strict";
import type { DialAddress, OpenContext, Transport, TransportManifest } from "../plugins/mod.ts";
import type { UserConfig } from "./config.ts";
import { RemoteError } from "./errors.ts";
import type { Resolution } from "./parameter_set.ts";
import { route } from "./route.ts";
import type { TransportEntry } from "./transport_catalog.ts";
import { routeVia } from "./via.ts";
import { manifest as container } from "../transports/container/manifest.ts";
import { manifest as ssh } from "../transports/ssh/manifest.ts";
import { manifest as ssm } from "../transports/ssm/manifest.ts";
import { manifest as winrm } from "../transports/winrm/manifest.ts";
import { parameters as invokeParameters } from "./verbs/invoke.ts";

const core = new Set([...invokeParameters.names, "Command"]);
const noConfig: UserConfig = { defaults: {}, hosts: [], plugins: [] };
const prompter = { interactive: false, ask: () => Promise.reject(new Error("no prompts")) };

/** Entries whose dialer records what it was opened with and what it dialled. */
function recordingEntries() {
  const opened: OpenContext[] = [];
  const dialled: DialAddress[] = [];
  let closed = 0;
  const entry = (manifest: TransportManifest): TransportEntry => ({
    manifest,
    origin: { kind: "builtin" },
    load: () =>
      Promise.resolve({
        manifest,
        open: () => Promise.reject(new Error("unused")),
        dialer: (ctx: OpenContext) => {
          opened.push(ctx);
          return Promise.resolve({
            dial: (to: DialAddress) => {
              dialled.push(to);
              return Promise.reject(new RemoteError("refused", "nothing there"));
            },
            [Symbol.asyncDispose]: () => void closed++,
          });
        },
      } as unknown as Transport),
  });
  return { entries: [entry(ssh), entry(winrm), entry(ssm), entry(container)], opened, dialled, closed: () => closed };
}

function resolution(set: string, values: Record<string, unknown>): Resolution {
  return { verb: "invoke", set, values, given: Object.keys(values), missing: [] };
}

Deno.test("routeVia() gives a bare transport name the target's own host, and the via transport its own options", async () => {
  const { entries, opened, dialled, closed } = recordingEntries();
  const res = resolution("SSHHost", { Port: 2222, Region: "eu-west-1" });
  const target = route(res, core, entries, noConfig, "ec2-user@i-0abc", "ignore");
  await using via = routeVia(["ssm"], [target], res, core, entries, noConfig, prompter);
  const bound = via.bind(target);
  assert(bound.dial !== undefined);
  await rejects(bound.dial!({ kind: "tcp", host: "i-0abc", port: 2222 }), /nothing there/);
  await rejects(bound.dial!({ kind: "tcp", host: "i-0abc", port: 2222 }), /nothing there/);
  assertEquals(opened.length, 1, "one via connection for every dial");
  assertEquals(opened[0].target.host, "i-0abc");
  assertEquals(opened[0].target.transport, "ssm");
  assertEquals(opened[0].target.user, undefined);
  assertEquals(opened[0].parameters, { Region: "eu-west-1" }, "-p is ssh's, the target's; --region the via's");
  assertEquals(dialled.length, 2);
  await via[Symbol.asyncDispose]();
  assertEquals(closed(), 1);
});

Deno.test("routeVia() shares one via among the targets that name it, and leaves the others direct", () => {
  const { entries } = recordingEntries();
  const res = resolution("SSHHost", {});
  const a = route(res, core, entries, noConfig, "docker://web1", "ignore");
  const b = route(res, core, entries, noConfig, "docker://web2", "ignore");
  const c = route(res, core, entries, noConfig, "db1", "ignore");
  const set = routeVia(["admin@host", "admin@host", undefined], [a, b, c], res, core, entries, noConfig, prompter);
  assert(set.bind(a).dial && set.bind(b).dial);
  assertEquals(set.bind(c).dial, undefined);
});

Deno.test("routeVia() refuses a target transport without via and a via transport without dial (234)", () => {
  const { entries } = recordingEntries();
  const res = resolution("SSHHost", {});
  const w = route(res, core, entries, noConfig, "winrm://w1", "ignore");
  throws(() => routeVia(["admin@host"], [w], res, core, entries, noConfig, prompter), (e: RemoteError) => {
    return e.code === "unsupported" && e.message.includes("connecting through another transport (--via)");
  });
  const d = route(res, core, entries, noConfig, "docker://web1", "ignore");
  throws(() => routeVia(["winrm://w1"], [d], res, core, entries, noConfig, prompter), (e: RemoteError) => {
    return e.code === "unsupported" && e.message.includes("carrying another connection (dial)");
  });
});

Deno.test("routeVia() refuses an option neither the target's nor the via's transport takes", () => {
  const { entries } = recordingEntries();
  const res = resolution("SSHHost", { ComputerName: "w1" });
  const d = route(res, core, entries, noConfig, "docker://web1", "ignore");
  throws(() => routeVia(["admin@host"], [d], res, core, entries, noConfig, prompter), /--computer-name is an option/);
});
