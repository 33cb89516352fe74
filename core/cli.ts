/**
 * The command line: global options, the verbs, help, version and completions. `main.ts` hands it
 * argv and the transport catalog; it returns the exit code.
 *
 * @module
 */
// Only what --version and --help need is imported up front; the rest loads with the verb that uses it,
// so the commonest quick calls stay quick (see BENCHMARKS.md, cold start).
import type { TransportManifest } from "../plugins/mod.ts";
import type { UserConfig } from "./config.ts";
import { RemoteError, UsageError } from "./errors.ts";
import type { VerbSpec } from "./verb_spec.ts";
import type { Registry } from "./registry.ts";
import type { TransportEntry } from "./transport_catalog.ts";
import type { Verb } from "./verbs/mod.ts";
import { table, writeErr, writeOut } from "./output.ts";

/** What `main.ts` passes in. */
export interface CliOptions {
  version: string;
  /** built-in transports and those compiled in by a custom build */
  transports: readonly TransportEntry[];
}

const TOP_HELP = `remote — interactive sessions on any machine: SSH, WinRM, AWS SSM, local and plugins

usage: remote [--plugin <path|npm:spec>]... <verb> [options] [target] [-- command]

verbs:
  enter       start an interactive session (Enter-PSSession)
  invoke      run a command on one or many hosts (Invoke-Command)
  new         create a persistent session and leave it running (New-PSSession)
  get         list sessions (Get-PSSession)
  connect     attach again to a disconnected session (Connect-PSSession)
  disconnect  detach and leave a session running (Disconnect-PSSession)
  receive     print what a disconnected session printed (Receive-PSSession)
  remove      end a session (Remove-PSSession)
  forward     forward ports through a transport (ssh -L/-R/-D, SSM port sessions)
  copy        copy files to or from a host, as scp: remote copy SRC... host:DEST
  plugin      list transports: remote plugin list | remote plugin info <name>
  completions print a shell completion script: remote completions bash|zsh|fish
  help        remote help <verb> | remote help topics | remote help <topic>

options:
  --plugin <path|npm:spec>  load a transport plugin module (repeatable)
  --version                 print versions and the built-in transports
  -h, --help                print this help

Run 'remote help <verb>' for a verb's parameter sets, 'remote help topics' for the guides (ssh, copy,
sessions, exit codes...), each printed by 'remote help <topic>'.
`;

/**
 * Runs remote with `argv` (without the program name) and returns the exit code.
 *
 * @example Version
 * ```ts ignore
 * const code = await runCli(["--version"], { version: "0.1.0", transports: [] });
 * ```
 */
export async function runCli(argv: string[], options: CliOptions): Promise<number> {
  const { plugins, rest } = takeGlobalOptions(argv);
  const verb = rest[0];
  if (verb === undefined || verb === "-h" || verb === "--help") {
    await writeOut(TOP_HELP);
    return 0;
  }
  if (verb === "--version" || verb === "-V" || verb === "version") {
    await writeOut(await versionText(options));
    return 0;
  }
  if (verb === BACKGROUND_VERB) return await transportBackground(rest.slice(1), options.transports);
  const [{ loadConfig }, { defaultPluginDir, loadPluginEntries }, { mergeCatalog }, verbs] = await Promise.all([
    import("./config.ts"),
    import("./plugin_loader.ts"),
    import("../plugins/mod.ts"),
    import("./verbs/mod.ts"),
  ]);
  const module = verbs.loadVerb(verb);
  module.catch(() => {}); // awaited below, after what may fail first
  const config = await loadConfig();
  const extra = await loadPluginEntries({
    specifiers: [...plugins, ...config.plugins.map(pluginSpecifier)],
    executables: true,
    pluginDir: defaultPluginDir(),
    path: Deno.env.get("PATH") ?? "",
    warn: (line) => console.error(line),
    // the core's own parameters, which no plugin may declare: worked out only when there is a plugin to check
    reserved: async () =>
      (await import("./reserved_parameters.ts")).reservedParameters(options.transports.map((e) => e.manifest)),
  });
  const entries = mergeCatalog([...options.transports, ...extra]);
  const manifests = entries.map((e) => e.manifest);
  const args = rest.slice(1);
  if (verb === "__complete") {
    // the completion scripts' question while the user presses Tab: words on stdout, never an error
    const { completeWords } = await import("./complete_words.ts");
    const words = await completeWords(args[0] ?? "", args[1] ?? "", entries, config);
    await writeOut(words.map((w) => `${w}\n`).join(""));
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, verb) ? COMMANDS[verb] : undefined;
  if (command) return await command(args, entries);
  const spec = (await found(verb, module)).spec(manifests);
  const beforeCommand = args.includes("--") ? args.slice(0, args.indexOf("--")) : args;
  if (beforeCommand.includes("--help") || beforeCommand.includes("-h")) {
    await writeOut((await import("./help.ts")).renderHelp(spec));
    return 0;
  }
  const [{ promptForMissing, resolveParameterSet }, { terminalPrompter }] = await Promise.all([
    import("./parameter_set.ts"),
    import("./prompt.ts"),
  ]);
  const prompter = terminalPrompter();
  let resolution = resolveParameterSet(spec, args);
  if (resolution.missing.length > 0 && !localEnter(verb, resolution.given)) {
    resolution = await promptForMissing(spec, resolution, prompter);
  }
  let registry: Promise<Registry> | undefined;
  return await (await module)!.run({
    spec,
    resolution,
    entries,
    config,
    prompter,
    // loaded on first use: a plain invoke never records a session, and need not load the registry
    registry: () => registry ??= import("./registry.ts").then(({ Registry }) => new Registry()),
    io: { out: writeOut, err: writeErr },
  });
}

/** The commands besides the verbs: they take plain arguments rather than parameter sets. */
const COMMANDS: Readonly<Record<string, (args: string[], entries: readonly TransportEntry[]) => Promise<number>>> = {
  help: helpCommand,
  completions: completionsCommand,
  plugin: pluginCommand,
};

/** `remote help [verb]`, `remote help topics`, `remote help <topic>` (a guide from docs/, carried inside). */
async function helpCommand(args: string[], entries: readonly TransportEntry[]): Promise<number> {
  const name = args[0];
  if (name === undefined) {
    await writeOut(TOP_HELP);
    return 0;
  }
  const [{ loadVerb, VERBS }, help] = await Promise.all([import("./verbs/mod.ts"), import("./help.ts")]);
  const verbNames = [...Object.keys(VERBS), ...Object.keys(COMMANDS)];
  if (name === "topics" || name === "guides") {
    const { HELP_TOPICS } = await import("./help_topics.ts");
    await writeOut(help.renderTopicList(HELP_TOPICS, verbNames));
    return 0;
  }
  if (Object.hasOwn(COMMANDS, name)) {
    await writeOut(TOP_HELP);
    return 0;
  }
  const verb = await loadVerb(name);
  if (verb) {
    await writeOut(help.renderHelp(verb.spec(entries.map((e) => e.manifest))));
    return 0;
  }
  const topic = help.findTopic((await import("./help_topics.ts")).HELP_TOPICS, name);
  if (topic) {
    await writeOut(topic.text.endsWith("\n") ? topic.text : `${topic.text}\n`);
    return 0;
  }
  const near = verbNames.find((n) => n.startsWith(name.slice(0, 2)));
  throw new UsageError(`'${name}' is neither a remote verb nor a help topic`, {
    hint: `${near ? `did you mean 'remote help ${near}'? ` : ""}verbs: remote --help; guides: remote help topics`,
  });
}

/** `remote completions bash|zsh|fish`. */
async function completionsCommand(args: string[], entries: readonly TransportEntry[]): Promise<number> {
  const shell = args[0];
  if (shell !== "bash" && shell !== "zsh" && shell !== "fish") {
    throw new UsageError(`completions for '${shell ?? ""}' are not available`, {
      hint: "use: remote completions bash|zsh|fish",
    });
  }
  const [{ renderCompletions }, { verbSpecs }, { HELP_TOPICS }] = await Promise.all([
    import("./completions.ts"),
    import("./verbs/mod.ts"),
    import("./help_topics.ts"),
  ]);
  const verbs = await verbSpecs(entries.map((e) => e.manifest));
  const topics = HELP_TOPICS.map((t) => verbs.some((v) => v.name === t.name) ? `${t.name}.md` : t.name);
  await writeOut(renderCompletions(shell, "remote", verbs, topics));
  return 0;
}

/** The hidden verb that runs a built-in transport's background helper (e.g. the SSH reuse master). */
const BACKGROUND_VERB = "__transport-background";

/** Runs `remote __transport-background <id> ...args`: the program relaunching itself for a transport. */
async function transportBackground(args: string[], transports: readonly TransportEntry[]): Promise<number> {
  const entry = transports.find((t) => t.manifest.id === args[0]);
  const transport = entry ? await entry.load() : undefined;
  if (!transport?.background) {
    throw new UsageError(`transport '${args[0] ?? ""}' has no background helper`, {
      hint: "this verb is for remote's own use",
    });
  }
  const controller = new AbortController();
  const stop = () => controller.abort();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  try {
    return await transport.background(args.slice(1), { signal: controller.signal });
  } finally {
    Deno.removeSignalListener("SIGTERM", stop);
    Deno.removeSignalListener("SIGINT", stop);
  }
}

/**
 * `enter` with no target opens the local loopback session, as Enter-PSSession's first example: a shell, or
 * PowerShell with `--configuration-name` (core/verbs/enter.ts routes it the same way).
 */
function localEnter(verb: string, given: readonly string[]): boolean {
  const alone = new Set(["EscapeChar", "Command", "ForcePseudoTerminal", "DisablePseudoTerminal", "ConfigurationName"]);
  return verb === "enter" && given.every((name) => alone.has(name));
}

function pluginSpecifier(entry: UserConfig["plugins"][number]): string {
  return "path" in entry ? entry.path : "npm" in entry ? `npm:${entry.npm}` : entry.exec;
}

function takeGlobalOptions(argv: string[]): { plugins: string[]; rest: string[] } {
  const plugins: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === "--plugin") {
      const value = argv[i + 1];
      if (value === undefined) throw new UsageError("--plugin needs a value", { hint: "--plugin ./my_transport.ts" });
      plugins.push(value);
      i++;
    } else if (arg.startsWith("--plugin=")) {
      const value = arg.slice("--plugin=".length);
      if (value === "") throw new UsageError("--plugin needs a value", { hint: "--plugin ./my_transport.ts" });
      plugins.push(value);
    } else {
      rest.push(arg);
    }
  }
  return { plugins, rest };
}

/**
 * The verb module `loading` loads, once loaded.
 *
 * @throws {UsageError} when remote has no verb `name`, suggesting the nearest
 */
async function found(name: string, loading: Promise<Verb | undefined>): Promise<Verb> {
  const verb = await loading;
  if (!verb) {
    const { VERBS } = await import("./verbs/mod.ts");
    const near = Object.keys(VERBS).find((n) => n.startsWith(name.slice(0, 2)));
    throw new UsageError(`'${name}' is not a remote verb`, {
      hint: near ? `did you mean 'remote ${near}'? all verbs: remote --help` : "all verbs: remote --help",
    });
  }
  return verb;
}

/** Versions, and the transports that can load here (each entry's cheap probe); those that cannot, and why. */
async function versionText(options: CliOptions): Promise<string> {
  const checked = await Promise.all(options.transports.map(async (t) => {
    try {
      await t.probe?.();
      return { id: t.manifest.id };
    } catch (error) {
      return { id: t.manifest.id, why: error instanceof Error ? error.message.split("\n")[0] : String(error) };
    }
  }));
  const usable = checked.filter((c) => c.why === undefined).map((c) => c.id);
  const unusable = checked.filter((c) => c.why !== undefined).map((c) => `  ${c.why}\n`);
  return `remote ${options.version}\ndeno ${Deno.version.deno} (v8 ${Deno.version.v8}, typescript ${Deno.version.typescript})\n` +
    `transports: ${usable.join(", ")}\n` + (unusable.length > 0 ? `unavailable here:\n${unusable.join("")}` : "");
}

/** `remote plugin list` and `remote plugin info <name>`. */
async function pluginCommand(args: string[], entries: readonly TransportEntry[]): Promise<number> {
  const { describeOrigin } = await import("../plugins/mod.ts");
  const sub = args[0] ?? "list";
  if (sub === "list") {
    const rows = entries.map((e) => [
      e.manifest.id,
      e.manifest.version,
      describeOrigin(e.origin),
      e.manifest.capabilities.join(","),
      [e.manifest.id, ...(e.manifest.schemes ?? [])].map((s) => `${s}://`).join(" "),
    ]);
    await writeOut(table(["Name", "Version", "Source", "Capabilities", "Schemes"], rows));
    return 0;
  }
  if (sub === "info") {
    const name = args[1];
    const entry = entries.find((e) => e.manifest.id === name);
    if (!entry) {
      throw new RemoteError("notFound", `no transport named '${name ?? ""}'`, { hint: "see: remote plugin list" });
    }
    const { loadVerb } = await import("./verbs/mod.ts");
    const enter = (await loadVerb("enter"))?.spec(entries.map((e) => e.manifest));
    await writeOut(await pluginInfo(entry.manifest, enter));
    return 0;
  }
  throw new UsageError(`'remote plugin ${sub}' is not a command`, { hint: "use: remote plugin list | info <name>" });
}

async function pluginInfo(manifest: TransportManifest, enter: VerbSpec | undefined): Promise<string> {
  const own = new Set(manifest.parameters.map((p) => p.name));
  const sets = new Set(manifest.parameters.flatMap((p) => Object.keys(p.sets ?? {})));
  const header = `${manifest.id} ${manifest.version} — ${manifest.summary}\n` +
    `capabilities: ${manifest.capabilities.join(", ")}\n` +
    `schemes: ${[manifest.id, ...(manifest.schemes ?? [])].map((s) => `${s}://`).join(" ")}\n\n`;
  if (!enter) return header;
  const view: VerbSpec = {
    ...enter,
    defaultSet: manifest.defaultSet,
    parameters: enter.parameters
      .filter((p) => own.has(p.name) || (p.name === "HostName" && sets.has(enter.defaultSet ?? "")))
      .map((p) => ({ ...p, sets: p.sets && Object.fromEntries(Object.entries(p.sets).filter(([s]) => sets.has(s))) })),
    examples: [],
  };
  return header + (await import("./help.ts")).renderHelp(view);
}
