import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { BASIC_CHARSETS, encodeBasic } from "./basic_charset.ts";

Deno.test("encodeBasic() encodes in the host's ANSI code page as Windows does", () => {
  assertEquals([...encodeBasic("jörg:pässword€", "windows-1252")!], [
    ...new TextEncoder().encode("j"),
    0xf6,
    ...new TextEncoder().encode("rg:p"),
    0xe4,
    ...new TextEncoder().encode("ssword"),
    0x80,
  ]);
  // "Администратор" as Enter-PSSession sent it in chef/knife-windows issue 424 (windows-1251)
  assertEquals(
    btoa(String.fromCharCode(...encodeBasic("Администратор", "windows-1251")!)),
    "wOTs6O3o8fLw4PLu8A==",
  );
  assertEquals([...encodeBasic("ä", "utf-8")!], [0xc3, 0xa4]);
  assertEquals([...encodeBasic("日本", "windows-932")!], [0x93, 0xfa, 0x96, 0x7b]);
});

Deno.test("encodeBasic() returns undefined for a character the code page lacks", () => {
  assertEquals(encodeBasic("Админ", "windows-1252"), undefined);
  assertEquals(encodeBasic("ł", "windows-1252"), undefined);
  assertEquals(encodeBasic("😀", "windows-936"), undefined);
  for (const c of BASIC_CHARSETS) assertEquals(encodeBasic("alice:pw", c)?.length, 8);
});
