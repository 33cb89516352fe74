import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { TransportError } from "../../mod.ts";
import { expandTemplate, remoteArgv } from "./command_line.ts";
import { DEFAULT_EXEC_CLI } from "./manifest.ts";

Deno.test("expandTemplate() fills kubectl's words and leaves out the empty ones", () => {
  assertEquals(
    expandTemplate(DEFAULT_EXEC_CLI, { instance: "web1", tty: "-t", namespace: "prod", container: "app" }),
    ["kubectl", "exec", "-i", "-t", "--namespace=prod", "--container=app", "web1", "--"],
  );
  assertEquals(expandTemplate(DEFAULT_EXEC_CLI, { instance: "web1", tty: "" }), [
    "kubectl",
    "exec",
    "-i",
    "web1",
    "--",
  ]);
});

Deno.test("expandTemplate() splits at any white space and keeps words without placeholders", () => {
  assertEquals(
    expandTemplate("  docker -H unix:///run/d.sock\texec -i {tty} --user={user} {instance} ", {
      instance: "c1",
      tty: "",
      user: "nobody",
    }),
    ["docker", "-H", "unix:///run/d.sock", "exec", "-i", "--user=nobody", "c1"],
  );
  assertEquals(expandTemplate("env", { instance: "x", tty: "" }), ["env"]);
});

Deno.test("expandTemplate() refuses what would reach the CLI as something else", () => {
  const refuses = (template: string, values: Parameters<typeof expandTemplate>[1], message: RegExp) =>
    throws(() => expandTemplate(template, values), (e) =>
      e instanceof TransportError && e.exitCode === 230 &&
      message.test(e.message));
  refuses("", { instance: "web1", tty: "" }, /the exec CLI is empty/);
  refuses("kubectl exec {pod}", { instance: "web1", tty: "" }, /unknown placeholder \{pod\}/);
  // a leading dash would make the CLI read the name as an option
  refuses(DEFAULT_EXEC_CLI, { instance: "--privileged", tty: "" }, /"--privileged" is not a valid instance name/);
  refuses(DEFAULT_EXEC_CLI, { instance: "web1", tty: "", namespace: "a b" }, /not a valid namespace name/);
  // a value with no place in the template would be dropped silently
  refuses("docker exec -i {instance}", { instance: "web1", tty: "", user: "root" }, /no \{user\}/);
});

Deno.test("remoteArgv() runs sh through env, with the command as one argument", () => {
  assertEquals(remoteArgv({ A: "1 2", TERM: "xterm" }, "echo $A; exit 3"), [
    "env",
    "A=1 2",
    "TERM=xterm",
    "sh",
    "-c",
    "echo $A; exit 3",
  ]);
  assertEquals(remoteArgv({}), ["env", "sh"]);
  throws(() => remoteArgv({ "A=B": "x" }), /is not an environment variable name/);
});
