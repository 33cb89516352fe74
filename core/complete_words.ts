/**
 * The words the shell completion scripts ask for while the user presses Tab, by the hidden command
 * `remote __complete <kind> [word]`, one a line on stdout:
 *
 * - `hosts`: the host names the default transport knows (for ssh, the `Host` names of ssh_config
 *   without wildcards);
 * - `names`, `ids`: the recorded sessions' names and local Ids, from the registry;
 * - `paths host:path`: the entries under `path` on `host` (a folder ends with `/`), as `host:entry`,
 *   only when the transport already holds a connection to it (for ssh, the reuse master's): a Tab never
 *   opens a connection or asks anything.
 *
 * Each is bounded in time ({@linkcode COMPLETE_MS}) and prints nothing on any failure.
 *
 * @module
 */
import { HOST_SET, parseCopyOperand, type TransportEntry } from "../plugins/mod.ts";
import type { UserConfig } from "./config.ts";
import { nonInteractivePrompter } from "./prompt.ts";
import { loadTransport, openContext } from "./transport_use.ts";

/** The longest a completion may take before it offers nothing. */
export const COMPLETE_MS = 2_000;

/** The hidden verb the completion scripts run. */
export const COMPLETE_VERB = "__complete";

/** The kinds of words {@linkcode completeWords} finds. */
export type CompleteKind = "hosts" | "names" | "ids" | "paths";

/**
 * The completions of `word` for `kind`, each starting with `word`; `[]` when there are none, the
 * time runs out, or anything fails.
 *
 * @example Hosts
 * ```ts ignore
 * const hosts = await completeWords("hosts", "db", entries, config);
 * ```
 */
export async function completeWords(
  kind: string,
  word: string,
  entries: readonly TransportEntry[],
  config: UserConfig,
): Promise<string[]> {
  const signal = AbortSignal.timeout(COMPLETE_MS);
  const timeout = new Promise<string[]>((resolve) => signal.addEventListener("abort", () => resolve([])));
  const words = find(kind, word, entries, config, signal).catch(() => []);
  const found = await Promise.race([words, timeout]);
  return [...new Set(found.filter((w) => w.startsWith(word) && !/[\n\r]/.test(w)))];
}

async function find(
  kind: string,
  word: string,
  entries: readonly TransportEntry[],
  config: UserConfig,
  signal: AbortSignal,
): Promise<string[]> {
  switch (kind) {
    case "hosts": {
      const entry = entries.find((e) => e.manifest.id === (config.defaults.transport ?? "ssh"));
      const transport = entry ? await loadTransport(entry) : undefined;
      return (await transport?.complete?.({ kind: "hosts", signal })) ?? [];
    }
    case "names":
    case "ids": {
      const { Registry } = await import("./registry.ts");
      const records = await new Registry().list();
      return records.map((r) => kind === "ids" ? String(r.id) : r.name);
    }
    case "paths":
      return await paths(word, entries, config, signal);
    default:
      return [];
  }
}

async function paths(
  word: string,
  entries: readonly TransportEntry[],
  config: UserConfig,
  signal: AbortSignal,
): Promise<string[]> {
  const operand = parseCopyOperand(word);
  if (operand.host === undefined || operand.host === "") return [];
  const { route } = await import("./route.ts");
  const r = route(
    { verb: "copy", set: HOST_SET, values: {}, given: [], missing: [] },
    new Set(),
    entries,
    config,
    operand.host,
  );
  if (!r.entry.manifest.capabilities.includes("copy")) return [];
  const transport = await loadTransport(r.entry);
  if (!transport.complete) return [];
  const ctx = openContext(r.target, r.parameters, nonInteractivePrompter(), signal);
  // notices (a warning about the master, say) must not land in the middle of the user's command line
  const found = await transport.complete({ kind: "paths", ctx: { ...ctx, notice: () => {} }, path: operand.path });
  return found.map((entry) => `${operand.host}:${entry}`);
}
