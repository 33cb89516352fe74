/**
 * Target strings and the choice of transport.
 *
 * A target is `[scheme://][user@]host[:port][/path]`; IPv6 literals go in brackets (`[::1]:22`). A password written
 * in it (`user:password@`) is dropped, never used and never shown (see {@linkcode withoutPassword}). The
 * transport is chosen in this order (issue 3, item 2): an explicit scheme; a parameter set that only
 * one transport declares; the user's per-host mapping; the default transport.
 *
 * @module
 */
import { UsageError } from "./errors.ts";
import type { TransportManifest } from "../plugins/mod.ts";

/** A target string taken apart. */
export interface ParsedTarget {
  scheme?: string;
  user?: string;
  host: string;
  port?: number;
  path?: string;
  display: string;
}

const HOST_LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?$/;
// A transport's own object names (manifest `targetHost: "name"`): Docker's rule for container names, whose IDs
// are 64 hex digits, so no 63-character DNS label limit.
const OBJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

/**
 * Parses `[scheme://][user@]host[:port][/path]`. The host is a DNS name or address, or with `hostRule` `"name"`
 * the name of an object a transport reaches (see `TransportManifest.targetHost`).
 *
 * @throws {UsageError} when the host or port is malformed
 * @example Parsing
 * ```ts
 * import { parseTarget } from "./target.ts";
 * const t = parseTarget("admin@db1:2222");
 * console.assert(t.user === "admin" && t.host === "db1" && t.port === 2222);
 * ```
 */
export function parseTarget(text: string, hostRule: "dns" | "name" = "dns"): ParsedTarget {
  const display = withoutTypedPassword(text);
  if (text.trim() === "" || /\s/.test(text)) {
    throw new UsageError(`malformed target '${text}'`, { hint: "write it as [user@]host[:port], e.g. admin@db1:22" });
  }
  let rest = text;
  let scheme: string | undefined;
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(rest);
  if (schemeMatch) {
    scheme = schemeMatch[1].toLowerCase();
    rest = rest.slice(schemeMatch[0].length);
  }
  let path: string | undefined;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    path = rest.slice(slash);
    rest = rest.slice(0, slash);
  }
  let user: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    // user:password@ (RFC 3986 userinfo): the password is left out; no user name holds a ':'
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(":");
    user = decodeURIComponent(colon >= 0 ? userinfo.slice(0, colon) : userinfo);
    rest = rest.slice(at + 1);
    if (user === "") throw malformed(display, "the user before @ is empty");
  }
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) throw malformed(display, "an IPv6 address needs a closing ]");
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) throw malformed(display, `unexpected '${after}' after the address`);
      portText = after.slice(1);
    }
    if (!/^[0-9A-Fa-f:.%a-z]+$/.test(host) || !host.includes(":")) {
      throw malformed(display, `'${host}' is not an IPv6 address`);
    }
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon >= 0) {
      if (rest.indexOf(":") !== colon) {
        throw malformed(display, "an IPv6 address must be in brackets, e.g. [::1]:22");
      }
      host = rest.slice(0, colon);
      portText = rest.slice(colon + 1);
    } else {
      host = rest;
    }
    if (host === "") throw malformed(display, "the host name is empty");
    const valid = hostRule === "name"
      ? OBJECT_NAME.test(host)
      : host.split(".").every((label) => HOST_LABEL.test(label));
    if (!valid && hostRule === "name") {
      throw new UsageError(`malformed target '${display}': '${host}' is not a valid name`, {
        hint: "a name is letters, digits, '_', '.' and '-', up to 255 characters, e.g. docker://web1",
      });
    }
    if (!valid) throw malformed(display, `'${host}' is not a valid host name`);
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw malformed(display, `port '${portText}' is not a number from 1 to 65535`);
    }
    port = Number(portText);
  }
  return { scheme, user, host, port, path, display };
}

/**
 * An argument as typed (a target or a URL) without the password of its `user:password@` part, for messages
 * that quote it (see {@linkcode withoutPassword}).
 *
 * @example Quoting an argument
 * ```ts
 * import { withoutTypedPassword } from "./target.ts";
 * console.assert(withoutTypedPassword("http://alice:pw@h:1/x") === "http://alice@h:1/x");
 * console.assert(withoutTypedPassword("alice:pw@db1:2222") === "alice@db1:2222");
 * ```
 */
export function withoutTypedPassword(text: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(text)?.[0] ?? "";
  const end = text.slice(scheme.length).search(/[/?#]/);
  const authority = text.slice(scheme.length, end >= 0 ? scheme.length + end : text.length);
  const at = authority.lastIndexOf("@");
  const colon = authority.indexOf(":");
  if (at < 0 || colon < 0 || colon > at) return text;
  return scheme + authority.slice(0, colon) + text.slice(scheme.length + at);
}

/**
 * `url` without the password of its user part. A password written in a URL (`http://alice:pw@win01/wsman`) is
 * neither shown nor passed to a transport: the core drops it, as git drops credentials from the URLs it prints;
 * passwords are asked for, or come from where each transport documents.
 *
 * @example Dropping the password
 * ```ts
 * import { withoutPassword } from "./target.ts";
 * const url = withoutPassword(new URL("http://alice:s3cret@win01:5985/wsman"));
 * console.assert(url.href === "http://alice@win01:5985/wsman");
 * ```
 */
export function withoutPassword(url: URL): URL {
  if (url.password === "") return url;
  const copy = new URL(url.href);
  copy.password = "";
  return copy;
}

function malformed(target: string, why: string): UsageError {
  return new UsageError(`malformed target '${target}': ${why}`, {
    hint: "write it as [user@]host[:port], e.g. admin@db1:22",
  });
}

/** The scheme of a target string (`docker` of `docker://web1`), lower case, if it has one. */
export function schemeOf(text: string): string | undefined {
  return /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text)?.[1]?.toLowerCase();
}

/**
 * The prefix of a PowerShell scheme: `pwsh+ssh://h` is `ssh://h` with `--configuration-name powershell` (the
 * transport's default configuration, else `powershell`), for any transport with the `psrp` capability.
 */
export const POWERSHELL_SCHEME_PREFIX = "pwsh+";

/** Whether `scheme` is a PowerShell scheme (`pwsh+ssh`), see {@linkcode POWERSHELL_SCHEME_PREFIX}. */
export function isPowerShellScheme(scheme: string | undefined): boolean {
  return scheme?.toLowerCase().startsWith(POWERSHELL_SCHEME_PREFIX) === true;
}

/**
 * The transport claiming `scheme` (its ID or one of its `schemes`), if any; for `pwsh+<scheme>` the transport
 * claiming `<scheme>` when it speaks PowerShell remoting (the `psrp` capability).
 */
export function transportForScheme(
  scheme: string,
  manifests: readonly TransportManifest[],
): TransportManifest | undefined {
  const wanted = scheme.toLowerCase();
  if (isPowerShellScheme(wanted)) {
    const inner = wanted.slice(POWERSHELL_SCHEME_PREFIX.length);
    if (isPowerShellScheme(inner)) return undefined;
    const m = transportForScheme(inner, manifests);
    return m?.capabilities.includes("psrp") ? m : undefined;
  }
  return manifests.find((m) => m.id === wanted) ?? manifests.find((m) => m.schemes?.includes(wanted));
}

/** The transport that declares parameter set `set`, if exactly one does. */
export function transportForSet(set: string, manifests: readonly TransportManifest[]): TransportManifest | undefined {
  const owners = manifests.filter((m) => m.parameters.some((p) => p.sets && set in p.sets));
  return owners.length === 1 ? owners[0] : undefined;
}
