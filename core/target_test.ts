import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { UsageError } from "./errors.ts";
import { parseTarget, withoutPassword, withoutTypedPassword } from "./target.ts";

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

Deno.test("parseTarget() leaves a password out of the user and the display", () => {
  assertEquals(parseTarget("winrm://alice:pw@win01:5985/wsman"), {
    scheme: "winrm",
    user: "alice",
    host: "win01",
    port: 5985,
    path: "/wsman",
    display: "winrm://alice@win01:5985/wsman",
  });
  assertEquals(parseTarget("alice:p@ss:w@[::1]:22").display, "alice@[::1]:22");
  assertEquals(parseTarget("alice@[::1]:22").display, "alice@[::1]:22");
  assertEquals(parseTarget("db1:2222").display, "db1:2222");
});

Deno.test("withoutTypedPassword() keeps everything but the password, ':' in hosts and paths included", () => {
  assertEquals(withoutTypedPassword("https://a%40b:x%3Ay@h:5986/wsman?q=a:b@c"), "https://a%40b@h:5986/wsman?q=a:b@c");
  assertEquals(withoutTypedPassword("ssh://alice@db1:22/x:y@z"), "ssh://alice@db1:22/x:y@z");
  assertEquals(withoutTypedPassword(":pw@h"), "@h");
  assertEquals(withoutTypedPassword("https://a:b@h?q=x@y"), "https://a@h?q=x@y");
});

Deno.test("withoutPassword() drops only the password of a URL", () => {
  assertEquals(withoutPassword(new URL("http://alice:pw@h:1/wsman")).href, "http://alice@h:1/wsman");
  const plain = new URL("https://h/wsman");
  assertEquals(withoutPassword(plain), plain);
});

Deno.test("parseTarget() with the name rule takes a 64-character container ID that DNS's 63 refuses", () => {
  const id = "0123456789abcdef".repeat(4);
  const refused = (text: string, rule: "dns" | "name", why: string) =>
    throws(() => parseTarget(text, rule), (e) => e instanceof UsageError && e.message.endsWith(why), text);
  refused(`docker://${id}`, "dns", `'${id}' is not a valid host name`);
  assertEquals(parseTarget(`docker://${id}`, "name").host, id);
  assertEquals(parseTarget("podman://web..1", "name").host, "web..1");
  refused(`docker://${"a".repeat(256)}`, "name", "is not a valid name");
  refused("docker://-web", "name", "'-web' is not a valid name");
});
