/**
 * Docker Engine API version negotiation, as the docker CLI does it: ping, take the engine's `Api-Version` header,
 * use the lower of it and the client's maximum, and prefix every path with `/v<major>.<minor>`. An engine that
 * sends no header is taken to speak 1.24 (the version before the header existed, Docker Engine API changelog).
 * `DOCKER_API_VERSION` pins the version and turns negotiation off.
 *
 * @module
 */
import { TransportError, UsageError } from "../../plugins/mod.ts";

/**
 * The oldest API this client speaks: 1.25 added `Env` to exec create, which the transport sends. (`WorkingDir`
 * needs 1.35; it is refused with its own message below that.)
 */
export const MIN_API_VERSION = "1.25";

/**
 * The newest API this client knows: 1.42 added `ConsoleSize` to exec create/start and the multiplexed-stream
 * content type, the last exec changes it reads; nothing about exec changed up to 1.44 (Podman 5's maximum).
 */
export const MAX_API_VERSION = "1.44";

/** What an engine is assumed to speak when its ping has no `Api-Version` header. */
export const FALLBACK_API_VERSION = "1.24";

const VERSION = /^([0-9]{1,3})\.([0-9]{1,3})$/;

/** Orders two `major.minor` versions: negative, zero or positive. */
export function compareApiVersions(a: string, b: string): number {
  const [am, an] = parts(a);
  const [bm, bn] = parts(b);
  return am !== bm ? am - bm : an - bn;
}

function parts(v: string): [number, number] {
  const m = VERSION.exec(v);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** What negotiation settled on. */
export interface NegotiatedVersion {
  /** `major.minor`, as the path prefix takes it */
  version: string;
  /** true when DOCKER_API_VERSION chose it */
  pinned: boolean;
}

/**
 * Chooses the API version from the engine's ping header and an optional pin.
 *
 * @param engineHeader the `Api-Version` header of the ping reply, or null when absent
 * @param pin the value of DOCKER_API_VERSION, if set
 * @param engine how to name the engine in messages, e.g. `the docker engine at unix:///run/docker.sock`
 * @throws {UsageError} when the pin is not a version
 * @throws {TransportError} (layer protocol) when the engine is older than this client supports
 *
 * @example A 20.10 engine
 * ```ts
 * import { negotiateApiVersion } from "./api_version.ts";
 * console.assert(negotiateApiVersion("1.41", undefined, "the engine").version === "1.41");
 * console.assert(negotiateApiVersion("1.51", undefined, "the engine").version === "1.44");
 * ```
 */
export function negotiateApiVersion(
  engineHeader: string | null,
  pin: string | undefined,
  engine: string,
): NegotiatedVersion {
  if (pin !== undefined && pin !== "") {
    const text = pin.replace(/^v/, "");
    if (!VERSION.test(text)) {
      throw new UsageError(`DOCKER_API_VERSION=${pin} is not an API version`, {
        hint: `set it to a version such as ${MAX_API_VERSION}, or unset it to negotiate`,
      });
    }
    if (compareApiVersions(text, MIN_API_VERSION) < 0 || compareApiVersions(text, MAX_API_VERSION) > 0) {
      throw new UsageError(`DOCKER_API_VERSION=${pin} is outside what remote speaks`, {
        hint: `set it from ${MIN_API_VERSION} to ${MAX_API_VERSION}, or unset it to negotiate`,
      });
    }
    return { version: text, pinned: true };
  }
  const offered = engineHeader !== null && VERSION.test(engineHeader.trim())
    ? engineHeader.trim()
    : FALLBACK_API_VERSION;
  if (compareApiVersions(offered, MIN_API_VERSION) < 0) {
    throw new TransportError(`${engine} speaks API ${offered}; remote needs ${MIN_API_VERSION} or later`, {
      layer: "protocol",
      hint: "upgrade the engine (Docker 1.13 or later, any Podman with its API service)",
    });
  }
  const version = compareApiVersions(offered, MAX_API_VERSION) > 0 ? MAX_API_VERSION : offered;
  return { version, pinned: false };
}

/** Whether `version` is at least `wanted`. */
export function apiAtLeast(version: string, wanted: string): boolean {
  return compareApiVersions(version, wanted) >= 0;
}
