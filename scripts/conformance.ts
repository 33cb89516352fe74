/**
 * `deno task conformance <transport-id | path | remote-transport-executable> [options]`: runs the
 * conformance suite against one transport and prints a line per case; exit 0 when all pass.
 *
 * Options: `--target <host>` (default localhost), `--param Name=value` (bound parameters, repeatable),
 * `--malformed Name=value` (a parameter value the transport must refuse, repeatable),
 * `--large-output <bytes>`. Command recipes are POSIX shell.
 *
 * @module
 */
import { loadExecutableEntry, loadPluginEntries } from "../core/plugin_loader.ts";
import { type MalformedCase, type OpenContext, runConformance, type Transport, UsageError } from "../plugins/mod.ts";

async function loadTransport(what: string): Promise<Transport> {
  const exe = /(^|[\\/])remote-transport-([a-z][a-z0-9+.-]*)$/.exec(what);
  if (exe) return await (await loadExecutableEntry(what, exe[2])).load();
  if (/[\\/.]/.test(what) || what.startsWith("npm:")) {
    const [entry] = await loadPluginEntries({ specifiers: [what], executables: false, pluginDir: "", path: "" });
    return await entry.load();
  }
  const { builtinTransports } = await import("../transports/mod.ts");
  const entry = builtinTransports.find((e) => e.manifest.id === what);
  if (entry === undefined) {
    throw new UsageError(`no built-in transport ${what}`, {
      hint: `one of: ${builtinTransports.map((e) => e.manifest.id).join(", ")}, or a path to a plugin`,
    });
  }
  return await entry.load();
}

if (import.meta.main) {
  const args = [...Deno.args];
  const what = args.shift();
  const params: Record<string, string> = {};
  const malformed: MalformedCase[] = [];
  let host = "localhost";
  let large: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const [flag, value] = [args[i], args[++i] ?? ""];
    const [k, ...v] = value.split("=");
    if (flag === "--target") host = value;
    else if (flag === "--param") params[k] = v.join("=");
    else if (flag === "--malformed") malformed.push({ what: value, parameters: { ...params, [k]: v.join("=") } });
    else if (flag === "--large-output") large = Number(value);
    else {
      console.error(`conformance: unknown option ${flag}`);
      Deno.exit(230);
    }
  }
  if (what === undefined || what.startsWith("-")) {
    console.error("usage: deno task conformance <transport-id | path> [--target <host>] [--param Name=value]...");
    Deno.exit(230);
  }
  try {
    const transport = await loadTransport(what);
    const id = transport.manifest.id;
    const context = (signal: AbortSignal): OpenContext => ({
      target: { transport: id, host, display: `${id}://${host}` },
      parameters: params,
      signal,
      prompt: { interactive: false, ask: () => Promise.reject(new UsageError("the conformance suite cannot answer")) },
      notice: (line) => console.error(`notice: ${line}`),
    });
    const report = await runConformance(
      { transport, context, malformed, largeOutputBytes: large },
      (name, error) => console.log(error === undefined ? `ok    ${name}` : `FAIL  ${name}: ${error}`),
    );
    console.log(`${id}: ${report.passed.length} passed, ${report.failed.length} failed`);
    Deno.exit(report.failed.length === 0 ? 0 : 1);
  } catch (e) {
    const hint = (e as { hint?: string }).hint;
    console.error(`remote: ${(e as Error).message}`);
    if (hint) console.error(`hint: ${hint}`);
    Deno.exit((e as { exitCode?: number }).exitCode ?? 1);
  }
}
