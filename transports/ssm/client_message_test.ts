import { deepStrictEqual as assertEquals, strictEqual, throws } from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  decodeClientMessage,
  encodeAcknowledge,
  encodeClientMessage,
  MalformedMessageError,
  parseJsonPayload,
} from "./client_message.ts";

const message = {
  messageType: "input_stream_data",
  schemaVersion: 1,
  createdDate: 1700000000000,
  sequenceNumber: 7,
  flags: 0,
  messageId: "00112233-4455-6677-8899-aabbccddeeff",
  payloadType: 1,
  payload: new TextEncoder().encode("hi"),
};

Deno.test("encodeClientMessage() writes the plugin's layout and quirks", () => {
  const frame = encodeClientMessage(message);
  const view = new DataView(frame.buffer);
  strictEqual(frame.length, 122);
  strictEqual(view.getUint32(0), 116);
  strictEqual(new TextDecoder().decode(frame.subarray(4, 36)), "input_stream_data".padEnd(32, " "));
  assertEquals([...frame.subarray(64, 80)], [
    0x88,
    0x99,
    0xaa,
    0xbb,
    0xcc,
    0xdd,
    0xee,
    0xff,
    0,
    0x11,
    0x22,
    0x33,
    0x44,
    0x55,
    0x66,
    0x77,
  ]);
  strictEqual(view.getBigInt64(48), 7n);
  strictEqual(view.getUint32(112), 1);
  strictEqual(view.getUint32(116), 2);
  // SHA-256("hi")
  strictEqual(frame[80], 0x8f);
  strictEqual(frame[111], 0xa4);
});

Deno.test("decodeClientMessage() round-trips, tolerates a bad digest and NUL padding, reads 112-byte headers", () => {
  const frame = encodeClientMessage(message);
  assertEquals({ ...decodeClientMessage(frame), payload: undefined }, {
    ...message,
    payload: undefined,
    headerLength: 116,
    digestOk: true,
  });
  frame[80] ^= 1;
  frame.fill(0, 4 + 17, 36);
  const tolerated = decodeClientMessage(frame);
  strictEqual(tolerated.digestOk, false);
  strictEqual(tolerated.messageType, "input_stream_data");
  const short = new Uint8Array(116 + 2);
  short.set(frame.subarray(0, 112));
  new DataView(short.buffer).setUint32(0, 112);
  new DataView(short.buffer).setUint32(112, 2);
  short.set([104, 105], 116);
  const closed = decodeClientMessage(short);
  strictEqual(closed.payloadType, 0);
  strictEqual(new TextDecoder().decode(closed.payload), "hi");
});

Deno.test("decodeClientMessage() rejects bad lengths", () => {
  const frame = encodeClientMessage(message);
  new DataView(frame.buffer).setUint32(116, 9);
  throws(() => decodeClientMessage(frame), MalformedMessageError);
  throws(() => decodeClientMessage(frame.subarray(0, 50)), MalformedMessageError);
  const bad = encodeClientMessage(message);
  new DataView(bad.buffer).setUint32(0, 5000);
  throws(() => decodeClientMessage(bad), MalformedMessageError);
});

Deno.test("encodeClientMessage() and decodeClientMessage() carry 64-bit fields beyond 32 bits, signed sequence numbers too", () => {
  for (
    const [createdDate, sequenceNumber, flags] of [[1700000000123, 2 ** 40 + 5, 3], [1, -1, 2 ** 52 + 1], [
      2 ** 53 - 1,
      -(2 ** 33) - 7,
      0,
    ]]
  ) {
    const frame = encodeClientMessage({ ...message, createdDate, sequenceNumber, flags });
    const view = new DataView(frame.buffer);
    strictEqual(view.getBigUint64(40), BigInt(createdDate));
    strictEqual(view.getBigInt64(48), BigInt(sequenceNumber));
    strictEqual(view.getBigUint64(56), BigInt(flags));
    const back = decodeClientMessage(frame);
    assertEquals([back.createdDate, back.sequenceNumber, back.flags], [createdDate, sequenceNumber, flags]);
  }
});

Deno.test("encodeAcknowledge() writes the plugin's acknowledgement with a valid digest and a fresh version 4 ID", () => {
  const ids = new Set<string>();
  const cases = [
    { messageType: "output_stream_data", messageId: "00112233-4455-6677-8899-aabbccddeeff", sequenceNumber: 0 },
    { messageType: "output_stream_data", messageId: "ffeeddcc-bbaa-9988-7766-554433221100", sequenceNumber: 123456789 },
    { messageType: "input_stream_data", messageId: "00112233-4455-6677-8899-aabbccddeeff", sequenceNumber: 42 },
    // no UUID: still valid JSON
    { messageType: "output_stream_data", messageId: 'odd "id" \\ é', sequenceNumber: 7 },
  ];
  for (const acked of cases) {
    for (let i = 0; i < 3; i++) {
      const before = Date.now();
      const frame = encodeAcknowledge(acked);
      const m = decodeClientMessage(frame);
      strictEqual(m.messageType, "acknowledge");
      strictEqual(m.headerLength, 116);
      strictEqual(m.schemaVersion, 1);
      strictEqual(m.sequenceNumber, 0);
      strictEqual(m.flags, 3);
      strictEqual(m.payloadType, 0);
      strictEqual(m.digestOk, true);
      strictEqual(
        Array.from(frame.subarray(80, 112), (b) => b.toString(16).padStart(2, "0")).join(""),
        createHash("sha256").update(m.payload).digest("hex"),
      );
      strictEqual(m.createdDate >= before && m.createdDate <= Date.now(), true);
      strictEqual(m.messageId[14], "4");
      strictEqual("89ab".includes(m.messageId[19]), true);
      ids.add(m.messageId);
      strictEqual(
        new TextDecoder().decode(m.payload),
        JSON.stringify({
          AcknowledgedMessageType: acked.messageType,
          AcknowledgedMessageId: acked.messageId,
          AcknowledgedMessageSequenceNumber: acked.sequenceNumber,
          IsSequentialMessage: true,
        }),
      );
      assertEquals(parseJsonPayload(m.payload)?.AcknowledgedMessageId, acked.messageId);
    }
  }
  strictEqual(ids.size, cases.length * 3);
});

Deno.test("decodeClientMessage() checks the digest of short and long payloads alike", () => {
  for (const length of [1, 255, 256, 257, 1024]) {
    const frame = encodeClientMessage({ ...message, payload: new Uint8Array(length).fill(0x61) });
    strictEqual(
      Array.from(frame.subarray(80, 112), (b) => b.toString(16).padStart(2, "0")).join(""),
      createHash("sha256").update("a".repeat(length)).digest("hex"),
    );
    strictEqual(decodeClientMessage(frame).digestOk, true, `length ${length}`);
    frame[111] ^= 0x80;
    strictEqual(decodeClientMessage(frame).digestOk, false, `length ${length}`);
  }
});
