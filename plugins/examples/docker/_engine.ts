/**
 * A minimal HTTP/1.1 client for the Docker Engine API over its unix socket. It is hand-written because
 * `exec/{id}/start` hijacks the connection (`Upgrade: tcp`) into a raw byte stream, which `fetch`
 * cannot hand over. Engine API reference: https://docs.docker.com/reference/api/engine/version/v1.43/
 *
 * @module
 */
import { TransportError } from "../../mod.ts";

/** The API version this example asks for in every path. */
export const API_VERSION = "v1.43";

/** A response with its body read whole. */
export interface EngineResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

const encoder = new TextEncoder();

/** The engine's socket path from `DockerHost`, DOCKER_HOST, or the default. */
export function socketPath(dockerHost: string | undefined): string {
  const host = dockerHost ?? Deno.env.get("DOCKER_HOST") ?? "unix:///var/run/docker.sock";
  if (!host.startsWith("unix://")) {
    throw new TransportError(`docker host ${host} is not a unix socket`, {
      layer: "config",
      hint: "this example speaks only unix:///path (set --docker-host or DOCKER_HOST)",
    });
  }
  return host.slice("unix://".length);
}

/** Connects to the engine socket. */
export async function connect(path: string): Promise<Deno.UnixConn> {
  try {
    return await Deno.connect({ transport: "unix", path });
  } catch (cause) {
    throw new TransportError(`cannot reach the docker engine at ${path}`, {
      layer: "socket",
      cause,
      hint: "is dockerd running, and may you use its socket?",
    });
  }
}

function requestHead(method: string, path: string, body: Uint8Array | undefined, extra: string): Uint8Array {
  return encoder.encode(
    `${method} /${API_VERSION}${path} HTTP/1.1\r\nHost: docker\r\n` +
      (body ? `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n` : "") + extra + "\r\n",
  );
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

/** Reads until the end of the response head; returns the head and whatever bytes followed it. */
async function readHead(conn: Deno.Conn): Promise<{ status: number; headers: Headers; rest: Uint8Array }> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(16 * 1024);
  while (true) {
    const text = new TextDecoder().decode(buf);
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const lines = text.slice(0, end).split("\r\n");
      const status = Number(lines[0].split(" ")[1]);
      const headers = new Headers();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":");
        if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
      const headBytes = encoder.encode(text.slice(0, end + 4)).length;
      return { status, headers, rest: buf.slice(headBytes) };
    }
    if (buf.length > 64 * 1024) break;
    const n = await conn.read(chunk);
    if (n === null) break;
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
  }
  throw new TransportError("the docker engine sent no valid HTTP response", { layer: "protocol" });
}

async function readToEnd(conn: Deno.Conn, first: Uint8Array): Promise<Uint8Array> {
  const parts = [first];
  const chunk = new Uint8Array(16 * 1024);
  while (true) {
    const n = await conn.read(chunk);
    if (n === null) break;
    parts.push(chunk.slice(0, n));
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}

function unchunk(body: Uint8Array): Uint8Array {
  const out: number[] = [];
  let at = 0;
  const text = (from: number, to: number) => new TextDecoder().decode(body.subarray(from, to));
  while (at < body.length) {
    const lineEnd = body.indexOf(10, at);
    if (lineEnd < 0) break;
    const size = parseInt(text(at, lineEnd).trim(), 16);
    if (!(size > 0)) break;
    out.push(...body.subarray(lineEnd + 1, lineEnd + 1 + size));
    at = lineEnd + 1 + size + 2;
  }
  return new Uint8Array(out);
}

/** One request on its own connection (`Connection: close`), body read whole. */
export async function request(path: string, method: string, url: string, json?: unknown): Promise<EngineResponse> {
  const conn = await connect(path);
  try {
    const body = json === undefined ? undefined : encoder.encode(JSON.stringify(json));
    await writeAll(conn, requestHead(method, url, body, "Connection: close\r\n"));
    if (body) await writeAll(conn, body);
    const head = await readHead(conn);
    let data = await readToEnd(conn, head.rest);
    if (head.headers.get("transfer-encoding")?.toLowerCase() === "chunked") data = unchunk(data);
    const length = Number(head.headers.get("content-length") ?? NaN);
    if (Number.isFinite(length)) data = data.subarray(0, length);
    return { status: head.status, headers: head.headers, body: data };
  } finally {
    try {
      conn.close();
    } catch { /* closed by the peer */ }
  }
}

/** The engine's error message from a JSON error body, or the status. */
export function engineMessage(response: EngineResponse): string {
  try {
    const v = JSON.parse(new TextDecoder().decode(response.body));
    if (typeof v?.message === "string") return v.message;
  } catch { /* not JSON */ }
  return `HTTP status ${response.status}`;
}

/**
 * Sends a request whose answer hijacks the connection (`Upgrade: tcp`) and returns the connection
 * with the bytes that already followed the response head.
 */
export async function hijack(
  path: string,
  url: string,
  json: unknown,
): Promise<{ conn: Deno.UnixConn; head: EngineResponse; rest: Uint8Array }> {
  const conn = await connect(path);
  try {
    const body = encoder.encode(JSON.stringify(json));
    await writeAll(conn, requestHead("POST", url, body, "Connection: Upgrade\r\nUpgrade: tcp\r\n"));
    await writeAll(conn, body);
    const head = await readHead(conn);
    if (head.status !== 101 && head.status !== 200) {
      const message = engineMessage({
        status: head.status,
        headers: head.headers,
        body: await readToEnd(conn, head.rest),
      });
      throw new TransportError(`the docker engine refused to start the command: ${message}`, { layer: "server" });
    }
    return { conn, head: { status: head.status, headers: head.headers, body: new Uint8Array(0) }, rest: head.rest };
  } catch (e) {
    try {
      conn.close();
    } catch { /* already */ }
    throw e;
  }
}
