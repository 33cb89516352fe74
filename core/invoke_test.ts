import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { Prompter } from "../plugins/mod.ts";
import { RemoteError } from "./errors.ts";
import { fanOut, type HostOutcome, oncePrompter, parseHostList, summarise } from "./invoke.ts";

Deno.test("parseHostList() drops comments and blank lines and splits on spaces", () => {
  assertEquals(parseHostList("db1\n# all web\nweb1 web2  # two\n\n  ssh://a@b:2 \n"), [
    "db1",
    "web1",
    "web2",
    "ssh://a@b:2",
  ]);
});

Deno.test("fanOut() never runs more than the limit at once and keeps input order", async () => {
  let running = 0;
  let peak = 0;
  const out = await fanOut([1, 2, 3, 4, 5, 6, 7], 3, new AbortController().signal, async (n) => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 5 * (8 - n)));
    running--;
    return n * 10;
  });
  assertEquals(out, [10, 20, 30, 40, 50, 60, 70]);
  assertEquals(peak, 3);
});

Deno.test("fanOut() starts nothing more once the signal aborts", async () => {
  const controller = new AbortController();
  const started: number[] = [];
  const out = await fanOut([1, 2, 3, 4], 1, controller.signal, (n) => {
    started.push(n);
    if (n === 2) controller.abort();
    return Promise.resolve(`ran ${n}`);
  }, (n) => `cancelled ${n}`);
  assertEquals(started, [1, 2]);
  assertEquals(out, ["ran 1", "ran 2", "cancelled 3", "cancelled 4"]);
});

Deno.test("oncePrompter() asks each question once for all hosts, one at a time", async () => {
  const asked: string[] = [];
  let open = 0;
  const inner: Prompter = {
    interactive: true,
    async ask(question) {
      assertEquals(open++, 0, "one question on the terminal at a time");
      asked.push(question);
      await new Promise((r) => setTimeout(r, 5));
      open--;
      return `answer to ${question}`;
    },
  };
  const p = oncePrompter(inner);
  const answers = await Promise.all([
    p.ask("password for a@h1:", { secret: true, what: "password" }),
    p.ask("password for a@h2:", { secret: true, what: "password" }),
    p.ask("passphrase for key:", { secret: true, what: "passphrase" }),
  ]);
  assertEquals(asked, ["password for a@h1:", "passphrase for key:"]);
  assertEquals(answers, [
    "answer to password for a@h1:",
    "answer to password for a@h1:",
    "answer to passphrase for key:",
  ]);
});

Deno.test("summarise() exits 0 only when every host succeeded", async () => {
  const ok: HostOutcome[] = [{ kind: "exited", host: "a", code: 0 }, { kind: "exited", host: "b", code: 0 }];
  assertEquals(await summarise(ok, true), 0);
  assertEquals(await summarise([...ok, { kind: "exited", host: "c", code: 4 }], true), 4);
  const refused = new RemoteError("refused", "connection refused");
  assertEquals(await summarise([...ok, { kind: "failed", host: "d", error: refused }], true), 241);
  assertEquals(await summarise([...ok, { kind: "cancelled", host: "e" }], true), 130);
  const sigterm = new RemoteError("terminated", "terminated by SIGTERM");
  assertEquals(await summarise([...ok, { kind: "cancelled", host: "e" }], true, sigterm), 143);
  assert(await summarise([{ kind: "failed", host: "f", error: new Error("boom") }], true) !== 0);
});
