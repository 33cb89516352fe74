import { deepStrictEqual as assertEquals, ok as assert, strictEqual } from "node:assert/strict";
import { findTopic, renderHelp, renderSyntax, renderTopicList } from "./help.ts";
import { readTopics, terminalLinks } from "../scripts/help_topics.ts";
import type { VerbSpec } from "./parameter_set.ts";

const both = { ComputerName: {}, SSHHost: {} };
const enter: VerbSpec = {
  name: "enter",
  summary: "Starts an interactive session with a remote computer",
  defaultSet: "SSHHost",
  parameters: [
    {
      name: "HostName",
      aliases: ["host"],
      type: { kind: "string" },
      sets: { SSHHost: { position: 0, mandatory: true } },
      help: "target [user@]host[:port]",
      valueName: "<[user@]host[:port]>",
    },
    { name: "Port", short: "p", type: { kind: "int", min: 1, max: 65535 }, sets: both, help: "port", default: "22" },
    { name: "KeyFilePath", short: "i", type: { kind: "list" }, sets: { SSHHost: {} }, help: "key file" },
    { name: "Options", short: "o", type: { kind: "map" }, sets: { SSHHost: {} }, help: "ssh option" },
    { name: "SSHTransport", type: { kind: "switch" }, sets: { SSHHost: {} }, help: "use ssh" },
    {
      name: "ComputerName",
      aliases: ["cn"],
      type: { kind: "string" },
      sets: { ComputerName: { position: 0, mandatory: true } },
      help: "windows host",
    },
    {
      name: "Credential",
      type: { kind: "credential" },
      sets: { ComputerName: { position: 1 } },
      help: "user",
    },
    {
      name: "Authentication",
      type: { kind: "enum", values: ["Basic", "Negotiate"] },
      sets: { ComputerName: {} },
      help: "mechanism",
    },
    { name: "Target", type: { kind: "string" }, sets: { Target: { mandatory: true } }, help: "instance" },
    { name: "Quiet", short: "q", type: { kind: "switch" }, help: "say less" },
  ],
  examples: [
    { command: "remote enter admin@db1", description: "a shell on db1 over SSH" },
    { command: "remote enter --target i-0123", description: "a shell through SSM" },
  ],
};

Deno.test("renderSyntax() prints one line per set with CLI spellings", () => {
  assertEquals(renderSyntax(enter), [
    "remote enter [--host-name] <[user@]host[:port]> [--port <int>] [--key-file-path <string>]... " +
    "[--options <key=value>]... [--ssh-transport] [--quiet]",
    "remote enter [--computer-name] <string> [[--credential] <user>] [--port <int>] " +
    "[--authentication <Basic|Negotiate>] [--quiet]",
    "remote enter --target <string> [--quiet]",
  ]);
});

Deno.test("renderSyntax() shows the remainder, mandatory where a set needs it", () => {
  const invoke: VerbSpec = {
    name: "invoke",
    summary: "runs a command",
    parameters: [
      { name: "HostName", type: { kind: "list" }, sets: { SSHHost: { position: 0, mandatory: true } }, help: "" },
      { name: "Name", type: { kind: "string" }, sets: { Session: { mandatory: true } }, help: "" },
    ],
    remainder: { name: "Command", help: "the command", mandatorySets: ["SSHHost"] },
    examples: [],
  };
  assertEquals(renderSyntax(invoke, { program: "rmt" }), [
    "rmt invoke [--host-name] <string>... -- <command>...",
    "rmt invoke --name <string> [-- <command>...]",
  ]);
});

Deno.test("renderHelp() prints NAME, SYNTAX, PARAMETERS and EXAMPLES in order", () => {
  const text = renderHelp(enter);
  strictEqual(
    text,
    `NAME
  remote enter - Starts an interactive session with a remote computer

SYNTAX
  ${renderSyntax(enter)[0]}  (set SSHHost, default)
  ${renderSyntax(enter)[1]}  (set ComputerName)
  ${renderSyntax(enter)[2]}  (set Target)

PARAMETERS
  --host-name, --host <[user@]host[:port]>
      target [user@]host[:port]
      sets: SSHHost (position 0, mandatory)
  -p, --port <int>
      port
      an integer from 1 to 65535; default 22
      sets: SSHHost, ComputerName
  -i, --key-file-path <string>
      key file
      repeatable, or comma-separated
      sets: SSHHost
  -o, --options <key=value>
      ssh option
      key=value, repeatable
      sets: SSHHost
  --ssh-transport
      use ssh
      a switch; --ssh-transport=false turns it off
      sets: SSHHost
  --computer-name, --cn <string>
      windows host
      sets: ComputerName (position 0, mandatory)
  --credential <user>
      user
      a user name; the password is asked for without echo
      sets: ComputerName (position 1)
  --authentication <Basic|Negotiate>
      mechanism
      one of Basic, Negotiate
      sets: ComputerName
  --target <string>
      instance
      sets: Target (mandatory)
  -q, --quiet
      say less
      a switch; --quiet=false turns it off
      sets: all

EXAMPLES
  remote enter admin@db1
      a shell on db1 over SSH
  remote enter --target i-0123
      a shell through SSM
`,
  );
});

Deno.test("renderHelp() colors headings and options only when asked", () => {
  assert(!renderHelp(enter).includes("\x1b["));
  const colored = renderHelp(enter, { color: true });
  assert(colored.startsWith("\x1b[1mNAME\x1b[0m\n"));
  assert(colored.includes("\x1b[1m-p, --port <int>\x1b[0m"));
  strictEqual(colored.replaceAll("\x1b[1m", "").replaceAll("\x1b[0m", ""), renderHelp(enter));
});

Deno.test("renderHelp() leaves out empty sections and set labels of a verb without sets", () => {
  const text = renderHelp({ name: "version", summary: "prints the version", parameters: [], examples: [] });
  strictEqual(text, "NAME\n  remote version - prints the version\n\nSYNTAX\n  remote version\n");
});

Deno.test("findTopic() finds a guide by name, file name or docs/ path, in any case", () => {
  const topics = [{ name: "exit-codes", title: "Exit codes", text: "# Exit codes\n" }];
  for (const name of ["exit-codes", "EXIT-CODES", "exit-codes.md", "docs/exit-codes.md"]) {
    strictEqual(findTopic(topics, name)?.title, "Exit codes");
  }
  strictEqual(findTopic(topics, "exit"), undefined);
});

Deno.test("renderTopicList() lists a guide named like a verb as name.md", () => {
  const topics = [
    { name: "copy", title: "Copying files", text: "" },
    { name: "exit-codes", title: "Exit codes", text: "" },
  ];
  strictEqual(
    renderTopicList(topics, ["copy", "enter"]),
    "guides (remote help <topic>):\n  copy.md     Copying files\n  exit-codes  Exit codes\n",
  );
});

Deno.test("the guides inside the program (core/help_topics.ts) are those of docs/ and README.md", async () => {
  const { HELP_TOPICS } = await import("./help_topics.ts");
  const fresh = await readTopics();
  assertEquals(HELP_TOPICS, fresh, "core/help_topics.ts is out of date: run deno task help-topics");
  const names = [];
  for await (const e of Deno.readDir(new URL("../docs", import.meta.url))) {
    if (e.name.endsWith(".md")) names.push(e.name);
  }
  assertEquals(HELP_TOPICS.map((t) => t.name).sort(), [...names.map((n) => n.slice(0, -3)), "readme"].sort());
});

Deno.test("terminalLinks() turns guide links into remote help commands (name.md beside a verb), other files into paths, web links into <url>", () => {
  strictEqual(
    terminalLinks(
      "see [exit codes](exit-codes.md), [reuse](invoke.md#connection-reuse-ssh), [TOML](https://toml.io/), " +
        "[BENCHMARKS.md](BENCHMARKS.md)",
      new Set(["exit-codes", "invoke"]),
      new Set(["invoke"]),
    ),
    "see exit codes (remote help exit-codes), reuse (remote help invoke.md), TOML <https://toml.io/>, " +
      "BENCHMARKS.md (in the source tree)",
  );
});

Deno.test("every `remote help <name>` that remote prints or a guide mentions names a verb, a command or a guide", async () => {
  const { HELP_TOPICS } = await import("./help_topics.ts");
  const { VERBS } = await import("./verbs/mod.ts");
  const known = new Set([...Object.keys(VERBS), "help", "plugin", "completions", "topics", "guides"]);
  const dangling: string[] = [];
  const scan = async (dir: URL) => {
    for await (const e of Deno.readDir(dir)) {
      const url = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
      if (e.isDirectory) await scan(url);
      else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) {
        const text = await Deno.readTextFile(url);
        for (const m of text.matchAll(/remote help ([a-z][a-z0-9.-]*[a-z0-9])/g)) {
          if (!known.has(m[1]) && !findTopic(HELP_TOPICS, m[1])) dangling.push(`${url.pathname}: ${m[0]}`);
        }
      }
    }
  };
  for (const dir of ["../core/", "../transports/", "../plugins/"]) await scan(new URL(dir, import.meta.url));
  assertEquals(dangling, []);
});
