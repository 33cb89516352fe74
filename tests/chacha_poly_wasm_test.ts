/**
 * The WebAssembly module carried in transports/ssh/chacha_poly_wasm.ts is the one its C source builds
 * (scripts/build_wasm.ts).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { CHACHA_POLY_SOURCE_SHA256, CHACHA_POLY_WASM_BASE64 } from "../transports/ssh/chacha_poly_wasm.ts";
import { buildWasm, findClang, generatedModule, sourceDigest } from "../scripts/build_wasm.ts";

Deno.test("chacha_poly_wasm.ts was generated from chacha_poly.c as it is now", async () => {
  assertEquals(CHACHA_POLY_SOURCE_SHA256, await sourceDigest(), "run: deno run -A scripts/build_wasm.ts");
  // With a wasm32 clang here (Debian: clang, lld), the checked-in bytes must also be what it builds.
  const clang = await findClang();
  if (clang) {
    const built = generatedModule(await buildWasm(clang), CHACHA_POLY_SOURCE_SHA256);
    assert(built.includes(CHACHA_POLY_WASM_BASE64.slice(0, 112)), "rebuilt module differs");
    assertEquals(
      built,
      await Deno.readTextFile(new URL("../transports/ssh/chacha_poly_wasm.ts", import.meta.url)),
      "the checked-in module differs from a fresh build: run deno run -A scripts/build_wasm.ts",
    );
  }
});
