/**
 * What ssh(1) itself does with its command line before it connects: `-o` keys are checked against
 * ssh_config(5)'s keywords ("Bad configuration option", unless an earlier `-o IgnoreUnknown` pattern
 * covers them), `-q` and `-o LogLevel` silence warnings, `-E` sends them to a file, and `-4` and `-6`
 * become the AddressFamily option they stand for.
 *
 * `-C` (Compression) is accepted and warned about: npm:ssh2 compresses through Node.js's internal zlib
 * binding, which Deno does not provide (the handshake fails with "expected type v8::data::Function"), so
 * the connection goes uncompressed.
 *
 * @module
 */
import { type OpenContext, UsageError } from "../../plugins/mod.ts";
import { parameters } from "./manifest.ts";

/** ssh_config(5)'s keywords (OpenSSH 9.x, with the deprecated ones ssh still accepts), lower-cased. */
const KEYWORDS = new Set(
  `host match addkeystoagent addressfamily batchmode bindaddress bindinterface canonicaldomains
  canonicalizefallbacklocal canonicalizehostname canonicalizemaxdots canonicalizepermittedcnames
  casignaturealgorithms certificatefile channeltimeout checkhostip ciphers clearallforwardings compression
  connectionattempts connecttimeout controlmaster controlpath controlpersist dynamicforward
  enableescapecommandline enablesshkeysign escapechar exitonforwardfailure fingerprinthash
  forkafterauthentication forwardagent forwardx11 forwardx11timeout forwardx11trusted gatewayports
  globalknownhostsfile gssapiauthentication gssapidelegatecredentials hashknownhosts
  hostbasedacceptedalgorithms hostbasedauthentication hostbasedkeytypes hostkeyalgorithms hostkeyalias
  hostname identitiesonly identityagent identityfile ignoreunknown include ipqos kbdinteractiveauthentication
  kbdinteractivedevices kexalgorithms knownhostscommand localcommand localforward loglevel logverbose macs
  nohostauthenticationforlocalhost numberofpasswordprompts obscurekeystroketiming passwordauthentication
  permitlocalcommand permitremoteopen pkcs11provider port preferredauthentications proxycommand proxyjump
  proxyusefdpass pubkeyacceptedalgorithms pubkeyacceptedkeytypes pubkeyauthentication rekeylimit
  remotecommand remoteforward requesttty requiredrsasize revokedhostkeys securitykeyprovider sendenv
  serveralivecountmax serveraliveinterval sessiontype setenv stdinnull streamlocalbindmask
  streamlocalbindunlink stricthostkeychecking syslogfacility tag tcpkeepalive tunnel tunneldevice
  updatehostkeys user userknownhostsfile verifyhostkeydns visualhostkey xauthlocation
  challengeresponseauthentication compressionlevel protocol cipher rsaauthentication rhostsrsaauthentication
  useroaming useprivilegedport smartcarddevice gssapikeyexchange gssapiclientidentity gssapiserveridentity
  gssapirenewalforceskeyx gssapitrustdns usekeychain`.split(/\s+/),
);

const LOG_LEVELS = ["QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3"];
const SILENT = new Set(["QUIET", "FATAL", "ERROR"]);

/** ssh_config's pattern match (`*`, `?`, `!`, comma lists) on a keyword, case-insensitively. */
function matchesList(word: string, list: string): boolean {
  let matched = false;
  for (const raw of list.split(",")) {
    const negated = raw.startsWith("!");
    const pattern = (negated ? raw.slice(1) : raw).trim().toLowerCase();
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
    if (re.test(word)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/**
 * The `-o` options, checked as ssh checks them; `-4`, `-6` and `-C` added as the options they stand for.
 *
 * @throws {UsageError} for a key ssh does not know ("Bad configuration option"), a bad LogLevel, -4 with -6
 */
export function commandLineOptions(ctx: Pick<OpenContext, "parameters">): Record<string, string> {
  const p = parameters.read(ctx.parameters);
  const options: Record<string, string> = {};
  let ignoreUnknown: string | undefined;
  for (const [key, value] of Object.entries(p.options ?? {})) {
    const k = key.toLowerCase();
    if (!KEYWORDS.has(k)) {
      if (ignoreUnknown !== undefined && matchesList(k, ignoreUnknown)) continue;
      throw new UsageError(`-o ${key}=${value}: Bad configuration option: ${k}`, {
        hint: "see the keywords in man ssh_config; -o IgnoreUnknown=<pattern> before it lets it pass",
      });
    }
    if (k === "ignoreunknown") ignoreUnknown ??= value;
    if (k === "loglevel" && !LOG_LEVELS.includes(value.toUpperCase())) {
      throw new UsageError(`-o LogLevel=${value}: unsupported log level`, { hint: `one of ${LOG_LEVELS.join(", ")}` });
    }
    options[key] = value;
  }
  if (p.iPv4 && p.iPv6) throw new UsageError("-4 and -6 contradict each other", { hint: "give one of them" });
  // the letters win over -o, as ssh's command line sets them after reading -o
  if (p.iPv4 || p.iPv6) setOption(options, "AddressFamily", p.iPv4 ? "inet" : "inet6");
  return options;
}

/** The warning for -C or -o Compression=yes on the command line (ssh_config's Compression is left quiet). */
export function compressionWarning(ctx: Pick<OpenContext, "parameters">): string | undefined {
  const p = parameters.read(ctx.parameters);
  const asked = p.compression ||
    Object.entries(p.options ?? {}).some(([k, v]) => k.toLowerCase() === "compression" && v.toLowerCase() === "yes");
  return asked ? "warning: compression (-C) is not available in remote; connecting uncompressed" : undefined;
}

function setOption(options: Record<string, string>, key: string, value: string): void {
  for (const k of Object.keys(options)) if (k.toLowerCase() === key.toLowerCase()) delete options[k];
  options[key] = value;
}

/**
 * `ctx` with its notices (warnings, "permanently added…") silenced by `-q` or `-o LogLevel=QUIET|FATAL|ERROR`,
 * or appended to the `-E` file.
 */
export function withDiagnostics<C extends Pick<OpenContext, "parameters" | "notice">>(ctx: C): C {
  const p = parameters.read(ctx.parameters);
  const level = Object.entries(p.options ?? {}).find(([k]) => k.toLowerCase() === "loglevel")?.[1];
  // -v wins over -q, as asking for debug lines means wanting to read them
  const debugging = (p.verbose ?? 0) > 0;
  if (!debugging && (p.quiet || (level !== undefined && SILENT.has(level.toUpperCase())))) {
    return { ...ctx, notice: () => {} };
  }
  const file = p.logFile;
  if (file === undefined) return ctx;
  return {
    ...ctx,
    notice: (line: string) => {
      try {
        const shown = [...line].map((c) => c < " " && c !== "\t" || c === "\x7f" ? "?" : c).join("");
        Deno.writeTextFileSync(file, `${shown}\n`, { append: true });
      } catch (err) {
        ctx.notice(`warning: cannot write to the -E file ${file}: ${(err as Error).message}`);
        ctx.notice(line);
      }
    },
  };
}
