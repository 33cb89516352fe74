/**
 * `remote invoke` on its quickest road: the commonest calls — one plain host name, at most `-F <file>` and
 * `-o Key=Value`, then `--` and the command; or one container, `docker://NAME`, `podman://NAME` or
 * `--container-id NAME`, then `--` and the command — with no config file and no plugin executables are routed here
 * without the CLI's general machinery (the verb table, parameter-set binding, the config parser, the plugin
 * loader), which cost a command sent through the connection-reuse master a fifth of its CPU time
 * (BENCHMARKS.md, reused first byte). It builds the route those would have built for that call and
 * hands it to the same {@linkcode runInvoke}, so the transport, the master, output, stdin, Ctrl-C and every
 * error behave exactly as on the general road; anything else returns `undefined`, and the CLI takes over.
 *
 * @module
 */
import type { TransportEntry } from "./transport_catalog.ts";
import { DELIMITER } from "./_path.ts";
import { configPath, defaultPluginDir, EXECUTABLE_PREFIX } from "./user_files.ts";
// static, loaded with this module in one step: main.ts loads it for `invoke` only, and both roads run these
import { runInvoke } from "./invoke.ts";
import { terminalPrompter } from "./prompt.ts";
import { THROTTLE_LIMIT } from "./throttle_limit.ts";

/** What {@linkcode quickPlan} read from argv. */
export interface QuickPlan {
  host: string;
  /** the ssh transport's bound values: `ConfigFile` and `Options`, as the parameter binder gives them */
  parameters: Record<string, unknown>;
  command: string;
}

/** A host name alone: no user, port, scheme or anything a target parser or an option could read otherwise. */
const PLAIN_HOST = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
/** `-o Key=Value` with a plain key and a value without spaces, quotes or `=` */
const PLAIN_OPTION = /^([A-Za-z][A-Za-z0-9]*)=([^\s"'=\\]+)$/;

/**
 * Reads `invoke HOST [-F FILE] [-o KEY=VALUE]... -- WORD...`; `undefined` for any other shape (the general
 * road then reads it, with its own messages for what is wrong).
 *
 * @example
 * ```ts
 * import { quickPlan } from "./quick_invoke.ts";
 * const plan = quickPlan(["invoke", "db1", "-o", "Port=2222", "--", "uname", "-a"]);
 * console.assert(plan?.command === "uname -a" && plan.host === "db1");
 * ```
 */
export function quickPlan(argv: readonly string[]): QuickPlan | undefined {
  if (argv[0] !== "invoke") return undefined;
  const dash = argv.indexOf("--");
  if (dash < 0 || dash === argv.length - 1) return undefined;
  let host: string | undefined;
  let configFile: string | undefined;
  let options: Record<string, string> | undefined;
  for (let i = 1; i < dash; i++) {
    const arg = argv[i];
    const value = i + 1 < dash ? argv[i + 1] : undefined;
    if (arg === "-F" && configFile === undefined && value !== undefined && /^[^-\s][^\s]*$/.test(value)) {
      configFile = value;
      i++;
    } else if (arg === "-o" && value !== undefined) {
      const m = PLAIN_OPTION.exec(value);
      options ??= {};
      if (!m || Object.keys(options).some((k) => k.toLowerCase() === m[1].toLowerCase())) return undefined;
      options[m[1]] = m[2];
      i++;
    } else if (host === undefined && PLAIN_HOST.test(arg)) {
      host = arg;
    } else {
      return undefined;
    }
  }
  if (host === undefined) return undefined;
  const parameters: Record<string, unknown> = {};
  if (configFile !== undefined) parameters.ConfigFile = configFile;
  if (options !== undefined) parameters.Options = options;
  return { host, parameters, command: argv.slice(dash + 1).join(" ") };
}

/** A container name or ID as the core's target parser takes it for a `targetHost: "name"` transport. */
const CONTAINER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

/**
 * Reads `invoke docker://NAME -- WORD...`, `invoke podman://NAME -- WORD...` or
 * `invoke --container-id NAME -- WORD...` into the route the general road builds for it; `undefined` for any
 * other shape.
 *
 * @example
 * ```ts
 * import { quickContainerPlan } from "./quick_invoke.ts";
 * const plan = quickContainerPlan(["invoke", "docker://web1", "--", "echo", "hi"]);
 * console.assert(plan?.target.display === "docker://web1" && plan.command === "echo hi");
 * ```
 */
export function quickContainerPlan(argv: readonly string[]): QuickContainerPlan | undefined {
  if (argv[0] !== "invoke") return undefined;
  const dash = argv.indexOf("--");
  if (dash < 0 || dash === argv.length - 1) return undefined;
  const command = argv.slice(dash + 1).join(" ");
  if (dash === 2) {
    const m = /^(docker|podman):\/\/(.*)$/.exec(argv[1]);
    if (!m || !CONTAINER_NAME.test(m[2])) return undefined;
    return { target: { transport: "container", host: m[2], display: argv[1] }, parameters: {}, command };
  }
  if (dash === 3 && argv[1] === "--container-id" && CONTAINER_NAME.test(argv[2])) {
    const name = argv[2];
    return {
      target: { transport: "container", host: name, display: name },
      parameters: { ContainerId: name },
      command,
    };
  }
  return undefined;
}

/** What {@linkcode quickContainerPlan} read from argv: the route's target and parameters, and the command. */
export interface QuickContainerPlan {
  target: { transport: "container"; host: string; display: string };
  parameters: Record<string, unknown>;
  command: string;
}

/**
 * Runs `argv` on the quick road when it fits (see the module doc) and returns the exit code; `undefined`
 * when it does not, before anything was done.
 *
 * @throws {RemoteError} as the general road would, once the run has started
 */
export async function quickInvoke(
  argv: readonly string[],
  entries: readonly TransportEntry[],
): Promise<number | undefined> {
  const route = quickRoute(argv, entries);
  if (!route) return undefined;
  // a config file may map the host to another transport, set defaults or load plugins: the general road reads it
  const config = configPath();
  if (config !== undefined && !missing(config)) return undefined;
  // a plugin executable may add parameters, or clash: the general road loads it
  const dirs = [defaultPluginDir(), ...(Deno.env.get("PATH") ?? "").split(DELIMITER)];
  const listed = new Set<string>();
  if (dirs.some((dir) => holdsPlugin(dir, EXECUTABLE_PREFIX, listed))) return undefined;
  return await runInvoke({
    routes: [{ entry: route.entry, target: route.target, parameters: route.parameters }],
    command: route.command,
    throttle: THROTTLE_LIMIT.default,
    json: false,
    reuse: true,
    disconnected: false,
    prompter: terminalPrompter(),
    registry: () => import("./registry.ts").then(({ Registry }) => new Registry()),
  });
}

/** The one route of a quick call, with its transport's entry; `undefined` when argv does not fit. */
function quickRoute(argv: readonly string[], entries: readonly TransportEntry[]) {
  const plan = quickPlan(argv);
  const ssh = entries.find((e) => e.manifest.id === "ssh");
  if (plan && ssh) {
    const target = { transport: "ssh", host: plan.host, display: plan.host };
    return { entry: ssh, target, parameters: plan.parameters, command: plan.command };
  }
  const container = quickContainerPlan(argv);
  const entry = entries.find((e) => e.manifest.id === "container");
  if (container && entry) return { entry, ...container };
  return undefined;
}

/** Whether `file` surely does not exist. */
function missing(file: string): boolean {
  try {
    Deno.statSync(file);
    return false;
  } catch (err) {
    return err instanceof Deno.errors.NotFound;
  }
}

/**
 * Whether folder `dir` holds anything named like a plugin executable (an unreadable one counts as not); a
 * folder in `listed` (by device and inode) was looked at already under another name — `/bin` and `/usr/bin`
 * are one folder on most Linux systems now, and PATH names both — and is not listed again.
 */
function holdsPlugin(dir: string, prefix: string, listed: Set<string>): boolean {
  if (dir === "") return false;
  try {
    const { dev, ino } = Deno.statSync(dir);
    if (ino !== null) {
      if (listed.has(`${dev}:${ino}`)) return false;
      listed.add(`${dev}:${ino}`);
    }
    for (const e of Deno.readDirSync(dir)) if (e.name.startsWith(prefix)) return true;
  } catch {
    // a PATH entry that does not exist is normal
  }
  return false;
}
