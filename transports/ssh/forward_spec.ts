/**
 * ssh's port forwarding specifications, parsed as OpenSSH's `parse_forward()` (readconf.c) reads them:
 * `-L`, `-R` and `-D` arguments and the `LocalForward`, `RemoteForward` and `DynamicForward` values of
 * ssh_config(5). No I/O; transports/ssh/forward.ts runs them.
 *
 * @example Parse the three kinds
 * ```ts
 * import { parseForwardSpec } from "./forward_spec.ts";
 * parseForwardSpec("L", "8080:localhost:80"); // listen on loopback 8080, connect to localhost:80 from the server
 * parseForwardSpec("R", "0:127.0.0.1:5432"); // the server picks a port and sends its connections here
 * parseForwardSpec("D", "*:1080"); // a SOCKS proxy on every interface
 * ```
 *
 * @module
 */
import { UsageError } from "../../plugins/mod.ts";

/** A TCP address or a Unix-domain socket path, at either end of a forwarding. */
export type ForwardEndpoint =
  | {
    kind: "tcp";
    /**
     * where to listen or connect; for a listener, `undefined` means the default (loopback unless GatewayPorts),
     * `""` every interface (also written `*`)
     */
    host: string | undefined;
    port: number;
  }
  | { kind: "unix"; path: string };

/** One forwarding: `-L` (local), `-R` (remote) or `-D` (dynamic, a SOCKS proxy on the listening side). */
export interface ForwardSpec {
  kind: "local" | "remote" | "dynamic";
  /** where connections arrive: on this machine for local and dynamic, on the server for remote */
  listen: ForwardEndpoint;
  /** where they go; absent for dynamic forwards and for `-R [bind:]port` (a SOCKS proxy served from here) */
  connect?: ForwardEndpoint;
  /** the text as given, for messages */
  text: string;
}

/** The option letters of ssh(1) and their kinds. */
export type ForwardFlag = "L" | "R" | "D";

const KIND: Readonly<Record<ForwardFlag, ForwardSpec["kind"]>> = { L: "local", R: "remote", D: "dynamic" };

const SYNTAX: Readonly<Record<ForwardFlag, string>> = {
  L: "-L [bind_address:]port:host:hostport (or a socket path on either side)",
  R: "-R [bind_address:]port:host:hostport, or -R [bind_address:]port for a SOCKS proxy from the server",
  D: "-D [bind_address:]port",
};

interface Field {
  arg: string;
  isPath: boolean;
}

/**
 * Splits at `:` as parse_fwd_field() does: `[...]` is taken literally (IPv6 addresses), `\` escapes the next
 * character, and a field holding `/` is a socket path. Undefined when the text is malformed.
 */
function fields(text: string): Field[] | undefined {
  const out: Field[] = [];
  let i = 0;
  while (i < text.length && out.length < 4) {
    if (text[i] === "[") {
      const end = text.indexOf("]", i + 1);
      if (end < 0 || (end + 1 < text.length && text[end + 1] !== ":")) return undefined;
      const arg = text.slice(i + 1, end);
      out.push({ arg, isPath: arg.includes("/") });
      i = end + 2;
      continue;
    }
    let arg = "";
    let isPath = false;
    for (; i < text.length; i++) {
      const c = text[i];
      if (c === "\\") {
        if (++i >= text.length) return undefined;
        arg += text[i];
        continue;
      }
      if (c === ":") break;
      if (c === "/") isPath = true;
      arg += c;
    }
    out.push({ arg, isPath });
    i++; // past the ':'
  }
  // more than four fields is trailing garbage, as ssh says
  return i < text.length ? undefined : out;
}

/** a2port(): a decimal port 0-65535, else -1. */
function toPort(text: string): number {
  if (!/^\d{1,5}$/.test(text)) return -1;
  const n = Number(text);
  return n <= 65535 ? n : -1;
}

function malformed(flag: ForwardFlag, text: string, why?: string): UsageError {
  return new UsageError(`bad ${KIND[flag]} forwarding specification '${text}'${why ? `: ${why}` : ""}`, {
    hint: `write ${SYNTAX[flag]}`,
  });
}

/**
 * Parses one `-L`, `-R` or `-D` argument as ssh does.
 *
 * @throws {UsageError} for a malformed specification (exit 230), naming the accepted forms
 * @example
 * ```ts
 * import { parseForwardSpec } from "./forward_spec.ts";
 * const spec = parseForwardSpec("L", "[::1]:8080:db:5432");
 * console.assert(spec.listen.kind === "tcp" && spec.listen.host === "::1");
 * ```
 */
export function parseForwardSpec(flag: ForwardFlag, text: string): ForwardSpec {
  const kind = KIND[flag];
  const f = fields(text.trimStart());
  if (!f || f.length === 0) throw malformed(flag, text);
  const tcp = (host: string | undefined, port: string): ForwardEndpoint => ({ kind: "tcp", host, port: toPort(port) });
  const unix = (path: string): ForwardEndpoint => ({ kind: "unix", path });
  let listen: ForwardEndpoint;
  let connect: ForwardEndpoint | undefined;
  switch (f.length) {
    case 1:
      listen = f[0].isPath ? unix(f[0].arg) : tcp(undefined, f[0].arg);
      break;
    case 2:
      if (f[0].isPath && f[1].isPath) {
        listen = unix(f[0].arg);
        connect = unix(f[1].arg);
      } else if (f[1].isPath) {
        listen = tcp(undefined, f[0].arg);
        connect = unix(f[1].arg);
      } else listen = tcp(f[0].arg, f[1].arg);
      break;
    case 3:
      if (f[0].isPath) {
        listen = unix(f[0].arg);
        connect = tcp(f[1].arg, f[2].arg);
      } else if (f[2].isPath) {
        listen = tcp(f[0].arg, f[1].arg);
        connect = unix(f[2].arg);
      } else {
        listen = tcp(undefined, f[0].arg);
        connect = tcp(f[1].arg, f[2].arg);
      }
      break;
    default:
      listen = tcp(f[0].arg, f[1].arg);
      connect = tcp(f[2].arg, f[3].arg);
  }
  if (listen.kind === "tcp" && listen.host === "*") listen.host = "";
  // -D takes no destination; -R [bind:]port (no destination) is a SOCKS proxy served from this side (ssh 7.6)
  if (kind === "dynamic" && (connect || f.length > 2)) throw malformed(flag, text);
  if (kind === "local" && !connect) throw malformed(flag, text);
  if (kind === "remote" && !connect && listen.kind === "unix") throw malformed(flag, text);
  if (listen.kind === "tcp" && listen.port < 0) throw malformed(flag, text, "bad listen port");
  if (connect?.kind === "tcp") {
    if (connect.port <= 0) throw malformed(flag, text, "bad destination port");
    if (!connect.host) throw malformed(flag, text, "no destination host");
  }
  return { kind, listen, connect, text };
}

/** The ssh_config(5) keywords that declare forwardings. */
export type ForwardKeyword = "LocalForward" | "RemoteForward" | "DynamicForward";

/**
 * Parses an ssh_config `LocalForward`/`RemoteForward` value (`[bind_address:]port host:hostport`, the two
 * halves separated by white space) or a `DynamicForward` value (`[bind_address:]port`).
 *
 * @throws {UsageError} for a malformed value
 * @example
 * ```ts
 * import { parseConfigForward } from "./forward_spec.ts";
 * const spec = parseConfigForward("LocalForward", "5432 db.internal:5432");
 * console.assert(spec.kind === "local");
 * ```
 */
export function parseConfigForward(keyword: ForwardKeyword, value: string): ForwardSpec {
  const words = value.trim().split(/\s+/).filter((w) => w !== "");
  const flag: ForwardFlag = keyword === "LocalForward" ? "L" : keyword === "RemoteForward" ? "R" : "D";
  // readconf.c joins the two arguments with ':'; RemoteForward may have only the first (a SOCKS proxy)
  const fits = flag === "D" ? words.length === 1 : words.length === 2 || (flag === "R" && words.length === 1);
  if (!fits) {
    throw new UsageError(`bad ${keyword} value '${value.trim()}'`, {
      hint: flag === "D"
        ? `write ${keyword} [bind_address:]port`
        : `write ${keyword} [bind_address:]port host:hostport`,
    });
  }
  const spec = parseForwardSpec(flag, words.join(":"));
  return { ...spec, text: `${keyword} ${value.trim()}` };
}

/** `host:port`, `[v6]:port`, or a socket path, for messages. */
export function describeEndpoint(e: ForwardEndpoint): string {
  if (e.kind === "unix") return e.path;
  const host = e.host === undefined ? "localhost" : e.host === "" ? "*" : e.host;
  return host.includes(":") ? `[${host}]:${e.port}` : `${host}:${e.port}`;
}
