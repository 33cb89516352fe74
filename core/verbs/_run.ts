/**
 * What the verbs' handlers share: Ctrl-C for verbs without a terminal bridge, the context a transport
 * is opened with, and reading the target, escape character and session selector they were given.
 *
 * @module
 */
import type { OpenContext, Prompter } from "../../plugins/mod.ts";
import { hostMapping } from "../config.ts";
import { RemoteError } from "../errors.ts";
import { type CoreParameters, refuseUnusedOptions, type Route } from "../route.ts";
import type { SessionChoice } from "../session_records.ts";
import { parseEscapeChar } from "../terminal_bridge.ts";
import type { TransportEntry } from "../transport_catalog.ts";
import { openContext } from "../transport_use.ts";
import type { VerbInput } from "./_verb.ts";

/** A shutdown signal for non-interactive verbs: Ctrl-C (reason: 130) and SIGTERM (reason: 143) abort it. */
export function interruptSignal(): { signal: AbortSignal; [Symbol.dispose](): void } {
  const controller = new AbortController();
  const listeners: [Deno.Signal, () => void][] = [
    ["SIGINT", () => controller.abort(new RemoteError("interrupted", "interrupted"))],
    ["SIGTERM", () => controller.abort(new RemoteError("terminated", "terminated by SIGTERM"))],
  ];
  for (const [s, listener] of listeners) Deno.addSignalListener(s, listener);
  return {
    signal: controller.signal,
    [Symbol.dispose]() {
      for (const [s, listener] of listeners) Deno.removeSignalListener(s, listener);
    },
  };
}

/** The context the route's transport is opened with. */
export function contextFor(r: Route, prompter: Prompter, signal: AbortSignal): OpenContext {
  return openContext(r.target, r.parameters, prompter, signal, r.dial);
}

/** A route through its via (or not), and the via connection to close once the verb is done with the route. */
export interface ViaRoute extends AsyncDisposable {
  route: Route;
}

/**
 * `--via` (`given`), else the `via` of the user's `[hosts."pattern"]` mapping for the route's host: the route with
 * `OpenContext.dial` bound to the via's connection (core/via.ts, loaded only then). Without a via, the options that
 * no transport of the route takes are refused here, so route with `"ignore"` before.
 *
 * @throws {UsageError} an option neither the target's nor the via's transport takes
 * @throws {UnsupportedError} a transport that cannot go through another, or a via that cannot carry it
 */
export async function throughVia(
  input: VerbInput,
  direct: Route,
  given: string | undefined,
  core: CoreParameters,
): Promise<ViaRoute> {
  const text = given ?? hostMapping(input.config, direct.target.host)?.via;
  if (text === undefined) {
    const manifests = input.entries.map((e) => e.manifest);
    refuseUnusedOptions(input.resolution, core, manifests, [direct.entry.manifest], direct.target.host);
    return { route: direct, async [Symbol.asyncDispose]() {} };
  }
  const { routeVia } = await import("../via.ts");
  const { resolution, entries, config, prompter } = input;
  const set = routeVia([text], [direct], resolution, core, entries, config, prompter);
  return { route: set.bind(direct), [Symbol.asyncDispose]: () => set[Symbol.asyncDispose]() };
}

/**
 * A recorded session's route through `--via` (`given`, for the verbs that take it) or the `via` the user's config
 * gives its host, if any: `remote connect`, `receive`, `disconnect`, `remove` reach a session's host as `new` did when
 * that was the config's `via`. (A `--via` given to `new` is not recorded: put it in the config to reach the session
 * again, or give it again.)
 */
export async function configuredVia(input: VerbInput, r: Route, given?: string): Promise<ViaRoute> {
  const text = given ?? hostMapping(input.config, r.target.host)?.via;
  if (text === undefined) return { route: r, async [Symbol.asyncDispose]() {} };
  const { routeVia } = await import("../via.ts");
  const { resolution, entries, config, prompter } = input;
  // the verb's own options stay with it; the via reads its target string and its config
  const set = routeVia([text], [r], resolution, new Set(resolution.given), entries, config, prompter);
  return { route: set.bind(r), [Symbol.asyncDispose]: () => set[Symbol.asyncDispose]() };
}

/** `-e` as ssh reads it; `~` when not given. */
export function escapeCharOf(value: string | undefined): string | null {
  return value === undefined ? "~" : parseEscapeChar(value);
}

/** The recorded sessions a verb's `--id`, `--instance-id` or `--name` picks: the first given, in that order. */
export function sessionChoice(params: SessionChoice): SessionChoice {
  return params.id !== undefined
    ? { id: params.id }
    : params.instanceId !== undefined
    ? { instanceId: params.instanceId }
    : { name: params.name ?? "" };
}

/** The route of `remote enter` with no target: a shell on this computer. */
export function localRoute(entries: readonly TransportEntry[]): Route {
  const entry = entries.find((e) => e.manifest.id === "local");
  if (!entry) throw new RemoteError("notFound", "no local transport in this build", { hint: "name a host" });
  return {
    entry,
    parameters: {},
    target: { transport: "local", host: "localhost", display: "localhost" },
  };
}
