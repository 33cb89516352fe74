import { deepStrictEqual as assertEquals, match, ok as assert, strictEqual, throws } from "node:assert/strict";
import { describeEndpoint, parseConfigForward, parseForwardSpec } from "./forward_spec.ts";
import { UsageError } from "../../plugins/mod.ts";

Deno.test("parseForwardSpec() reads -L in ssh's forms", () => {
  assertEquals(parseForwardSpec("L", "8080:localhost:80"), {
    kind: "local",
    listen: { kind: "tcp", host: undefined, port: 8080 },
    connect: { kind: "tcp", host: "localhost", port: 80 },
    text: "8080:localhost:80",
  });
  assertEquals(parseForwardSpec("L", "0.0.0.0:8080:db:5432").listen, { kind: "tcp", host: "0.0.0.0", port: 8080 });
  assertEquals(parseForwardSpec("L", "*:8080:db:5432").listen, { kind: "tcp", host: "", port: 8080 });
  assertEquals(parseForwardSpec("L", ":8080:db:5432").listen, { kind: "tcp", host: "", port: 8080 });
  const v6 = parseForwardSpec("L", "[::1]:8080:[fe80::1]:22");
  assertEquals(v6.listen, { kind: "tcp", host: "::1", port: 8080 });
  assertEquals(v6.connect, { kind: "tcp", host: "fe80::1", port: 22 });
  assertEquals(parseForwardSpec("L", "8080:/run/docker.sock").connect, { kind: "unix", path: "/run/docker.sock" });
  assertEquals(parseForwardSpec("L", "/tmp/x.sock:db:5432").listen, { kind: "unix", path: "/tmp/x.sock" });
  assertEquals(parseForwardSpec("L", "/tmp/a.sock:/tmp/b.sock").connect, { kind: "unix", path: "/tmp/b.sock" });
  // a backslash escapes a colon inside a socket path
  assertEquals(parseForwardSpec("L", "8080:/tmp/a\\:b").connect, { kind: "unix", path: "/tmp/a:b" });
});

Deno.test("parseForwardSpec() reads -R and -D, including -R's SOCKS form", () => {
  assertEquals(parseForwardSpec("R", "0:127.0.0.1:5432").listen, { kind: "tcp", host: undefined, port: 0 });
  const socks = parseForwardSpec("R", "localhost:1080");
  assertEquals([socks.kind, socks.listen, socks.connect], ["remote", {
    kind: "tcp",
    host: "localhost",
    port: 1080,
  }, undefined]);
  assertEquals(parseForwardSpec("D", "1080").listen, { kind: "tcp", host: undefined, port: 1080 });
  assertEquals(parseForwardSpec("D", "*:1080").listen, { kind: "tcp", host: "", port: 1080 });
  assertEquals(parseForwardSpec("D", "[::1]:1080").listen, { kind: "tcp", host: "::1", port: 1080 });
});

Deno.test("parseForwardSpec() refuses malformed specifications with the accepted forms as hint", () => {
  for (
    const [flag, text] of [
      ["L", "8080"],
      ["L", "8080:db"],
      ["L", "70000:db:80"],
      ["L", "8080:db:0"],
      ["L", "8080::80"],
      ["L", "a:b:c:d:e"],
      ["L", "[::1:8080:db:80"],
      ["D", "1080:db:80"],
      ["D", "x"],
      ["R", "/tmp/x.sock"],
    ] as const
  ) {
    throws(() => parseForwardSpec(flag, text), (e) => {
      assert(e instanceof UsageError, `${flag} ${text}`);
      match(e.message, new RegExp(`^bad (local|remote|dynamic) forwarding specification '`));
      match(e.hint ?? "", new RegExp(`^write -${flag} `));
      return true;
    });
  }
});

Deno.test("parseConfigForward() reads ssh_config's space-separated values", () => {
  const l = parseConfigForward("LocalForward", "  5432 db.internal:5432 ");
  assertEquals([l.kind, l.listen, l.connect, l.text], [
    "local",
    { kind: "tcp", host: undefined, port: 5432 },
    { kind: "tcp", host: "db.internal", port: 5432 },
    "LocalForward 5432 db.internal:5432",
  ]);
  assertEquals(parseConfigForward("RemoteForward", "*:8080 localhost:80").listen, {
    kind: "tcp",
    host: "",
    port: 8080,
  });
  strictEqual(parseConfigForward("RemoteForward", "1080").connect, undefined);
  assertEquals(parseConfigForward("DynamicForward", "localhost:1080").listen, {
    kind: "tcp",
    host: "localhost",
    port: 1080,
  });
  throws(() => parseConfigForward("LocalForward", "5432"), /bad LocalForward value '5432'/);
  throws(() => parseConfigForward("DynamicForward", "1080 x"), /bad DynamicForward value/);
});

Deno.test("describeEndpoint() writes ports as ssh does in messages", () => {
  strictEqual(describeEndpoint({ kind: "tcp", host: undefined, port: 80 }), "localhost:80");
  strictEqual(describeEndpoint({ kind: "tcp", host: "", port: 80 }), "*:80");
  strictEqual(describeEndpoint({ kind: "tcp", host: "::1", port: 80 }), "[::1]:80");
  strictEqual(describeEndpoint({ kind: "unix", path: "/tmp/s" }), "/tmp/s");
});
