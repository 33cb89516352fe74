/**
 * Checks what a plugin hands the core before the core relies on it: its manifest, its module, and
 * that no two transports claim one ID or URL scheme. Everything a plugin declares is untrusted data.
 *
 * @module
 */
import { PluginError } from "./errors.ts";
import type { TransportEntry, TransportOrigin } from "./transport_catalog.ts";
import { kebabCase } from "./parameter_flag.ts";
import {
  CAPABILITIES,
  type Capability,
  HOST_SET,
  SDK_VERSION,
  type Transport,
  type TransportManifest,
} from "./types.ts";

const ID = /^[a-z][a-z0-9+.-]*$/;
const PARAMETER_NAME = /^[A-Z][A-Za-z0-9]*$/;
const FLAG = /^[a-z0-9][a-z0-9-]*$/;
const TYPE_KINDS = ["string", "int", "switch", "count", "uri", "guid", "duration", "map", "credential", "enum", "list"];
const SESSION_CAPABILITIES: readonly Capability[] = ["disconnect", "list", "receive", "remove"];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * What remote's own verbs use, so a plugin may not: a transport never receives a parameter the core
 * keeps for itself, and two parameters cannot share a spelling on one command line.
 */
export interface ReservedParameters {
  /** PowerShell names (`Json`, `Name`), compared without regard to case */
  names: readonly string[];
  /** long spellings without dashes (`json`, `host`), compared without regard to case */
  flags: readonly string[];
  /** one-letter short flags (`e`) */
  shorts: readonly string[];
}

/** What {@linkcode validateManifest} checks besides the manifest itself. */
export interface ValidateOptions {
  /** the core's own parameters and spellings, refused in the manifest; the core passes them */
  reserved?: ReservedParameters;
}

function nameOf(value: unknown, origin: string): string {
  return isRecord(value) && typeof value.id === "string" && ID.test(value.id) ? value.id : origin;
}

/**
 * Checks that `value` is a manifest this core can use and returns it typed.
 *
 * Capabilities follow git's remote helpers (gitremote-helpers(7)): one this SDK does not know is
 * ignored, unless a leading `*` marks it mandatory, which refuses the plugin. The manifest returned
 * lists only the known capabilities, without `*`; it is `value` itself when that changes nothing.
 *
 * @param value the manifest as the plugin gave it (parsed JSON or a module export)
 * @param origin where it came from (a path or specifier), named in errors when the ID is unusable
 * @param options the core's reserved parameters, when the core validates
 * @throws {PluginError} naming the plugin: wrong `sdk`, a missing or mistyped field, an unknown
 * mandatory capability, a bad parameter spec, a parameter or spelling that is remote's own
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
export function validateManifest(value: unknown, origin: string, options: ValidateOptions = {}): TransportManifest {
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
  const caps: Capability[] = [];
  for (const c of value.capabilities as unknown[]) {
    if (typeof c !== "string" || !/^\*?[a-z][a-z0-9-]*$/.test(c)) fail(`capability ${JSON.stringify(c)} is not a name`);
    const name = (c as string).replace(/^\*/, "");
    if ((CAPABILITIES as readonly string[]).includes(name)) {
      if (!caps.includes(name as Capability)) caps.push(name as Capability);
    } else if (name !== c) {
      fail(
        `needs the capability "${name}", which this remote does not have`,
        `upgrade remote, or use a build of the plugin that does not need ${name} (known: ${CAPABILITIES.join(", ")})`,
      );
    } // an unknown optional capability is ignored, so a plugin can offer more to a newer remote
  }
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
    const reserved = options.reserved;
    if (reserved?.names.some((n) => n.toLowerCase() === (p.name as string).toLowerCase())) {
      fail(
        `${where} is one of remote's own parameters`,
        `rename it in the manifest of ${origin}: remote keeps ${p.name} for itself and never passes it to a transport`,
      );
    }
    for (const f of [p.flag, ...(Array.isArray(p.aliases) ? p.aliases : [])]) {
      if (f === undefined) continue;
      if (typeof f !== "string" || !FLAG.test(f)) fail(`${where} has a bad flag ${JSON.stringify(f)}`);
      if (flags.has(f as string)) fail(`${where} reuses the flag --${f}`);
      flags.add(f as string);
    }
    const spellings = [p.flag ?? kebabCase(p.name as string), ...(Array.isArray(p.aliases) ? p.aliases : [])];
    for (const f of spellings as string[]) {
      if (reserved?.flags.some((r) => r.toLowerCase() === f.toLowerCase())) {
        fail(`${where} is spelled --${f}, one of remote's own options`, `give it another flag in ${origin}`);
      }
    }
    if (p.aliases !== undefined && !Array.isArray(p.aliases)) fail(`${where} aliases is not a list`);
    if (p.short !== undefined && (typeof p.short !== "string" || !/^[A-Za-z0-9]$/.test(p.short))) {
      fail(`${where} short flag must be one letter or digit`);
    }
    if (p.short !== undefined && reserved?.shorts.includes(p.short as string)) {
      fail(`${where} takes the short flag -${p.short}, one of remote's own`, `give it another short flag in ${origin}`);
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
        if (set === HOST_SET && place.position === 0) {
          fail(`${where} takes position 0 in set ${HOST_SET}, which is the target's`, `give it another position`);
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
  if (value.targets !== undefined) {
    const t = value.targets;
    if (
      !isRecord(t) || typeof t.option !== "string" || !PARAMETER_NAME.test(t.option) || typeof t.help !== "string" ||
      !Array.isArray(t.parameters) || !t.parameters.every((n) => typeof n === "string" && names.has(n))
    ) {
      fail("targets needs a PascalCase option, a help line and parameters it declares");
    }
  }
  if (value.powershell !== undefined) {
    const ps = value.powershell;
    if (
      !isRecord(ps) || (ps.default !== undefined && typeof ps.default !== "string") ||
      (ps.native !== undefined && !(Array.isArray(ps.native) && ps.native.every((n) => typeof n === "string")))
    ) {
      fail("powershell needs a string default and a list of native configuration names");
    }
  }
  if (value.targetHost !== undefined && value.targetHost !== "dns" && value.targetHost !== "name") {
    fail(`targetHost ${JSON.stringify(value.targetHost)} is neither "dns" nor "name"`);
  }
  const declared = value.capabilities as unknown[];
  const same = caps.length === declared.length && caps.every((c, i) => c === declared[i]);
  return (same ? value : { ...value, capabilities: caps }) as unknown as TransportManifest;
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
 * const mod = await import("./examples/cliexec/mod.ts");
 * console.assert(validateTransportModule(mod, "cliexec").manifest.id === "cliexec");
 * ```
 */
export function validateTransportModule(mod: unknown, origin: string, options: ValidateOptions = {}): Transport {
  if (!isRecord(mod)) {
    throw new PluginError(origin, "is not a module", { hint: "a plugin module exports manifest and open" });
  }
  const m = mod;
  const manifest = validateManifest(m.manifest, origin, options);
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
  if (caps.includes("copy") && typeof m.copy !== "function") fail("advertises copy but exports no copy()");
  if (caps.includes("dial") && typeof m.dialer !== "function") fail("advertises dial but exports no dialer()");
  if (m.background !== undefined && typeof m.background !== "function") {
    fail("exports a background that is no function");
  }
  if (m.complete !== undefined && typeof m.complete !== "function") fail("exports a complete that is no function");
  if (manifest.targets !== undefined && typeof m.targets !== "function") {
    fail("declares targets but exports no targets() function");
  }
  return {
    manifest,
    open: m.open as Transport["open"],
    ...(m.sessions !== undefined ? { sessions: m.sessions as Transport["sessions"] } : {}),
    ...(typeof m.forward === "function" ? { forward: m.forward as Transport["forward"] } : {}),
    ...(typeof m.copy === "function" ? { copy: m.copy as Transport["copy"] } : {}),
    ...(typeof m.background === "function" ? { background: m.background as Transport["background"] } : {}),
    ...(typeof m.targets === "function" ? { targets: m.targets as Transport["targets"] } : {}),
    ...(typeof m.complete === "function" ? { complete: m.complete as Transport["complete"] } : {}),
    ...(typeof m.dialer === "function" ? { dialer: m.dialer as Transport["dialer"] } : {}),
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
  checkSharedParameters(entries);
  return [...entries];
}

/**
 * Transports' parameters join the same verbs, so a name shared by two transports (`Port`) must have one
 * type, and a spelling, a short flag or a position in a set must mean one parameter; otherwise the core
 * could not build the verb's command line.
 */
function checkSharedParameters(entries: readonly TransportEntry[]): void {
  type Claim = { parameter: string; entry: TransportEntry; kind?: string };
  const claims = new Map<string, Claim>();
  const claim = (key: string, mine: Claim, clash: (other: Claim) => string | undefined) => {
    const other = claims.get(key);
    if (other === undefined) return void claims.set(key, mine);
    const problem = clash(other);
    if (problem === undefined) return;
    throw new PluginError(
      mine.entry.manifest.id,
      `parameter ${mine.parameter} ${problem} in ${other.entry.manifest.id} (${describeOrigin(other.entry.origin)})`,
      { hint: `rename it in ${describeOrigin(mine.entry.origin)}, or declare it as ${other.entry.manifest.id} does` },
    );
  };
  for (const entry of entries) {
    for (const p of entry.manifest.parameters) {
      const mine = { parameter: p.name, entry, kind: p.type.kind };
      claim(
        `name:${p.name}`,
        mine,
        (o) => o.kind === p.type.kind ? undefined : `is of type ${p.type.kind}, but of type ${o.kind}`,
      );
      for (const f of new Set([p.flag ?? kebabCase(p.name), ...(p.aliases ?? [])].map((f) => f.toLowerCase()))) {
        claim(`flag:${f}`, mine, (o) => o.parameter === p.name ? undefined : `is spelled --${f}, as ${o.parameter} is`);
      }
      if (p.short !== undefined) {
        claim(
          `short:${p.short}`,
          mine,
          (o) => o.parameter === p.name ? undefined : `takes -${p.short}, as ${o.parameter} does`,
        );
      }
      for (const [set, place] of Object.entries(p.sets ?? {})) {
        if (place.position === undefined) continue;
        claim(
          `position:${set}:${place.position}`,
          mine,
          (o) =>
            o.parameter === p.name
              ? undefined
              : `takes position ${place.position} in set ${set}, as ${o.parameter} does`,
        );
      }
    }
  }
}
