/**
 * The bash script runs in a real bash (COMPREPLY computed through the function `complete -p` names)
 * and passes shellcheck; zsh is checked with `zsh -n`, and fish by its text (tests/completions_cli_test.ts
 * runs all three shells' completion with the real CLI behind them).
 */
import { deepStrictEqual as assertEquals, ok as assert, strictEqual } from "node:assert/strict";
import { renderCompletions } from "./completions.ts";
import type { VerbSpec } from "./parameter_set.ts";

const verbs: VerbSpec[] = [
  {
    name: "enter",
    summary: "Starts an interactive session (it's Enter-PSSession)",
    defaultSet: "SSHHost",
    parameters: [
      { name: "HostName", type: { kind: "string" }, sets: { SSHHost: { position: 0, mandatory: true } }, help: "host" },
      { name: "Port", short: "p", type: { kind: "int" }, sets: { SSHHost: {}, ComputerName: {} }, help: "port" },
      { name: "ForwardAgent", short: "A", type: { kind: "switch" }, sets: { SSHHost: {} }, help: "agent" },
      {
        name: "ComputerName",
        aliases: ["cn"],
        type: { kind: "string" },
        sets: { ComputerName: { position: 0, mandatory: true } },
        help: "windows host: name or address",
      },
      {
        name: "Authentication",
        type: { kind: "enum", values: ["Basic", "Negotiate"] },
        sets: { ComputerName: {} },
        help: "the server's mechanism",
      },
    ],
    examples: [],
  },
  {
    name: "invoke",
    summary: "Runs a command",
    parameters: [{ name: "HostName", type: { kind: "list" }, sets: { SSHHost: { position: 0 } }, help: "hosts" }],
    remainder: { name: "Command", help: "command" },
    examples: [],
  },
  { name: "get", summary: "Lists sessions", parameters: [], examples: [] },
];

async function run(command: string, args: string[], stdin?: string): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(command, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const result = await child.output();
  const td = new TextDecoder();
  return { code: result.code, out: td.decode(result.stdout) + td.decode(result.stderr) };
}

async function installed(command: string): Promise<boolean> {
  try {
    return (await run("sh", ["-c", `command -v ${command}`])).code === 0;
  } catch {
    return false;
  }
}

/** Sources the script in bash and completes `words`, the last being the word under the cursor. */
async function complete(script: string, words: string[]): Promise<string[]> {
  const file = await Deno.makeTempFile({ suffix: ".bash" });
  try {
    await Deno.writeTextFile(file, script);
    const driver = `
      source "$1"; shift
      spec=$(complete -p remote)
      fn=\${spec##*-F }; fn=\${fn%% *}
      COMP_WORDS=("$@")
      COMP_CWORD=$(( $# - 1 ))
      COMP_LINE="$*"
      COMP_POINT=\${#COMP_LINE}
      "$fn" remote "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
      printf '%s\\n' "\${COMPREPLY[@]}"
    `;
    const { code, out } = await run("bash", ["--norc", "--noprofile", "-c", driver, "bash", file, ...words]);
    strictEqual(code, 0, out);
    return out.split("\n").filter((l) => l !== "");
  } finally {
    await Deno.remove(file);
  }
}

Deno.test("renderCompletions() bash offers --computer-name for `remote enter --comp`", async () => {
  assert(await installed("bash"), "bash is needed to run the bash completion");
  const script = renderCompletions("bash", "remote", verbs);
  assertEquals(await complete(script, ["remote", "enter", "--comp"]), ["--computer-name"]);
  assertEquals(await complete(script, ["remote", "e"]), ["enter"]);
  assertEquals(await complete(script, ["remote", ""]), ["enter", "invoke", "get", "help", "plugin", "completions"]);
  assertEquals(await complete(script, ["remote", "enter", "-"]), [
    "--host-name",
    "--port",
    "-p",
    "--forward-agent",
    "-A",
    "--computer-name",
    "--cn",
    "--authentication",
  ]);
});

Deno.test("renderCompletions() bash completes enum values, also after --flag=", async () => {
  const script = renderCompletions("bash", "remote", verbs);
  assertEquals(await complete(script, ["remote", "enter", "--authentication", "Ba"]), ["Basic"]);
  // COMP_WORDBREAKS holds "=", so bash hands `--authentication=Ba` over in three words
  assertEquals(await complete(script, ["remote", "enter", "--authentication", "=", "Ne"]), ["Negotiate"]);
  assertEquals(await complete(script, ["remote", "enter", "--authentication", "="]), ["Basic", "Negotiate"]);
  // and in one word where it does not
  assertEquals(await complete(script, ["remote", "enter", "--authentication=Ba"]), ["--authentication=Basic"]);
});

Deno.test("renderCompletions() bash offers nothing for a value or after --", async () => {
  const script = renderCompletions("bash", "remote", verbs);
  assertEquals(await complete(script, ["remote", "enter", "--port", "-"]), []);
  assertEquals(await complete(script, ["remote", "invoke", "db1", "--", "--ho"]), []);
  assertEquals(await complete(script, ["remote", "invoke", "--ho"]), ["--host-name"]);
});

Deno.test("renderCompletions() bash passes shellcheck", async () => {
  assert(await installed("shellcheck"), "shellcheck is needed (apt package shellcheck)");
  const script = renderCompletions("bash", "remote", verbs);
  const { code, out } = await run("shellcheck", ["--shell=bash", "-"], script);
  strictEqual(code, 0, out);
});

Deno.test("renderCompletions() zsh is valid zsh offering verbs, options and enum values", async () => {
  const script = renderCompletions("zsh", "remote", verbs);
  if (await installed("zsh")) {
    const file = await Deno.makeTempFile({ suffix: ".zsh" });
    try {
      await Deno.writeTextFile(file, script);
      const { code, out } = await run("zsh", ["-n", file]);
      strictEqual(code, 0, out);
    } finally {
      await Deno.remove(file);
    }
  }
  // zsh is absent here: the text is the check (and the checks above when it exists)
  assert(script.startsWith("#compdef remote\n"));
  assert(script.includes("compdef _remote_complete remote"));
  assert(script.includes(`'enter:Starts an interactive session (it'\\''s Enter-PSSession)'`));
  assert(script.includes(`'--computer-name:windows host: name or address' '--cn:windows host: name or address'`));
  assert(script.includes(`(--authentication) compadd -- 'Basic' 'Negotiate'; return ;;`));
  assert(script.includes("(--port|-p) _default; return ;;"));
  // a target's host is asked of remote itself while Tab is pressed
  assert(script.includes(
    `(--host-name|--computer-name|--cn) compadd -- \${(f)"$(command remote __complete hosts "$PREFIX" 2>/dev/null)"}; return ;;`,
  ));
  strictEqual(count(script, /^\s*case /gm), count(script, /^\s*esac$/gm));
  strictEqual(count(script, /\bif\b/g), count(script, /\bfi\b/g));
});

Deno.test("renderCompletions() fish declares each verb's long, short and alias spellings", () => {
  const script = renderCompletions("fish", "remote", verbs);
  const lines = script.trimEnd().split("\n");
  const body = lines.slice(lines.indexOf("complete -c remote -n __fish_use_subcommand -f"));
  assert(body.length > 1 && body.every((l) => l.startsWith("complete -c remote ")));
  assert(
    lines.includes("complete -c remote -n '__fish_seen_subcommand_from enter' -f -a '(__remote_complete_words hosts)'"),
  );
  assert(lines.includes(
    "complete -c remote -n __fish_use_subcommand -f -a 'enter' -d 'Starts an interactive session (it\\'s Enter-PSSession)'",
  ));
  assert(lines.includes("complete -c remote -n '__fish_seen_subcommand_from enter' -s p -l port -r -d 'port'"));
  assert(
    lines.includes("complete -c remote -n '__fish_seen_subcommand_from enter' -s A -l forward-agent -d 'agent'"),
  );
  assert(lines.includes(
    "complete -c remote -n '__fish_seen_subcommand_from enter' -l computer-name -l cn -x -a '(__remote_complete_words hosts)' " +
      "-d 'windows host: name or address'",
  ));
  assert(lines.includes(
    "complete -c remote -n '__fish_seen_subcommand_from enter' -l authentication -x -a 'Basic Negotiate' " +
      "-d 'the server\\'s mechanism'",
  ));
});

function count(text: string, pattern: RegExp): number {
  return [...text.matchAll(pattern)].length;
}
