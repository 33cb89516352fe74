/**
 * What the verbs' handlers share: Ctrl-C for verbs without a terminal bridge, the context a transport
 * is opened with, and reading the target, escape character and session selector they were given.
 *
 * @module
 */
import type { OpenContext, Prompter } from "../../plugins/mod.ts";
import { RemoteError } from "../errors.ts";
import type { Route } from "../route.ts";
import type { SessionChoice } from "../session_records.ts";
import { parseEscapeChar } from "../terminal_bridge.ts";
import type { TransportEntry } from "../transport_catalog.ts";
import { openContext } from "../transport_use.ts";

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
