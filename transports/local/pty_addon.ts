/**
 * Whether the local transport can run here: its PTY comes from a native Node-API addon (npm
 * `@lydell/node-pty` and the binary package for this OS and CPU), which must exist on disk beside the
 * program — in `node_modules/` of the source tree, beside an installed bundle, or inside a compiled
 * binary. Looked for by `remote --version` (without loading the transport), and turned into a clear
 * error when the transport is used without it.
 *
 * @example Checking
 * ```ts ignore
 * import { probe } from "./pty_addon.ts";
 * await probe(); // rejects with the reason when the addon cannot be loaded
 * ```
 *
 * @module
 */
import { RemoteError } from "../../plugins/mod.ts";

// Node's names (process.platform, process.arch), without loading Node's modules: `remote --version` stays quick
const NODE_OS: Record<string, string> = { windows: "win32" };
const NODE_ARCH: Record<string, string> = { x86_64: "x64", aarch64: "arm64" };

/** The npm package that carries the addon for this machine, e.g. `@lydell/node-pty-linux-x64`. */
export const ADDON_PACKAGE = `@lydell/node-pty-${NODE_OS[Deno.build.os] ?? Deno.build.os}-${
  NODE_ARCH[Deno.build.arch] ?? Deno.build.arch
}`;

/**
 * Finds the addon the way node-pty's own `require` will, without loading it (loading node-pty starts
 * Node's module system: ~100 ms, too much for `remote --version`): beside a bundle, `require()` looks in
 * `node_modules/` from the bundle's folder; in the source tree and a compiled binary, the binary
 * package is the sibling of node-pty's own folder (Deno's layout and npm's hoisted one alike). Rejects
 * when neither place has it.
 *
 * @throws {RemoteError} `unsupported` (234) when the addon is not there
 */
export async function probe(): Promise<void> {
  const places: URL[] = [];
  // Node's lookup from a bundle's folder: node_modules/ there, then in each folder above it
  for (let dir = new URL(".", import.meta.url);; dir = new URL("..", dir)) {
    places.push(new URL(`node_modules/${ADDON_PACKAGE}/pty.node`, dir));
    if (dir.pathname === "/" || places.length > 64) break;
  }
  try {
    const nodePty = new URL(import.meta.resolve("@lydell/node-pty"));
    places.unshift(new URL(`../${ADDON_PACKAGE.split("/")[1]}/pty.node`, nodePty));
  } catch {
    // a bundle run without a config: the bare name is not mapped
  }
  for (const place of places) {
    if (place.protocol === "file:" && (await Deno.stat(place).catch(() => undefined))?.isFile) return;
  }
  throw addonMissing(new Error(`no ${ADDON_PACKAGE}/pty.node beside node-pty or in node_modules/ above the program`));
}

/** The error for a local transport whose PTY addon cannot be loaded (`cause` says why). */
export function addonMissing(cause: unknown): RemoteError {
  return new RemoteError(
    "unsupported",
    `the local transport cannot run here: its PTY addon ${ADDON_PACKAGE} cannot be loaded`,
    {
      cause,
      hint: "reinstall remote (sh install.sh puts the addon beside the bundle), or run it from the source tree",
    },
  );
}
