import { PluginError } from "./errors.ts";
import type { TransportEntry } from "./transport_catalog.ts";
import { mergeCatalog, validateManifest, validateTransportModule } from "./validate.ts";
import type { TransportManifest } from "./types.ts";

const good: TransportManifest = {
  id: "demo",
  sdk: 1,
  version: "1.0.0",
  summary: "A demo",
  schemes: ["demos"],
  capabilities: ["exec", "pty", "pty-resize"],
  parameters: [
    { name: "HostName", type: { kind: "string" }, sets: { DemoHost: { position: 0, mandatory: true } }, help: "host" },
  ],
  defaultSet: "DemoHost",
};

function refused(value: unknown, plugin: string, part: string): void {
  try {
    validateManifest(value, "./demo.ts");
  } catch (e) {
    if (!(e instanceof PluginError) || e.plugin !== plugin || !e.message.includes(part)) throw e;
    return;
  }
  throw new Error(`accepted (wanted "${part}")`);
}

Deno.test("validateManifest() accepts a complete manifest", () => {
  if (validateManifest(good, "./demo.ts") !== good) throw new Error("not returned");
});

Deno.test("validateManifest() names what is wrong and the plugin", () => {
  refused(null, "./demo.ts", "has no manifest object");
  refused({ ...good, sdk: 2 }, "demo", "plugin sdk 2, this remote speaks sdk 1");
  refused({ ...good, sdk: undefined }, "demo", "has no sdk version");
  refused({ ...good, id: "Bad Id" }, "./demo.ts", "is not a lower-case URL scheme name");
  refused({ ...good, summary: "" }, "demo", "manifest has no summary");
  refused({ ...good, capabilities: ["exec", "*teleport"] }, "demo", `needs the capability "teleport"`);
  refused({ ...good, capabilities: ["exec", 7] }, "demo", "capability 7 is not a name");
  refused({ ...good, capabilities: ["pty-resize"] }, "demo", `"pty-resize" needs "pty"`);
  refused({ ...good, schemes: ["HTTP"] }, "demo", "is not a URL scheme name");
  refused({ ...good, parameters: [{ name: "x", type: { kind: "string" }, help: "h" }] }, "demo", "PascalCase");
  refused({ ...good, parameters: [{ name: "Port", type: { kind: "float" }, help: "h" }] }, "demo", "unknown type");
  refused({ ...good, parameters: [{ name: "Mode", type: { kind: "enum", values: [] }, help: "h" }] }, "demo", "enum");
  refused(
    { ...good, parameters: [{ ...good.parameters[0], sets: { DemoHost: { position: -1 } } }] },
    "demo",
    "bad position",
  );
  refused({ ...good, defaultSet: "Other" }, "demo", `defaultSet "Other"`);
  refused({ ...good, defaultPort: 70000 }, "demo", "defaultPort");
  refused({ ...good, targetHost: "uri" }, "demo", `targetHost "uri" is neither "dns" nor "name"`);
  refused({ ...good, targets: { option: "Box", help: "h", parameters: ["Nope"] } }, "demo", "targets needs");
});

Deno.test("validateTransportModule() refuses advertised capabilities without code", () => {
  const open = () => Promise.reject(new Error("x"));
  validateTransportModule({ manifest: good, open }, "./demo.ts");
  const expect = (mod: unknown, part: string) => {
    try {
      validateTransportModule(mod, "./demo.ts");
    } catch (e) {
      if (e instanceof PluginError && e.message.startsWith("plugin demo: ") && e.message.includes(part)) return;
      throw e;
    }
    throw new Error("accepted");
  };
  expect({ manifest: good }, "exports no open() function");
  expect({ manifest: { ...good, capabilities: ["list"] }, open }, "exports no sessions object");
  expect({ manifest: { ...good, capabilities: ["list"] }, open, sessions: {} }, "has no sessions.list()");
  expect({ manifest: { ...good, capabilities: ["forward"] }, open }, "exports no forward()");
  expect({ manifest: { ...good, capabilities: ["dial"] }, open }, "advertises dial but exports no dialer()");
});

Deno.test("validateTransportModule() keeps dialer() of a transport with the dial capability", () => {
  const open = () => Promise.reject(new Error("x"));
  const dialer = () => Promise.reject(new Error("y"));
  const t = validateTransportModule(
    { manifest: { ...good, capabilities: ["exec", "dial", "via"] }, open, dialer },
    "x",
  );
  if (t.dialer !== dialer || !t.manifest.capabilities.includes("via")) throw new Error("dialer or via lost");
});

Deno.test("mergeCatalog() refuses a second id or scheme, naming both origins", () => {
  const entry = (manifest: TransportManifest, specifier: string): TransportEntry => ({
    manifest,
    origin: { kind: "module", specifier },
    load: () => Promise.reject(new Error("unused")),
  });
  const a = entry(good, "./a.ts");
  if (mergeCatalog([a, entry({ ...good, id: "other", schemes: [] }, "./b.ts")]).length !== 2) {
    throw new Error("lost one");
  }
  for (
    const [b, part] of [
      [
        entry({ ...good, schemes: [] }, "./b.ts"),
        `id "demo" is already claimed by demo (./a.ts); this one is from ./b.ts`,
      ],
      [entry({ ...good, id: "x", schemes: ["demos"] }, "./b.ts"), `scheme "demos" is already claimed by demo (./a.ts)`],
      [entry({ ...good, id: "demos", schemes: [] }, "/bin/x"), `"demos" is already claimed by demo (./a.ts)`],
    ] as const
  ) {
    try {
      mergeCatalog([a, b]);
      throw new Error("accepted");
    } catch (e) {
      if (!(e instanceof PluginError) || !e.message.includes(part)) throw e;
    }
  }
});

Deno.test("validateManifest() ignores an unknown optional capability and reads a * as mandatory", () => {
  const declared = { ...good, capabilities: ["exec", "teleport", "*pty", "pty-resize", "*exec"] };
  const manifest = validateManifest(declared, "./demo.ts");
  if (manifest.capabilities.join() !== "exec,pty,pty-resize") throw new Error(manifest.capabilities.join());
  if (declared.capabilities.length !== 5) throw new Error("the declared manifest was changed");
});

Deno.test("validateManifest() refuses a parameter named or spelled like one of the core's, naming it", () => {
  const reserved = { names: ["Json", "Name"], flags: ["json", "name", "host"], shorts: ["e"] };
  const refusedWith = (parameter: Record<string, unknown>, part: string) => {
    try {
      validateManifest(
        { ...good, defaultSet: undefined, parameters: [{ type: { kind: "switch" }, help: "h", ...parameter }] },
        "./demo.ts",
        {
          reserved,
        },
      );
    } catch (e) {
      if (!(e instanceof PluginError) || e.exitCode !== 235 || !e.message.includes(part) || !e.hint) throw e;
      return;
    }
    throw new Error(`accepted (wanted "${part}")`);
  };
  refusedWith({ name: "Json" }, "parameter Json is one of remote's own parameters");
  refusedWith({ name: "JSON" }, "parameter JSON is one of remote's own parameters");
  refusedWith({ name: "Pretty", flag: "json" }, "parameter Pretty is spelled --json");
  refusedWith({ name: "Target", aliases: ["host"] }, "parameter Target is spelled --host");
  refusedWith({ name: "Escape", short: "e" }, "parameter Escape takes the short flag -e");
  validateManifest(good, "./demo.ts", { reserved: { names: ["Json"], flags: ["json"], shorts: ["e"] } });
  const json = { name: "Json", type: { kind: "switch" }, help: "h" } as const;
  validateManifest({ ...good, defaultSet: undefined, parameters: [json] }, "./demo.ts"); // the core passes reserved
});

Deno.test("validateTransportModule() refuses null and keeps background", () => {
  const open = () => Promise.reject(new Error("x"));
  for (const mod of [null, undefined, 7, "mod", []]) {
    try {
      validateTransportModule(mod, "./demo.ts");
    } catch (e) {
      if (!(e instanceof PluginError) || !e.message.includes("is not a module")) throw e;
      continue;
    }
    throw new Error(`accepted ${JSON.stringify(mod)}`);
  }
  const background = () => Promise.resolve(0);
  if (validateTransportModule({ manifest: good, open, background }, "./demo.ts").background !== background) {
    throw new Error("background was dropped");
  }
  try {
    validateTransportModule({ manifest: good, open, background: "yes" }, "./demo.ts");
    throw new Error("a background that is no function was accepted");
  } catch (e) {
    if (!(e instanceof PluginError)) throw e;
  }
});

Deno.test("mergeCatalog() refuses a parameter another transport types, spells or places differently", () => {
  const entry = (id: string, parameter: Record<string, unknown>): TransportEntry => ({
    manifest: {
      ...good,
      id,
      schemes: [],
      defaultSet: undefined,
      parameters: [{ type: { kind: "int" }, help: "h", ...parameter } as TransportManifest["parameters"][number]],
    },
    origin: { kind: "module", specifier: `./${id}.ts` },
    load: () => Promise.reject(new Error("unused")),
  });
  const first = entry("one", { name: "Port", short: "p", aliases: ["pt"], sets: { Net: { position: 1 } } });
  mergeCatalog([first, entry("two", { name: "Port", short: "p", sets: { Net: { position: 1 } } })]);
  for (
    const [parameter, part] of [
      [
        { name: "Port", type: { kind: "string" } },
        "parameter Port is of type string, but of type int in one (./one.ts)",
      ],
      [{ name: "Size", flag: "port" }, "parameter Size is spelled --port, as Port is in one (./one.ts)"],
      [{ name: "Size", aliases: ["PT"] }, "parameter Size is spelled --pt, as Port is in one (./one.ts)"],
      [{ name: "Size", short: "p" }, "parameter Size takes -p, as Port does in one (./one.ts)"],
      [{ name: "Size", sets: { Net: { position: 1 } } }, "parameter Size takes position 1 in set Net, as Port does"],
    ] as const
  ) {
    try {
      mergeCatalog([first, entry("two", parameter)]);
    } catch (e) {
      if (!(e instanceof PluginError) || e.plugin !== "two" || !e.message.includes(part)) throw e;
      if (!e.hint?.includes("./two.ts")) throw new Error(`hint: ${e.hint}`);
      continue;
    }
    throw new Error(`accepted (wanted "${part}")`);
  }
});

Deno.test("validateManifest() keeps position 0 of the target's set for the target", () => {
  const parameters = [{ name: "Thing", type: { kind: "string" }, sets: { SSHHost: { position: 0 } }, help: "h" }];
  refused({ ...good, defaultSet: undefined, parameters }, "demo", "takes position 0 in set SSHHost");
  validateManifest({ ...good, defaultSet: undefined, parameters: [{ ...parameters[0], sets: { SSHHost: {} } }] }, "x");
});
