/**
 * A thin client of the Docker Engine API (which Podman's API service serves too): connect, ping and negotiate the
 * API version, plain JSON requests, the exec hijack, and the engine's errors turned into remote's, each with a fix
 * and its own exit code.
 *
 * @module
 */
import { type OpenContext, RemoteError, TransportError } from "../../plugins/mod.ts";
import { negotiateApiVersion } from "./api_version.ts";
import type { EngineEndpoint, EngineKind } from "./engine_host.ts";
import { BufferedReader, encodeRequest, type EngineConn, type HttpResponse, streamConn, writeAll } from "./http.ts";

/** `--via`: streams to the engine's socket through another transport's connection (`OpenContext.dial`). */
export type EngineDial = OpenContext["dial"];

/** How long one API request (not an exec's stream) may take. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** A connected engine, its version negotiated. */
export class EngineClient {
  readonly endpoint: EngineEndpoint;
  /** `docker` or `podman`, from the ping's `Libpod-Api-Version` header */
  readonly flavor: EngineKind;
  /** the API version every path is prefixed with */
  readonly version: string;
  readonly #signal: AbortSignal;
  readonly #dial: EngineDial;

  private constructor(
    endpoint: EngineEndpoint,
    flavor: EngineKind,
    version: string,
    signal: AbortSignal,
    dial: EngineDial,
  ) {
    this.endpoint = endpoint;
    this.flavor = flavor;
    this.version = version;
    this.#signal = signal;
    this.#dial = dial;
  }

  /** `the docker engine at unix:///…`, for messages */
  get name(): string {
    return `the ${this.flavor} engine at ${this.endpoint.display}`;
  }

  /** The CLI a user would type for this engine, in hints. */
  get cli(): string {
    return this.flavor;
  }

  /**
   * Connects, pings (`HEAD /_ping`, then `GET` if HEAD is not answered 200) and negotiates the API version.
   *
   * @throws {RemoteError} engine not running (refused), socket permission (auth), timeout, API too old (protocol)
   */
  static async connect(
    endpoint: EngineEndpoint,
    expected: EngineKind,
    pin: string | undefined,
    signal: AbortSignal,
    /** `OpenContext.dial` under `--via`: the endpoint is then the far host's */
    dial?: EngineDial,
  ): Promise<EngineClient> {
    const label = `the ${expected} engine at ${endpoint.display}`;
    let ping = await exchange(endpoint, "HEAD", "/_ping", undefined, signal, label, expected, dial);
    if (ping.status !== 200) {
      ping = await exchange(endpoint, "GET", "/_ping", undefined, signal, label, expected, dial);
    }
    if (ping.status !== 200) {
      throw new TransportError(`${label} answered its ping with HTTP ${ping.status}: ${engineMessage(ping)}`, {
        layer: "protocol",
        hint: "is this the engine's API socket? check the engine's log",
      });
    }
    const flavor: EngineKind = ping.headers.has("libpod-api-version") ? "podman" : "docker";
    const negotiated = negotiateApiVersion(
      ping.headers.get("api-version"),
      pin,
      `the ${flavor} engine at ${endpoint.display}`,
    );
    return new EngineClient(endpoint, flavor, negotiated.version, signal, dial);
  }

  /** One request on the negotiated version; the reply read whole. */
  request(method: string, path: string, json?: unknown): Promise<HttpResponse> {
    return exchange(
      this.endpoint,
      method,
      `/v${this.version}${path}`,
      json,
      this.#signal,
      this.name,
      this.flavor,
      this.#dial,
    );
  }

  /**
   * Starts an exec on a new connection and takes the connection over: `Connection: Upgrade`, `Upgrade: tcp`
   * (exactly `Upgrade`, which Podman insists on). Docker answers 101, or 200 and hijacks anyway; both are taken.
   * Returns the connection and the stream bytes that came with the head.
   *
   * @throws {RemoteError} mapped from the engine's error reply
   */
  async hijack(path: string, json: unknown, container: string): Promise<{ conn: EngineConn; first: Uint8Array }> {
    const conn = await connectEndpoint(this.endpoint, this.#signal, this.name, this.flavor, this.#dial);
    const onAbort = () => closeQuietly(conn);
    this.#signal.addEventListener("abort", onAbort, { once: true });
    try {
      await writeAll(
        conn,
        encodeRequest("POST", `/v${this.version}${path}`, {
          json,
          headers: { Connection: "Upgrade", Upgrade: "tcp" },
        }),
      );
      const reader = new BufferedReader(conn);
      const head = await reader.readHead(this.name);
      if (head.status !== 101 && head.status !== 200) {
        const body = await reader.readBody(head, "POST", this.name);
        throw engineError({ ...head, body }, this, container);
      }
      return { conn, first: reader.takeBuffered() };
    } catch (error) {
      closeQuietly(conn);
      if (this.#signal.aborted) throw this.#signal.reason;
      throw error instanceof RemoteError ? error : lostError(this.name, error);
    } finally {
      this.#signal.removeEventListener("abort", onAbort);
    }
  }
}

/** The engine's message from a JSON error body (`message`), a plain-text body, or the status. */
export function engineMessage(response: HttpResponse): string {
  const text = new TextDecoder().decode(response.body).trim();
  try {
    const v = JSON.parse(text);
    if (typeof v?.message === "string") return v.message.trim();
  } catch {
    // text/plain, as the version check answers
  }
  return text === "" ? `HTTP ${response.status}` : text.split("\n")[0].slice(0, 300);
}

/**
 * Turns an engine's error reply into remote's error: no such container (notFound, 233), container not running
 * (remoteFault, 251), API version refused (protocol, 244), anything else the engine refused (remoteFault, 251).
 *
 * @example
 * ```ts ignore
 * throw engineError(reply, client, "web1");
 * ```
 */
export function engineError(
  response: HttpResponse,
  engine: { name: string; cli: string },
  container: string,
): RemoteError {
  const message = engineMessage(response);
  if (response.status === 404 && /no such container|no container with name or id/i.test(message)) {
    return new RemoteError("notFound", `no container ${container} on ${engine.name}`, {
      hint: `list running containers with: ${engine.cli} ps`,
    });
  }
  if (/is not running|container state improper|is paused|is restarting/i.test(message)) {
    const what = /paused/i.test(message) ? "paused" : /restarting/i.test(message) ? "restarting" : "not running";
    return notRunning(container, engine, what);
  }
  if (response.status === 400 && /client version .* is too (new|old)/i.test(message)) {
    return new TransportError(`${engine.name} refused the API version: ${message}`, {
      layer: "protocol",
      hint: "unset DOCKER_API_VERSION so remote negotiates, or set it within the engine's range",
    });
  }
  return new TransportError(`${engine.name} refused: ${message}`, {
    layer: "server",
    hint: "see the engine's log for more",
  });
}

/** The error for a container that exists but does not run (exit 251). */
export function notRunning(container: string, engine: { name: string; cli: string }, state: string): RemoteError {
  return new TransportError(`container ${container} is ${state} on ${engine.name}`, {
    layer: "server",
    code: "remoteFault",
    hint: state === "paused"
      ? `unpause it with: ${engine.cli} unpause ${container}`
      : `start it with: ${engine.cli} start ${container}`,
  });
}

async function exchange(
  endpoint: EngineEndpoint,
  method: string,
  path: string,
  json: unknown,
  signal: AbortSignal,
  label: string,
  flavor: EngineKind,
  dial: EngineDial,
): Promise<HttpResponse> {
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]);
  const conn = await connectEndpoint(endpoint, deadline, label, flavor, dial);
  const onAbort = () => closeQuietly(conn);
  deadline.addEventListener("abort", onAbort, { once: true });
  try {
    await writeAll(conn, encodeRequest(method, path, { json, headers: { Connection: "close" } }));
    const reader = new BufferedReader(conn);
    const head = await reader.readHead(label);
    const body = await reader.readBody(head, method, label);
    return { ...head, body };
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    if (deadline.aborted) {
      throw new TransportError(`${label} did not answer ${method} ${path} within ${REQUEST_TIMEOUT_MS / 1000} s`, {
        layer: "timeout",
        hint: "the engine may be overloaded or stuck; check its log",
      });
    }
    throw error instanceof RemoteError ? error : lostError(label, error);
  } finally {
    deadline.removeEventListener("abort", onAbort);
    closeQuietly(conn);
  }
}

/**
 * Connects to the engine's socket: here, or with `dial` through another transport's connection (`--via`), where the
 * endpoint names the far host's socket.
 *
 * @throws {RemoteError} engine not running (refused, 241), permission denied (auth, 245), timeout (242); through
 * `dial`, also what the via transport reports (a forbidden forwarding 234, a lost connection 250)
 */
export async function connectEndpoint(
  endpoint: EngineEndpoint,
  signal: AbortSignal,
  label: string,
  flavor: EngineKind,
  dial?: EngineDial,
): Promise<EngineConn> {
  if (dial) return await dialEndpoint(dial, endpoint, label, flavor);
  try {
    return endpoint.transport === "unix"
      ? await Deno.connect({ transport: "unix", path: endpoint.path })
      : await Deno.connect({ hostname: endpoint.hostname, port: endpoint.port, signal });
  } catch (cause) {
    if (signal.aborted && !(cause instanceof Deno.errors.ConnectionRefused)) {
      if (signal.reason instanceof DOMException && signal.reason.name === "TimeoutError") {
        throw new TransportError(`cannot reach ${label}: timed out`, { layer: "timeout", cause });
      }
      throw signal.reason;
    }
    const start = flavor === "podman"
      ? "start it (podman system service, or systemctl start podman.socket)"
      : "start it (dockerd, or systemctl start docker)";
    if (cause instanceof Deno.errors.PermissionDenied || cause instanceof Deno.errors.NotCapable) {
      return Promise.reject(
        new TransportError(`permission denied on the ${flavor} engine's socket ${endpoint.display}`, {
          layer: "auth",
          cause,
          hint: flavor === "podman"
            ? "use your own rootless socket (podman system service), or run as root"
            : "join the socket's group (usually docker: sudo usermod -aG docker $USER, then log in again)",
        }),
      );
    }
    if (cause instanceof Deno.errors.NotFound) {
      throw new TransportError(`${label} is not running: no such socket`, {
        layer: "socket",
        code: "refused",
        cause,
        hint: `${start}, or point --docker-host or DOCKER_HOST at its socket`,
      });
    }
    if (cause instanceof Deno.errors.ConnectionRefused) {
      throw new TransportError(`${label} is not running: connection refused`, {
        layer: "socket",
        code: "refused",
        cause,
        hint: `${start}, or point --docker-host or DOCKER_HOST at its socket`,
      });
    }
    throw new TransportError(`cannot reach ${label}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      layer: "socket",
      cause,
      hint: "check --docker-host or DOCKER_HOST",
    });
  }
}

async function dialEndpoint(
  dial: NonNullable<EngineDial>,
  endpoint: EngineEndpoint,
  label: string,
  flavor: EngineKind,
): Promise<EngineConn> {
  try {
    return streamConn(
      await dial(
        endpoint.transport === "unix"
          ? { kind: "unix", path: endpoint.path }
          : { kind: "tcp", host: endpoint.hostname, port: endpoint.port },
      ),
    );
  } catch (cause) {
    // nothing at the path or port on the far host: the engine there is not running, as 241 says here
    if (cause instanceof RemoteError && cause.code === "refused") {
      throw new TransportError(`${label} is not running: ${cause.message}`, {
        layer: "socket",
        code: "refused",
        cause,
        hint: `start it on that host (${flavor === "podman" ? "podman system service" : "dockerd"}), ` +
          "or point --docker-host at its socket there",
      });
    }
    throw cause;
  }
}

function lostError(label: string, cause: unknown): TransportError {
  return new TransportError(`lost the connection to ${label}: ${cause instanceof Error ? cause.message : cause}`, {
    layer: "channel",
    cause,
    hint: "check the engine's log",
  });
}

/** Closes a connection that may be closed already. */
export function closeQuietly(conn: EngineConn): void {
  try {
    conn.close();
  } catch {
    // closed before
  }
}
