/**
 * Which engine socket to use, as the docker and podman clients choose it: `--docker-host`, else the environment
 * (`DOCKER_HOST`; `DOCKER_CONTEXT` or the current context of `~/.docker/config.json`, read from the context store;
 * `CONTAINER_HOST` for Podman), else the engine's default socket.
 *
 * @module
 */
import { UsageError } from "../../plugins/mod.ts";

/** Which engine a target names: `docker://` (and `--container-id`) or `podman://`. */
export type EngineKind = "docker" | "podman";

/** An engine's address. */
export type EngineEndpoint =
  | { transport: "unix"; path: string; display: string }
  | { transport: "tcp"; hostname: string; port: number; display: string };

/** Where the docker CLI looks when nothing else is said (Docker docs, "Daemon socket option"). */
export const DOCKER_DEFAULT_SOCKET = "unix:///var/run/docker.sock";

/** What the environment holds that matters here; a function so tests and callers pass their own. */
export type EnvReader = (name: string) => string | undefined;

/** Reads the process environment, or nothing where access is denied. */
export const processEnv: EnvReader = (name) => {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
};

/**
 * Parses `unix:///path` or `tcp://host:port` (also `unix:/path`, and `tcp://host` on 2375).
 *
 * @throws {UsageError} for any other form
 *
 * @example
 * ```ts
 * import { parseEngineHost } from "./engine_host.ts";
 * const e = parseEngineHost("unix:///run/podman/podman.sock", "--docker-host");
 * console.assert(e.transport === "unix" && e.path === "/run/podman/podman.sock");
 * ```
 */
export function parseEngineHost(text: string, from: string): EngineEndpoint {
  const value = text.trim();
  const hint = "write it as unix:///path/to/engine.sock or tcp://host:2375";
  if (value.startsWith("unix://") || value.startsWith("unix:/")) {
    const path = value.replace(/^unix:(\/\/)?/, "");
    if (!path.startsWith("/")) throw new UsageError(`${from} ${value} has no absolute socket path`, { hint });
    return { transport: "unix", path, display: `unix://${path}` };
  }
  const tcp = /^tcp:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]{1,5}))?\/?$/.exec(value);
  if (tcp) {
    const port = tcp[2] === undefined ? 2375 : Number(tcp[2]);
    if (port < 1 || port > 65535) throw new UsageError(`${from} ${value} has a bad port`, { hint });
    const hostname = tcp[1].replace(/^\[|\]$/g, "");
    return { transport: "tcp", hostname, port, display: `tcp://${tcp[1]}:${port}` };
  }
  if (value.startsWith("ssh://")) {
    throw new UsageError(`${from} ${value}: remote reaches an engine on an SSH host with --via, not ssh://`, {
      hint: `use --via ${value.slice("ssh://".length).replace(/\/.*$/, "")} (and --docker-host for the socket there)`,
    });
  }
  throw new UsageError(`${from} ${value} is not an engine address`, { hint });
}

/**
 * Chooses the engine endpoint for a target.
 *
 * @throws {UsageError} when the chosen value is malformed, or TLS is asked for (not supported yet)
 */
export async function resolveEngineHost(
  kind: EngineKind,
  given: string | undefined,
  env: EnvReader,
): Promise<EngineEndpoint> {
  if (given !== undefined && given !== "") return parseEngineHost(given, "--docker-host");
  if (kind === "podman") {
    const host = env("CONTAINER_HOST");
    if (host) return parseEngineHost(host, "CONTAINER_HOST");
    const runtime = env("XDG_RUNTIME_DIR");
    const root = Deno.uid?.() === 0;
    return parseEngineHost(
      root || !runtime ? "unix:///run/podman/podman.sock" : `unix://${runtime}/podman/podman.sock`,
      "podman's default socket",
    );
  }
  if (env("DOCKER_TLS_VERIFY")) {
    throw new UsageError("DOCKER_TLS_VERIFY is set, and remote does not speak TLS to the engine yet", {
      hint: "unset DOCKER_TLS_VERIFY and reach the engine over its unix socket",
    });
  }
  // DOCKER_HOST wins over DOCKER_CONTEXT, as the docker CLI really does it
  const host = env("DOCKER_HOST");
  if (host) return parseEngineHost(host, "DOCKER_HOST");
  const fromContext = await contextHost(env);
  if (fromContext) return parseEngineHost(fromContext.host, `docker context ${fromContext.name}`);
  return parseEngineHost(DOCKER_DEFAULT_SOCKET, "docker's default socket");
}

/**
 * The engine address of the current docker context: `DOCKER_CONTEXT`, else `currentContext` in config.json (under
 * `DOCKER_CONFIG`, default `~/.docker`). The store keeps a context in `contexts/meta/<sha256 of its name>/meta.json`
 * (docker/cli, cli/context/store). `default` means the built-in default socket.
 */
async function contextHost(env: EnvReader): Promise<{ name: string; host: string } | undefined> {
  const configDir = env("DOCKER_CONFIG") ?? (env("HOME") ? `${env("HOME")}/.docker` : undefined);
  if (!configDir) return undefined;
  let name = env("DOCKER_CONTEXT");
  if (!name) {
    try {
      const config = JSON.parse(Deno.readTextFileSync(`${configDir}/config.json`));
      name = typeof config?.currentContext === "string" ? config.currentContext : undefined;
    } catch {
      return undefined;
    }
  }
  if (!name || name === "default") return undefined;
  const metaPath = `${configDir}/contexts/meta/${await sha256Hex(name)}/meta.json`;
  let meta: unknown;
  try {
    meta = JSON.parse(Deno.readTextFileSync(metaPath));
  } catch {
    throw new UsageError(`docker context ${name} is not in ${configDir}/contexts`, {
      hint: "list contexts with: docker context ls; or unset DOCKER_CONTEXT",
    });
  }
  const host = (meta as { Endpoints?: { docker?: { Host?: unknown } } })?.Endpoints?.docker?.Host;
  if (typeof host !== "string") {
    throw new UsageError(`docker context ${name} names no docker endpoint`, { hint: "check: docker context inspect" });
  }
  return { name, host };
}

/**
 * Hex SHA-256 of `text`, only when a context is named: WebCrypto, because node:crypto would start Deno's Node layer
 * on every container run (20 to 60 ms of the time to first byte, measured).
 */
async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
