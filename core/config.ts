/**
 * The user's config file, `$XDG_CONFIG_HOME/remote/config.toml` (default `~/.config/remote/config.toml`):
 * defaults, transports by host pattern, and plugins to load. Format: docs/config.md.
 *
 * @module
 */

import { dirname, isAbsolute, join, resolve } from "./_path.ts";
import { parse, TomlError } from "smol-toml";
import { matchWildcard, shellQuote } from "../plugins/mod.ts";
import { RemoteError } from "./errors.ts";
import { closestSpelling } from "./_spelling.ts";
import { TomlKeyLines } from "./_toml_key_lines.ts";
import { THROTTLE_LIMIT } from "./throttle_limit.ts";
import { configPath } from "./user_files.ts";

/** What a `[hosts."<pattern>"]` table sets for the hosts matching its pattern. */
export interface HostMapping {
  /** `*` and `?` wildcards, case-insensitive, matched against the whole host name */
  pattern: string;
  transport?: string;
  port?: number;
  user?: string;
  /** `--via` for matching hosts when the command line gives none (core/via.ts) */
  via?: string;
}

/** Where a plugin comes from: a module file, an npm package, or an executable speaking the plugin protocol. */
export type PluginSource = { path: string } | { npm: string } | { exec: string };

/** The user's config; every part may be empty. */
export interface UserConfig {
  defaults: {
    /** the transport for a bare host that no host pattern maps */
    transport?: string;
    /** how many hosts `invoke` works on at once */
    throttleLimit?: number;
  };
  /** in file order: the first match wins */
  hosts: HostMapping[];
  /** `path` and `exec` are absolute: `~/` is expanded, relative paths are resolved from the file's folder */
  plugins: PluginSource[];
  /** the file read, absent when there was none */
  file?: string;
}

export { configPath } from "./user_files.ts";

/**
 * Reads the user's config file; a missing file is an empty config.
 *
 * @throws {RemoteError} code `config` when the file cannot be read, is not TOML, or holds a wrong type
 * or an unknown key; the message starts with `file:line`
 *
 * @example Picking the transport for a host
 * ```ts ignore
 * import { hostMapping, loadConfig } from "./config.ts";
 * const config = await loadConfig();
 * const transport = hostMapping(config, "web1.corp.example")?.transport ?? config.defaults.transport ?? "ssh";
 * ```
 */
export function loadConfig(env: Record<string, string | undefined> = Deno.env.toObject()): Promise<UserConfig> {
  try {
    return Promise.resolve(readConfig(env));
  } catch (err) {
    return Promise.reject(err);
  }
}

function readConfig(env: Record<string, string | undefined>): UserConfig {
  const file = configPath(env);
  if (file === undefined) return emptyConfig();
  let text: string;
  try {
    // synchronous: a small local file, and an async read is a hop through Deno's blocking-I/O threads on every run
    text = new TextDecoder("utf-8", { fatal: true }).decode(Deno.readFileSync(file));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return emptyConfig();
    const why = err instanceof TypeError ? "it is not UTF-8 text" : err instanceof Error ? err.message : String(err);
    throw new RemoteError("config", `cannot read config file ${file}: ${why}`, {
      hint: `check the file: ls -l ${shellQuote(file)}`,
      cause: err,
    });
  }
  return parseConfig(text, file, env.HOME);
}

/**
 * Parses and checks the text of a config file; `file` names it in messages and anchors relative plugin
 * paths, `home` expands `~/`.
 *
 * @throws {RemoteError} code `config`, the message starting with `file:line`
 *
 * @example A host pattern
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const config = parseConfig('[hosts."i-*"]\ntransport = "ssm"\n', "/home/me/.config/remote/config.toml");
 * console.assert(config.hosts[0].transport === "ssm");
 * ```
 */
export function parseConfig(text: string, file: string, home?: string): UserConfig {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const what = err.message.replace(/^Invalid TOML document: /, "").split("\n")[0];
    throw new RemoteError("config", `${file}:${err.line}:${err.column}: invalid TOML: ${what}`, {
      hint: `fix line ${err.line}, or move the file aside: mv ${shellQuote(file)} ${shellQuote(`${file}.bad`)}`,
      cause: err,
    });
  }
  return new Checker(text, file, home).config(doc);
}

/**
 * The mapping of the first `[hosts."<pattern>"]` whose pattern matches `host` (case-insensitive), in
 * file order; undefined when none does.
 *
 * @example
 * ```ts
 * import { hostMapping } from "./config.ts";
 * const config = { defaults: {}, plugins: [], hosts: [{ pattern: "i-*", transport: "ssm" }] };
 * console.assert(hostMapping(config, "i-0abc")?.transport === "ssm");
 * ```
 */
export function hostMapping(config: UserConfig, host: string): HostMapping | undefined {
  return config.hosts.find((h) => matchWildcard(h.pattern, host, { ignoreCase: true }));
}

function emptyConfig(): UserConfig {
  return { defaults: {}, hosts: [], plugins: [] };
}

type KeyPath = readonly (string | number)[];

const TOP_KEYS = ["defaults", "hosts", "plugins"];
const DEFAULTS_KEYS = ["transport", "throttle_limit"];
const HOST_KEYS = ["transport", "port", "user", "via"];
const PLUGIN_KEYS = ["path", "npm", "exec"];

/** Checks the parsed document key by key, so every complaint can name its line. */
class Checker {
  readonly #file: string;
  readonly #home?: string;
  readonly #lines: TomlKeyLines;

  constructor(text: string, file: string, home?: string) {
    this.#file = file;
    this.#home = home;
    this.#lines = new TomlKeyLines(text);
  }

  config(doc: Record<string, unknown>): UserConfig {
    this.#noUnknownKeys(doc, [], TOP_KEYS, "at the top level", '[defaults], [hosts."<pattern>"], [[plugins]]');
    return {
      defaults: doc.defaults === undefined ? {} : this.#defaults(doc.defaults),
      hosts: doc.hosts === undefined ? [] : this.#hosts(doc.hosts),
      plugins: doc.plugins === undefined ? [] : this.#plugins(doc.plugins),
      file: this.#file,
    };
  }

  #defaults(value: unknown): UserConfig["defaults"] {
    const table = this.#table(value, ["defaults"], '[defaults]\ntransport = "ssh"');
    this.#noUnknownKeys(table, ["defaults"], DEFAULTS_KEYS, "in [defaults]", DEFAULTS_KEYS.join(", "));
    const defaults: UserConfig["defaults"] = {};
    if (table.transport !== undefined) {
      defaults.transport = this.#name(table.transport, ["defaults", "transport"], 'transport = "ssh"');
    }
    if (table.throttle_limit !== undefined) {
      const path = ["defaults", "throttle_limit"];
      const { min, max } = THROTTLE_LIMIT;
      defaults.throttleLimit = this.#integer(table.throttle_limit, path, min, max, "throttle_limit = 32");
    }
    return defaults;
  }

  #hosts(value: unknown): HostMapping[] {
    const table = this.#table(value, ["hosts"], '[hosts."*.example.com"]');
    const hosts: { mapping: HostMapping; line: number }[] = [];
    for (const [pattern, entry] of Object.entries(table)) {
      const path = ["hosts", pattern];
      const where = `[hosts.${tomlKey(pattern)}]`;
      if (pattern.trim() === "") {
        this.#fail(path, "a host pattern is empty", 'write one, e.g. [hosts."*.corp.example"]');
      }
      const t = this.#table(entry, path, `${where}\ntransport = "ssh"`);
      for (const [key, v] of Object.entries(t)) {
        // [hosts.web1.corp] nests tables; the user meant one pattern with dots in it
        if (isTable(v)) {
          this.#fail([...path, key], `${where} holds a table ${tomlKey(key)}, not a setting`, {
            hint: `quote a pattern that contains dots: [hosts.${JSON.stringify(`${pattern}.${key}`)}]`,
          });
        }
      }
      this.#noUnknownKeys(t, path, HOST_KEYS, `in ${where}`, HOST_KEYS.join(", "));
      const mapping: HostMapping = { pattern };
      if (t.transport !== undefined) {
        mapping.transport = this.#name(t.transport, [...path, "transport"], 'transport = "ssh"');
      }
      if (t.port !== undefined) mapping.port = this.#integer(t.port, [...path, "port"], 1, 65535, "port = 22");
      if (t.user !== undefined) mapping.user = this.#name(t.user, [...path, "user"], 'user = "admin"');
      if (t.via !== undefined) mapping.via = this.#name(t.via, [...path, "via"], 'via = "ssm"');
      hosts.push({ mapping, line: this.#lines.lineOf(path) ?? Infinity });
    }
    // JavaScript lists integer-like keys ("10") first, whatever the file order; the lines restore it
    return hosts.map((h, i) => ({ ...h, i })).sort((a, b) => a.line - b.line || a.i - b.i).map((h) => h.mapping);
  }

  #plugins(value: unknown): PluginSource[] {
    if (!Array.isArray(value)) {
      this.#fail(["plugins"], `plugins must be a list of [[plugins]] tables, not ${describe(value)}`, {
        example: '[[plugins]]\npath = "/home/me/remote-docker/mod.ts"',
      });
    }
    return value.map((entry, i) => {
      const path = ["plugins", i];
      const t = this.#table(entry, path, '[[plugins]]\npath = "/home/me/remote-docker/mod.ts"');
      this.#noUnknownKeys(t, path, PLUGIN_KEYS, "in [[plugins]]", PLUGIN_KEYS.join(", "));
      const given = PLUGIN_KEYS.filter((k) => t[k] !== undefined);
      if (given.length !== 1) {
        this.#fail(path, `a [[plugins]] entry needs exactly one of path, npm, exec; this one has ${given.length}`, {
          hint:
            'write one of: path = "/abs/mod.ts", npm = "remote-transport-x@1.2.3", exec = "/abs/remote-transport-x"',
        });
      }
      const key = given[0];
      const text = this.#name(t[key], [...path, key], `${key} = "..."`);
      if (key === "npm") return { npm: text };
      const expanded = this.#absolute(text, key === "exec");
      return key === "path" ? { path: expanded } : { exec: expanded };
    });
  }

  /** `~/` expanded; relative paths resolved from the config file's folder, except a bare executable name. */
  #absolute(path: string, bareNameAllowed: boolean): string {
    if (path === "~" || path.startsWith("~/")) return this.#home ? join(this.#home, path.slice(1)) : path;
    if (isAbsolute(path) || (bareNameAllowed && !path.includes("/"))) return path;
    return resolve(dirname(this.#file), path);
  }

  #table(value: unknown, path: KeyPath, example: string): Record<string, unknown> {
    if (isTable(value)) return value;
    this.#fail(path, `${dotted(path)} must be a table, not ${describe(value)}`, { example });
  }

  #name(value: unknown, path: KeyPath, example: string): string {
    if (typeof value === "string" && value.trim() !== "") return value;
    const what = typeof value === "string" ? "an empty string" : describe(value);
    this.#fail(path, `${dotted(path)} must be a non-empty string, not ${what}`, { example });
  }

  #integer(value: unknown, path: KeyPath, min: number, max: number, example: string): number {
    if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) return value;
    const what = typeof value === "number" && Number.isInteger(value) ? String(value) : describe(value);
    this.#fail(path, `${dotted(path)} must be an integer from ${min} to ${max}, not ${what}`, { example });
  }

  #noUnknownKeys(table: Record<string, unknown>, path: KeyPath, allowed: string[], where: string, list: string): void {
    for (const key of Object.keys(table)) {
      if (allowed.includes(key)) continue;
      const near = closestSpelling(key.toLowerCase(), allowed);
      const guess = near ? `did you mean ${near}? ` : "";
      this.#fail([...path, key], `unknown key ${tomlKey(key)} ${where}`, {
        hint: `${guess}the keys allowed ${where} are: ${list}`,
      });
    }
  }

  #fail(path: KeyPath, message: string, how: { hint?: string; example?: string } | string): never {
    const line = this.#lines.lineOf(path);
    const at = line === undefined ? this.#file : `${this.#file}:${line}`;
    const hint = typeof how === "string" ? how : how.hint ?? `write it like: ${how.example?.replaceAll("\n", "  ")}`;
    throw new RemoteError("config", `${at}: ${message}`, { hint });
  }
}

function isTable(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === null || proto === Object.prototype; // smol-toml's tables have no prototype; dates do
}

/** The TOML type of a parsed value, for messages. */
function describe(value: unknown): string {
  if (typeof value === "string") return `a string (${JSON.stringify(value)})`;
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a float";
  if (typeof value === "bigint") return "an integer";
  if (typeof value === "boolean") return "a boolean";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) return "a date";
  if (isTable(value)) return "a table";
  return "a value of another type";
}

/** A key as TOML spells it: bare when it can be, else quoted. */
function tomlKey(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
}

function dotted(path: KeyPath): string {
  return path.map((k) => (typeof k === "number" ? `[${k}]` : tomlKey(k))).join(".").replaceAll(".[", "[");
}
