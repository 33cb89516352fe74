/**
 * OpenSSH client configuration (ssh_config(5)) resolved for one host, the way `ssh -G` does it.
 *
 * Written here rather than wrapping npm `ssh-config`: that package matches `?` as "zero or one
 * character", has no Include, no `%` token expansion and no line numbers, and its `compute()` runs
 * `Match exec` commands and `nslookup` through a shell.
 *
 * Behaviour follows OpenSSH 9.x readconf.c, checked against `ssh -G` in the tests:
 * - sources in order `-o` options, then the `-F` file, or else `~/.ssh/config` and then the system
 *   file (like ssh, the system file is NOT read when a `-F` file is given);
 * - the first value of a keyword wins; IdentityFile and SendEnv accumulate; UserKnownHostsFile and
 *   GlobalKnownHostsFile take several files on their first line;
 * - Host patterns (`*`, `?`, `!`) match the host as typed, case-sensitively; commas are literal;
 * - Match supports all, canonical, final, host, originalhost, user, localuser and tagged; a block
 *   with `exec` or `localnetwork` is skipped (remote runs no commands while reading config) and a
 *   warning says so; `final`/`canonical` trigger ssh's second pass against the resolved HostName;
 * - keywords remote does not model are not validated (ssh rejects unknown ones; the file is
 *   shared with ssh versions remote does not know about) and are passed on raw in `other`; values
 *   of keywords remote models are validated even in blocks that do not apply, as ssh does;
 * - user config files and all included files must not be writable by others (ssh's permission check);
 * - CanonicalizeHostname is not performed (it needs DNS); Match exec is never run.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { matchWildcard, RemoteError, UsageError } from "../../plugins/mod.ts";
import { type ForwardKeyword, type ForwardSpec, parseConfigForward } from "./forward_spec.ts";
import { parseSshTime } from "./ssh_time.ts";

/** The settings remote's SSH transport uses for one host, after every config source is applied. */
export interface SshHostConfig {
  /** the alias as given */
  host: string;
  /** HostName (with %h expanded, lower-cased) or the host */
  hostName: string;
  /** User, if any source set it (the caller falls back to the local user) */
  user?: string;
  /** Port, if any source set it (the caller falls back to 22) */
  port?: number;
  /** IdentityFile entries, expanded, in order; ssh's default list when none is configured */
  identityFiles: string[];
  /** true when {@linkcode SshHostConfig.identityFiles} is ssh's default list (ssh skips missing ones silently) */
  defaultIdentityFiles?: boolean;
  identitiesOnly: boolean;
  /** ProxyJump; undefined when unset or "none" */
  proxyJump?: string;
  /** ProxyCommand as written (unexpanded); undefined when unset, "none", or ProxyJump came first */
  proxyCommand?: string;
  connectTimeoutMs?: number;
  /** undefined when unset or 0 (no keepalives) */
  serverAliveIntervalMs?: number;
  /** ServerAliveCountMax, default 3 */
  serverAliveCountMax: number;
  /** undefined when unset (ssh's default is "ask") */
  strictHostKeyChecking?: "yes" | "ask" | "accept-new" | "no";
  /** expanded; default ~/.ssh/known_hosts ~/.ssh/known_hosts2; empty for "none" */
  userKnownHostsFiles: string[];
  /** expanded; default /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2; empty for "none" */
  globalKnownHostsFiles: string[];
  /** HostKeyAlias: the name to look up in known_hosts instead of the host name */
  hostKeyAlias?: string;
  hashKnownHosts: boolean;
  /** SendEnv patterns, deduplicated, after `-pattern` removals */
  sendEnv: string[];
  /** ForwardAgent yes, or a socket path / $VAR (ssh forwards that agent; taken as yes) */
  forwardAgent: boolean;
  /** IdentityAgent: an expanded socket path, or "none"; undefined means SSH_AUTH_SOCK */
  identityAgent?: string;
  /** BatchMode: never prompt (passwords, passphrases, host keys) */
  batchMode?: boolean;
  /** PreferredAuthentications, in order (e.g. ["publickey", "password"]) */
  preferredAuthentications?: string[];
  passwordAuthentication?: boolean;
  /** PubkeyAuthentication (unbound/host-bound count as yes) */
  pubkeyAuthentication?: boolean;
  /** KbdInteractiveAuthentication (or its old name ChallengeResponseAuthentication) */
  kbdInteractiveAuthentication?: boolean;
  /** RequestTTY */
  requestTty?: "yes" | "no" | "force" | "auto";
  /** RemoteCommand as written (unexpanded); undefined when unset or "none" */
  remoteCommand?: string;
  /** CertificateFile entries, expanded, in order */
  certificateFiles?: string[];
  /** LocalForward, RemoteForward and DynamicForward entries of every block that applied, in order (they accumulate) */
  forwards?: ForwardSpec[];
  /** ExitOnForwardFailure */
  exitOnForwardFailure?: boolean;
  /** GatewayPorts: local forwards without a bind address listen on every interface */
  gatewayPorts?: boolean;
  /** first value of every other keyword that applied (lower-cased keyword → arguments), for callers that need more */
  other?: Record<string, string[]>;
  /** things remote did not do that ssh would (e.g. a skipped Match exec), one line each */
  warnings?: string[];
}

/** Where to read configuration from, and the local facts `%` tokens expand to. */
export interface ResolveOptions {
  /** `-F` file; "none" reads no file at all; when set, neither ~/.ssh/config nor the system file is read */
  configFile?: string;
  /** `-o Key=Value` options, highest priority; pass `User`/`Port` from user@host:port here too */
  options?: Record<string, string>;
  /** the local user name (%u, and the default %r) */
  localUser: string;
  /** the local home directory (~ and %d) */
  home: string;
  /** default /etc/ssh/ssh_config; tests pass a temp path */
  systemConfig?: string;
  /** environment for ${VAR} expansion; default Deno.env */
  env?: Record<string, string>;
  /** local host name (%l, %L, %C); default Deno.hostname() */
  localHostName?: string;
  /** receives ssh's `-v` lines about the files read and the blocks applied (see debug_log.ts) */
  debug?: (level: 1 | 2 | 3, line: string) => void;
}

/** One directive of a config file, as parsed. */
export interface SshConfigLine {
  /** 1-based line number (0 for -o options) */
  line: number;
  /** keyword, lower-cased */
  keyword: string;
  /** arguments after quote and escape removal */
  args: string[];
  /** the text after the keyword, unsplit (ProxyCommand takes it whole) */
  rest: string;
}

/** A parsed config file: its directives in order. */
export interface ParsedSshConfig {
  file: string;
  lines: SshConfigLine[];
}

const MAX_INCLUDE_DEPTH = 16;
const MAX_IDENTITY_FILES = 100;
const DEFAULT_IDENTITY_FILES = [
  "~/.ssh/id_rsa",
  "~/.ssh/id_ecdsa",
  "~/.ssh/id_ecdsa_sk",
  "~/.ssh/id_ed25519",
  "~/.ssh/id_ed25519_sk",
  "~/.ssh/id_xmss",
  "~/.ssh/id_dsa",
];
const MATCH_SINGLE = new Set(["all", "canonical", "final"]);
const MATCH_WITH_ARG = new Set(["exec", "localnetwork", "host", "originalhost", "user", "localuser", "tagged"]);

function configError(file: string, line: number, problem: string, hint?: string): RemoteError {
  const where = line === 0 ? `${file}` : `${file}:${line}`;
  return new RemoteError("config", `${where}: ${problem}`, {
    hint: hint ?? `fix ${where} (see man ssh_config)`,
  });
}

/**
 * Splits the arguments of a config line like OpenSSH's argv_split(): quotes group, backslash
 * escapes quotes, backslash and (outside quotes) space; an unquoted `#` starting a word ends the line.
 */
function splitArgs(s: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    if (c === "#") break;
    let arg = "";
    let quote = "";
    for (; i < s.length; i++) {
      const ch = s[i];
      const next = s[i + 1];
      if (ch === "\\") {
        if (next === "'" || next === '"' || next === "\\" || (quote === "" && next === " ")) {
          i++;
          arg += next;
        } else {
          arg += ch;
        }
      } else if (quote === "" && (ch === " " || ch === "\t")) {
        break;
      } else if (quote === "" && (ch === '"' || ch === "'")) {
        quote = ch;
      } else if (quote !== "" && ch === quote) {
        quote = "";
      } else {
        arg += ch;
      }
    }
    if (quote !== "") return undefined;
    out.push(arg);
  }
  return out;
}

/** Splits `Keyword value`, `Keyword=value` or `Keyword = value` like OpenSSH's strdelim(). */
function splitKeyword(text: string): { keyword: string; rest: string } | undefined {
  const trimmed = text.replace(/^[ \t]+/, "");
  const m = /^([^ \t="]*)/.exec(trimmed);
  const keyword = m ? m[1] : "";
  if (keyword === "" || keyword.startsWith("#")) return undefined;
  let rest = trimmed.slice(keyword.length);
  rest = rest.replace(/^[ \t]*/, "");
  if (rest.startsWith("=")) rest = rest.slice(1).replace(/^[ \t]*/, "");
  return { keyword: keyword.toLowerCase(), rest };
}

function parseLine(text: string, file: string, line: number): SshConfigLine | undefined {
  const stripped = text.replace(/[ \t\r\n\f\v]+$/, "");
  const split = splitKeyword(stripped);
  if (!split) return undefined;
  const { keyword, rest } = split;
  if (rest === "") throw configError(file, line, `no argument after keyword "${keyword}"`);
  const args = splitArgs(rest);
  if (args === undefined) throw configError(file, line, "invalid quotes", `close the quote on ${file}:${line}`);
  if (args.length === 0) throw configError(file, line, `no argument after keyword "${keyword}"`);
  const parsed = { line, keyword, args, rest };
  validate(parsed, file);
  return parsed;
}

/**
 * Parses ssh_config text into directives, validating the values of the keywords remote uses.
 *
 * @throws {RemoteError} code "config", message `file:line: problem`, for a syntax error
 * @example Parsing
 * ```ts
 * import { parseSshConfig } from "./ssh_config.ts";
 * const parsed = parseSshConfig("Host db1\n  Port 2222\n", "config");
 * console.assert(parsed.lines[1].keyword === "port");
 * ```
 */
export function parseSshConfig(text: string, file: string): ParsedSshConfig {
  const lines: SshConfigLine[] = [];
  const raw = text.split("\n");
  for (let i = 0; i < raw.length; i++) {
    const parsed = parseLine(raw[i], file, i + 1);
    if (parsed) lines.push(parsed);
  }
  return { file, lines };
}

// ---- value validation (ssh validates even inside blocks that do not apply) ----

function single(l: SshConfigLine, file: string): string {
  if (l.args.length > 1) throw configError(file, l.line, `keyword ${l.keyword} extra arguments at end of line`);
  if (l.args[0] === "") throw configError(file, l.line, `missing argument for ${l.keyword}`);
  return l.args[0];
}

function parseFlag(l: SshConfigLine, file: string): boolean {
  const v = single(l, file).toLowerCase();
  if (v === "yes" || v === "true") return true;
  if (v === "no" || v === "false") return false;
  throw configError(file, l.line, `unsupported option "${l.args[0]}" for ${l.keyword}`, "use yes or no");
}

function parsePort(l: SshConfigLine, file: string): number {
  const v = single(l, file);
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= 65535)) {
    throw configError(file, l.line, `badly formatted port number "${v}"`, "use a port from 1 to 65535");
  }
  return n;
}

/** Parses ssh's time format ("30", "1m30s", "2h") into seconds, like convtime(). */
function parseTime(l: SshConfigLine, file: string): number {
  const v = single(l, file);
  const seconds = parseSshTime(v);
  if (seconds === undefined) {
    throw configError(file, l.line, `invalid time value "${v}" for ${l.keyword}`, "use seconds, or e.g. 1m30s");
  }
  return seconds;
}

function parseStrict(l: SshConfigLine, file: string): SshHostConfig["strictHostKeyChecking"] {
  const v = single(l, file).toLowerCase();
  switch (v) {
    case "yes":
    case "true":
      return "yes";
    case "no":
    case "false":
    case "off":
      return "no";
    case "ask":
      return "ask";
    case "accept-new":
      return "accept-new";
  }
  throw configError(
    file,
    l.line,
    `unsupported option "${l.args[0]}" for stricthostkeychecking`,
    "use yes, no, ask or accept-new",
  );
}

function parsePubkey(l: SshConfigLine, file: string): boolean {
  const v = single(l, file).toLowerCase();
  if (v === "unbound" || v === "host-bound") return true;
  return parseFlag(l, file);
}

function parseRequestTty(l: SshConfigLine, file: string): SshHostConfig["requestTty"] {
  const v = single(l, file).toLowerCase();
  if (v === "yes" || v === "true") return "yes";
  if (v === "no" || v === "false") return "no";
  if (v === "force" || v === "auto") return v;
  throw configError(file, l.line, `unsupported option "${l.args[0]}" for requesttty`, "use yes, no, force or auto");
}

interface MatchCriterion {
  attr: string;
  negate: boolean;
  arg?: string;
}

function parseMatch(l: SshConfigLine, file: string): MatchCriterion[] {
  const out: MatchCriterion[] = [];
  const args = l.args;
  for (let i = 0; i < args.length; i++) {
    let attr = args[i].toLowerCase();
    const negate = attr.startsWith("!");
    if (negate) attr = attr.slice(1);
    if (attr === "all") {
      // ssh: "all" stands alone, or right after canonical/final
      const others = args.filter((a, j) => j !== i && !MATCH_SINGLE.has(a.toLowerCase().replace(/^!/, "")));
      if (negate || others.length > 0 || i !== args.length - 1) {
        throw configError(file, l.line, "'all' cannot be combined with other Match attributes");
      }
      out.push({ attr, negate });
    } else if (MATCH_SINGLE.has(attr)) {
      out.push({ attr, negate });
    } else if (MATCH_WITH_ARG.has(attr)) {
      const arg = args[i + 1];
      if (arg === undefined || arg === "") throw configError(file, l.line, `missing Match criteria for ${attr}`);
      out.push({ attr, negate, arg });
      i++;
    } else {
      throw configError(file, l.line, `unsupported Match attribute ${args[i]}`);
    }
  }
  return out;
}

function validate(l: SshConfigLine, file: string): void {
  switch (l.keyword) {
    case "host":
      if (l.args.some((a) => a === "" || a === "!")) throw configError(file, l.line, "keyword host empty argument");
      return;
    case "match":
      parseMatch(l, file);
      return;
    case "port":
      parsePort(l, file);
      return;
    case "identitiesonly":
    case "hashknownhosts":
    case "batchmode":
    case "passwordauthentication":
    case "kbdinteractiveauthentication":
    case "challengeresponseauthentication":
      parseFlag(l, file);
      return;
    case "pubkeyauthentication":
      parsePubkey(l, file);
      return;
    case "requesttty":
      parseRequestTty(l, file);
      return;
    case "connecttimeout":
    case "serveraliveinterval":
      parseTime(l, file);
      return;
    case "serveralivecountmax": {
      const v = single(l, file);
      if (!/^[0-9]+$/.test(v)) throw configError(file, l.line, `bad number "${v}" for serveralivecountmax`);
      return;
    }
    case "stricthostkeychecking":
      parseStrict(l, file);
      return;
    case "hostname":
    case "user":
    case "identityfile":
    case "proxyjump":
    case "identityagent":
    case "hostkeyalias":
    case "forwardagent":
    case "tag":
    case "preferredauthentications":
    case "certificatefile":
      single(l, file);
      return;
    case "sendenv":
      for (const a of l.args) {
        if (a.includes("=")) throw configError(file, l.line, `invalid environment name "${a}" for sendenv`);
      }
      return;
    case "exitonforwardfailure":
    case "gatewayports":
      parseFlag(l, file);
      return;
    case "localforward":
    case "remoteforward":
    case "dynamicforward":
      parseForward(l, file);
      return;
  }
}

const FORWARD_KEYWORDS: Readonly<Record<string, ForwardKeyword>> = {
  localforward: "LocalForward",
  remoteforward: "RemoteForward",
  dynamicforward: "DynamicForward",
};

function parseForward(l: SshConfigLine, file: string): ForwardSpec {
  try {
    return parseConfigForward(FORWARD_KEYWORDS[l.keyword], l.args.join(" "));
  } catch (err) {
    if (err instanceof UsageError) throw configError(file, l.line, err.message, err.hint);
    throw err;
  }
}

// ---- pattern matching (OpenSSH match.c) ----

/**
 * Matches a comma-separated pattern list like match_pattern_list(): true if some pattern matches
 * and no `!`-negated one does. `lower` lower-cases the patterns (host name lists).
 */
export function matchPatternList(text: string, list: string, lower: boolean): boolean {
  let matched = false;
  for (let pattern of list.split(",")) {
    if (lower) pattern = pattern.toLowerCase();
    const negated = pattern.startsWith("!");
    if (negated) pattern = pattern.slice(1);
    if (matchWildcard(pattern, text)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

// ---- resolution ----

interface Settings {
  hostName?: string;
  /** where HostName was set, for errors */
  hostNameAt?: { file: string; line: number };
  user?: string;
  port?: number;
  identityFiles: string[];
  identitiesOnly?: boolean;
  proxy?: { kind: "jump" | "command"; value: string };
  connectTimeout?: number;
  serverAliveInterval?: number;
  serverAliveCountMax?: number;
  strict?: SshHostConfig["strictHostKeyChecking"];
  userKnownHostsFiles?: string[];
  globalKnownHostsFiles?: string[];
  hostKeyAlias?: string;
  hashKnownHosts?: boolean;
  sendEnv: string[];
  forwardAgent?: boolean;
  identityAgent?: string;
  tag?: string;
  batchMode?: boolean;
  preferredAuthentications?: string[];
  passwordAuthentication?: boolean;
  pubkeyAuthentication?: boolean;
  kbdInteractiveAuthentication?: boolean;
  requestTty?: SshHostConfig["requestTty"];
  remoteCommand?: string;
  certificateFiles: string[];
  forwards?: ForwardSpec[];
  exitOnForwardFailure?: boolean;
  gatewayPorts?: boolean;
  other: Map<string, string[]>;
}

interface PassContext {
  /** the name Host lines match: the alias in the first pass, the resolved HostName in the final one */
  host: string;
  originalHost: string;
  finalPass: boolean;
  wantFinalPass: boolean;
  opts: ResolveOptions;
  s: Settings;
  warnings: string[];
}

type Flags = { user: boolean; checkPerm: boolean; neverMatch: boolean };

function apply(l: SshConfigLine, file: string, ctx: PassContext): void {
  const s = ctx.s;
  switch (l.keyword) {
    case "hostname":
      if (s.hostName === undefined) {
        s.hostName = l.args[0];
        s.hostNameAt = { file, line: l.line };
      }
      return;
    case "user":
      s.user ??= l.args[0];
      return;
    case "port":
      s.port ??= parsePort(l, file);
      return;
    case "identityfile":
      if (!s.identityFiles.includes(l.args[0]) && s.identityFiles.length < MAX_IDENTITY_FILES) {
        s.identityFiles.push(l.args[0]);
      }
      return;
    case "identitiesonly":
      s.identitiesOnly ??= parseFlag(l, file);
      return;
    case "proxyjump":
      s.proxy ??= { kind: "jump", value: l.args[0] };
      return;
    case "proxycommand":
      s.proxy ??= { kind: "command", value: l.rest };
      return;
    case "connecttimeout":
      s.connectTimeout ??= parseTime(l, file);
      return;
    case "serveraliveinterval":
      s.serverAliveInterval ??= parseTime(l, file);
      return;
    case "serveralivecountmax":
      s.serverAliveCountMax ??= Number(l.args[0]);
      return;
    case "stricthostkeychecking":
      s.strict ??= parseStrict(l, file);
      return;
    case "userknownhostsfile":
      s.userKnownHostsFiles ??= l.args;
      return;
    case "globalknownhostsfile":
      s.globalKnownHostsFiles ??= l.args;
      return;
    case "hostkeyalias":
      s.hostKeyAlias ??= l.args[0];
      return;
    case "hashknownhosts":
      s.hashKnownHosts ??= parseFlag(l, file);
      return;
    case "sendenv":
      for (const a of l.args) {
        if (a.startsWith("-")) {
          s.sendEnv = s.sendEnv.filter((e) => !matchWildcard(a.slice(1), e));
        } else if (!s.sendEnv.includes(a)) {
          s.sendEnv.push(a);
        }
      }
      return;
    case "forwardagent": {
      const v = l.args[0].toLowerCase();
      s.forwardAgent ??= !(v === "no" || v === "false");
      return;
    }
    case "identityagent":
      s.identityAgent ??= l.args[0];
      return;
    case "tag":
      s.tag ??= l.args[0];
      return;
    case "batchmode":
      s.batchMode ??= parseFlag(l, file);
      return;
    case "preferredauthentications":
      s.preferredAuthentications ??= l.args[0].split(",").filter((m) => m !== "");
      return;
    case "passwordauthentication":
      s.passwordAuthentication ??= parseFlag(l, file);
      return;
    case "pubkeyauthentication":
      s.pubkeyAuthentication ??= parsePubkey(l, file);
      return;
    case "kbdinteractiveauthentication":
    case "challengeresponseauthentication":
      s.kbdInteractiveAuthentication ??= parseFlag(l, file);
      return;
    case "requesttty":
      s.requestTty ??= parseRequestTty(l, file);
      return;
    case "remotecommand":
      s.remoteCommand ??= l.rest;
      return;
    case "certificatefile":
      if (!s.certificateFiles.includes(l.args[0])) s.certificateFiles.push(l.args[0]);
      return;
    case "localforward":
    case "remoteforward":
    case "dynamicforward": {
      // every applying line adds one, as readconf.c's add_local_forward() (identical ones once)
      const spec = parseForward(l, file);
      s.forwards ??= [];
      if (!s.forwards.some((f) => f.text === spec.text)) s.forwards.push(spec);
      return;
    }
    case "exitonforwardfailure":
      s.exitOnForwardFailure ??= parseFlag(l, file);
      return;
    case "gatewayports":
      s.gatewayPorts ??= parseFlag(l, file);
      return;
    default:
      if (!s.other.has(l.keyword)) s.other.set(l.keyword, l.args);
  }
}

function matchHost(l: SshConfigLine, ctx: PassContext): boolean {
  let active = false;
  for (const a of l.args) {
    const negated = a.startsWith("!");
    if (matchWildcard(negated ? a.slice(1) : a, ctx.host)) {
      if (negated) return false;
      active = true;
    }
  }
  return active;
}

function matchBlock(l: SshConfigLine, file: string, ctx: PassContext): boolean {
  let result = true;
  for (const c of parseMatch(l, file)) {
    let r: boolean;
    switch (c.attr) {
      case "all":
        r = true;
        break;
      case "canonical":
      case "final":
        ctx.wantFinalPass = true;
        r = ctx.finalPass;
        break;
      case "exec":
      case "localnetwork":
        ctx.warnings.push(`${file}:${l.line}: Match ${c.attr} is not evaluated by remote; that block is skipped`);
        return false;
      case "host": {
        const h = ctx.s.hostName !== undefined ? resolvedHostName(ctx.s, ctx.originalHost) : ctx.host;
        r = matchPatternList(h, c.arg!, true);
        break;
      }
      case "originalhost":
        r = matchPatternList(ctx.originalHost, c.arg!, true);
        break;
      case "user":
        r = matchPatternList(ctx.s.user ?? ctx.opts.localUser, c.arg!, false);
        break;
      case "localuser":
        r = matchPatternList(ctx.opts.localUser, c.arg!, false);
        break;
      case "tagged":
        r = matchPatternList(ctx.s.tag ?? "", c.arg!, false);
        break;
      default:
        r = false;
    }
    if (c.negate) r = !r;
    if (!r) result = false; // ssh evaluates every criterion (final must still be noticed)
  }
  return result;
}

// The config files are read synchronously: the reuse master reads them again for every request, and each
// asynchronous file operation is a hop through Deno's blocking-I/O threads, which a loaded machine makes a
// wait for the scheduler (BENCHMARKS.md, reused first byte); OpenSSH reads them synchronously too.

function checkPerm(path: string): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch {
    return; // reading reports the problem
  }
  const uid = Deno.uid();
  const badOwner = info.uid !== null && info.uid !== 0 && info.uid !== uid;
  const badMode = info.mode !== null && (info.mode & 0o022) !== 0;
  if (badOwner || badMode) {
    throw new RemoteError("config", `bad owner or permissions on ${path}`, {
      hint: `others must not be able to write it: chmod go-w ${path}`,
    });
  }
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new RemoteError("config", `cannot read ssh config ${path}: ${e instanceof Error ? e.message : String(e)}`, {
      hint: `check the permissions of ${path}`,
      cause: e,
    });
  }
}

function globToRegExp(segment: string): RegExp {
  let re = "";
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i];
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = segment.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        let body = segment.slice(i + 1, end).replace(/\\/g, "\\\\");
        if (body.startsWith("!")) body = "^" + body.slice(1);
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Expands a glob the way glob(3) does for Include: sorted, hidden files only for explicit dots. */
function expandGlob(pattern: string): string[] {
  const parts = pattern.split("/");
  let bases = [parts[0] === "" ? "/" : parts[0]];
  for (let i = 1; i < parts.length; i++) {
    const seg = parts[i];
    if (seg === "") continue;
    const next: string[] = [];
    for (const base of bases) {
      const join = (name: string) => (base.endsWith("/") ? base + name : `${base}/${name}`);
      if (!/[*?[]/.test(seg)) {
        next.push(join(seg));
        continue;
      }
      const re = globToRegExp(seg);
      try {
        for (const entry of Deno.readDirSync(base)) {
          if (entry.name.startsWith(".") && !seg.startsWith(".")) continue;
          if (re.test(entry.name)) next.push(join(entry.name));
        }
      } catch { /* unreadable or missing directory: no match, as glob(3) */ }
    }
    bases = next;
  }
  const existing: string[] = [];
  for (const p of bases) {
    try {
      Deno.lstatSync(p);
      existing.push(p);
    } catch { /* no match */ }
  }
  return existing.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function readConfigFile(
  path: string,
  ctx: PassContext,
  flags: Flags,
  depth: number,
): Promise<boolean> {
  if (depth > MAX_INCLUDE_DEPTH) {
    throw new RemoteError("config", `too many nested Include directives at ${path}`, {
      hint: "an Include probably includes itself",
    });
  }
  if (flags.checkPerm) checkPerm(path);
  const text = readText(path);
  if (text === undefined) return false;
  ctx.opts.debug?.(1, `Reading configuration data ${path}`);
  const parsed = parseSshConfig(text, path);
  await processLines(parsed, ctx, flags, depth);
  return true;
}

async function processLines(parsed: ParsedSshConfig, ctx: PassContext, flags: Flags, depth: number): Promise<void> {
  let active = !flags.neverMatch;
  const file = parsed.file;
  for (const l of parsed.lines) {
    if (l.keyword === "host") {
      active = !flags.neverMatch && matchHost(l, ctx);
      if (active) {
        const pattern = l.args.find((a) => !a.startsWith("!") && matchWildcard(a, ctx.host));
        ctx.opts.debug?.(1, `${file} line ${l.line}: Applying options for ${pattern}`);
      }
    } else if (l.keyword === "match") {
      const m = matchBlock(l, file, ctx);
      active = !flags.neverMatch && m;
      if (!flags.neverMatch) {
        ctx.opts.debug?.(2, `${file} line ${l.line}: checking match for '${l.args.join(" ")}' host ${ctx.host}`);
      }
      if (active) ctx.opts.debug?.(1, `${file} line ${l.line}: Applying options for Match ${l.args.join(" ")}`);
    } else if (l.keyword === "include") {
      await include(l, file, ctx, flags, active, depth);
    } else if (active) {
      apply(l, file, ctx);
    }
  }
}

async function include(
  l: SshConfigLine,
  file: string,
  ctx: PassContext,
  flags: Flags,
  active: boolean,
  depth: number,
): Promise<void> {
  for (const arg of l.args) {
    if (arg.startsWith("~") && !flags.user) throw configError(file, l.line, `bad include path ${arg}`);
    let path: string;
    if (arg.startsWith("/")) path = arg;
    else if (arg === "~" || arg.startsWith("~/")) path = ctx.opts.home + arg.slice(1);
    else if (arg.startsWith("~")) throw configError(file, l.line, `cannot expand ${arg}: only ~/ is supported`);
    else {
      const dir = flags.user ? `${ctx.opts.home}/.ssh` : dirname(ctx.opts.systemConfig ?? "/etc/ssh/ssh_config");
      path = `${dir}/${arg}`;
    }
    const matches = expandGlob(path);
    if (matches.length === 0) ctx.opts.debug?.(2, `${file} line ${l.line}: include ${path} matched no files`);
    for (const match of matches) {
      ctx.opts.debug?.(2, `${file} line ${l.line}: Including file ${match} depth ${depth + 1}`);
      // a Host or Match inside an included file must not change the including file's state
      await readConfigFile(match, ctx, { ...flags, checkPerm: true, neverMatch: !active }, depth + 1);
    }
  }
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

function resolvedHostName(s: Settings, host: string): string {
  if (s.hostName === undefined) return host;
  return expandHostName(s.hostName, host, s.hostNameAt?.file ?? "HostName", s.hostNameAt?.line ?? 0);
}

function expandHostName(value: string, host: string, file: string, line: number): string {
  return value.replace(/%(.)?/g, (_m, k: string | undefined) => {
    if (k === "%") return "%";
    if (k === "h") return host;
    throw configError(file, line, `unknown token %${k ?? ""} in HostName`, "HostName allows only %h and %%");
  });
}

interface Tokens {
  [token: string]: string;
}

function expandPath(value: string, tokens: Tokens, opts: ResolveOptions, what: string): string {
  let v = value;
  if (v === "~" || v.startsWith("~/")) v = opts.home + v.slice(1);
  const env = opts.env ?? Deno.env.toObject();
  v = v.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
    const got = env[name];
    if (got === undefined) {
      throw new RemoteError("config", `${what} ${value}: environment variable \${${name}} has no value`, {
        hint: `set ${name} or change ${what}`,
      });
    }
    return got;
  });
  return v.replace(/%(.)?/g, (_m, k: string | undefined) => {
    if (k !== undefined && k in tokens) return tokens[k];
    throw new RemoteError("config", `${what} ${value}: unknown token %${k ?? ""}`, {
      hint: "see TOKENS in man ssh_config; write %% for a literal %",
    });
  });
}

async function runPass(ctx: PassContext): Promise<void> {
  const opts = ctx.opts;
  if (opts.options) {
    for (const [key, value] of Object.entries(opts.options)) {
      const where = `-o ${key}=${value}`;
      const l = parseLine(`${key}=${value}`, where, 0);
      if (!l) continue;
      if (l.keyword === "host" || l.keyword === "match" || l.keyword === "include") {
        throw new RemoteError("config", `${l.keyword} is not supported as a -o option`, {
          hint: "put it in a config file and pass -F",
        });
      }
      apply(l, where, ctx);
    }
  }
  const user: Flags = { user: true, checkPerm: false, neverMatch: false };
  if (opts.configFile !== undefined) {
    if (opts.configFile.toLowerCase() === "none") return;
    if (!(await readConfigFile(opts.configFile, ctx, user, 0))) {
      throw new RemoteError("config", `cannot open ssh config file ${opts.configFile}: no such file`, {
        hint: "check the path given to -F",
      });
    }
    return;
  }
  await readConfigFile(`${opts.home}/.ssh/config`, ctx, { ...user, checkPerm: true }, 0);
  await readConfigFile(opts.systemConfig ?? "/etc/ssh/ssh_config", ctx, {
    user: false,
    checkPerm: false,
    neverMatch: false,
  }, 0);
}

/**
 * The host names the config files offer for completion: every `Host` pattern without a wildcard or
 * negation (`*`, `?`, `!`), from ~/.ssh/config and the system file (or the `-F` file alone), following
 * `Include` as ssh does; in file order, each once. Unreadable files are skipped: this never fails.
 *
 * @example Listing
 * ```ts
 * import { configuredHosts } from "./ssh_config.ts";
 * const hosts = await configuredHosts({ home: "/home/me", localUser: "me" });
 * ```
 */
export async function configuredHosts(opts: ResolveOptions): Promise<string[]> {
  const found = new Set<string>();
  const read = async (path: string, user: boolean, depth: number): Promise<void> => {
    if (depth > MAX_INCLUDE_DEPTH) return;
    let text: string | undefined;
    try {
      text = readText(path);
    } catch {
      return;
    }
    if (text === undefined) return;
    let parsed: ParsedSshConfig;
    try {
      parsed = parseSshConfig(text, path);
    } catch {
      return;
    }
    for (const l of parsed.lines) {
      if (l.keyword === "host") {
        for (const pattern of l.args) if (!/[*?!]/.test(pattern) && pattern !== "") found.add(pattern);
      } else if (l.keyword === "include") {
        for (const arg of l.args) {
          const path = arg.startsWith("/")
            ? arg
            : arg === "~" || arg.startsWith("~/")
            ? opts.home + arg.slice(1)
            : `${user ? `${opts.home}/.ssh` : dirname(opts.systemConfig ?? "/etc/ssh/ssh_config")}/${arg}`;
          for (const match of expandGlob(path)) await read(match, user, depth + 1);
        }
      }
    }
  };
  if (opts.configFile !== undefined) {
    if (opts.configFile.toLowerCase() !== "none") await read(opts.configFile, true, 0);
  } else {
    await read(`${opts.home}/.ssh/config`, true, 0);
    await read(opts.systemConfig ?? "/etc/ssh/ssh_config", false, 0);
  }
  return [...found];
}

/**
 * Resolves the ssh_config settings for `host` from `-o` options, the `-F` file (or ~/.ssh/config and
 * the system file), as `ssh -G host` would.
 *
 * @throws {RemoteError} code "config" for a syntax error (`file:line` in the message), a missing `-F`
 * file, or a config file others can write
 * @example Resolving a host
 * ```ts
 * import { resolveSshConfig } from "./ssh_config.ts";
 * const cfg = await resolveSshConfig("db1", { configFile: "none", localUser: "me", home: "/home/me" });
 * console.assert(cfg.hostName === "db1");
 * ```
 */
export async function resolveSshConfig(host: string, opts: ResolveOptions): Promise<SshHostConfig> {
  const ctx: PassContext = {
    host,
    originalHost: host,
    finalPass: false,
    wantFinalPass: false,
    opts,
    s: { identityFiles: [], sendEnv: [], certificateFiles: [], other: new Map() },
    warnings: [],
  };
  await runPass(ctx);
  if (ctx.wantFinalPass) {
    // ssh re-reads everything, matching Host lines against the resolved name; set values stay
    const resolved = resolvedHostName(ctx.s, host);
    ctx.host = resolved.toLowerCase();
    ctx.finalPass = true;
    ctx.s.hostName = ctx.host;
    opts.debug?.(1, "re-parsing configuration");
    await runPass(ctx);
  }
  return finish(host, ctx);
}

function finish(host: string, ctx: PassContext): SshHostConfig {
  const s = ctx.s;
  const opts = ctx.opts;
  const hostName = resolvedHostName(s, host).toLowerCase();
  const port = s.port ?? 22;
  const remoteUser = s.user ?? opts.localUser;
  const localHost = opts.localHostName ?? Deno.hostname();
  const jump = s.proxy?.kind === "jump" && s.proxy.value.toLowerCase() !== "none" ? s.proxy.value : undefined;
  const tokens: Tokens = {
    "%": "%",
    C: createHash("sha1").update(`${localHost}${hostName}${port}${remoteUser}`).digest("hex"),
    L: localHost.split(".")[0],
    l: localHost,
    i: String(Deno.uid() ?? ""),
    k: s.hostKeyAlias ?? host,
    n: host,
    p: String(port),
    d: opts.home,
    h: hostName,
    r: remoteUser,
    u: opts.localUser,
    j: jump ?? "",
  };
  const expand = (v: string, what: string) => expandPath(v, tokens, opts, what);
  const defaultIds = s.identityFiles.length === 0;
  const ids = (defaultIds ? DEFAULT_IDENTITY_FILES : s.identityFiles).map((f) => expand(f, "IdentityFile"));
  const files = (list: string[] | undefined, dflt: string[], what: string): string[] => {
    if (list === undefined) return dflt.map((f) => expand(f, what));
    if (list.length === 1 && list[0].toLowerCase() === "none") return [];
    return list.map((f) => expand(f, what));
  };
  let identityAgent: string | undefined;
  if (s.identityAgent !== undefined) {
    const v = s.identityAgent;
    if (v.toLowerCase() === "none") identityAgent = "none";
    else if (v === "SSH_AUTH_SOCK") identityAgent = undefined;
    else if (v.startsWith("$")) {
      const name = v.slice(1);
      identityAgent = (opts.env ?? Deno.env.toObject())[name];
      if (identityAgent === undefined) {
        throw new RemoteError("config", `IdentityAgent ${v}: environment variable ${name} is not set`, {
          hint: `set ${name} or change IdentityAgent`,
        });
      }
    } else identityAgent = expand(v, "IdentityAgent");
  }
  const out: SshHostConfig = {
    host,
    hostName,
    user: s.user,
    port: s.port,
    identityFiles: ids,
    defaultIdentityFiles: defaultIds,
    identitiesOnly: s.identitiesOnly ?? false,
    proxyJump: jump,
    proxyCommand: s.proxy?.kind === "command" && s.proxy.value.toLowerCase() !== "none" ? s.proxy.value : undefined,
    connectTimeoutMs: s.connectTimeout ? s.connectTimeout * 1000 : undefined,
    serverAliveIntervalMs: s.serverAliveInterval ? s.serverAliveInterval * 1000 : undefined,
    serverAliveCountMax: s.serverAliveCountMax ?? 3,
    strictHostKeyChecking: s.strict,
    userKnownHostsFiles: files(
      s.userKnownHostsFiles,
      ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"],
      "UserKnownHostsFile",
    ),
    globalKnownHostsFiles: files(
      s.globalKnownHostsFiles,
      ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"],
      "GlobalKnownHostsFile",
    ),
    hostKeyAlias: s.hostKeyAlias,
    hashKnownHosts: s.hashKnownHosts ?? false,
    sendEnv: s.sendEnv,
    forwardAgent: s.forwardAgent ?? false,
    identityAgent,
  };
  const optional: Partial<SshHostConfig> = {
    batchMode: s.batchMode,
    preferredAuthentications: s.preferredAuthentications,
    passwordAuthentication: s.passwordAuthentication,
    pubkeyAuthentication: s.pubkeyAuthentication,
    kbdInteractiveAuthentication: s.kbdInteractiveAuthentication,
    requestTty: s.requestTty,
    remoteCommand: s.remoteCommand?.toLowerCase() === "none" ? undefined : s.remoteCommand,
    certificateFiles: s.certificateFiles.length > 0
      ? s.certificateFiles.map((f) => expand(f, "CertificateFile"))
      : undefined,
    other: s.other.size > 0 ? Object.fromEntries(s.other) : undefined,
    forwards: s.forwards,
    exitOnForwardFailure: s.exitOnForwardFailure,
    gatewayPorts: s.gatewayPorts,
  };
  for (const [k, v] of Object.entries(optional)) {
    if (v !== undefined) Object.assign(out, { [k]: v });
  }
  if (ctx.warnings.length > 0) out.warnings = [...new Set(ctx.warnings)];
  return out;
}
