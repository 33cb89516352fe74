import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { guidFromBytes, guidToBytes, isGuid, newGuid } from "./guid.ts";
import { PsrpError } from "./errors.ts";

Deno.test("guidToBytes() writes .NET order: first three groups little-endian (MS-PSRP §2.2.1 vector)", () => {
  assertEquals(
    [...guidToBytes("8d1e6f2a-4c3b-4a5d-9e7f-0123456789ab")],
    [0x2a, 0x6f, 0x1e, 0x8d, 0x3b, 0x4c, 0x5d, 0x4a, 0x9e, 0x7f, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab],
  );
});

Deno.test("guidFromBytes() reverses guidToBytes() and writes lower case", () => {
  const g = newGuid();
  assertEquals(guidFromBytes(guidToBytes(g.toUpperCase())), g);
  assertEquals(isGuid(g), true);
});

Deno.test("guidToBytes() and guidFromBytes() refuse malformed input with a PsrpError", () => {
  throws(() => guidToBytes("not-a-guid"), PsrpError);
  throws(() => guidFromBytes(new Uint8Array(15)), PsrpError);
});
