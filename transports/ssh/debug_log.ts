/**
 * ssh's `-v`, `-vv`, `-vvv` (and `LogLevel DEBUG1..3` from `-o` or ssh_config): diagnostic lines prefixed as
 * ssh prefixes them (`debug1: `, `debug2: `, `debug3: `), so they read side by side with `ssh -v` output. They go
 * where the transport's notices go (stderr, or the `-E` file), one line each.
 *
 * What a line may hold: names of files, hosts, addresses, algorithms, key types and fingerprints, methods. Never a
 * secret: no password, passphrase, answer, private key or key blob is ever handed to a debug line, and ssh2's own
 * debug output (which names packets, not their contents) is passed on only at `-vvv`.
 *
 * @module
 */
import type { OpenContext } from "../../plugins/mod.ts";
import { parameters } from "./manifest.ts";

/** ssh_config's LogLevel names and the debug level each stands for (0: no debug lines). */
const LEVELS: Readonly<Record<string, number>> = { DEBUG: 1, DEBUG1: 1, DEBUG2: 2, DEBUG3: 3 };

/** How much to say, and where: `debug1` lines from level 1 (`-v`) on, `debug3` only at level 3 (`-vvv`). */
export interface DebugLog {
  /** 0 (quiet) to 3 */
  readonly level: number;
  debug1(line: string): void;
  debug2(line: string): void;
  debug3(line: string): void;
  /** a line with no prefix, as ssh prints "Authenticated to …" at `-v` (its VERBOSE level) */
  verbose(line: string): void;
}

/** A log that says nothing. */
export const SILENT: DebugLog = { level: 0, debug1() {}, debug2() {}, debug3() {}, verbose() {} };

/** The debug level a LogLevel value stands for: DEBUG and DEBUG1 1, DEBUG2 2, DEBUG3 3, anything else 0. */
export function logLevelDebug(value: string | undefined): number {
  return value === undefined ? 0 : LEVELS[value.toUpperCase()] ?? 0;
}

/**
 * The level `ctx` asks for: the number of `-v` (at most 3), or `-o LogLevel=DEBUG…`, whichever says more;
 * `configLevel` is ssh_config's LogLevel once the config is read.
 */
export function debugLevel(ctx: Pick<OpenContext, "parameters">, configLevel?: string): number {
  const p = parameters.read(ctx.parameters);
  const option = Object.entries(p.options ?? {}).find(([k]) => k.toLowerCase() === "loglevel")?.[1];
  return Math.min(3, Math.max(p.verbose ?? 0, logLevelDebug(option), logLevelDebug(configLevel)));
}

/**
 * The debug log for `ctx` at {@linkcode debugLevel}; lines go to `ctx.notice` (stderr or the `-E` file, see
 * command_line.ts), with line breaks and other control characters shown as `?`.
 *
 * @example At -vv
 * ```ts
 * import { debugLog } from "./debug_log.ts";
 * const lines: string[] = [];
 * // with -E (LogFile) the lines are notices, which transports/ssh/command_line.ts sends to the file
 * const log = debugLog({ parameters: { Verbose: 2, LogFile: "debug.log" }, notice: (l: string) => lines.push(l) });
 * log.debug1("Connecting to db1 [10.0.0.5] port 22.");
 * log.debug3("not shown");
 * console.assert(lines.length === 1 && lines[0].startsWith("debug1: "));
 * ```
 */
export function debugLog(ctx: Pick<OpenContext, "parameters" | "notice">, configLevel?: string): DebugLog {
  const level = debugLevel(ctx, configLevel);
  if (level === 0) return SILENT;
  // On a terminal the lines are written here with CR LF: at -vvv they go on during the session, while the
  // terminal is raw and a bare LF would not return the cursor (ssh does the same). Elsewhere (the -E file, a pipe,
  // the reuse master relaying to its client) they are notices.
  const direct = parameters.read(ctx.parameters).logFile === undefined && stderrIsTerminal();
  const encoder = new TextEncoder();
  const say = (prefix: string, line: string) => {
    const shown = prefix + [...line].map((c) => c < " " && c !== "\t" || c === "\x7f" ? "?" : c).join("");
    if (!direct) return ctx.notice(shown);
    try {
      const bytes = encoder.encode(`${shown}\r\n`);
      for (let at = 0; at < bytes.length;) at += Deno.stderr.writeSync(bytes.subarray(at));
    } catch {
      // stderr is gone: nothing to tell
    }
  };
  return {
    level,
    debug1: (line) => say("debug1: ", line),
    debug2: (line) => level >= 2 && say("debug2: ", line),
    debug3: (line) => level >= 3 && say("debug3: ", line),
    verbose: (line) => say("", line),
  };
}

function stderrIsTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

/** What the ssh2 debug translator needs to know about the authentication in progress. */
export interface AuthTrace {
  /** the public key offered last ("/path ED25519 SHA256:…" as ssh names it), for "Server accepts key" */
  offered?: string;
  /** the agent's keys, as ssh names them, in the agent's order (ssh2 tries them by number) */
  agentKeys?: string[];
  /** the method tried last: once logged in, the one that succeeded */
  method?: string;
  /** what the key exchange chose so far, by ssh2's names ("C->S Cipher", "S->C MAC", …) */
  chosen?: Record<string, string>;
}

/**
 * Turns one line of npm:ssh2's `debug` output into ssh's: the banner, the KEXINIT exchange and each side's
 * proposal (`-vv`), the server accepting a key; everything else (packets sent and received) at `-vvv`.
 * The algorithms chosen are said as ssh says them (`kex: algorithm: …`, one line per direction), before the
 * server's host key is checked, as in ssh.
 */
export function translateSsh2Debug(log: DebugLog, line: string, auth: AuthTrace): void {
  let m: RegExpExecArray | null;
  if ((m = /^Remote ident: '(.*)'$/.exec(line))) {
    const ident = m[1].replace(/\\r|\\n/g, "");
    const v = /^SSH-([^-]+)-(.*)$/.exec(ident);
    log.debug1(v ? `Remote protocol version ${v[1]}, remote software version ${v[2]}` : `Remote ident: ${ident}`);
    return;
  }
  if ((m = /^Local ident: '(.*)'$/.exec(line))) {
    return log.debug1(`Local version string ${m[1].replace(/\\r|\\n/g, "")}`);
  }
  if (line === "Outbound: Sending KEXINIT") return log.debug1("SSH2_MSG_KEXINIT sent");
  if (line === "Inbound: Handshake in progress") return log.debug1("SSH2_MSG_KEXINIT received");
  if ((m = /^Handshake: \((local|remote)\) (.+?): (.*)$/.exec(line))) {
    return log.debug2(`${m[1] === "local" ? "local client" : "peer server"} KEXINIT proposal: ${m[2]}: ${m[3]}`);
  }
  if (
    (m =
      /^Handshake: (KEX algorithm|Host key format|C->S [Cc]ipher|S->C [Cc]ipher|C->S MAC|S->C MAC|C->S compression|S->C compression): (.*)$/
        .exec(line))
  ) {
    const chosen = auth.chosen ??= {};
    chosen[m[1].toLowerCase()] = m[2];
    if (m[1] === "KEX algorithm") return log.debug1(`kex: algorithm: ${m[2]}`);
    if (m[1] === "Host key format") return log.debug1(`kex: host key algorithm: ${m[2]}`);
    if (m[1] === "S->C compression") {
      for (const [dir, name] of [["s->c", "server->client"], ["c->s", "client->server"]]) {
        const cipher = chosen[`${dir} cipher`];
        log.debug1(
          `kex: ${name} cipher: ${cipher} MAC: ${macOf(cipher, chosen[`${dir} mac`])} compression: ${
            chosen[`${dir} compression`]
          }`,
        );
      }
    }
    return;
  }
  if (line === "Inbound: Received USERAUTH_PK_OK" && auth.offered) {
    return log.debug1(`Server accepts key: ${auth.offered}`);
  }
  if ((m = /^Agent: Trying key #(\d+)$/.exec(line))) {
    const key = auth.agentKeys?.[Number(m[1]) - 1];
    if (key) {
      auth.offered = key;
      return log.debug1(`Offering public key: ${key}`);
    }
  }
  if ((m = /^Client: Agent key #(\d+) failed$/.exec(line))) {
    return log.debug1(`Server refused key: ${auth.agentKeys?.[Number(m[1]) - 1] ?? `agent key #${m[1]}`}`);
  }
  if ((m = /^Client: (\S+) auth failed$/.exec(line))) {
    if (m[1] === "publickey") return log.debug1(`Server refused key: ${auth.offered ?? "(unknown key)"}`);
    if (m[1] === "none" || m[1] === "agent") return log.debug2(`${m[1]} authentication did not succeed`);
    return log.debug1(`${m[1]} authentication refused by the server`);
  }
  if (line === "Handshake completed") return log.debug2("kex: key exchange completed, new keys in use");
  log.debug3(line);
}

/** ssh's MAC column: AEAD ciphers carry their own ("<implicit>"). */
function macOf(cipher: string | undefined, mac: string | undefined): string {
  return !mac || mac === "<implicit>" || /gcm|chacha20-poly1305/.test(cipher ?? "") ? "<implicit>" : mac;
}
