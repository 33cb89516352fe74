import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { decodeClientMessage, encodeClientMessage, MessageType, newMessageId, PayloadType } from "./client_message.ts";
import { DataChannel } from "./data_channel.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The far side of a data channel on a thread of its own, so it answers while the client is still busy, as the
 * service does from another machine: it takes the WebSocket upgrade, and the moment the token message arrives sends
 * `first` (the agent's handshake request comes that way), then reports the client's next frame, unmasked. It never
 * sends `first` again.
 */
const PEER = `
const te = new TextEncoder(), td = new TextDecoder();
self.onmessage = async ({ data: { first } }) => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  self.postMessage({ port: listener.addr.port });
  const conn = await listener.accept();
  let buf = new Uint8Array(0);
  const need = async (n) => {
    while (buf.length < n) {
      const chunk = new Uint8Array(65536);
      const got = await conn.read(chunk);
      if (got === null) throw new Error("closed");
      const joined = new Uint8Array(buf.length + got);
      joined.set(buf);
      joined.set(chunk.subarray(0, got), buf.length);
      buf = joined;
    }
  };
  // a client frame: FIN+opcode, MASK+length (7 or 7+16 bits), the mask, the masked payload (RFC 6455 5.2)
  const frame = async () => {
    await need(2);
    let length = buf[1] & 0x7f, at = 2;
    if (length === 126) { await need(4); length = (buf[2] << 8) | buf[3]; at = 4; }
    await need(at + 4 + length);
    const mask = buf.subarray(at, at + 4);
    const payload = buf.slice(at + 4, at + 4 + length).map((b, i) => b ^ mask[i % 4]);
    const opcode = buf[0] & 0x0f;
    buf = buf.subarray(at + 4 + length);
    return { opcode, payload };
  };
  try {
    let end;
    while ((end = td.decode(buf).indexOf("\\r\\n\\r\\n")) < 0) await need(buf.length + 1);
    const key = /sec-websocket-key: *(\\S+)/i.exec(td.decode(buf.subarray(0, end)))[1];
    buf = buf.subarray(end + 4);
    const digest = await crypto.subtle.digest("SHA-1", te.encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"));
    await conn.write(te.encode("HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n" +
      "Sec-WebSocket-Accept: " + btoa(String.fromCharCode(...new Uint8Array(digest))) + "\\r\\n\\r\\n"));
    await frame(); // the token
    const out = new Uint8Array(4 + first.length);
    out.set([0x82, 126, first.length >> 8, first.length & 0xff]);
    out.set(first, 4);
    await conn.write(out);
    self.postMessage({ reply: await frame() });
  } catch (error) {
    self.postMessage({ error: String(error) });
  } finally {
    conn.close();
    listener.close();
  }
};
`;

Deno.test("DataChannel handles the message the far side sends the moment the token arrives", async () => {
  const first = encodeClientMessage({
    messageType: MessageType.output,
    schemaVersion: 1,
    createdDate: Date.now(),
    sequenceNumber: 0,
    flags: 1,
    messageId: newMessageId(),
    payloadType: PayloadType.handshakeRequest,
    payload: encoder.encode('{"AgentVersion":"3.3.1142.0","RequestedClientActions":[]}'),
  });
  // the race is between the peer's answer and the client's own start: several sessions, each with a fresh peer
  for (let attempt = 0; attempt < 20; attempt++) {
    const url = URL.createObjectURL(new Blob([PEER], { type: "application/javascript" }));
    const worker = new Worker(url, { type: "module" });
    const events: { port?: number; reply?: { opcode: number; payload: Uint8Array }; error?: string }[] = [];
    let wake = () => {};
    worker.onmessage = ({ data }) => {
      events.push(data);
      wake();
    };
    const next = async () => {
      while (events.length === 0) await new Promise<void>((r) => wake = r);
      return events.shift()!;
    };
    worker.postMessage({ first });
    const { port } = await next();
    const got: string[] = [];
    const dc = await DataChannel.open({
      streamUrl: `ws://127.0.0.1:${port}/v1/data-channel/s-1`,
      token: "t",
      onMessage: (m) => void got.push(decoder.decode(m.payload)),
      onClosed: () => {},
      onLost: () => {},
    });
    try {
      // the peer reports the client's first frame after the token: the ack, had the message been taken (the
      // channel's own input waits for the handshake, so nothing else comes); else it ends when the channel closes
      const timer = setTimeout(() => dc.close(), 3000);
      const { reply, error } = await next();
      clearTimeout(timer);
      const ack = reply?.opcode === 2 ? decodeClientMessage(reply.payload) : undefined;
      assertEquals(
        {
          attempt,
          error,
          opcode: reply?.opcode,
          type: ack?.messageType,
          ack: ack && JSON.parse(decoder.decode(ack.payload)),
        },
        {
          attempt,
          error: undefined,
          opcode: 2, // binary, not the close frame
          type: MessageType.acknowledge,
          ack: {
            AcknowledgedMessageType: MessageType.output,
            AcknowledgedMessageId: decodeClientMessage(first).messageId,
            AcknowledgedMessageSequenceNumber: 0,
            IsSequentialMessage: true,
          },
        },
      );
      assertEquals(got.length, 1);
    } finally {
      dc.close();
      worker.terminate();
      URL.revokeObjectURL(url);
    }
  }
});
