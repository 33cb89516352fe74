import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { quickContainerPlan, quickPlan } from "./quick_invoke.ts";

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

Deno.test("quickContainerPlan() reads `invoke docker://NAME -- WORDS` and `--container-id NAME` as the router would", () => {
  assertEquals(quickContainerPlan(["invoke", "docker://web1", "--", "echo", "hi"]), {
    target: { transport: "container", host: "web1", display: "docker://web1" },
    parameters: {},
    command: "echo hi",
  });
  assertEquals(quickContainerPlan(["invoke", "podman://a.b_c-1", "--", "x"])?.target.display, "podman://a.b_c-1");
  const id = "0123456789abcdef".repeat(4);
  assertEquals(quickContainerPlan(["invoke", "--container-id", id, "--", "uname", "-a"]), {
    target: { transport: "container", host: id, display: id },
    parameters: { ContainerId: id },
    command: "uname -a",
  });
});

Deno.test("quickContainerPlan() leaves every other shape to the general road", () => {
  for (
    const argv of [
      ["enter", "docker://web1"],
      ["invoke", "docker://web1"],
      ["invoke", "docker://web1", "--"],
      ["invoke", "docker://web1", "docker://web2", "--", "x"],
      ["invoke", "docker://root@web1", "--", "x"],
      ["invoke", "docker://web1:22", "--", "x"],
      ["invoke", "docker://web1/x", "--", "x"],
      ["invoke", "docker://", "--", "x"],
      ["invoke", "docker://-web1", "--", "x"],
      ["invoke", `docker://${"a".repeat(256)}`, "--", "x"],
      ["invoke", "DOCKER://web1", "--", "x"],
      ["invoke", "k8s://ns/pod", "--", "x"],
      ["invoke", "web1", "--", "x"],
      ["invoke", "docker://web1", "--json", "--", "x"],
      ["invoke", "--container-id", "--", "x"],
      ["invoke", "--container-id", "a", "b", "--", "x"],
      ["invoke", "--container-id", "web1", "--docker-host", "unix:///s", "--", "x"],
      ["invoke", "--docker-host", "unix:///s", "--container-id", "web1", "--", "x"],
      ["invoke", "--container-id=web1", "--", "x"],
    ]
  ) assertEquals(quickContainerPlan(argv), undefined, argv.join(" "));
});
