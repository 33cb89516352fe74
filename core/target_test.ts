import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { parseTarget, withoutPassword, withoutTypedPassword } from "./target.ts";

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
