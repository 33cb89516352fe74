import assert from "node:assert/strict";
import { parseCopyOperand } from "./sftp_copy.ts";

Deno.test("parseCopyOperand() splits host:path as scp's colon() does", () => {
  assert.deepEqual(parseCopyOperand("db1:/var/log"), { host: "db1", path: "/var/log" });
  assert.deepEqual(parseCopyOperand("root@db1:notes.txt"), { host: "root@db1", path: "notes.txt" });
  assert.deepEqual(parseCopyOperand("db1:"), { host: "db1", path: "" });
  assert.deepEqual(parseCopyOperand("[::1]:/tmp/x"), { host: "[::1]", path: "/tmp/x" });
  assert.deepEqual(parseCopyOperand("me@[fe80::1]:a:b"), { host: "me@[fe80::1]", path: "a:b" });
  // a slash before the first colon, or a leading colon, keeps it local
  assert.deepEqual(parseCopyOperand("./a:b"), { path: "./a:b" });
  assert.deepEqual(parseCopyOperand("/tmp/a:b"), { path: "/tmp/a:b" });
  assert.deepEqual(parseCopyOperand(":odd"), { path: ":odd" });
  assert.deepEqual(parseCopyOperand("plain file"), { path: "plain file" });
});
