import { deepStrictEqual as assertEquals, match, ok as assert, strictEqual, throws } from "node:assert/strict";
import { RemoteError, UsageError } from "../../plugins/mod.ts";
import { compareApiVersions, MAX_API_VERSION, MIN_API_VERSION, negotiateApiVersion } from "./api_version.ts";

const engine = "the docker engine at unix:///run/docker.sock";

Deno.test("negotiateApiVersion() takes the engine's version when it is within the client's range", () => {
  assertEquals(negotiateApiVersion("1.41", undefined, engine), { version: "1.41", pinned: false });
  assertEquals(negotiateApiVersion(MIN_API_VERSION, undefined, engine).version, MIN_API_VERSION);
});

Deno.test("negotiateApiVersion() caps a newer engine at the client's maximum", () => {
  strictEqual(negotiateApiVersion("1.51", undefined, engine).version, MAX_API_VERSION);
  strictEqual(negotiateApiVersion("2.0", undefined, engine).version, MAX_API_VERSION);
});

Deno.test("negotiateApiVersion() refuses an engine without the header (1.24) or older, naming it", () => {
  for (const header of [null, "1.12", "garbage"]) {
    throws(() => negotiateApiVersion(header, undefined, engine), (e) => {
      assert(e instanceof RemoteError);
      strictEqual(e.exitCode, 244);
      match(e.message, /^the docker engine at unix:\/\/\/run\/docker\.sock speaks API 1\.(24|12); remote needs/);
      return true;
    });
  }
});

Deno.test("negotiateApiVersion() uses DOCKER_API_VERSION as it is, without negotiating", () => {
  assertEquals(negotiateApiVersion("1.41", "1.40", engine), { version: "1.40", pinned: true });
  assertEquals(negotiateApiVersion(null, "1.30", engine), { version: "1.30", pinned: true });
  assertEquals(negotiateApiVersion("1.41", "v1.43", engine), { version: "1.43", pinned: true });
});

Deno.test("negotiateApiVersion() refuses a malformed or out-of-range DOCKER_API_VERSION as a usage error", () => {
  for (const pin of ["latest", "1", "1.99", "1.11"]) {
    throws(() => negotiateApiVersion("1.41", pin, engine), (e) => e instanceof UsageError && e.exitCode === 230);
  }
});

Deno.test("compareApiVersions() compares numerically, not as text", () => {
  assert(compareApiVersions("1.9", "1.10") < 0);
  assert(compareApiVersions("1.41", "1.41") === 0);
  assert(compareApiVersions("2.0", "1.99") > 0);
});
