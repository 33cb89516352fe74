import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import type { Transport, TransportManifest } from "../plugins/mod.ts";
import type { UserConfig } from "./config.ts";
import { UsageError } from "./errors.ts";
import type { Resolution } from "./parameter_set.ts";
import { refuseUnusedOptions, route } from "./route.ts";
import type { TransportEntry } from "./transport_catalog.ts";
import { manifest as ssh } from "../transports/ssh/manifest.ts";
import { manifest as ssm } from "../transports/ssm/manifest.ts";
import { manifest as winrm } from "../transports/winrm/manifest.ts";
import { parameters as enterParameters } from "./verbs/enter.ts";
import { parameters as invokeParameters } from "./verbs/invoke.ts";

const enterCore = enterParameters.names;
const invokeCore = invokeParameters.names;

const entry = (manifest: TransportManifest): TransportEntry => ({
  manifest,
  origin: { kind: "builtin" },
  load: () => Promise.reject(new Error("routing loads no transport")) as Promise<Transport>,
});
const entries = [entry(ssh), entry(winrm), entry(ssm)];
const noConfig: UserConfig = { defaults: {}, hosts: [], plugins: [] };

function resolution(set: string, values: Record<string, unknown>, verb = "enter"): Resolution {
  return { verb, set, values, given: Object.keys(values), missing: [] };
}

Deno.test("route() sends a bare host to ssh with -p and -l, and keeps the core's own values back", () => {
  const r = route(
    resolution("SSHHost", { HostName: "db1", Port: 2222, UserName: "ops", EscapeChar: "^]" }),
    enterCore,
    entries,
    noConfig,
    "db1",
  );
  assertEquals(r.entry.manifest.id, "ssh");
  assertEquals(r.target, { transport: "ssh", host: "db1", port: 2222, user: "ops", path: undefined, display: "db1" });
  assertEquals(r.parameters, { Port: 2222, UserName: "ops" });
});

Deno.test("route() lets user and port in the target win over --user-name and --port", () => {
  const r = route(resolution("SSHHost", { Port: 2222, UserName: "ops" }), enterCore, entries, noConfig, "admin@db1:22");
  assertEquals([r.target.user, r.target.port], ["admin", 22]);
});

Deno.test("route() picks the transport by scheme, then by the user's host mapping, then the default", () => {
  const bySet = resolution("SSHHost", {});
  assertEquals(route(bySet, enterCore, entries, noConfig, "https://win01:5986/wsman").entry.manifest.id, "winrm");
  const config: UserConfig = { defaults: {}, hosts: [{ pattern: "i-*", transport: "ssm" }], plugins: [] };
  assertEquals(route(bySet, enterCore, entries, config, "i-0123456789abcdef0").entry.manifest.id, "ssm");
  assertEquals(route(bySet, enterCore, entries, config, "db1").entry.manifest.id, "ssh");
  const winrmDefault: UserConfig = { defaults: { transport: "winrm" }, hosts: [], plugins: [] };
  assertEquals(route(bySet, enterCore, entries, winrmDefault, "db1").entry.manifest.id, "winrm");
});

Deno.test("route() takes the target from the set a transport owns: --computer-name is winrm's", () => {
  const r = route(
    resolution("ComputerName", { ComputerName: "win01:5985", UseSSL: true }),
    enterCore,
    entries,
    noConfig,
  );
  assertEquals([r.entry.manifest.id, r.target.host, r.target.port], ["winrm", "win01", 5985]);
  assertEquals(r.parameters, { ComputerName: "win01:5985", UseSSL: true });
});

Deno.test("route() refuses an unknown scheme and no target at all", () => {
  throws(
    () => route(resolution("SSHHost", {}), enterCore, entries, noConfig, "gopher://db1"),
    (e) => e instanceof UsageError && e.message === "no transport handles the scheme 'gopher://'",
  );
  throws(
    () => route(resolution("SSHHost", {}), enterCore, entries, noConfig),
    (e) =>
      e instanceof UsageError && e.message === "no target given" &&
      e.hint === "name a host, e.g. remote enter admin@db1",
  );
});

Deno.test("route() refuses an option of another transport than the target's", () => {
  throws(
    () => route(resolution("SSHHost", { UseSSL: true }), enterCore, entries, noConfig, "db1"),
    (e) =>
      e instanceof UsageError && e.message === "--use-ssl is an option of winrm, not of ssh" &&
      e.hint === "drop it, or pick the transport with a scheme, e.g. winrm://db1",
  );
});

Deno.test("refuseUnusedOptions() accepts the core's options and those of any transport used", () => {
  const r = resolution("SSHHost", { HostName: ["db1", "w1"], Json: true, Port: 22, UseSSL: true }, "invoke");
  refuseUnusedOptions(r, invokeCore, entries.map((e) => e.manifest), [ssh, winrm], "db1");
  throws(
    () => refuseUnusedOptions(r, invokeCore, entries.map((e) => e.manifest), [ssh], "db1"),
    (e) => e instanceof UsageError && e.message === "--use-ssl is an option of winrm, not of ssh",
  );
});

Deno.test("refuseUnusedOptions() names every owner of an option shared by transports none of the targets use", () => {
  const r = resolution("SSHHost", { Port: 22 }, "invoke");
  throws(
    () => refuseUnusedOptions(r, invokeCore, entries.map((e) => e.manifest), [ssm], "i-1"),
    (e) => e instanceof UsageError && e.message === "--port is an option of ssh, winrm, not of ssm",
  );
});

Deno.test("route() takes pwsh+<scheme>:// as that transport with its PowerShell configuration, if it speaks PSRP", () => {
  const bySet = resolution("SSHHost", {});
  const r = route(bySet, enterCore, entries, noConfig, "pwsh+ssh://admin@db1:2222");
  assertEquals([r.entry.manifest.id, r.configuration, r.target.user, r.target.host, r.target.port], [
    "ssh",
    "powershell",
    "admin",
    "db1",
    2222,
  ]);
  assertEquals(route(bySet, enterCore, entries, noConfig, "ssh://db1").configuration, undefined);
  // the transport's own default configuration: WinRM's Microsoft.PowerShell
  assertEquals(route(bySet, enterCore, entries, noConfig, "PWSH+HTTPS://win01").configuration, "Microsoft.PowerShell");
  for (const target of ["pwsh+ssm://i-0123456789abcdef0", "pwsh+pwsh+ssh://db1", "pwsh+://db1"]) {
    throws(
      () => route(bySet, enterCore, entries, noConfig, target),
      (e) =>
        e instanceof UsageError && e.message.startsWith("no transport handles the scheme 'pwsh+") &&
        e.hint === "known schemes: ssh, pwsh+ssh, winrm, http, https, pwsh+winrm, ssm; see: remote plugin list",
      target,
    );
  }
});
