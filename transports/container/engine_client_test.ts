import { deepStrictEqual as assertEquals, ok as assert, strictEqual } from "node:assert/strict";
import { RemoteError } from "../../plugins/mod.ts";
import { EngineClient, engineError } from "./engine_client.ts";
import { parseEngineHost } from "./engine_host.ts";

/** A scripted engine on a unix socket: each request line is recorded and answered with raw bytes. */
async function fakeEngine(answer: (requestLine: string) => string): Promise<
  { host: string; requests: string[] } & AsyncDisposable
> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/engine.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const requests: string[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      let text = "";
      const buf = new Uint8Array(4096);
      while (!text.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      const line = text.split("\r\n")[0];
      requests.push(line);
      await conn.write(new TextEncoder().encode(answer(line))).catch(() => {});
      conn.close();
    }
  })();
  return {
    host: `unix://${path}`,
    requests,
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const ok = (headers: string, body = "OK") =>
  `HTTP/1.1 200 OK\r\n${headers}Content-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

Deno.test("EngineClient.connect() falls back from HEAD /_ping to GET and negotiates the engine's 1.41", async () => {
  await using engine = await fakeEngine((line) =>
    line.startsWith("HEAD") ? "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" : ok("Api-Version: 1.41\r\n")
  );
  const client = await EngineClient.connect(
    parseEngineHost(engine.host, "x"),
    "docker",
    undefined,
    AbortSignal.timeout(10_000),
  );
  strictEqual(client.version, "1.41");
  strictEqual(client.flavor, "docker");
  assertEquals(engine.requests, ["HEAD /_ping HTTP/1.1", "GET /_ping HTTP/1.1"]);
});

Deno.test("EngineClient requests carry the negotiated version and read chunked replies", async () => {
  await using engine = await fakeEngine((line) =>
    line.includes("_ping")
      ? ok("Api-Version: 1.51\r\nLibpod-Api-Version: 5.0.0\r\n", "")
      : 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n3\r\n42}\r\n0\r\n\r\n'
  );
  const client = await EngineClient.connect(
    parseEngineHost(engine.host, "x"),
    "docker",
    undefined,
    AbortSignal.timeout(10_000),
  );
  strictEqual(client.flavor, "podman");
  strictEqual(client.version, "1.44");
  const reply = await client.request("GET", "/containers/web1/json");
  strictEqual(new TextDecoder().decode(reply.body), '{"a":42}');
  strictEqual(engine.requests.at(-1), "GET /v1.44/containers/web1/json HTTP/1.1");
});

Deno.test("EngineClient.connect() refuses an engine whose ping has no Api-Version (1.24), exit 244", async () => {
  await using engine = await fakeEngine(() => ok(""));
  const error = await EngineClient.connect(
    parseEngineHost(engine.host, "x"),
    "docker",
    undefined,
    AbortSignal.timeout(10_000),
  )
    .then(() => undefined, (e) => e);
  assert(error instanceof RemoteError);
  strictEqual(error.exitCode, 244);
  strictEqual(error.message, `the docker engine at ${engine.host} speaks API 1.24; remote needs 1.25 or later`);
});

Deno.test("EngineClient.hijack() takes a 200 raw-stream answer as Docker sends it without Upgrade", async () => {
  await using engine = await fakeEngine((line) =>
    line.includes("_ping")
      ? ok("Api-Version: 1.41\r\n")
      : "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n\x01\x00\x00\x00\x00\x00\x00\x02hi"
  );
  const client = await EngineClient.connect(
    parseEngineHost(engine.host, "x"),
    "docker",
    undefined,
    AbortSignal.timeout(10_000),
  );
  const { conn, first } = await client.hijack("/exec/abc/start", { Detach: false, Tty: false }, "web1");
  let bytes = [...first];
  const buf = new Uint8Array(64);
  for (let n; (n = await conn.read(buf)) !== null;) bytes = [...bytes, ...buf.subarray(0, n)];
  conn.close();
  assertEquals(bytes, [1, 0, 0, 0, 0, 0, 0, 2, 104, 105]);
});

Deno.test("engineError() maps each engine's replies to remote's exit codes", () => {
  const engine = { name: "the docker engine at unix:///d.sock", cli: "docker" };
  const reply = (status: number, body: string) => ({
    status,
    headers: new Headers(),
    body: new TextEncoder().encode(body),
  });
  const cases: [number, string, number, string][] = [
    [404, '{"message":"No such container: web9"}', 233, "no container web9 on the docker engine at unix:///d.sock"],
    [
      404,
      '{"cause":"no such container","message":"no container with name or ID \\"web9\\" found: no such container","response":404}',
      233,
      "no container web9 on the docker engine at unix:///d.sock",
    ],
    [
      409,
      '{"message":"Container 273fe09 is not running"}',
      251,
      "container web9 is not running on the docker engine at unix:///d.sock",
    ],
    [
      500,
      '{"cause":"container state improper","message":"can only create exec sessions on running containers: container state improper","response":500}',
      251,
      "container web9 is not running on the docker engine at unix:///d.sock",
    ],
    [
      409,
      '{"message":"Container web9 is paused, unpause the container before exec"}',
      251,
      "container web9 is paused on the docker engine at unix:///d.sock",
    ],
    [
      400,
      '{"message":"client version 1.50 is too new. Maximum supported API version is 1.41"}',
      244,
      "the docker engine at unix:///d.sock refused the API version: client version 1.50 is too new. Maximum supported API version is 1.41",
    ],
    [
      400,
      "client version 1.11 is too old. Minimum supported API version is 1.12, please upgrade your client to a newer version\n",
      244,
      "the docker engine at unix:///d.sock refused the API version: client version 1.11 is too old. Minimum supported API version is 1.12, please upgrade your client to a newer version",
    ],
    [
      500,
      '{"message":"Invalid escape keys (ctrl-zz) provided"}',
      251,
      "the docker engine at unix:///d.sock refused: Invalid escape keys (ctrl-zz) provided",
    ],
    [502, "", 251, "the docker engine at unix:///d.sock refused: HTTP 502"],
  ];
  for (const [status, body, code, message] of cases) {
    const error = engineError(reply(status, body), engine, "web9");
    strictEqual(error.exitCode, code, body);
    strictEqual(error.message, message);
    assert(error.hint, `a hint for ${body}`);
  }
});
