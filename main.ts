/**
 * remote: interactive sessions on any machine. The entry point wires the built-in transports into
 * the core and turns errors into the two-line message and exit code the user sees.
 *
 * @example Run it
 * ```sh
 * deno run -A main.ts enter admin@db1
 * ```
 *
 * @module
 */
import { runCli } from "./core/cli.ts";
import { ExitCode, RemoteError } from "./core/errors.ts";
import { printable } from "./core/output.ts";
import type { TransportEntry } from "./core/transport_catalog.ts";
import { builtinTransports } from "./transports/mod.ts";

/** remote's version, printed by `remote --version`. */
export const VERSION = "0.1.0";

/**
 * Runs remote with `argv` and returns the exit code; a custom build passes extra transports
 * compiled in beside the built-ins.
 */
export async function main(argv: string[], extraTransports: readonly TransportEntry[] = []): Promise<number> {
  try {
    // `invoke host -- cmd` and `invoke docker://name -- cmd`, the commonest calls, skip the CLI's general
    // machinery (core/quick_invoke.ts)
    if (argv[0] === "invoke" && extraTransports.length === 0) {
      const { quickInvoke } = await import("./core/quick_invoke.ts");
      const code = await quickInvoke(argv, builtinTransports);
      if (code !== undefined) return code;
    }
    return await runCli(argv, { version: VERSION, transports: [...builtinTransports, ...extraTransports] });
  } catch (error) {
    return reportError(error);
  }
}

/** Prints an error as the user should see it and returns the exit code. */
export function reportError(error: unknown): number {
  const debug = Deno.env.get("REMOTE_DEBUG") === "1";
  // The reader of stdout went away (`remote help enter | head -1`): stop quietly, as a tool killed by
  // SIGPIPE would, with its status 128+13.
  if (error instanceof Deno.errors.BrokenPipe) return ExitCode.brokenPipe;
  if (error instanceof RemoteError) {
    console.error(`remote: ${printable(error.message)}`);
    if (error.hint) console.error(`hint: ${printable(error.hint)}`);
    if (debug) console.error(error.stack, error.cause);
    return error.exitCode;
  }
  // Anything else is a bug in remote: show everything.
  console.error("remote: internal error (a bug; please report it with the lines below)");
  console.error(error instanceof Error ? error.stack : String(error));
  return ExitCode.bug;
}

if (import.meta.main) {
  const code = await main(Deno.args);
  // Exit explicitly: a read of piped stdin cannot be cancelled, and would keep the process alive after
  // the remote side has ended. Output was written with awaited writes, so nothing is lost.
  Deno.exit(code);
}
