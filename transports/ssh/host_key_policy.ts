/**
 * StrictHostKeyChecking, as OpenSSH applies it: decides whether a server's host key is trusted, asks
 * on a terminal, records new keys, and refuses changed or revoked keys loudly.
 *
 * @module
 */
import { type Prompter, TransportError } from "../../plugins/mod.ts";
import { type DebugLog, SILENT } from "./debug_log.ts";
import { fingerprintSha256, keyTypeOf } from "./fingerprint.ts";
import { appendKnownHost, checkHostKey, hostKeyName, knownHostsName, otherNamesOfKey } from "./known_hosts.ts";

/** The settings and channels {@linkcode verifyHostKey} needs. */
export interface HostKeyCheck {
  /** the host name connected to (HostName) */
  host: string;
  port: number;
  /** the address connected to; absent through a jump host (ssh then names none either) */
  address?: string;
  /** HostKeyAlias: the name known_hosts records instead of the host and port */
  alias?: string;
  /** the key blob the server sent */
  key: Uint8Array;
  /** `ask` when unset, as in OpenSSH */
  strict?: "yes" | "ask" | "accept-new" | "no";
  userKnownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  hashKnownHosts: boolean;
  prompt: Prompter;
  notice(line: string): void;
  /** ssh's -v lines: the key's fingerprint, the known_hosts line that matched or why none did */
  log?: DebugLog;
  /** the local home, to expand `~` */
  home: string;
}

/** What the check decided when the key is not simply refused. */
export type HostKeyVerdict =
  | { kind: "trusted" }
  /** known_hosts holds keys of other types for this host: connect again preferring `keyTypes` */
  | { kind: "retry"; keyTypes: string[] };

/** OpenSSH's display name of a key type: `ED25519`, `RSA`, `ECDSA`. */
export function keyTypeLabel(keyType: string): string {
  if (keyType === "ssh-ed25519") return "ED25519";
  if (keyType === "ssh-rsa") return "RSA";
  if (keyType.startsWith("ecdsa-")) return "ECDSA";
  if (keyType.startsWith("sk-ssh-ed25519")) return "ED25519-SK";
  if (keyType.startsWith("sk-ecdsa")) return "ECDSA-SK";
  return keyType.toUpperCase();
}

function expandHome(path: string, home: string): string {
  return path === "~" || path.startsWith("~/") ? home + path.slice(1) : path;
}

/**
 * Checks the server's key against known_hosts and the StrictHostKeyChecking policy.
 *
 * @throws {TransportError} code `hostKey` (246) when the key is refused
 */
export async function verifyHostKey(check: HostKeyCheck, retried = false): Promise<HostKeyVerdict> {
  const keyType = keyTypeOf(check.key);
  const fingerprint = fingerprintSha256(check.key);
  const name = hostKeyName(check.host, check.port, check.alias);
  const label = keyTypeLabel(keyType);
  const userFiles = check.userKnownHostsFiles.map((f) => expandHome(f, check.home));
  const files = [...userFiles, ...check.globalKnownHostsFiles.map((f) => expandHome(f, check.home))];
  const log = check.log ?? SILENT;
  log.debug1(`Server host key: ${keyType} ${fingerprint}`);
  log.debug2(`known_hosts files: ${files.length ? files.join(" ") : "none"}`);
  const found = await checkHostKey({
    host: check.host,
    port: check.port,
    alias: check.alias,
    keyType,
    key: check.key,
    files,
  });
  switch (found.kind) {
    case "known":
      log.debug1(`Host '${name}' is known and matches the ${label} host key.`);
      log.debug1(`Found key in ${found.file}:${found.line}`);
      return { kind: "trusted" };
    case "unknown":
      log.debug1(
        found.otherTypes?.length
          ? `Host '${name}' has no ${label} key in known_hosts, only ${found.otherTypes.join(", ")} keys`
          : `Host '${name}' is not in known_hosts (${files.length ? files.join(", ") : "no files"})`,
      );
      break;
    case "changed":
      log.debug1(`Host '${name}' is known with a different ${label} key: ${found.file}:${found.line}`);
      break;
    case "revoked":
      log.debug1(`Host key ${label} ${fingerprint} is marked @revoked in ${found.file}:${found.line}`);
      break;
    case "cert-authority":
      log.debug1(`Host '${name}' presents a certificate of the @cert-authority in ${found.file}:${found.line}`);
      break;
  }
  switch (found.kind) {
    case "revoked":
      throw new TransportError(
        `the host key of ${name} (${label} ${fingerprint}) is revoked in ${found.file}:${found.line}`,
        {
          layer: "host-key",
          hint: "the server presents a key its owner revoked; ask the server's administrator",
        },
      );
    case "changed": {
      for (
        const line of [
          "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
          "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
          "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
          "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
          `the ${label} key sent by ${name} has fingerprint ${fingerprint}`,
        ]
      ) check.notice(line);
      throw new TransportError(
        `HOST KEY OF ${name} HAS CHANGED: it differs from the key in ${found.file}:${found.line}; refusing to connect`,
        {
          layer: "host-key",
          hint: `if the host was really reinstalled, remove the old key: ssh-keygen -R '${name}' -f ${found.file}`,
        },
      );
    }
    case "unknown":
      // ssh offers the known types first; ssh2 cannot reorder by host, so connect again preferring them
      if (found.otherTypes?.length && !retried) return { kind: "retry", keyTypes: found.otherTypes };
      break;
    case "cert-authority":
      break;
  }
  // ssh2 offers no certificate host key algorithms, so a @cert-authority line can never vouch for the server
  const ca = found.kind === "unknown" ? found.certAuthority : found.kind === "cert-authority" ? found : undefined;
  const caText = ca
    ? `host certificates (@cert-authority) are not supported yet, so ${ca.file}:${ca.line} cannot vouch for it`
    : undefined;
  const strict = check.strict ?? "ask";
  const target = userFiles[0];
  if (strict === "accept-new" || strict === "no") {
    await record(check, target, name, keyType, label);
    return { kind: "trusted" };
  }
  if (strict === "ask" && check.prompt.interactive) {
    if (caText) check.notice(`warning: ${caText}`);
    const ip = check.address === undefined
      ? "<no hostip for proxy command>"
      : knownHostsName(check.address, check.port);
    let question = `The authenticity of host '${name} (${ip})' can't be established.\n` +
      `${label} key fingerprint is ${fingerprint}.\n` +
      (await otherNamesText(check.key, files, check.home, log)) +
      "Are you sure you want to continue connecting (yes/no/[fingerprint])? ";
    for (;;) {
      const answer = (await check.prompt.ask(question, { what: "host key confirmation" })).trim();
      if (answer.toLowerCase() === "yes" || answer === fingerprint) break;
      if (answer.toLowerCase() === "no") {
        throw new TransportError(`host key verification failed: you declined the key of ${name}`, {
          layer: "host-key",
          hint: `check ${fingerprint} with the server's administrator, then connect again`,
        });
      }
      question = "Please type 'yes', 'no' or the fingerprint: ";
    }
    await record(check, target, name, keyType, label);
    return { kind: "trusted" };
  }
  const short = keyType === "ssh-rsa" ? "rsa" : keyType.replace(/^ssh-/, "").replace(/^ecdsa-sha2-nistp\d+$/, "ecdsa");
  const portFlag = check.port === 22 ? "" : `-p ${check.port} `;
  // ssh-keyscan names the host as [host]:port; under a HostKeyAlias the line must name the alias instead
  const rename = check.alias === undefined ? "" : ` | sed 's/^[^ ]*/${name}/'`;
  const keyscan = `ssh-keyscan ${portFlag}-t ${short} ${check.host}${rename} >> ${target ?? "~/.ssh/known_hosts"}`;
  if (caText) {
    throw new TransportError(`host key of ${name} is not known (${label} ${fingerprint}): ${caText}`, {
      layer: "host-key",
      hint: `add the host key itself: ${keyscan} (after checking it is ${fingerprint})`,
    });
  }
  throw new TransportError(
    strict === "yes"
      ? `host key of ${name} is not known (${label} ${fingerprint}) and StrictHostKeyChecking is yes`
      : `host key of ${name} is not known (${label} ${fingerprint}) and no terminal can confirm it`,
    {
      layer: "host-key",
      hint: `if ${fingerprint} is right, run: ${keyscan} (or pass -o StrictHostKeyChecking=accept-new)`,
    },
  );
}

/** ssh lists at most this many other names (sshconnect.c MAX_DISPLAY_OTHERNAMES). */
const MAX_OTHER_NAMES = 8;

/** ssh's lines naming the known_hosts entries that hold the same key under other names, each ending in a newline. */
async function otherNamesText(key: Uint8Array, files: string[], home: string, log: DebugLog): Promise<string> {
  const names = await otherNamesOfKey(key, files);
  for (const n of names) log.debug1(`found matching key in ${tildeUnexpand(n.file, home)}:${n.line}`);
  if (names.length === 0) return "This key is not known by any other names.\n";
  const lines = ["This host key is known by the following other names/addresses:"];
  for (const n of names.slice(0, MAX_OTHER_NAMES)) {
    lines.push(`    ${tildeUnexpand(n.file, home)}:${n.line}: ${n.hosts}`);
  }
  if (names.length > MAX_OTHER_NAMES) lines.push(`    (${names.length - MAX_OTHER_NAMES} additional names omitted)`);
  return lines.join("\n") + "\n";
}

/** A path under the home directory written as `~/…`, as ssh's try_tilde_unexpand (misc.c) shows it. */
function tildeUnexpand(path: string, home: string): string {
  const h = home.replace(/\/+$/, "");
  return h !== "" && path.startsWith(`${h}/`) ? `~/${path.slice(h.length + 1)}` : path;
}

async function record(check: HostKeyCheck, file: string | undefined, name: string, keyType: string, label: string) {
  if (!file) return;
  try {
    await appendKnownHost({
      file,
      host: check.host,
      port: check.port,
      alias: check.alias,
      keyType,
      key: check.key,
      hash: check.hashKnownHosts,
    });
  } catch (cause) {
    check.notice(`warning: cannot add the host key to ${file}: ${(cause as Error).message ?? cause}`);
    return;
  }
  check.notice(`warning: permanently added '${name}' (${label}) to the list of known hosts`);
}
