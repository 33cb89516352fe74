import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { UsageError } from "./errors.ts";
import { parseTarget } from "./target.ts";

Deno.test("parseTarget() takes apart scheme, user, host, port and path", () => {
  assertEquals(parseTarget("https://CORP%5Cadmin@win01:5986/wsman"), {
    scheme: "https",
    user: "CORP\\admin",
    host: "win01",
    port: 5986,
    path: "/wsman",
    display: "https://CORP%5Cadmin@win01:5986/wsman",
  });
  assertEquals(parseTarget("db1"), {
    scheme: undefined,
    user: undefined,
    host: "db1",
    port: undefined,
    path: undefined,
    display: "db1",
  });
});

Deno.test("parseTarget() reads an IPv6 literal in brackets, and the last @ ends the user", () => {
  const t = parseTarget("a@b@[::1]:2222");
  assertEquals([t.user, t.host, t.port], ["a@b", "::1", 2222]);
});

Deno.test("parseTarget() refuses malformed targets with a hint", () => {
  const cases: [string, string][] = [
    ["", "malformed target ''"],
    ["db 1", "malformed target 'db 1'"],
    ["@db1", "malformed target '@db1': the user before @ is empty"],
    ["::1", "malformed target '::1': an IPv6 address must be in brackets, e.g. [::1]:22"],
    ["[::1", "malformed target '[::1': an IPv6 address needs a closing ]"],
    ["db1:0", "malformed target 'db1:0': port '0' is not a number from 1 to 65535"],
    ["db1:65536", "malformed target 'db1:65536': port '65536' is not a number from 1 to 65535"],
    ["db_1.-x", "malformed target 'db_1.-x': 'db_1.-x' is not a valid host name"],
  ];
  for (const [text, message] of cases) {
    throws(
      () => parseTarget(text),
      (e) =>
        e instanceof UsageError && e.message === message &&
        e.hint === "write it as [user@]host[:port], e.g. admin@db1:22",
      text,
    );
  }
});
