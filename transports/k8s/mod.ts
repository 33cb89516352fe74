/**
 * The Kubernetes transport: `remote enter k8s://namespace/pod[/container]`. A shell or one command runs in the pod
 * through the API server's exec subresource (`GET /api/v1/namespaces/{ns}/pods/{pod}/exec`, upgraded to a
 * WebSocket), as client-go's remotecommand does it: subprotocol `v5.channel.k8s.io` (then `v4.channel.k8s.io`),
 * binary messages whose first byte is the channel (0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize), stdin's end
 * as v5's close frame `[255, 0]`, the exit code from the `metav1.Status` on channel 3, and a resize as
 * `{"Width":c,"Height":r}` on channel 4. Credentials come from the kubeconfig (see kubeconfig.ts).
 *
 * @module
 */
import { WebSocket } from "ws";
import {
  type Channel,
  type ExitStatus,
  type OpenContext,
  type OpenRequest,
  RemoteError,
  TransportError,
  UnsupportedError,
  UsageError,
  type WindowSize,
} from "../../plugins/mod.ts";
import { loadKubeconfig } from "./kubeconfig.ts";
import { parameters } from "./manifest.ts";
export { manifest } from "./manifest.ts";

/** The subprotocols offered, best first (Kubernetes apimachinery pkg/util/remotecommand/constants.go). */
export const PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const CONNECT_TIMEOUT_MS = 30_000;

/** `k8s://namespace/pod[/container]` taken apart; the namespace may be left out for the context's. */
export function podOf(host: string, path: string | undefined): { namespace: string; pod: string; container?: string } {
  const parts = (path ?? "").split("/").filter((p) => p !== "");
  if (parts.length === 0 || parts.length > 2) {
    throw new UsageError(`k8s://${host}${path ?? ""} names no pod`, {
      hint: "write it as k8s://namespace/pod or k8s://namespace/pod/container",
    });
  }
  return { namespace: host, pod: parts[0], container: parts[1] };
}

/** The exit code in a `metav1.Status` from channel 3 (client-go tools/remotecommand/v4.go). */
export function statusToExit(text: string): ExitStatus {
  let status: {
    status?: string;
    reason?: string;
    message?: string;
    details?: { causes?: { reason?: string; message?: string }[] };
  };
  try {
    status = JSON.parse(text);
  } catch {
    return { kind: "lost", error: new TransportError(`the API server said: ${text.trim()}`, { layer: "server" }) };
  }
  if (status.status === "Success") return { kind: "exited", code: 0 };
  if (status.reason === "NonZeroExitCode") {
    const cause = status.details?.causes?.find((c) => c.reason === "ExitCode");
    const code = Number(cause?.message);
    if (Number.isInteger(code) && code >= 0 && code <= 255) return { kind: "exited", code };
  }
  return {
    kind: "lost",
    error: new TransportError(`the API server said: ${status.message ?? text.trim()}`, { layer: "server" }),
  };
}

/**
 * Starts `request` in the pod.
 *
 * @throws {RemoteError} kubeconfig problems (config), no such pod (233), refused credentials (245), API server not
 * reachable (241)
 */
export async function open(ctx: OpenContext, request: OpenRequest): Promise<Channel> {
  if (request.kind === "subsystem") throw new UnsupportedError("k8s", `subsystem ${request.name}`);
  const p = parameters.read(ctx.parameters);
  const { namespace, pod, container } = podOf(ctx.target.host, ctx.target.path);
  const home = Deno.env.get("HOME") ?? "";
  const path = (Deno.env.get("KUBECONFIG") ?? "").split(":").find((f) => f !== "") ?? `${home}/.kube/config`;
  const kube = await loadKubeconfig(path, p.kubeContext);
  const tty = request.pty !== undefined;
  const argv = request.kind === "exec" ? ["sh", "-c", request.command] : ["sh", "-c", 'exec "${SHELL:-/bin/sh}"'];
  const url = new URL(
    `${kube.server.replace(/\/$/, "")}/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${
      encodeURIComponent(pod)
    }/exec`,
  );
  for (const word of argv) url.searchParams.append("command", word);
  if (container) url.searchParams.set("container", container);
  url.searchParams.set("stdin", "true");
  url.searchParams.set("stdout", "true");
  if (tty) url.searchParams.set("tty", "true");
  else url.searchParams.set("stderr", "true");
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const where = `the API server at ${kube.server}`;
  const ws = new WebSocket(url.href, PROTOCOLS, {
    headers: kube.token ? { Authorization: `Bearer ${kube.token}` } : {},
    ca: kube.ca,
    cert: kube.cert,
    key: kube.key,
    rejectUnauthorized: !kube.insecure,
    handshakeTimeout: CONNECT_TIMEOUT_MS,
  });
  ws.binaryType = "nodebuffer";
  let outCtl!: ReadableStreamDefaultController<Uint8Array>;
  let errCtl!: ReadableStreamDefaultController<Uint8Array>;
  const stdout = new ReadableStream<Uint8Array>({ start: (c) => void (outCtl = c) });
  const stderr = new ReadableStream<Uint8Array>({ start: (c) => void (errCtl = c) });
  if (tty) errCtl.close();
  // before the handshake completes: frames that come with the 101 reply are emitted right after "open"
  let status: ExitStatus | undefined;
  const exit = new Promise<ExitStatus>((resolve) => {
    ws.on("message", (data: Uint8Array) => {
      const body = data.subarray(1);
      if (data[0] === 1 && body.length > 0) outCtl.enqueue(new Uint8Array(body));
      else if (data[0] === 2 && body.length > 0 && !tty) errCtl.enqueue(new Uint8Array(body));
      else if (data[0] === 3) status = statusToExit(new TextDecoder().decode(body));
    });
    ws.on("close", () => {
      outCtl.close();
      if (!tty) errCtl.close();
      resolve(
        status ??
          {
            kind: "lost",
            error: new TransportError(`${where} closed the exec without a status`, { layer: "channel" }),
          },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(new TransportError(`interrupted connecting to ${where}`, { layer: "socket" }));
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    ws.once("open", () => resolve());
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d: Uint8Array) => body.length < 4096 && (body += new TextDecoder().decode(d)));
      res.on("end", () => reject(upgradeError(res.statusCode ?? 0, body, namespace, pod, where)));
    });
    ws.once("error", (e: Error & { code?: string }) =>
      reject(
        new TransportError(`cannot reach ${where}: ${e.code ?? e.message}`, {
          layer: "socket",
          code: "refused",
          hint: "check the server of your kubeconfig's current context (kubectl cluster-info)",
        }),
      ));
  });
  // a later error ends the socket, and "close" settles exit
  ws.on("error", () => {});
  const v5 = ws.protocol === PROTOCOLS[0];
  const send = (channel: number, bytes: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      if (ws.readyState !== WebSocket.OPEN) return resolve();
      const frame = new Uint8Array(bytes.length + 1);
      frame[0] = channel;
      frame.set(bytes, 1);
      ws.send(frame, (e?: Error) => (e ? reject(e) : resolve()));
    });
  const stdin = new WritableStream<Uint8Array>({
    write: (chunk) => send(0, chunk),
    // v5's close frame ends stdin; v4 has no way to say so (kubernetes#89899)
    close: () => (v5 ? send(255, new Uint8Array([0])) : undefined),
  });
  const resize = (size: WindowSize) =>
    send(4, new TextEncoder().encode(JSON.stringify({ Width: size.columns, Height: size.rows }) + "\n"));
  if (request.pty) await resize(request.pty);
  return {
    stdin,
    stdout,
    stderr,
    exit,
    ...(tty ? { resize } : {}),
    [Symbol.asyncDispose]: async () => {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
      await exit;
    },
  };
}

function upgradeError(code: number, body: string, namespace: string, pod: string, where: string): RemoteError {
  let message = body.trim();
  try {
    message = JSON.parse(body).message ?? message;
  } catch {
    // a plain-text reply
  }
  if (code === 404) {
    return new RemoteError("notFound", `no pod ${pod} in namespace ${namespace} on ${where}`, {
      hint: `list pods with: kubectl get pods --namespace ${namespace}`,
    });
  }
  if (code === 401 || code === 403) {
    return new RemoteError("auth", `${where} refused the exec (HTTP ${code}): ${message}`, {
      hint: "check the token or certificate of your kubeconfig's user, and its RBAC (get and create on pods/exec)",
    });
  }
  return new TransportError(`${where} refused the exec (HTTP ${code}): ${message}`, {
    layer: "server",
    hint: "see the API server's events (kubectl get events)",
  });
}
