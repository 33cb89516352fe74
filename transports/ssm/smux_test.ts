import { deepStrictEqual as assertEquals, strictEqual, throws } from "node:assert/strict";
import { encodeSmuxFrame, SMUX_MAX_FRAME, SmuxClient, SmuxCmd, SmuxFrameReader } from "./smux.ts";

Deno.test("encodeSmuxFrame() writes version 1, the command, and little-endian length and stream ID", () => {
  const bytes = encodeSmuxFrame(SmuxCmd.psh, 0x01020304, new Uint8Array([9, 8, 7]));
  assertEquals([...bytes], [1, 2, 3, 0, 4, 3, 2, 1, 9, 8, 7]);
  throws(() => encodeSmuxFrame(SmuxCmd.psh, 3, new Uint8Array(0x10000)), RangeError);
});

Deno.test("SmuxFrameReader reassembles frames from any chunking, one byte at a time included", () => {
  const big = new Uint8Array(SMUX_MAX_FRAME).map((_, i) => i % 251);
  const stream = new Uint8Array([
    ...encodeSmuxFrame(SmuxCmd.syn, 3),
    ...encodeSmuxFrame(SmuxCmd.psh, 3, big),
    ...encodeSmuxFrame(SmuxCmd.fin, 3),
  ]);
  for (const size of [1, 7, 1024, stream.length]) {
    const reader = new SmuxFrameReader();
    const frames = [];
    for (let at = 0; at < stream.length; at += size) frames.push(...reader.push(stream.subarray(at, at + size)));
    assertEquals(frames.map((f) => [f.cmd, f.streamId, f.data.length]), [[0, 3, 0], [2, 3, big.length], [1, 3, 0]]);
    assertEquals(frames[1].data, big, `chunks of ${size}`);
  }
});

Deno.test("SmuxFrameReader rejects an unknown protocol version", () => {
  const bytes = encodeSmuxFrame(SmuxCmd.psh, 3, new Uint8Array([1]));
  bytes[0] = 0x65;
  throws(() => new SmuxFrameReader().push(bytes), /smux frame version 101/);
});

Deno.test("SmuxClient opens odd stream IDs from 3, splits large writes, and routes data and FIN", async () => {
  const written: Uint8Array[] = [];
  const client = new SmuxClient((bytes) => {
    written.push(bytes);
    return Promise.resolve();
  });
  const events: string[] = [];
  const handlers = (name: string) => ({
    onData: (d: Uint8Array) => void events.push(`${name} data ${d.length}`),
    onClose: () => void events.push(`${name} close`),
  });
  const a = await client.open(handlers("a"));
  const b = await client.open(handlers("b"));
  assertEquals([a, b], [3, 5]);
  await client.send(a, new Uint8Array(SMUX_MAX_FRAME + 10));
  const frames = new SmuxFrameReader().push(new Uint8Array(written.flatMap((w) => [...w])));
  assertEquals(frames.map((f) => [f.cmd, f.streamId, f.data.length]), [
    [SmuxCmd.syn, 3, 0],
    [SmuxCmd.syn, 5, 0],
    [SmuxCmd.psh, 3, SMUX_MAX_FRAME],
    [SmuxCmd.psh, 3, 10],
  ]);

  client.feed(
    new Uint8Array([
      ...encodeSmuxFrame(SmuxCmd.psh, 5, new Uint8Array(4)),
      ...encodeSmuxFrame(SmuxCmd.psh, 99, new Uint8Array(4)), // unknown stream: dropped
      ...encodeSmuxFrame(SmuxCmd.fin, 5),
      ...encodeSmuxFrame(SmuxCmd.psh, 5, new Uint8Array(4)), // after FIN: dropped
    ]),
  );
  assertEquals(events, ["b data 4", "b close"]);
  strictEqual(client.streams, 1);

  written.length = 0;
  await client.close(a);
  await client.close(a);
  strictEqual(written.length, 1, "a second close sends nothing");
  assertEquals([...written[0]], [...encodeSmuxFrame(SmuxCmd.fin, 3)]);
  client.closeAll();
  strictEqual(client.streams, 0);
});
