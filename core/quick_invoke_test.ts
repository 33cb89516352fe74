import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { quickPlan } from "./quick_invoke.ts";

Deno.test("quickPlan() reads `invoke HOST [-F FILE] [-o K=V]... -- WORDS` as the binder would", () => {
  assertEquals(quickPlan(["invoke", "db1", "--", "uname", "-a"]), { host: "db1", parameters: {}, command: "uname -a" });
  assertEquals(quickPlan(["invoke", "-F", "cfg", "db1", "-o", "Port=22", "-o", "ControlPersist=5s", "--", "a", "--"]), {
    host: "db1",
    parameters: { ConfigFile: "cfg", Options: { Port: "22", ControlPersist: "5s" } },
    command: "a --",
  });
});

Deno.test("quickPlan() leaves every other shape to the general road", () => {
  for (
    const argv of [
      ["enter", "db1"],
      ["invoke", "db1"],
      ["invoke", "db1", "--"],
      ["invoke", "db1", "db2", "--", "x"],
      ["invoke", "admin@db1", "--", "x"],
      ["invoke", "db1:22", "--", "x"],
      ["invoke", "ssh://db1", "--", "x"],
      ["invoke", "db1", "-F", "a", "-F", "b", "--", "x"],
      ["invoke", "db1", "-o", "Port=1", "-o", "port=2", "--", "x"],
      ["invoke", "db1", "-o", "Port 22", "--", "x"],
      ["invoke", "db1", "-oPort=22", "--", "x"],
      ["invoke", "db1", "--no-reuse", "--", "x"],
      ["invoke", "db1", "--json", "--", "x"],
      ["invoke", "db1", "-h", "--", "x"],
      ["invoke", "-F", "--", "x"],
    ]
  ) assertEquals(quickPlan(argv), undefined, argv.join(" "));
});
