/**
 * Checks what a plugin hands the core before the core relies on it: its manifest, its module, and
 * that no two transports claim one ID or URL scheme. Everything a plugin declares is untrusted data.
 *
 * @module
 */
import { PluginError } from "./errors.ts";
import type { TransportEntry, TransportOrigin } from "./transport_catalog.ts";
import { CAPABILITIES, type Capability, SDK_VERSION, type Transport, type TransportManifest } from "./types.ts";

const ID = /^[a-z][a-z0-9+.-]*$/;
const PARAMETER_NAME = /^[A-Z][A-Za-z0-9]*$/;
const FLAG = /^[a-z0-9][a-z0-9-]*$/;
const TYPE_KINDS = ["string", "int", "switch", "uri", "guid", "duration", "map", "credential", "enum", "list"];
const SESSION_CAPABILITIES: readonly Capability[] = ["disconnect", "list", "receive", "remove"];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function nameOf(value: unknown, origin: string): string {
  return isRecord(value) && typeof value.id === "string" && ID.test(value.id) ? value.id : origin;
}

/**
 * Checks that `value` is a manifest this core can use and returns it typed.
 *
 * @param value the manifest as the plugin gave it (parsed JSON or a module export)
 * @param origin where it came from (a path or specifier), named in errors when the ID is unusable
 * @throws {PluginError} naming the plugin: wrong `sdk`, a missing or mistyped field, an unknown
 * capability, a bad parameter spec
 *
 * @example Rejecting a manifest from a newer SDK
 * ```ts
 * import { validateManifest } from "./validate.ts";
 * try {
 *   validateManifest({ id: "x", sdk: 99 }, "./x.ts");
 * } catch (e) {
 *   console.assert(String(e).includes("plugin x"));
 * }
 * ```
 */
export function validateManifest(value: unknown, origin: string): TransportManifest {
  const plugin = nameOf(value, origin);
  const fail = (message: string, hint?: string): never => {
    throw new PluginError(plugin, message, { hint: hint ?? `fix the manifest of ${origin}` });
  };
  if (!isRecord(value)) return fail("has no manifest object", `export a manifest from ${origin}`);
  if (typeof value.sdk !== "number") return fail("manifest has no sdk version");
  if (value.sdk !== SDK_VERSION) {
    return fail(
      `is written for plugin sdk ${value.sdk}, this remote speaks sdk ${SDK_VERSION}`,
      value.sdk > SDK_VERSION ? "upgrade remote, or use a build of the plugin for this sdk" : "update the plugin",
    );
  }
  if (typeof value.id !== "string") return fail("manifest has no id");
  if (!ID.test(value.id)) fail(`id "${value.id}" is not a lower-case URL scheme name`);
  for (const field of ["version", "summary"]) {
    if (typeof value[field] !== "string" || value[field] === "") fail(`manifest has no ${field}`);
  }
  if (value.schemes !== undefined) {
    if (!Array.isArray(value.schemes)) fail("schemes is not a list");
    for (const s of value.schemes as unknown[]) {
      if (typeof s !== "string" || !ID.test(s)) fail(`scheme ${JSON.stringify(s)} is not a URL scheme name`);
    }
  }
  if (!Array.isArray(value.capabilities)) return fail("manifest has no capabilities list");
  for (const c of value.capabilities as unknown[]) {
    if (typeof c !== "string" || !(CAPABILITIES as readonly string[]).includes(c)) {
      fail(`unknown capability ${JSON.stringify(c)}`, `capabilities are: ${CAPABILITIES.join(", ")}`);
    }
  }
  const caps = value.capabilities as Capability[];
  if (caps.includes("pty-resize") && !caps.includes("pty")) fail(`capability "pty-resize" needs "pty"`);
  if (!Array.isArray(value.parameters)) return fail("manifest has no parameters list (use [] for none)");
  const names = new Set<string>();
  const flags = new Set<string>();
  const sets = new Set<string>();
  for (const [i, p] of (value.parameters as unknown[]).entries()) {
    const where = isRecord(p) && typeof p.name === "string" ? `parameter ${p.name}` : `parameter #${i + 1}`;
    if (!isRecord(p)) return fail(`${where} is not an object`);
    if (typeof p.name !== "string" || !PARAMETER_NAME.test(p.name)) fail(`${where} has no PascalCase name`);
    if (names.has(p.name as string)) fail(`${where} is declared twice`);
    names.add(p.name as string);
    if (typeof p.help !== "string" || p.help === "") fail(`${where} has no help line`);
    for (const f of [p.flag, ...(Array.isArray(p.aliases) ? p.aliases : [])]) {
      if (f === undefined) continue;
      if (typeof f !== "string" || !FLAG.test(f)) fail(`${where} has a bad flag ${JSON.stringify(f)}`);
      if (flags.has(f as string)) fail(`${where} reuses the flag --${f}`);
      flags.add(f as string);
    }
    if (p.aliases !== undefined && !Array.isArray(p.aliases)) fail(`${where} aliases is not a list`);
    if (p.short !== undefined && (typeof p.short !== "string" || !/^[A-Za-z]$/.test(p.short))) {
      fail(`${where} short flag must be one letter`);
    }
    const t = p.type;
    if (!isRecord(t) || typeof t.kind !== "string" || !TYPE_KINDS.includes(t.kind)) {
      fail(`${where} has an unknown type`, `types are: ${TYPE_KINDS.join(", ")}`);
    }
    const type = t as Record<string, unknown>;
    if (type.kind === "enum" && (!Array.isArray(type.values) || type.values.length === 0)) {
      fail(`${where} is an enum without values`);
    }
    if (
      type.kind === "int" && type.min !== undefined && type.max !== undefined && Number(type.min) > Number(type.max)
    ) {
      fail(`${where} has min above max`);
    }
    if (p.sets !== undefined) {
      if (!isRecord(p.sets)) return fail(`${where} sets is not an object`);
      for (const [set, place] of Object.entries(p.sets)) {
        if (!PARAMETER_NAME.test(set)) fail(`${where} names a bad parameter set ${JSON.stringify(set)}`);
        if (!isRecord(place)) return fail(`${where} in set ${set} is not an object`);
        if (place.position !== undefined && !(Number.isInteger(place.position) && Number(place.position) >= 0)) {
          fail(`${where} in set ${set} has a bad position`);
        }
        if (place.mandatory !== undefined && typeof place.mandatory !== "boolean") {
          fail(`${where} in set ${set} has a non-boolean mandatory`);
        }
        sets.add(set);
      }
    }
  }
  if (value.defaultSet !== undefined && (typeof value.defaultSet !== "string" || !sets.has(value.defaultSet))) {
    fail(`defaultSet ${JSON.stringify(value.defaultSet)} is not a parameter set of its parameters`);
  }
  if (
    value.defaultPort !== undefined &&
    !(Number.isInteger(value.defaultPort) && Number(value.defaultPort) > 0 && Number(value.defaultPort) < 65536)
  ) {
    fail("defaultPort is not a port number");
  }
  return value as unknown as TransportManifest;
}

/**
 * Checks an imported plugin module (or a `Transport` object) and returns it as a `Transport`.
 *
 * @throws {PluginError} naming the plugin when the manifest is bad, `open` is missing, or a
 * capability is advertised without the code behind it
 *
 * @example
 * ```ts
 * import { validateTransportModule } from "./validate.ts";
 * const mod = await import("./examples/docker/mod.ts");
 * console.assert(validateTransportModule(mod, "docker").manifest.id === "docker");
 * ```
 */
export function validateTransportModule(mod: unknown, origin: string): Transport {
  if (!isRecord(mod) && typeof mod !== "object") {
    throw new PluginError(origin, "is not a module", { hint: "a plugin module exports manifest and open" });
  }
  const m = mod as Record<string, unknown>;
  const manifest = validateManifest(m.manifest, origin);
  const fail = (message: string): never => {
    throw new PluginError(manifest.id, message, { hint: `fix ${origin}` });
  };
  if (typeof m.open !== "function") fail("exports no open() function");
  const caps = manifest.capabilities;
  if (SESSION_CAPABILITIES.some((c) => caps.includes(c))) {
    if (!isRecord(m.sessions)) fail("advertises session capabilities but exports no sessions object");
    const sessions = m.sessions as Record<string, unknown>;
    const needed: [Capability, string[]][] = [
      ["list", ["list"]],
      ["disconnect", ["create", "attach", "disconnect"]],
      ["receive", ["receive"]],
      ["remove", ["remove"]],
    ];
    for (const [cap, fns] of needed) {
      if (!caps.includes(cap)) continue;
      for (const fn of fns) {
        if (typeof sessions[fn] !== "function") fail(`advertises ${cap} but has no sessions.${fn}()`);
      }
    }
  }
  if (caps.includes("forward") && typeof m.forward !== "function") fail("advertises forward but exports no forward()");
  return {
    manifest,
    open: m.open as Transport["open"],
    ...(m.sessions !== undefined ? { sessions: m.sessions as Transport["sessions"] } : {}),
    ...(typeof m.forward === "function" ? { forward: m.forward as Transport["forward"] } : {}),
  };
}

/** Says where an entry came from, in words, for errors and `remote plugin list`. */
export function describeOrigin(origin: TransportOrigin): string {
  switch (origin.kind) {
    case "builtin":
      return "built-in";
    case "module":
      return origin.specifier;
    case "executable":
      return origin.path;
  }
}

/**
 * Joins transport entries into one catalog in order (built-ins first by convention), rejecting a
 * second claim on an ID or URL scheme.
 *
 * @throws {PluginError} naming the transport and both origins
 *
 * @example
 * ```ts
 * import { mergeCatalog } from "./validate.ts";
 * import type { TransportEntry } from "./transport_catalog.ts";
 * const entry = (id: string, schemes: string[]): TransportEntry => ({
 *   manifest: { id, sdk: 1, version: "1.0.0", summary: id, schemes, capabilities: ["exec"], parameters: [] },
 *   origin: { kind: "module", specifier: `./${id}.ts` },
 *   load: () => Promise.reject(new Error("not loaded in this example")),
 * });
 * try {
 *   mergeCatalog([entry("web", ["https"]), entry("api", ["https"])]);
 * } catch (e) {
 *   console.assert(String(e).includes('scheme "https" is already claimed by web'));
 * }
 * ```
 */
export function mergeCatalog(entries: readonly TransportEntry[]): TransportEntry[] {
  const owners = new Map<string, TransportEntry>();
  for (const entry of entries) {
    const { manifest } = entry;
    for (const name of new Set([manifest.id, ...(manifest.schemes ?? [])])) {
      const owner = owners.get(name);
      if (owner === undefined) {
        owners.set(name, entry);
        continue;
      }
      const what = name === manifest.id && name === owner.manifest.id ? "id" : "scheme";
      throw new PluginError(
        manifest.id,
        `${what} "${name}" is already claimed by ${owner.manifest.id} (${describeOrigin(owner.origin)}); ` +
          `this one is from ${describeOrigin(entry.origin)}`,
        { hint: "remove one of the two plugins, or rename one" },
      );
    }
  }
  return [...entries];
}
