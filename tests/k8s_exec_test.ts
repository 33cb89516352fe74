/**
 * The k8s transport through the CLI against tests/k8s_api_server.ts (no cluster runs here), and that server's
 * framing checked against the real kubectl: separate streams and the exit code, stdin's end, a TTY with its window
 * size and a resize, the v4 fallback, a missing pod and refused credentials.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startK8sApiServer } from "./k8s_api_server.ts";
import { spawnInPty } from "./pty.ts";
import { runRemote, tempHome } from "./run_remote.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const KUBECTL = "/usr/bin/kubectl";

/** A kubeconfig naming `server`, with a bearer token, as kubectl writes one. */
async function kubeconfig(dir: string, server: string, token: string): Promise<string> {
  const path = `${dir}/kubeconfig`;
  await Deno.writeTextFile(
    path,
    `apiVersion: v1
kind: Config
clusters:
- cluster:
    server: ${server}
  name: test
contexts:
- context:
    cluster: test
    namespace: ns1
    user: tester
  name: test
current-context: test
users:
- name: tester
  user:
    token: ${token}
`,
  );
  return path;
}

/**
 * kubectl's stderr without the line client-go logs when a message arrives before kubectl has made its stream pipes:
 * its websocket executor starts the read loop (readDemuxLoop) in one goroutine and creates the streams in another
 * (tools/remotecommand/websocket.go), so the API server's readiness message — an empty one on the stdout channel,
 * sent right after the upgrade as every API server sends it — can win the race on a loaded machine and be logged as
 * "Unknown stream id 1, discarding message". A lost message that carried bytes still fails the stdout assertions.
 */
function withoutDemuxRace(stderr: string): string {
  return stderr.replace(/^E\d{4} [\d:.]+ +\d+ websocket\.go:\d+\] Unknown stream id \d, discarding message\n/gm, "");
}

/** Runs a program to its end with `stdin`, killed after 60 s. */
async function run(cmd: string, args: string[], env: Record<string, string>, stdin = "") {
  const child = new Deno.Command(cmd, { args, env, stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
    const out = await child.output();
    const text = new TextDecoder();
    return { code: out.code, stdout: text.decode(out.stdout), stderr: withoutDemuxRace(text.decode(out.stderr)) };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("the test API server frames exec as the real kubectl expects: streams, exit code, stdin, resize", async () => {
  await using server = await startK8sApiServer();
  await using home = await tempHome();
  // kubectl sends no token over plain HTTP, so this server asks for none
  const env = { ...home.env, KUBECONFIG: await kubeconfig(home.dir, server.url, "unused") };
  const streams = await run(KUBECTL, ["exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3"], env);
  assertEquals(streams, { code: 3, stdout: "out\n", stderr: "err\ncommand terminated with exit code 3\n" });
  const stdin = await run(KUBECTL, ["exec", "-i", "web", "--", "sh", "-c", "cat; echo done"], env, "hello\n");
  assertEquals(stdin, { code: 0, stdout: "hello\ndone\n", stderr: "" });
  await using pty = await spawnInPty(KUBECTL, ["exec", "-it", "web", "--", "sh"], { cols: 100, rows: 30, env });
  await pty.waitFor("pod$ ", 30_000);
  pty.write("stty size\r");
  await pty.waitFor(/^30 100\r?$/m);
  pty.write("exit 4\r");
  assertEquals((await pty.exited).code, 4);
  assertEquals(server.resizes[0], { Width: 100, Height: 30 });
  assertEquals(server.protocols, ["v5.channel.k8s.io", "v5.channel.k8s.io", "v5.channel.k8s.io"]);
});

Deno.test("remote invoke k8s://ns/pod runs a command: separate streams, exit code, stdin's end, bearer token", async () => {
  await using server = await startK8sApiServer({ token: "tok-1" });
  await using home = await tempHome();
  const env = { ...home.env, KUBECONFIG: await kubeconfig(home.dir, server.url, "tok-1") };
  const streams = await runRemote(["invoke", "k8s://ns1/web", "--", "echo out; echo err >&2; exit 3"], { env });
  assertEquals(streams, { code: 3, stdout: "out\n", stderr: "err\n" });
  const stdin = await runRemote(["invoke", "k8s://ns1/web/main", "--", "cat; echo done"], { env, stdin: "hello\n" });
  assertEquals(stdin, { code: 0, stdout: "hello\ndone\n", stderr: "" });
  const missing = await runRemote(["invoke", "k8s://ns1/nope", "--", "true"], { env });
  assertEquals(missing.code, 233);
  assert(missing.stderr.startsWith("remote: no pod nope in namespace ns1 on the API server at "), missing.stderr);
  const badEnv = { ...home.env, KUBECONFIG: await kubeconfig(home.dir, server.url, "wrong") };
  const refused = await runRemote(["invoke", "k8s://ns1/web", "--", "true"], { env: badEnv });
  assertEquals(refused.code, 245);
  assert(refused.stderr.includes("refused the exec (HTTP 401): Unauthorized"), refused.stderr);
  assert(!refused.stderr.includes("wrong"), refused.stderr);
  assertEquals(server.protocols, ["v5.channel.k8s.io", "v5.channel.k8s.io"]);
});

Deno.test("remote invoke k8s:// falls back to v4.channel.k8s.io on an API server without v5", async () => {
  await using server = await startK8sApiServer({ speaks: ["v4.channel.k8s.io"] });
  await using home = await tempHome();
  const env = { ...home.env, KUBECONFIG: await kubeconfig(home.dir, server.url, "t") };
  const run = await runRemote(["invoke", "k8s://ns1/web", "--", "echo v4; exit 5"], { env });
  assertEquals(run, { code: 5, stdout: "v4\n", stderr: "" });
  assertEquals(server.protocols, ["v4.channel.k8s.io"]);
});

Deno.test("remote enter k8s://ns/pod gives a TTY shell: window size, resize, exit code", async () => {
  await using server = await startK8sApiServer();
  await using home = await tempHome();
  const env = { ...home.env, KUBECONFIG: await kubeconfig(home.dir, server.url, "t") };
  await using pty = await spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "enter", "k8s://ns1/web"], {
    cols: 100,
    rows: 30,
    env,
  });
  await pty.waitFor("pod$ ", 30_000);
  pty.write("stty size\r");
  await pty.waitFor(/^30 100\r?$/m);
  pty.resize(120, 40);
  await new Promise((r) => setTimeout(r, 500));
  pty.write("stty size\r");
  await pty.waitFor(/^40 120\r?$/m);
  pty.write("exit 3\r");
  assertEquals((await pty.exited).code, 3);
  assertEquals(server.resizes.slice(0, 1), [{ Width: 100, Height: 30 }]);
  assert(server.resizes.some((s) => s.Width === 120 && s.Height === 40), JSON.stringify(server.resizes));
});

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl in `dir`. */
async function certificates(
  dir: string,
): Promise<Record<"ca" | "serverCert" | "serverKey" | "clientCert" | "clientKey", string>> {
  const openssl = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" }).output();
    if (!out.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=test-ca", "-days", "2");
  for (
    const [name, subject, ext] of [
      ["server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1"],
      ["client", "/CN=tester/O=system:masters", "extendedKeyUsage=clientAuth"],
    ]
  ) {
    await openssl("req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
    await Deno.writeTextFile(`${dir}/${name}.ext`, ext + "\n");
    await openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    );
  }
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  return {
    ca: await read("ca.crt"),
    serverCert: await read("server.crt"),
    serverKey: await read("server.key"),
    clientCert: await read("client.crt"),
    clientKey: await read("client.key"),
  };
}

Deno.test("remote invoke k8s:// over HTTPS verifies the kubeconfig's CA and presents its client certificate", async () => {
  await using home = await tempHome();
  const pki = await certificates(home.dir);
  await using server = await startK8sApiServer({ tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca } });
  const b64 = (pem: string) => btoa(pem);
  const config = (user: string) =>
    `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: ${b64(pki.ca)}
    server: ${server.url}
  name: tls
contexts:
- context:
    cluster: tls
    user: tester
  name: tls
current-context: tls
users:
- name: tester
  user:
${user}`;
  const path = `${home.dir}/tls-kubeconfig`;
  // certificate and key as files, relative to the kubeconfig's folder
  await Deno.writeTextFile(`${home.dir}/client.pem`, pki.clientCert);
  await Deno.writeTextFile(path, config("    client-certificate: client.pem\n    client-key: client.key\n"));
  const env = { ...home.env, KUBECONFIG: path };
  const ok = await runRemote(["invoke", "k8s://ns1/web", "--", "echo over-tls"], { env });
  assertEquals(ok, { code: 0, stdout: "over-tls\n", stderr: "" });
  // and as -data
  await Deno.writeTextFile(
    path,
    config(`    client-certificate-data: ${b64(pki.clientCert)}\n    client-key-data: ${b64(pki.clientKey)}\n`),
  );
  assertEquals((await runRemote(["invoke", "k8s://ns1/web", "--", "echo data"], { env })).stdout, "data\n");
  // without the client certificate the server ends the TLS handshake: no exec
  await Deno.writeTextFile(path, config("    token: t\n"));
  const refused = await runRemote(["invoke", "k8s://ns1/web", "--", "echo no"], { env });
  assert(refused.code !== 0 && refused.stdout === "", JSON.stringify(refused));
  assert(refused.stderr.startsWith("remote: cannot reach the API server at "), refused.stderr);
});
