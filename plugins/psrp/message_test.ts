import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { decodeMessage, encodeMessage } from "./message.ts";
import { encodeFragment } from "./fragment.ts";
import { base64Encode } from "./packet.ts";

const NIL = "00000000-0000-0000-0000-000000000000";
const CAPABILITY =
  '<Obj RefId="0"><MS><Version N="protocolversion">2.3</Version><Version N="PSVersion">2.0</Version><Version N="SerializationVersion">1.1.0.1</Version></MS></Obj>';

Deno.test("encodeMessage() matches the computed SESSION_CAPABILITY vector, fragment and base64 included", () => {
  const m = encodeMessage({
    destination: 2,
    type: 0x00010002,
    rpid: "8d1e6f2a-4c3b-4a5d-9e7f-0123456789ab",
    pid: NIL,
    data: CAPABILITY,
  });
  assertEquals(m.length, 40 + 159);
  const f = encodeFragment({ objectId: 1n, fragmentId: 0n, start: true, end: true, blob: m });
  assertEquals(f.length, 220);
  assertEquals(base64Encode(f).startsWith("AAAAAAAAAAEAAAAAAAAAAAMAAADHAgAAAAIAAQAqbx6NO0xd"), true);
});

Deno.test("decodeMessage() reverses encodeMessage() and drops PowerShell's BOM", () => {
  const m = {
    destination: 1 as const,
    type: 0x00041004,
    rpid: crypto.randomUUID(),
    pid: crypto.randomUUID(),
    data: "<S>é</S>",
  };
  assertEquals(decodeMessage(encodeMessage(m)), m);
  const withBom = encodeMessage({ ...m, data: "\ufeff<S>x</S>" });
  assertEquals(decodeMessage(withBom).data, "<S>x</S>");
});

Deno.test("decodeMessage() refuses a short header, an unknown destination or type, and invalid UTF-8", () => {
  throws(() => decodeMessage(new Uint8Array(39)), /no full header/);
  const ok = encodeMessage({ destination: 1, type: 0x00041004, rpid: NIL, pid: NIL, data: "" });
  const dest = ok.slice();
  dest[0] = 3;
  throws(() => decodeMessage(dest), /unknown destination 3/);
  const type = ok.slice();
  type[4] = 0x99;
  throws(() => decodeMessage(type), /unknown type/);
  throws(() => decodeMessage(new Uint8Array([...ok, 0xff, 0xfe])), /not valid UTF-8/);
});
