import { deepStrictEqual as assertEquals, rejects } from "node:assert/strict";
import { HttpConnection, HttpError } from "./http_connection.ts";

/** a one-shot server: reads one request, writes `reply` (pieces in order), then closes */
async function withReply(
  reply: (string | Uint8Array)[],
  fn: (c: HttpConnection) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    try {
      await conn.read(new Uint8Array(65536));
      for (const part of reply) {
        const bytes = typeof part === "string" ? new TextEncoder().encode(part) : part;
        let o = 0;
        while (o < bytes.length) o += await conn.write(bytes.subarray(o));
      }
    } catch {
      /* the client hung up */
    } finally {
      conn.close();
    }
  })();
  const c = await HttpConnection.connect({
    host: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
    connectTimeoutMs: 5000,
  });
  try {
    await fn(c);
  } finally {
    c.close();
    listener.close();
    await served;
  }
}

const limits = { maxHeader: 1024, maxBody: 4096 };
const post = (c: HttpConnection) => c.request("POST", "/wsman", {}, new Uint8Array(), 10_000, limits);

Deno.test("HttpConnection.request() joins a chunked reply and skips 1xx replies", async () => {
  await withReply(
    [
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "5\r\nhello\r\n",
      "1;x=y\r\n!\r\n0\r\n\r\n",
    ],
    async (c) => {
      const r = await post(c);
      assertEquals([r.status, new TextDecoder().decode(r.body)], [200, "hello!"]);
      // the chunks stay apart too: a robust operation's reply has one envelope in each (MS-WSMV 3.2.4.2.1)
      assertEquals(r.chunks?.map((b) => new TextDecoder().decode(b)), ["hello", "!"]);
    },
  );
});

Deno.test("HttpConnection.request() marks a chunked reply that ends before its last chunk as cut", async () => {
  await withReply(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nhello\r\n"], async (c) => {
    await rejects(post(c), (e) => e instanceof HttpError && e.kind === "protocol" && e.cut);
  });
});

Deno.test("HttpConnection.request() refuses a chunked reply past maxBody", async () => {
  const chunk = `400\r\n${"a".repeat(1024)}\r\n`;
  await withReply(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunk.repeat(64)], async (c) => {
    await rejects(
      post(c),
      (e) => e instanceof HttpError && e.kind === "protocol" && /larger than 4 KiB/.test(e.message),
    );
    assertEquals(c.closed, true, "the rest of the reply is never read as the next one");
  });
});

Deno.test("HttpConnection.request() reads a reply without a length up to the close, within maxBody", async () => {
  await withReply(["HTTP/1.1 200 OK\r\n\r\n", "abc", "def"], async (c) => {
    assertEquals(new TextDecoder().decode((await post(c)).body), "abcdef");
  });
  await withReply(["HTTP/1.1 200 OK\r\n\r\n", "x".repeat(5000)], async (c) => {
    await rejects(post(c), /the reply is larger than 4 KiB/);
  });
});

Deno.test("HttpConnection.request() bounds the header as a whole, not line by line", async () => {
  await withReply(["HTTP/1.1 200 OK\r\n", "X-A: b\r\n".repeat(200)], async (c) => {
    await rejects(post(c), /the reply header is longer than 1 KiB/);
  });
});

Deno.test("HttpConnection.request() tells a reply cut short from a connection closed before any reply", async () => {
  await withReply(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], async (c) => {
    await rejects(post(c), (e) => e instanceof HttpError && e.kind === "protocol" && /cut short/.test(e.message));
  });
  await withReply([], async (c) => {
    await rejects(post(c), (e) => e instanceof HttpError && e.kind === "closed");
  });
});
