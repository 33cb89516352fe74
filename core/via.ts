/**
 * `--via`: reaching a target through another transport's connection. The core routes the via target like any
 * target (`admin@host`, `ssh://…`, `ssm://i-…`, or a bare transport name meaning that transport to the target's own
 * host: `--via ssm`), opens the via transport's {@linkcode Dialer} once, on the first stream asked for, and hands the
 * target's transport `OpenContext.dial` bound to it. Neither transport imports the other; both only see the SDK.
 *
 * Loaded lazily by the verbs (`core/verbs/_run.ts`: `throughVia`, `configuredVia`), only when `--via` is given or a
 * `[hosts."pattern"]` table of the user's config has a `via` for the host.
 *
 * @module
 */
import {
  type DialAddress,
  type Dialer,
  type DialStream,
  HOST_SET,
  type OpenContext,
  type Prompter,
  RemoteError,
  type TransportManifest,
} from "../plugins/mod.ts";
import type { UserConfig } from "./config.ts";
import { UnsupportedError, UsageError } from "./errors.ts";
import type { Resolution } from "./parameter_set.ts";
import { type CoreParameters, refuseUnusedOptions, type Route, route } from "./route.ts";
import { transportForScheme } from "./target.ts";
import type { TransportEntry } from "./transport_catalog.ts";
import { loadTransport, openContext, requireCapability } from "./transport_use.ts";

/** The via connections of one run: one per via target, shared by every route through it. */
export interface ViaSet extends AsyncDisposable {
  /** `route` with `dial` set to a stream opener through its via */
  bind(route: Route): Route;
}

/**
 * Routes each route's via (`texts`: `--via`, or the `via` of the host's `[hosts."pattern"]` table; undefined for
 * none) and returns the set of via connections, none opened yet. Options go to the transport that declares them;
 * one both declare goes to the target's transport, not the via.
 *
 * @throws {UsageError} a malformed via target, an option neither transport takes
 * @throws {UnsupportedError} a target's transport that cannot go through another (no `via`), or a via transport
 * that cannot carry streams (no `dial`)
 */
export function routeVia(
  texts: readonly (string | undefined)[],
  routes: readonly Route[],
  resolution: Resolution,
  core: CoreParameters,
  entries: readonly TransportEntry[],
  config: UserConfig,
  prompter: Prompter,
): ViaSet {
  const manifests = entries.map((e) => e.manifest);
  const byTarget = new Map<string, Via>();
  const viaOf = new Map<Route, Via>();
  for (const [i, r] of routes.entries()) {
    const text = texts[i];
    if (text === undefined) continue;
    requireCapability(
      r.entry,
      "via",
      `${r.entry.manifest.id} opens its own connections; drop --via (or the via of the host in your config)`,
    );
    const viaText = bareTransport(text, manifests) ? `${text.toLowerCase()}://${r.target.host}` : text;
    const own = new Set(r.entry.manifest.parameters.map((p) => p.name));
    const values = Object.fromEntries(
      Object.entries(resolution.values).filter(([name]) => !own.has(name) && name !== "HostName"),
    );
    const viaRoute = route(
      { verb: resolution.verb, set: HOST_SET, values, given: [], missing: [] },
      core,
      entries,
      config,
      viaText,
      "ignore",
    );
    requireCapability(viaRoute.entry, "dial", `${viaRoute.entry.manifest.id} cannot carry another connection`);
    const key = JSON.stringify([viaRoute.entry.manifest.id, viaRoute.target, viaRoute.parameters]);
    let via = byTarget.get(key);
    if (!via) byTarget.set(key, via = new Via(viaRoute, prompter));
    viaOf.set(r, via);
  }
  const used = [...routes.map((r) => r.entry.manifest), ...[...byTarget.values()].map((v) => v.route.entry.manifest)];
  refuseUnusedOptions(resolution, core, manifests, used, routes[0]?.target.host ?? "host");
  return {
    bind(r) {
      const via = viaOf.get(r);
      if (!via) return r;
      return { ...r, dial: (to) => via.dial(to) };
    },
    async [Symbol.asyncDispose]() {
      await Promise.all([...byTarget.values()].map((v) => v[Symbol.asyncDispose]()));
    },
  };
}

/** `--via ssm`: a transport's ID or scheme alone, with no host, means that transport to the target's own host. */
function bareTransport(text: string, manifests: readonly TransportManifest[]): boolean {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*$/.test(text)) return false;
  return transportForScheme(text.toLowerCase(), manifests) !== undefined;
}

/** One via connection: opened on the first dial, by the via transport's `dialer`. */
class Via implements AsyncDisposable {
  readonly route: Route;
  readonly #prompter: Prompter;
  readonly #closing = new AbortController();
  #dialer: Promise<Dialer> | undefined;

  constructor(route: Route, prompter: Prompter) {
    this.route = route;
    this.#prompter = prompter;
  }

  dial(to: DialAddress): Promise<DialStream> {
    this.#dialer ??= this.#open();
    return this.#dialer.then((d) => d.dial(to));
  }

  async #open(): Promise<Dialer> {
    const transport = await loadTransport(this.route.entry);
    if (typeof transport.dialer !== "function" || !transport.manifest.capabilities.includes("dial")) {
      throw new UnsupportedError(this.route.entry.manifest.id, "carrying another connection (dial)", {
        hint: "this build of the transport has no dialer; go directly instead",
      });
    }
    const ctx: OpenContext = openContext(
      this.route.target,
      this.route.parameters,
      this.#prompter,
      this.#closing.signal,
    );
    try {
      return await transport.dialer(ctx);
    } catch (error) {
      if (error instanceof RemoteError) {
        throw new RemoteError(error.code, `via ${this.route.target.display}: ${error.message}`, {
          hint: error.hint,
          cause: error,
        });
      }
      throw error;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const dialer = this.#dialer;
    this.#dialer = Promise.reject(new UsageError("the via connection is closed")); // never dialled after close
    this.#dialer.catch(() => {});
    this.#closing.abort();
    await dialer?.then((d) => d[Symbol.asyncDispose](), () => {});
  }
}
