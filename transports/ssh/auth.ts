/**
 * User authentication in OpenSSH's order: the agent's keys, then identity files (asking for the
 * passphrase of encrypted ones on a terminal), then keyboard-interactive, then password.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { OpenSSHAgent, type ParsedKey, utils } from "ssh2";
import type { AnyAuthMethod, AuthenticationType, AuthHandlerMiddleware, BaseAgent } from "ssh2";
import { type Prompter, RemoteError, TransportError } from "../../plugins/mod.ts";
import { type AuthTrace, type DebugLog, SILENT } from "./debug_log.ts";
import { fingerprintSha256, keyTypeOf } from "./fingerprint.ts";
import { keyTypeLabel } from "./host_key_policy.ts";

/** An identity file read before connecting. */
export interface Identity {
  path: string;
  /** the parsed key, absent while it is still encrypted */
  key?: ParsedKey;
  /** the file's bytes, kept to decrypt once the passphrase is known */
  data?: Buffer;
  /** the public key blob, from the key or from `<path>.pub`, for IdentitiesOnly agent filtering */
  publicBlob?: Buffer;
  /** named by the user (-i, IdentityFile), not one of ssh's default files: "explicit" in the -v lines, as ssh */
  userProvided?: boolean;
}

function expandHome(path: string, home: string): string {
  return path === "~" || path.startsWith("~/") ? home + path.slice(1) : path;
}

function firstKey(parsed: ParsedKey | ParsedKey[] | Error): ParsedKey | Error {
  return Array.isArray(parsed) ? parsed[0] ?? new Error("no key in file") : parsed;
}

function needsPassphrase(err: Error): boolean {
  return /encrypted/i.test(err.message) && /passphrase/i.test(err.message);
}

/**
 * Reads identity files. A file named explicitly (`-i`) that cannot be read or parsed is an error
 * (code `keyFile`, 247); configured and default files that are missing are skipped, as OpenSSH does.
 */
export async function loadIdentities(
  files: readonly { path: string; explicit: boolean }[],
  home: string,
): Promise<Identity[]> {
  const out: Identity[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    const path = expandHome(file.path, home);
    if (seen.has(path)) continue;
    seen.add(path);
    let data: Buffer;
    try {
      data = Buffer.from(await Deno.readFile(path));
    } catch (cause) {
      if (!file.explicit && cause instanceof Deno.errors.NotFound) continue;
      const why = cause instanceof Deno.errors.NotFound
        ? "no such file"
        : cause instanceof Deno.errors.PermissionDenied
        ? "permission denied"
        : (cause as Error).message;
      throw new RemoteError("keyFile", `cannot read key file ${path}: ${why}`, {
        hint: "check the path given with -i or IdentityFile",
        cause,
      });
    }
    const parsed = firstKey(utils.parseKey(data));
    let publicBlob: Buffer | undefined;
    try {
      const pub = firstKey(utils.parseKey(Buffer.from(await Deno.readFile(`${path}.pub`))));
      if (!(pub instanceof Error)) publicBlob = pub.getPublicSSH();
    } catch {
      // no .pub beside it; the blob comes from the private key when it is not encrypted
    }
    if (parsed instanceof Error) {
      if (needsPassphrase(parsed)) {
        out.push({ path, data, publicBlob });
        continue;
      }
      if (!file.explicit) continue;
      throw new RemoteError("keyFile", `cannot use key file ${path}: ${parsed.message}`, {
        hint: "pass an OpenSSH or PEM private key (not the .pub file)",
      });
    }
    if (!parsed.isPrivateKey()) {
      if (!file.explicit) continue;
      throw new RemoteError("keyFile", `key file ${path} holds a public key, not a private key`, {
        hint: `pass the private key, e.g. ${path.replace(/\.pub$/, "")}`,
      });
    }
    out.push({ path, key: parsed, publicBlob: publicBlob ?? parsed.getPublicSSH() });
  }
  return out;
}

/** An agent that offers only the keys whose public halves are in `allowed` (IdentitiesOnly). */
class FilteredAgent extends OpenSSHAgent {
  #allowed: Buffer[];
  constructor(socket: string, allowed: Buffer[]) {
    super(socket);
    this.#allowed = allowed;
  }
  override getIdentities(cb: Parameters<OpenSSHAgent["getIdentities"]>[0]): void {
    super.getIdentities((err, keys) => {
      if (err || !keys) return cb(err, keys);
      cb(undefined, keys.filter((k) => "getPublicSSH" in k && this.#allowed.some((a) => a.equals(k.getPublicSSH()))));
    });
  }
}

/** What {@linkcode createAuthHandler} needs. */
export interface AuthOptions {
  username: string;
  /** `user@host:port`, for prompts and messages */
  display: string;
  /** a usable agent socket, if any */
  agentSocket?: string;
  identities: Identity[];
  identitiesOnly: boolean;
  prompt: Prompter;
  /** why the agent is not used, for the failure message */
  agentNote?: string;
  /** ssh's -v lines: each method tried, each key offered (by fingerprint), the methods the server leaves */
  log?: DebugLog;
  /** shared with the ssh2 debug translator: the key offered last, the agent's keys, the method that succeeded */
  trace?: AuthTrace;
}

/** A public key as ssh's -v lines name it: `<name> ED25519 SHA256:…` (never the key itself). */
function describeKey(name: string, blob: Uint8Array): string {
  try {
    return `${name} ${keyTypeLabel(keyTypeOf(blob))} ${fingerprintSha256(blob)}`;
  } catch {
    return name;
  }
}

/** The handler for ssh2's `authHandler`, plus the error to raise when every method failed. */
export interface AuthSession {
  handler: AuthHandlerMiddleware;
  /** the agent object, for agent forwarding */
  agent?: BaseAgent;
  /** the error for "All configured authentication methods failed" */
  failure(): RemoteError;
}

/** Builds the authentication sequence for one host. */
export function createAuthHandler(options: AuthOptions): AuthSession {
  // A question that ended without an answer (Ctrl-C, SIGTERM, SIGHUP) ends authentication with its error:
  // it is not a rejected method, and nothing more may be asked.
  let stopped: RemoteError | undefined;
  const prompt: Prompter = {
    get interactive() {
      return options.prompt.interactive;
    },
    ask: (question, askOptions) =>
      stopped ? Promise.reject(stopped) : options.prompt.ask(question, askOptions).catch((err) => {
        if (err instanceof RemoteError) stopped ??= err;
        throw err;
      }),
  };
  const tried: string[] = [];
  const notes: string[] = [];
  if (options.agentNote) notes.push(options.agentNote);
  let serverMethods: string[] = [];
  let passphraseFailed: string | undefined;
  const log = options.log ?? SILENT;
  const trace = options.trace ?? {};
  const agent = options.agentSocket
    ? options.identitiesOnly
      ? new FilteredAgent(
        options.agentSocket,
        options.identities.flatMap((i) => (i.publicBlob ? [i.publicBlob] : [])),
      )
      : new OpenSSHAgent(options.agentSocket)
    : undefined;
  if (agent && log.level > 0) {
    // ssh2 tries the agent's keys by number ("Agent: Trying key #2"): keep their names to say which
    const list = agent.getIdentities.bind(agent);
    agent.getIdentities = (cb) =>
      list((err, keys) => {
        if (keys) {
          trace.agentKeys = keys.map((k) =>
            "getPublicSSH" in k
              ? `${describeKey(k.comment || "(no comment)", k.getPublicSSH())} agent`
              : "(an agent key) agent"
          );
          for (const k of trace.agentKeys) log.debug1(`Will attempt key: ${k}`);
        } else if (err) log.debug1(`agent: cannot list keys: ${err.message}`);
        cb(err, keys);
      });
  }

  // Each step yields a method or undefined (nothing to try here); steps run once, in order.
  type Step = (methods: string[]) => Promise<AnyAuthMethod | undefined>;
  const steps: Step[] = [];
  const username = options.username;
  if (agent) {
    steps.push((m) => {
      if (!m.includes("publickey")) return Promise.resolve(undefined);
      tried.push("publickey (agent)");
      log.debug1("Next authentication method: publickey");
      trace.method = "publickey";
      return Promise.resolve({ type: "agent", username, agent });
    });
  }
  for (const identity of options.identities) {
    steps.push(async (m) => {
      if (!m.includes("publickey")) return undefined;
      const key = await unlock(identity);
      if (!key) return undefined;
      tried.push(`publickey (${identity.path})`);
      trace.offered = describeKey(identity.path, identity.publicBlob ?? key.getPublicSSH()) +
        (identity.userProvided ? " explicit" : "");
      if (trace.method !== "publickey") log.debug1("Next authentication method: publickey");
      trace.method = "publickey";
      log.debug1(`Offering public key: ${trace.offered}`);
      return { type: "publickey", username, key };
    });
  }
  let kbdTries = 0;
  const kbd: Step = (m) => {
    if (!m.includes("keyboard-interactive") || !prompt.interactive || kbdTries >= 3) {
      return Promise.resolve(undefined);
    }
    kbdTries++;
    if (kbdTries === 1) tried.push("keyboard-interactive");
    log.debug1("Next authentication method: keyboard-interactive");
    trace.method = "keyboard-interactive";
    return Promise.resolve({
      type: "keyboard-interactive",
      username,
      prompt: (_name, instructions, _lang, prompts, finish) => {
        (async () => {
          const answers: string[] = [];
          if (instructions) await prompt.ask(`${instructions}\n`, { what: "instructions" }).catch(() => "");
          for (const p of prompts) {
            answers.push(await prompt.ask(p.prompt, { secret: !p.echo, what: "keyboard-interactive answer" }));
          }
          finish(answers);
        })().catch(() => finish([]));
      },
    });
  };
  steps.push(kbd, kbd, kbd);
  let passwordTries = 0;
  const password: Step = async (m) => {
    if (!m.includes("password") || !prompt.interactive || passwordTries >= 3) return undefined;
    passwordTries++;
    if (passwordTries === 1) tried.push("password");
    log.debug1("Next authentication method: password");
    trace.method = "password";
    const secret = await prompt.ask(`${options.display.replace(/:22$/, "")}'s password: `, {
      secret: true,
      what: "password",
    });
    return { type: "password", username, password: secret };
  };
  steps.push(password, password, password);

  async function unlock(identity: Identity): Promise<ParsedKey | undefined> {
    if (identity.key) return identity.key;
    if (!identity.data) return undefined;
    if (!prompt.interactive) {
      notes.push(`${identity.path} is encrypted and no terminal can ask its passphrase`);
      return undefined;
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      const passphrase = await prompt.ask(`Enter passphrase for key '${identity.path}': `, {
        secret: true,
        what: "key passphrase",
      });
      if (passphrase === "") return undefined;
      const parsed = firstKey(utils.parseKey(identity.data, passphrase));
      if (!(parsed instanceof Error)) {
        identity.key = parsed;
        return parsed;
      }
    }
    passphraseFailed = identity.path;
    return undefined;
  }

  let next = 0;
  const handler: AuthHandlerMiddleware = (methodsLeft, _partial, callback) => {
    if (stopped) return callback(false as unknown as AnyAuthMethod);
    if (methodsLeft === null) {
      // "none" first, as OpenSSH: learns which methods the server takes before asking anything
      callback({ type: "none", username });
      return;
    }
    serverMethods = methodsLeft;
    log.debug1(`Authentications that can continue: ${methodsLeft.join(",")}`);
    (async () => {
      while (next < steps.length && !stopped) {
        const method = await steps[next++](methodsLeft as AuthenticationType[] & string[]);
        if (method) return method;
      }
      return false as const;
    })().then(
      (method) => callback(method as AnyAuthMethod),
      (err) => {
        notes.push(String((err as Error).message ?? err));
        callback(false as unknown as AnyAuthMethod);
      },
    );
  };

  return {
    handler,
    agent,
    failure() {
      if (stopped) return stopped;
      if (passphraseFailed) {
        return new RemoteError("passphrase", `wrong passphrase for key ${passphraseFailed} (3 tries)`, {
          hint: "type the passphrase again, or load the key into ssh-agent with ssh-add",
        });
      }
      const triedText = tried.length ? tried.join(", ") : "nothing";
      const accepts = serverMethods.length ? serverMethods.join(",") : "unknown";
      const why = notes.length ? `; ${notes.join("; ")}` : "";
      return new TransportError(
        `permission denied for ${options.display} (tried: ${triedText}; server accepts: ${accepts})${why}`,
        {
          layer: "auth",
          hint: prompt.interactive
            ? "pass a key the server accepts with -i <file>, or add yours to its authorized_keys"
            : "pass a key the server accepts with -i <file> or load it into ssh-agent; password prompts need a terminal",
        },
      );
    },
  };
}
