/**
 * A Kubernetes API server for tests, serving only what `kubectl exec` and remote's k8s transport ask of one: the
 * discovery documents (`/api`, `/apis`, `/api/v1`), `GET` of a pod, and the pod's exec subresource upgraded to a
 * WebSocket. No cluster runs here, so the "pod" runs its commands on this machine. The exec follows the Kubernetes
 * API documents (the `connectCoreV1GetNamespacedPodExec` operation of the OpenAPI spec) and the remotecommand
 * sources of client-go (tools/remotecommand/websocket.go, v4.go, v5.go, resize.go), apimachinery
 * (pkg/util/remotecommand/constants.go) and apiserver (pkg/util/proxy/websocket.go, streamtranslator.go) exactly:
 * - the subprotocol is the first the client offers of `v5.channel.k8s.io` and `v4.channel.k8s.io`;
 * - binary messages, byte 0 the channel: 0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize;
 * - first an empty message on the lowest output channel asked for (readiness);
 * - a resize is `{"Width":c,"Height":r}` (a JSON encoder's line) on channel 4, only with tty=true;
 * - v5's close frame `[255, 0]` ends stdin;
 * - at the end a `metav1.Status` on channel 3: `{"metadata":{},"status":"Success"}`, or `status: "Failure"`,
 *   `reason: "NonZeroExitCode"` with the code in the `ExitCode` cause's message; then a normal closure (1000).
 * Its framing is checked against the real kubectl in tests/k8s_exec_test.ts.
 * One departure, for the tests' sake: when the stream closes, a real cluster leaves a command without a TTY
 * running in the pod (the kubelet only closes its stdin); this server runs each command in a session of its
 * own (setsid) and kills the whole session then, so a test run leaves nothing behind on this machine.
 */
import { spawn } from "@lydell/node-pty";
import { createServer, type IncomingMessage, ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { Buffer } from "node:buffer";
import { type WebSocket, WebSocketServer } from "ws";

/** What the test sees of the server. */
export interface K8sApiServer extends AsyncDisposable {
  url: string;
  /** the window sizes received on channel 4, in order */
  resizes: { Width: number; Height: number }[];
  /** the subprotocols chosen, one per exec */
  protocols: string[];
  /** how many exec'd processes still run */
  running(): number;
}

const SUPPORTED = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/**
 * Starts the server on a loopback port; `token`, when given, must come as `Authorization: Bearer <token>`; `speaks`
 * narrows the subprotocols (an older API server speaks only v4).
 */
export async function startK8sApiServer(
  options: {
    token?: string;
    pods?: string[];
    speaks?: string[];
    /** serve HTTPS with this certificate and key, and require a client certificate signed by `ca` */
    tls?: { cert: string; key: string; ca: string };
  } = {},
): Promise<K8sApiServer> {
  const speaks = options.speaks ?? SUPPORTED;
  const pods = new Set(options.pods ?? ["ns1/web"]);
  const resizes: K8sApiServer["resizes"] = [];
  const protocols: string[] = [];
  const live = { count: 0 };
  // the API server picks the first subprotocol the client offers that it speaks (apimachinery wsstream/conn.go)
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered: Set<string>) => [...offered].find((p) => speaks.includes(p)) ?? false,
  });
  type Reply = { status: number; body: unknown };
  const failure = (code: number, reason: string, message: string): Reply => ({
    status: code,
    body: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code },
  });
  /** The REST answer for a request, or "exec" for a pod's exec. */
  const answer = (path: string, authorization: string | undefined): Reply | "exec" => {
    if (options.token !== undefined && authorization !== `Bearer ${options.token}`) {
      return failure(401, "Unauthorized", "Unauthorized");
    }
    if (path === "/api") return { status: 200, body: { kind: "APIVersions", versions: ["v1"] } };
    if (path === "/apis") return { status: 200, body: { kind: "APIGroupList", apiVersion: "v1", groups: [] } };
    if (path === "/api/v1") {
      return {
        status: 200,
        body: {
          kind: "APIResourceList",
          groupVersion: "v1",
          resources: [
            { name: "pods", singularName: "pod", namespaced: true, kind: "Pod", verbs: ["get"], shortNames: ["po"] },
            { name: "pods/exec", singularName: "", namespaced: true, kind: "PodExecOptions", verbs: ["create", "get"] },
          ],
        },
      };
    }
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(\/exec)?$/.exec(path);
    if (!m) return failure(404, "NotFound", "the server could not find the requested resource");
    const [namespace, name] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
    if (!pods.has(`${namespace}/${name}`)) return failure(404, "NotFound", `pods "${name}" not found`);
    if (m[3]) return "exec";
    return {
      status: 200,
      body: {
        kind: "Pod",
        apiVersion: "v1",
        metadata: { name, namespace },
        spec: { containers: [{ name: "main", image: "busybox" }] },
        status: { phase: "Running" },
      },
    };
  };
  const send = (res: ServerResponse | Duplex, reply: Reply) => {
    const body = JSON.stringify(reply.body);
    if (res instanceof ServerResponse) {
      res.writeHead(reply.status, { "content-type": "application/json" }).end(body);
    } else {
      res.end(
        `HTTP/1.1 ${reply.status} Error\r\ncontent-type: application/json\r\ncontent-length: ${
          new TextEncoder().encode(body).length
        }\r\nconnection: close\r\n\r\n${body}`,
      );
    }
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://x");
    const reply = answer(url.pathname, req.headers.authorization);
    send(res, reply === "exec" ? failure(400, "BadRequest", "Upgrade request required") : reply);
  };
  const tls = options.tls;
  const server = tls
    ? createTlsServer(
      { cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true, rejectUnauthorized: true },
      handler,
    )
    : createServer(handler);
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? "/", "http://x");
    const reply = answer(url.pathname, req.headers.authorization);
    if (reply !== "exec") return send(socket, reply);
    wss.handleUpgrade(req, socket, head, (ws) => {
      protocols.push(ws.protocol);
      runExec(ws, ws.protocol, url.searchParams, resizes, live);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
    resizes,
    protocols,
    running: () => live.count,
    async [Symbol.asyncDispose]() {
      for (const ws of wss.clients) ws.terminate();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Runs the exec's command for one WebSocket, framed as the API server frames it. */
function runExec(
  socket: WebSocket,
  protocol: string,
  query: URLSearchParams,
  resizes: K8sApiServer["resizes"],
  live: { count: number },
): void {
  const argv = query.getAll("command");
  const tty = query.get("tty") === "true";
  const frame = (channel: number, bytes: Uint8Array = new Uint8Array()) => {
    if (socket.readyState !== socket.OPEN) return;
    const out = new Uint8Array(bytes.length + 1);
    out[0] = channel;
    out.set(bytes, 1);
    socket.send(out);
  };
  const finish = (code: number) => {
    const status = code === 0 ? { metadata: {}, status: "Success" } : {
      metadata: {},
      status: "Failure",
      message: `command terminated with non-zero exit code: error executing command [${
        argv.join(" ")
      }], exit code ${code}`,
      reason: "NonZeroExitCode",
      details: { causes: [{ reason: "ExitCode", message: String(code) }] },
    };
    frame(3, new TextEncoder().encode(JSON.stringify(status)));
    socket.close(1000);
  };
  {
    frame(query.get("stdout") === "true" || tty ? 1 : 2); // readiness
    if (tty) {
      // a "pod" of its own: /bin/sh as the shell, a known prompt
      const env = { PATH: "/usr/bin:/bin", HOME: "/", SHELL: "/bin/sh", PS1: "pod$ " };
      const term = spawn(argv[0], argv.slice(1), { name: "xterm", cols: 80, rows: 24, cwd: "/", env, encoding: null });
      term.onData((d: unknown) => frame(1, new Uint8Array(d as Uint8Array)));
      live.count++;
      term.onExit(({ exitCode }) => {
        live.count--;
        setTimeout(() => finish(exitCode), 50);
      });
      socket.on("message", (d: Buffer) => {
        const data = new Uint8Array(d);
        if (data[0] === 0) term.write(new TextDecoder().decode(data.subarray(1)));
        if (data[0] === 4) {
          const size = JSON.parse(new TextDecoder().decode(data.subarray(1)));
          resizes.push(size);
          term.resize(size.Width, size.Height);
        }
      });
      socket.on("close", () => killSession(term.pid)); // node-pty made the shell a session leader
      return;
    }
    // setsid(1) execs in place (a spawned child leads no group), so the child's pid names its session's group
    const child = new Deno.Command("setsid", {
      args: argv,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    live.count++;
    child.status.then(() => live.count--);
    const writer = child.stdin.getWriter();
    let writing = Promise.resolve();
    socket.on("message", (d: Buffer) => {
      const data = new Uint8Array(d);
      if (data[0] === 0) writing = writing.then(() => writer.write(data.subarray(1))).catch(() => {});
      if (data[0] === 255 && data[1] === 0 && protocol === SUPPORTED[0]) {
        writing = writing.then(() => writer.close()).catch(() => {});
      }
    });
    socket.on("close", () => killSession(child.pid));
    const pump = async (stream: ReadableStream<Uint8Array>, channel: number) => {
      for await (const chunk of stream) frame(channel, chunk);
    };
    Promise.all([pump(child.stdout, 1), pump(child.stderr, 2), child.status]).then(([, , s]) => finish(s.code));
  }
}

/** Kills the process group `pid` leads (the exec'd command and whatever it started), and `pid` itself. */
function killSession(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      Deno.kill(target, "SIGKILL");
    } catch {
      // already ended
    }
  }
}
