import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { parseCopyOperand } from "./copy_operand.ts";

Deno.test("parseCopyOperand() splits host:path as scp's colon() does", () => {
  assertEquals(parseCopyOperand("db1:/var/log"), { host: "db1", path: "/var/log" });
  assertEquals(parseCopyOperand("root@db1:notes.txt"), { host: "root@db1", path: "notes.txt" });
  assertEquals(parseCopyOperand("db1:"), { host: "db1", path: "" });
  assertEquals(parseCopyOperand("[::1]:/tmp/x"), { host: "[::1]", path: "/tmp/x" });
  assertEquals(parseCopyOperand("me@[fe80::1]:a:b"), { host: "me@[fe80::1]", path: "a:b" });
  // a slash before the first colon, or a leading colon, keeps it local
  assertEquals(parseCopyOperand("./a:b"), { path: "./a:b" });
  assertEquals(parseCopyOperand("/tmp/a:b"), { path: "/tmp/a:b" });
  assertEquals(parseCopyOperand(":odd"), { path: ":odd" });
  assertEquals(parseCopyOperand("plain file"), { path: "plain file" });
});
