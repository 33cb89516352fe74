/**
 * Builds `OpenContext`s for ssh transport tests: isolated ssh files (config, known_hosts), a scripted
 * prompter standing in for the person at the terminal, and notices collected for assertions.
 *
 * @example
 * ```ts
 * import { isolatedHome, sshContext } from "./ssh_context.ts";
 * await using home = await isolatedHome();
 * const ctx = sshContext({ host: "127.0.0.1", port: 22 }, home, {});
 * console.log(ctx.target.display);
 * ```
 *
 * @module
 */
import type { OpenContext, Prompter } from "../../plugins/mod.ts";

/** Files standing in for ~/.ssh, removed on dispose. */
export interface IsolatedHome extends AsyncDisposable {
  dir: string;
  /** `<dir>/.ssh/known_hosts`, passed as UserKnownHostsFile */
  knownHosts: string;
  /** an empty ssh_config, passed as ConfigFile so the machine's own files are not read */
  config: string;
}

/**
 * A temp dir standing in for ~/.ssh. Tests never change HOME or SSH_AUTH_SOCK: `deno test --parallel`
 * runs files as workers of one process, so the environment is shared; {@linkcode sshContext} points
 * ssh at these files with -o options instead.
 */
export async function isolatedHome(): Promise<IsolatedHome> {
  const dir = await Deno.makeTempDir({ prefix: "remote-sshfiles-" });
  await Deno.mkdir(`${dir}/.ssh`, { mode: 0o700 });
  const config = `${dir}/.ssh/config`;
  await Deno.writeTextFile(config, "");
  return {
    dir,
    knownHosts: `${dir}/.ssh/known_hosts`,
    config,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A prompter answering from a script; records every question. */
export class ScriptedPrompter implements Prompter {
  readonly questions: { question: string; secret: boolean }[] = [];
  #answers: string[];
  constructor(readonly interactive: boolean, answers: string[] = []) {
    this.#answers = [...answers];
  }
  ask(question: string, options: { secret?: boolean; what?: string } = {}): Promise<string> {
    this.questions.push({ question, secret: options.secret ?? false });
    if (!this.interactive) return Promise.reject(new Error(`nobody can answer ${options.what ?? "a question"}`));
    const answer = this.#answers.shift();
    if (answer === undefined) return Promise.reject(new Error(`script has no answer for: ${question}`));
    return Promise.resolve(answer);
  }
}

/** An OpenContext for `user@host:port` that reads and writes only the isolated files (no agent). */
export function sshContext(
  target: { host: string; port?: number; user?: string },
  home: IsolatedHome,
  parameters: Record<string, unknown>,
  options: { prompt?: Prompter; signal?: AbortSignal } = {},
): OpenContext & { notices: string[] } {
  const notices: string[] = [];
  return {
    target: { transport: "ssh", ...target, display: `${target.host}` },
    parameters: {
      ConfigFile: home.config,
      ...parameters,
      Options: {
        UserKnownHostsFile: home.knownHosts,
        GlobalKnownHostsFile: "none",
        IdentityAgent: "none",
        // a missing configured IdentityFile is skipped, so the real ~/.ssh/id_* are never tried
        IdentityFile: `${home.dir}/.ssh/id_none`,
        ...(parameters.Options as Record<string, string> | undefined),
      },
    },
    signal: options.signal ?? AbortSignal.timeout(60_000),
    prompt: options.prompt ?? new ScriptedPrompter(false),
    notice: (line) => notices.push(line),
    notices,
  };
}

/** A server the test trusts: its host keys go into known_hosts, and its user key is the one offered. */
export interface TrustedServer {
  host: string;
  port: number;
  user: string;
  userKey: string;
  knownHostsLine(): string;
}

/**
 * An OpenContext for `server` whose isolated known_hosts already holds the server's keys and which
 * logs in with the server's user key; `parameters` add to or replace those.
 */
export async function trustedContext(
  server: TrustedServer,
  home: IsolatedHome,
  parameters: Record<string, unknown> = {},
  options: { prompt?: Prompter; signal?: AbortSignal } = {},
): Promise<OpenContext & { notices: string[] }> {
  await Deno.writeTextFile(home.knownHosts, server.knownHostsLine() + "\n");
  return sshContext({ host: server.host, port: server.port, user: server.user }, home, {
    KeyFilePath: [server.userKey],
    ...parameters,
  }, options);
}

/** Reads a whole stream into one string. */
export async function readText(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}
