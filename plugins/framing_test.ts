import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { encodeFrame, FrameSplitter, type FramingOptions } from "./framing.ts";

const payloadOnly: FramingOptions = { lengthCountsType: false, maxPayload: 8 };
const withType: FramingOptions = { lengthCountsType: true, maxPayload: 8 };
const refuse = {
  badLength: (n: number): never => {
    throw new RangeError(`bad length ${n}`);
  },
};

Deno.test("encodeFrame() counts the type byte in the length only when told to", () => {
  assertEquals([...encodeFrame(7, new Uint8Array([1, 2]), payloadOnly)], [0, 0, 0, 2, 7, 1, 2]);
  assertEquals([...encodeFrame(7, new Uint8Array([1, 2]), withType)], [0, 0, 0, 3, 7, 1, 2]);
  throws(() => encodeFrame(7, new Uint8Array(9), payloadOnly), RangeError);
});

Deno.test("FrameSplitter.push() rebuilds frames split at any byte, in either format", () => {
  for (const options of [payloadOnly, withType]) {
    const bytes = new Uint8Array([
      ...encodeFrame(1, new Uint8Array([5, 6, 7]), options),
      ...encodeFrame(2, new Uint8Array(0), options),
    ]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const s = new FrameSplitter(options, refuse);
      const frames = [...s.push(bytes.slice(0, cut)), ...s.push(bytes.slice(cut))];
      assertEquals(frames.map((f) => [f.type, [...f.payload]]), [[1, [5, 6, 7]], [2, []]]);
      assertEquals(s.pending, 0);
    }
  }
});

Deno.test("FrameSplitter.push() refuses a bad length or type from the header alone", () => {
  throws(() => new FrameSplitter(withType, refuse).push(new Uint8Array([0, 0, 0, 0, 1])), /bad length 0/);
  throws(() => new FrameSplitter(payloadOnly, refuse).push(new Uint8Array([0, 0, 0, 9, 1])), /bad length 9/);
  const typed = new FrameSplitter(payloadOnly, {
    ...refuse,
    header: (type) => {
      if (type !== 1) throw new Error(`type ${type}`);
    },
  });
  throws(() => typed.push(new Uint8Array([0, 0, 0, 4, 2])), /type 2/);
});

Deno.test("FrameSplitter.push() keeps no view of a buffer the caller reads into again", () => {
  const s = new FrameSplitter(payloadOnly, refuse);
  const buf = new Uint8Array([0, 0, 0, 2, 1, 9]);
  assertEquals(s.push(buf), []);
  buf.fill(0);
  assertEquals(s.push(new Uint8Array([8])).map((f) => [...f.payload]), [[9, 8]]);
});
