/**
 * OpenSSH-compatible known_hosts files (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): lookup with the
 * semantics of OpenSSH's hostfile.c, and appending new keys in plain or hashed form.
 *
 * Lookup rules, as ssh applies them (sshconnect.c check_host_key, get_hostfile_hostname_ipaddr):
 * - the name looked up is the HostKeyAlias when one is set, as it is, whatever the port; else `host` for
 *   port 22 and `[host]:port` otherwise; lower-cased;
 * - without a HostKeyAlias, a key not found under `[host]:port` is also looked for under the bare `host`:
 *   the same key there makes it known, anything else found there counts for nothing (the host is new);
 * - a host field is a comma list of patterns (`*`, `?`, `!negation`) or one `|1|salt|hmac` hash;
 * - a key equal to a matching `@revoked` line is refused even if it is also known;
 * - a matching line with the same key → known; with a different key of the same type → changed;
 *   lines with keys of other types do not count against the key (ssh asks, as for a new host);
 * - `@cert-authority` lines only vouch for certificates; remote cannot verify certificate
 *   signatures, so a certificate whose signing key is such a CA is reported as "cert-authority";
 * - lines that do not parse are skipped, as ssh skips them.
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { decodeBase64Strict, keyTypeOf, readSshString } from "./fingerprint.ts";
import { RemoteError } from "../../plugins/mod.ts";
import { matchPatternList } from "./ssh_config.ts";

/** The outcome of looking a host key up in known_hosts files. */
export type HostKeyCheck =
  | { kind: "known"; file: string; line: number }
  | {
    kind: "unknown";
    /** types of other keys recorded for this host (ssh says "keys of different type are already known") */
    otherTypes?: string[];
    /** a @cert-authority line for this host: the server would be trusted if it presented a certificate */
    certAuthority?: { file: string; line: number };
  }
  /** a different key of the same type is recorded: possible man-in-the-middle */
  | { kind: "changed"; file: string; line: number; knownType: string }
  | { kind: "revoked"; file: string; line: number }
  /** the host presented a certificate signed by a @cert-authority key; its signature is NOT verified here */
  | { kind: "cert-authority"; file: string; line: number };

/** Options of {@linkcode checkHostKey}. */
export interface CheckHostKeyOptions {
  /** the host name connected to (HostName) */
  host: string;
  port: number;
  /** HostKeyAlias: when set, the only name looked up, without the port */
  alias?: string;
  /** the key type the server used, e.g. "ssh-ed25519" (a "-cert-v01@openssh.com" type for certificates) */
  keyType: string;
  /** SSH wire-format public key blob */
  key: Uint8Array;
  /** known_hosts files in order (user files, then global) */
  files: string[];
}

/** Options of {@linkcode appendKnownHost}. */
export interface AppendKnownHostOptions {
  file: string;
  host: string;
  port: number;
  /** HostKeyAlias: recorded instead of the host and port */
  alias?: string;
  keyType: string;
  key: Uint8Array;
  /** write the host as `|1|salt|hmac` (HashKnownHosts) */
  hash: boolean;
}

/**
 * The name known_hosts records for a host: `host` on port 22, `[host]:port` otherwise (lower-cased, as ssh writes).
 *
 * @example Naming
 * ```ts
 * import { knownHostsName } from "./known_hosts.ts";
 * console.assert(knownHostsName("DB1", 2222) === "[db1]:2222");
 * ```
 */
export function knownHostsName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/**
 * The name ssh looks a host key up under and records it as: the HostKeyAlias when set, lower-cased and
 * without the port (ssh_config(5) HostKeyAlias; sshconnect.c get_hostfile_hostname_ipaddr), else
 * {@linkcode knownHostsName}.
 *
 * @example With and without an alias
 * ```ts
 * import { hostKeyName } from "./known_hosts.ts";
 * console.assert(hostKeyName("10.0.0.5", 2222, "DB1-Tunnel") === "db1-tunnel");
 * console.assert(hostKeyName("10.0.0.5", 2222) === "[10.0.0.5]:2222");
 * ```
 */
export function hostKeyName(host: string, port: number, alias?: string): string {
  return alias !== undefined ? alias.toLowerCase() : knownHostsName(host, port);
}

type Marker = "none" | "revoked" | "ca";

interface Entry {
  file: string;
  line: number;
  marker: Marker;
  type: string;
  key: Uint8Array;
}

function hashedMatch(field: string, name: string): boolean | undefined {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const parts = field.split("|");
  if (parts.length !== 4 || parts[0] !== "" || parts[1] !== "1") return undefined;
  const salt = decodeBase64Strict(parts[2]);
  const want = decodeBase64Strict(parts[3]);
  if (!salt || !want || salt.length !== 20 || want.length !== 20) return undefined;
  const got = createHmac("sha1", salt).update(name).digest();
  return timingSafeEqual(got, want);
}

/** Host field matching like hostfile.c: a hashed entry, or a pattern list where a negation vetoes. */
function hostFieldMatches(field: string, name: string): boolean | undefined {
  if (field.startsWith("|")) return hashedMatch(field, name);
  return matchPatternList(name, field, true);
}

function parseEntry(text: string, file: string, line: number, name: string): Entry | undefined {
  const fields = text.trim().split(/[ \t]+/);
  if (fields.length === 0 || fields[0] === "" || fields[0].startsWith("#")) return undefined;
  let marker: Marker = "none";
  if (fields[0].startsWith("@")) {
    const m = fields.shift()!.toLowerCase();
    if (m === "@revoked") marker = "revoked";
    else if (m === "@cert-authority") marker = "ca";
    else return undefined; // unknown marker: ssh skips the line
  }
  if (fields.length < 3) return undefined;
  const [hosts, type, b64] = fields;
  if (hostFieldMatches(hosts, name) !== true) return undefined;
  const key = decodeBase64Strict(b64);
  if (!key) return undefined;
  let inner: string;
  try {
    inner = keyTypeOf(key);
  } catch {
    return undefined;
  }
  if (inner !== type) return undefined;
  return { file, line, marker, type, key };
}

async function loadEntries(files: string[], name: string): Promise<Entry[]> {
  const out: Entry[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue; // a missing or unreadable file has no keys, as in ssh
    }
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const e = parseEntry(lines[i], file, i + 1, name);
      if (e) out.push(e);
    }
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const CERT_SUFFIX = "-cert-v01@openssh.com";
/** how many wire strings each key type's public part has inside a certificate (PROTOCOL.certkeys) */
const CERT_KEY_FIELDS: Record<string, number> = {
  "ssh-rsa": 2,
  "ssh-dss": 4,
  "ecdsa-sha2-nistp256": 2,
  "ecdsa-sha2-nistp384": 2,
  "ecdsa-sha2-nistp521": 2,
  "ssh-ed25519": 1,
  "sk-ecdsa-sha2-nistp256": 3,
  "sk-ssh-ed25519": 2,
};

/** The CA key that signed an OpenSSH certificate blob, or undefined if the blob does not parse. */
export function certificateSigningKey(cert: Uint8Array): Uint8Array | undefined {
  let s = readSshString(cert, 0);
  if (!s) return undefined;
  const type = new TextDecoder().decode(s.value);
  if (!type.endsWith(CERT_SUFFIX)) return undefined;
  // "sk-ssh-ed25519-cert-v01@openssh.com" names the plain type "sk-ssh-ed25519@openssh.com"
  const fields = CERT_KEY_FIELDS[type.slice(0, -CERT_SUFFIX.length)];
  if (fields === undefined) return undefined;
  let at = s.next;
  s = readSshString(cert, at); // nonce
  if (!s) return undefined;
  at = s.next;
  for (let i = 0; i < fields; i++) {
    s = readSshString(cert, at);
    if (!s) return undefined;
    at = s.next;
  }
  at += 8 + 4; // serial, type
  for (let i = 0; i < 2; i++) { // key id, principals
    s = readSshString(cert, at);
    if (!s) return undefined;
    at = s.next;
  }
  at += 16; // valid after, valid before
  for (let i = 0; i < 3; i++) { // critical options, extensions, reserved
    s = readSshString(cert, at);
    if (!s) return undefined;
    at = s.next;
  }
  return readSshString(cert, at)?.value;
}

/**
 * Looks a server's host key up in known_hosts files, the way ssh does before trusting a server.
 *
 * Missing files count as empty; malformed lines are skipped.
 *
 * @example Checking a key
 * ```ts
 * import { checkHostKey } from "./known_hosts.ts";
 * const key = new Uint8Array([0, 0, 0, 11, ...new TextEncoder().encode("ssh-ed25519"), 0, 0, 0, 0]);
 * const r = await checkHostKey({ host: "db1", port: 22, keyType: "ssh-ed25519", key, files: [] });
 * console.assert(r.kind === "unknown");
 * ```
 */
export async function checkHostKey(opts: CheckHostKeyOptions): Promise<HostKeyCheck> {
  const found = await checkUnder(hostKeyName(opts.host, opts.port, opts.alias), opts);
  // ssh's second look, "checking without port identifier": only the same key counts (a read-only, quiet check)
  if (found.kind === "unknown" && opts.alias === undefined && opts.port !== 22) {
    const bare = await checkUnder(knownHostsName(opts.host, 22), opts);
    if (bare.kind === "known") return bare;
  }
  return found;
}

async function checkUnder(name: string, opts: CheckHostKeyOptions): Promise<HostKeyCheck> {
  const entries = await loadEntries(opts.files, name);
  const isCert = opts.keyType.endsWith(CERT_SUFFIX);
  const caKey = isCert ? certificateSigningKey(opts.key) : undefined;

  // @revoked wins over everything (hostfile.c check_key_not_revoked); a certificate is also
  // refused when the CA that signed it is revoked
  for (const e of entries) {
    if (e.marker !== "revoked") continue;
    if (sameBytes(e.key, opts.key) || (caKey && sameBytes(e.key, caKey))) {
      return { kind: "revoked", file: e.file, line: e.line };
    }
  }
  if (isCert) {
    for (const e of entries) {
      if (e.marker === "ca" && caKey && sameBytes(e.key, caKey)) {
        return { kind: "cert-authority", file: e.file, line: e.line };
      }
    }
  }
  let changed: HostKeyCheck | undefined;
  const otherTypes = new Set<string>();
  for (const e of entries) {
    if (e.marker !== "none") continue;
    if (sameBytes(e.key, opts.key)) return { kind: "known", file: e.file, line: e.line };
    if (e.type === opts.keyType) changed ??= { kind: "changed", file: e.file, line: e.line, knownType: e.type };
    else otherTypes.add(e.type);
  }
  if (changed) return changed;
  const result: HostKeyCheck = { kind: "unknown" };
  if (otherTypes.size > 0) result.otherTypes = [...otherTypes];
  const ca = entries.find((e) => e.marker === "ca");
  if (ca) result.certAuthority = { file: ca.file, line: ca.line };
  return result;
}

/** A known_hosts line holding a given key, as {@linkcode otherNamesOfKey} finds it. */
export interface KnownName {
  file: string;
  line: number;
  /** the line's host field as written; `[hashed name]` for a `|1|` hash, as ssh shows it */
  hosts: string;
}

/**
 * Every plain line of `files` (markers skipped) that holds `key`, whatever host it names: what ssh lists under
 * "This host key is known by the following other names/addresses" (sshconnect.c hostkeys_find_by_key). Missing
 * files count as empty.
 *
 * @example No files, no names
 * ```ts
 * import { otherNamesOfKey } from "./known_hosts.ts";
 * console.assert((await otherNamesOfKey(new Uint8Array([0, 0, 0, 1, 0x78]), [])).length === 0);
 * ```
 */
export async function otherNamesOfKey(key: Uint8Array, files: string[]): Promise<KnownName[]> {
  const out: KnownName[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue;
    }
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const fields = lines[i].trim().split(/[ \t]+/);
      if (fields.length < 3 || fields[0].startsWith("#") || fields[0].startsWith("@")) continue;
      const blob = decodeBase64Strict(fields[2]);
      if (!blob || !sameBytes(blob, key)) continue;
      out.push({ file, line: i + 1, hosts: fields[0].startsWith("|1|") ? "[hashed name]" : fields[0] });
    }
  }
  return out;
}

/**
 * The known_hosts line for a host key (without newline), plain or hashed like `ssh-keygen -H`.
 *
 * @example A plain line
 * ```ts
 * import { knownHostsLine } from "./known_hosts.ts";
 * const key = new Uint8Array([0, 0, 0, 1, 0x78]);
 * console.assert(knownHostsLine({ host: "db1", port: 22, keyType: "x", key, hash: false }) === "db1 x AAAAAXg=");
 * ```
 */
export function knownHostsLine(opts: Omit<AppendKnownHostOptions, "file">): string {
  const name = hostKeyName(opts.host, opts.port, opts.alias);
  let hostField = name;
  if (opts.hash) {
    const salt = randomBytes(20);
    const mac = createHmac("sha1", salt).update(name).digest();
    hostField = `|1|${salt.toString("base64")}|${mac.toString("base64")}`;
  }
  return `${hostField} ${opts.keyType} ${Buffer.from(opts.key).toString("base64")}`;
}

/**
 * Appends a host key to a known_hosts file, creating the file (0600) and its directory (0700) when missing.
 *
 * @example Remembering a host
 * ```ts ignore
 * import { appendKnownHost } from "./known_hosts.ts";
 * await appendKnownHost({ file: "/home/me/.ssh/known_hosts", host: "db1", port: 22, keyType, key, hash: false });
 * ```
 */
export async function appendKnownHost(opts: AppendKnownHostOptions): Promise<void> {
  try {
    const dir = opts.file.slice(0, Math.max(opts.file.lastIndexOf("/"), 0));
    if (dir !== "" && !(await exists(dir))) await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    let prefix = "";
    if (await exists(opts.file)) {
      const existing = await Deno.readFile(opts.file);
      // a file without a final newline would glue our line onto its last one
      if (existing.length > 0 && existing[existing.length - 1] !== 0x0a) prefix = "\n";
    }
    // one write in append mode, so concurrent appends do not interleave within a line
    const line = `${prefix}${knownHostsLine(opts)}\n`;
    await Deno.writeTextFile(opts.file, line, { append: true, create: true, mode: 0o600 });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new RemoteError("hostKey", `cannot record the host key in ${opts.file}: ${why}`, {
      hint: `check the permissions of ${opts.file} and its directory`,
      cause: e,
    });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
