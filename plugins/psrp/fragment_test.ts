import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { decodeFragments, Defragmenter, encodeFragment, FRAGMENT_HEADER_SIZE, Fragmenter } from "./fragment.ts";

Deno.test("encodeFragment() writes the 21-byte big-endian header of MS-PSRP §2.2.4", () => {
  const b = encodeFragment({
    objectId: 0x0102n,
    fragmentId: 3n,
    start: false,
    end: true,
    blob: new Uint8Array([7, 8]),
  });
  assertEquals([...b], [0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 3, 2, 0, 0, 0, 2, 7, 8]);
});

Deno.test("Fragmenter splits at the fragment size and numbers objects from 1; Defragmenter joins them", () => {
  const f = new Fragmenter(FRAGMENT_HEADER_SIZE + 10);
  const message = new Uint8Array(35).map((_, i) => i);
  const parts = f.fragment(message);
  assertEquals(parts.map((p) => p.length), [31, 31, 31, 26]);
  const frags = parts.flatMap(decodeFragments);
  assertEquals(frags.map((x) => [x.objectId, x.fragmentId, x.start, x.end]), [
    [1n, 0n, true, false],
    [1n, 1n, false, false],
    [1n, 2n, false, false],
    [1n, 3n, false, true],
  ]);
  const d = new Defragmenter();
  assertEquals(frags.map((x) => d.push(x)).at(-1), message);
  assertEquals(f.fragment(new Uint8Array(0)).flatMap(decodeFragments)[0].objectId, 2n);
});

Deno.test("Defragmenter reassembles objects whose fragments interleave", () => {
  const f = new Fragmenter(FRAGMENT_HEADER_SIZE + 2);
  const a = f.fragment(new Uint8Array([1, 2, 3, 4])).flatMap(decodeFragments);
  const b = f.fragment(new Uint8Array([5, 6, 7])).flatMap(decodeFragments);
  const d = new Defragmenter();
  const done = [a[0], b[0], a[1], b[1]].map((x) => d.push(x)).filter((m) => m);
  assertEquals(done, [new Uint8Array([1, 2, 3, 4]), new Uint8Array([5, 6, 7])]);
  assertEquals(d.pending, 0);
});

Deno.test("decodeFragments() reads several fragments in one buffer and refuses a cut one", () => {
  const one = encodeFragment({ objectId: 1n, fragmentId: 0n, start: true, end: true, blob: new Uint8Array(5) });
  assertEquals(decodeFragments(new Uint8Array([...one, ...one])).length, 2);
  throws(() => decodeFragments(one.subarray(0, 10)), /header is cut short/);
  throws(() => decodeFragments(one.subarray(0, 23)), /blob is cut short/);
  const bad = one.slice();
  bad[16] = 0x07;
  throws(() => decodeFragments(bad), /reserved flag bits/);
  throws(() => decodeFragments(new Uint8Array(FRAGMENT_HEADER_SIZE)), /object id 0/);
});

Deno.test("Defragmenter refuses fragments out of order, without a start, or over the size limit", () => {
  const frag = (objectId: bigint, fragmentId: bigint, start: boolean, end: boolean, n = 1) => ({
    objectId,
    fragmentId,
    start,
    end,
    blob: new Uint8Array(n),
  });
  throws(() => new Defragmenter().push(frag(1n, 1n, false, true)), /no start fragment/);
  const d = new Defragmenter();
  d.push(frag(1n, 0n, true, false));
  throws(() => d.push(frag(1n, 2n, false, true)), /fragment 2 arrived, expected 1/);
  throws(() => new Defragmenter().push(frag(1n, 1n, true, true)), /starts at fragment 1/);
  const small = new Defragmenter({ maxObjectSize: 10 });
  small.push(frag(1n, 0n, true, false, 6));
  throws(() => small.push(frag(1n, 1n, false, false, 6)), /larger than 10 bytes/);
  const few = new Defragmenter({ maxPendingObjects: 2 });
  few.push(frag(1n, 0n, true, false));
  few.push(frag(2n, 0n, true, false));
  throws(() => few.push(frag(3n, 0n, true, false)), /more than 2 messages/);
});
