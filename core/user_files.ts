/**
 * Where remote's per-user files are: the config file and the folder and names of plugin executables. Apart
 * from core/config.ts and core/plugin_loader.ts, which re-export them, so that core/quick_invoke.ts can
 * look for those files without loading the TOML parser and the plugin protocol (BENCHMARKS.md, reused
 * first byte).
 *
 * @example
 * ```ts
 * import { configPath } from "./user_files.ts";
 * console.assert(configPath({ HOME: "/home/me" }) === "/home/me/.config/remote/config.toml");
 * ```
 *
 * @module
 */
import { isAbsolute, join } from "./_path.ts";

/**
 * The path of the config file: `$XDG_CONFIG_HOME/remote/config.toml` when that variable is an absolute
 * path, else `$HOME/.config/remote/config.toml`; undefined when neither is set.
 */
export function configPath(env: Record<string, string | undefined> = Deno.env.toObject()): string | undefined {
  const config = env.XDG_CONFIG_HOME;
  if (config && isAbsolute(config)) return join(config, "remote", "config.toml");
  if (env.HOME) return join(env.HOME, ".config", "remote", "config.toml");
  return undefined;
}

/** The prefix of an out-of-process plugin's file name. */
export const EXECUTABLE_PREFIX = "remote-transport-";

/** `$XDG_DATA_HOME/remote/plugins`, or `~/.local/share/remote/plugins`. */
export function defaultPluginDir(): string {
  const data = Deno.env.get("XDG_DATA_HOME") ||
    join(Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".", ".local", "share");
  return join(data, "remote", "plugins");
}
