/**
 * Shell completion scripts generated from the verbs' declarations, so they offer exactly what the
 * resolver accepts: verbs (and the commands help, plugin, completions), each verb's long and short
 * options and aliases, and enum values. What depends on the user's world is asked of remote itself
 * while Tab is pressed (`remote __complete`, core/complete_words.ts): host names from ssh_config for a
 * target, recorded session names and Ids for `--name`, `--id`, and `host:path` for `remote copy`
 * (remote paths only over a connection the reuse master holds already).
 *
 * @module
 */
import { compileVerb, type ModelParam } from "./_verb_model.ts";
import type { VerbSpec } from "./verb_spec.ts";

/** A shell {@linkcode renderCompletions} writes for. */
export type CompletionShell = "bash" | "zsh" | "fish";

/** What a value or an argument is completed with, asked of `remote __complete` while Tab is pressed. */
type Dynamic = "hosts" | "names" | "ids";

interface OptionInfo {
  /** every spelling with its dashes: `--computer-name`, `--cn`, `-p` */
  spellings: string[];
  long: string[];
  short?: string;
  takesValue: boolean;
  values?: readonly string[];
  /** words found at run time for the value */
  dynamic?: Dynamic;
  help: string;
}

/** The dynamic words a parameter's value takes: a target's host, a recorded session's name or Id. */
function dynamicOf(verb: VerbSpec, p: ModelParam): Dynamic | undefined {
  if (p.spec.name === "HostName" || p.spec.name === "ComputerName") return "hosts";
  // `new --name` names a session that does not exist yet
  if (p.spec.name === "Name" && verb.name !== "new") return "names";
  if (p.spec.name === "Id") return "ids";
  return undefined;
}

function optionsOf(verb: VerbSpec): OptionInfo[] {
  const model = compileVerb(verb);
  return model.params.map((p: ModelParam) => {
    const long = [p.flag, ...p.aliases.map((a) => a.toLowerCase()).filter((a) => a !== p.flag)];
    return {
      spellings: [...long.map((l) => `--${l}`), ...(p.short ? [`-${p.short}`] : [])],
      long,
      short: p.short,
      takesValue: p.type.kind !== "switch" && p.type.kind !== "count",
      values: p.type.kind === "enum" ? p.type.values : undefined,
      dynamic: p.type.kind === "enum" ? undefined : dynamicOf(verb, p),
      help: p.spec.help,
    };
  });
}

/**
 * What a bare argument (not an option) of `verb` completes to: `copy` for scp's operands, else the
 * dynamic kinds of its positional parameters (a target's host, a session's Id).
 */
function positionalOf(verb: VerbSpec): { copy: boolean; kinds: Dynamic[] } {
  const model = compileVerb(verb);
  const positional = model.params.filter((p) => [...(p.sets?.values() ?? [])].some((at) => at.position !== undefined));
  if (positional.some((p) => p.spec.name === "Path") && verb.name === "copy") return { copy: true, kinds: [] };
  const kinds = new Set(positional.flatMap((p) => dynamicOf(verb, p) ?? []));
  return { copy: false, kinds: [...kinds] };
}

/** The commands besides the verbs, offered where a verb is expected. */
const COMMAND_WORDS: readonly { name: string; summary: string }[] = [
  { name: "help", summary: "print help for a verb, or a guide: remote help topics" },
  { name: "plugin", summary: "list transports: remote plugin list | remote plugin info <name>" },
  { name: "completions", summary: "print a shell completion script: bash, zsh or fish" },
];

/** Verbs and commands, as offered in the first position. */
function firstWords(verbs: VerbSpec[]): { name: string; summary: string }[] {
  const names = new Set(verbs.map((v) => v.name));
  return [
    ...verbs.map((v) => ({ name: v.name, summary: v.summary })),
    ...COMMAND_WORDS.filter((c) => !names.has(c.name)),
  ];
}

/**
 * A completion script for `shell`, to be sourced (bash), put on `fpath` or sourced (zsh), or saved in
 * `~/.config/fish/completions/` (fish); `topics` are the guides offered after `help`.
 *
 * @example Bash
 * ```ts
 * import { renderCompletions } from "./completions.ts";
 * const script = renderCompletions("bash", "remote", [{ name: "get", summary: "list", parameters: [], examples: [] }]);
 * console.assert(script.includes("complete -o default -F _remote_complete remote"));
 * ```
 */
export function renderCompletions(
  shell: CompletionShell,
  program: string,
  verbs: VerbSpec[],
  topics: readonly string[] = [],
): string {
  switch (shell) {
    case "bash":
      return bash(program, verbs, topics);
    case "zsh":
      return zsh(program, verbs, topics);
    case "fish":
      return fish(program, verbs, topics);
  }
}

/** Single-quoted for POSIX shells and zsh. */
function sq(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function functionName(program: string): string {
  return `_${program.replace(/[^A-Za-z0-9_]/g, "_")}_complete`;
}

/** The words after `help`, `completions` and `plugin`. */
function commandArguments(verbs: VerbSpec[], topics: readonly string[]): Record<string, string[]> {
  return {
    help: [...firstWords(verbs).map((v) => v.name).filter((n) => n !== "help"), "topics", ...topics],
    completions: ["bash", "zsh", "fish"],
    plugin: ["list", "info"],
  };
}

function bash(program: string, verbs: VerbSpec[], topics: readonly string[]): string {
  const fn = functionName(program);
  const cases = verbs.map((verb) => {
    const options = optionsOf(verb);
    const enumCases = options.filter((o) => o.values).map((o) =>
      `        ${o.spellings.join("|")}) mapfile -t COMPREPLY < <(compgen -P "$pre" -W ${
        sq(o.values!.join(" "))
      } -- "$cur"); return ;;`
    );
    const dynamicCases = (["hosts", "names", "ids"] as const).flatMap((kind) => {
      const spellings = options.filter((o) => o.takesValue && o.dynamic === kind).flatMap((o) => o.spellings);
      return spellings.length > 0
        ? [`        ${spellings.join("|")}) ${fn}_words ${kind} "$cur" "$pre"; return ;;`]
        : [];
    });
    const valued = options.filter((o) => o.takesValue && !o.values && !o.dynamic).flatMap((o) => o.spellings);
    const valueCase = valued.length > 0 ? [`        ${valued.join("|")}) return ;;`] : [];
    const all = options.flatMap((o) => o.spellings);
    const positional = positionalOf(verb);
    const arg = positional.copy ? "copy" : positional.kinds.join(" ");
    const inner = [...enumCases, ...dynamicCases, ...valueCase];
    return [
      `    ${verb.name})`,
      ...(inner.length > 0 ? [`      case "$prev" in`, ...inner, `      esac`] : []),
      `      words=${sq(all.join(" "))}`,
      ...(arg !== "" ? [`      arg=${sq(arg)}`] : []),
      `      ;;`,
    ].join("\n");
  });
  const commands = Object.entries(commandArguments(verbs, topics)).map(([name, words]) =>
    `    ${name}) mapfile -t COMPREPLY < <(compgen -W ${sq(words.join(" "))} -- "$cur"); return 0 ;;`
  );
  return `# bash completion for ${program}; generated by: ${program} completions bash
# Host names, session names and Ids, and host:path for copy are asked of ${program} itself while Tab is pressed.

# ${fn}_words KIND WORD [PREFIX [SUFFIX]]: what \`${program} __complete\` finds, into COMPREPLY
${fn}_words() {
  local line
  COMPREPLY=()
  while IFS= read -r line; do
    COMPREPLY+=("\${3-}$line\${4-}")
  done < <(command ${program} __complete "$1" "$2" 2>/dev/null)
}

# scp's operands: host:path (remote paths when a connection to the host is held), else hosts and local files
${fn}_copy() {
  local host path line
  # bash splits host:path at the colon when COMP_WORDBREAKS has it: db1 : /tmp/x
  if [[ "$cur" == ":" && -n "$prev" ]]; then
    host="$prev"; path=""
  elif [[ "$prev" == ":" && "$COMP_CWORD" -gt 2 ]]; then
    host="\${COMP_WORDS[COMP_CWORD-2]}"; path="$cur"
  elif [[ "$cur" == [!/]*:* ]]; then
    host="\${cur%%:*}"; path="\${cur#*:}"
  fi
  if [[ -n "$host" ]]; then
    COMPREPLY=()
    # what was typed is shell-quoted (far\\ side); remote paths are looked up as they are, and offered quoted
    path="\${path//\\\\/}"
    while IFS= read -r line; do
      printf -v line '%q' "\${line#"$host:"}"
      if [[ "$cur" == ":" ]]; then line=":$line"; elif [[ "$prev" != ":" ]]; then line="$host:$line"; fi
      COMPREPLY+=("$line")
    done < <(command ${program} __complete paths "$host:$path" 2>/dev/null)
  else
    COMPREPLY=()
    if [[ "$cur" != */* ]]; then ${fn}_words hosts "$cur" "" ":"; fi
    mapfile -t -O "\${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
  fi
  if [[ \${#COMPREPLY[@]} -eq 1 && ( "\${COMPREPLY[0]}" == *: || "\${COMPREPLY[0]}" == */ ) ]]; then
    compopt -o nospace 2>/dev/null
  fi
  return 0
}

${fn}() {
  local cur prev verb words arg pre i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev=""
  pre=""
  if (( COMP_CWORD > 0 )); then prev="\${COMP_WORDS[COMP_CWORD-1]}"; fi
  # --option=value: bash splits at = when COMP_WORDBREAKS has it, else it is one word
  if [[ "$cur" == "=" ]]; then
    cur=""
  elif [[ "$prev" == "=" && "$COMP_CWORD" -gt 1 ]]; then
    prev="\${COMP_WORDS[COMP_CWORD-2]}"
  elif [[ "$cur" == --*=* ]]; then
    prev="\${cur%%=*}"
    pre="\${prev}="
    cur="\${cur#*=}"
  fi
  verb=""
  for (( i = 1; i < COMP_CWORD; i++ )); do
    if [[ "\${COMP_WORDS[i]}" == "--" && -n "$verb" ]]; then return 0; fi
    if [[ -z "$verb" && "\${COMP_WORDS[i]}" != -* ]]; then verb="\${COMP_WORDS[i]}"; fi
  done
  if [[ -z "$verb" ]]; then
    mapfile -t COMPREPLY < <(compgen -W ${sq(firstWords(verbs).map((v) => v.name).join(" "))} -- "$cur")
    return 0
  fi
  words=""
  arg=""
  case "$verb" in
${commands.join("\n")}
${cases.join("\n")}
  esac
  if [[ -n "$pre" ]]; then return 0; fi
  if [[ "$cur" == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
  elif [[ "$arg" == copy ]]; then
    ${fn}_copy
  elif [[ -n "$arg" ]]; then
    COMPREPLY=()
    local kind found=()
    for kind in $arg; do
      ${fn}_words "$kind" "$cur"
      found+=("\${COMPREPLY[@]}")
    done
    COMPREPLY=("\${found[@]}")
  fi
  return 0
}
complete -o default -F ${fn} ${program}
`;
}

function zsh(program: string, verbs: VerbSpec[], topics: readonly string[]): string {
  const fn = functionName(program);
  const described = (name: string, help: string) => sq(`${name.replaceAll(":", "\\:")}:${help}`);
  const asked = (kind: string) => `\${(f)"$(command ${program} __complete ${kind} "$PREFIX" 2>/dev/null)"}`;
  const cases = verbs.map((verb) => {
    const options = optionsOf(verb);
    const lines = [`    (${verb.name})`, `      case $prev in`];
    for (const o of options.filter((x) => x.values)) {
      lines.push(`        (${o.spellings.join("|")}) compadd -- ${o.values!.map(sq).join(" ")}; return ;;`);
    }
    for (const kind of ["hosts", "names", "ids"] as const) {
      const spellings = options.filter((o) => o.takesValue && o.dynamic === kind).flatMap((o) => o.spellings);
      if (spellings.length > 0) lines.push(`        (${spellings.join("|")}) compadd -- ${asked(kind)}; return ;;`);
    }
    const valued = options.filter((o) => o.takesValue && !o.values && !o.dynamic).flatMap((o) => o.spellings);
    if (valued.length > 0) lines.push(`        (${valued.join("|")}) _default; return ;;`);
    lines.push(`      esac`);
    const items = options.flatMap((o) => o.spellings.map((sp) => described(sp, o.help)));
    const positional = positionalOf(verb);
    const arg = positional.copy ? "copy" : positional.kinds.join(" ");
    lines.push(`      opts=(${items.join(" ")})`);
    if (arg !== "") lines.push(`      arg=${sq(arg)}`);
    lines.push(`      ;;`);
    return lines.join("\n");
  });
  const commands = Object.entries(commandArguments(verbs, topics)).map(([name, words]) =>
    `    (${name}) compadd -- ${words.map(sq).join(" ")}; return ;;`
  );
  return `#compdef ${program}
# zsh completion for ${program}; generated by: ${program} completions zsh
# Host names, session names and Ids, and host:path for copy are asked of ${program} itself while Tab is pressed.

# scp's operands: host:path (remote paths when a connection to the host is held), else hosts and local files
${fn}_copy() {
  local cur=$PREFIX
  local -a found
  if [[ $cur == *:* && \${cur%%:*} != */* ]]; then
    found=(\${(f)"$(command ${program} __complete paths "$cur" 2>/dev/null)"})
    compadd -S '' -- $found
  else
    if [[ $cur != */* ]]; then
      found=(\${(f)"$(command ${program} __complete hosts "$cur" 2>/dev/null)"})
      compadd -S ':' -- $found
    fi
    _files
  fi
}

${fn}() {
  local -a verbs opts
  local verb prev arg kind i
  if (( CURRENT == 2 )); then
    verbs=(${firstWords(verbs).map((v) => described(v.name, v.summary)).join(" ")})
    _describe -t verbs ${sq(`${program} verb`)} verbs
    return
  fi
  verb=\${words[2]}
  prev=\${words[CURRENT-1]}
  for (( i = 3; i < CURRENT; i++ )); do
    if [[ \${words[i]} == "--" ]]; then _default; return; fi
  done
  opts=()
  arg=""
  case $verb in
${commands.join("\n")}
${cases.join("\n")}
  esac
  if [[ \${words[CURRENT]} == -* ]]; then
    _describe -t options option opts
  elif [[ $arg == copy ]]; then
    ${fn}_copy
  elif [[ -n $arg ]]; then
    for kind in \${=arg}; do
      compadd -- ${asked("$kind")}
    done
  else
    _default
  fi
}
if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${program}
fi
`;
}

/** Single-quoted for fish, where only \\ and ' are special inside quotes. */
function fq(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

function fish(program: string, verbs: VerbSpec[], topics: readonly string[]): string {
  const words = `__${program.replace(/[^A-Za-z0-9_]/g, "_")}_complete_words`;
  const copy = `__${program.replace(/[^A-Za-z0-9_]/g, "_")}_complete_copy`;
  const lines = [
    `# fish completion for ${program}; generated by: ${program} completions fish`,
    `# Host names, session names and Ids, and host:path for copy are asked of ${program} itself while Tab is pressed.`,
    `function ${words} --description 'words remote finds: hosts, names, ids'`,
    `    command ${program} __complete $argv[1] (commandline -ct) 2>/dev/null`,
    `end`,
    `function ${copy} --description "scp's operands: host:path, or hosts"`,
    `    set -l token (commandline -ct)`,
    `    if string match -q -r '^[^/]*:' -- $token`,
    `        command ${program} __complete paths $token 2>/dev/null`,
    `    else if not string match -q -- '*/*' $token`,
    `        for host in (command ${program} __complete hosts $token 2>/dev/null)`,
    `            echo $host:`,
    `        end`,
    `    end`,
    `end`,
    `complete -c ${program} -n __fish_use_subcommand -f`,
  ];
  for (const verb of firstWords(verbs)) {
    lines.push(`complete -c ${program} -n __fish_use_subcommand -f -a ${fq(verb.name)} -d ${fq(verb.summary)}`);
  }
  for (const [name, args] of Object.entries(commandArguments(verbs, topics))) {
    lines.push(`complete -c ${program} -n ${fq(`__fish_seen_subcommand_from ${name}`)} -f -a ${fq(args.join(" "))}`);
  }
  for (const verb of verbs) {
    const when = `-n ${fq(`__fish_seen_subcommand_from ${verb.name}`)}`;
    const positional = positionalOf(verb);
    if (positional.copy) lines.push(`complete -c ${program} ${when} -a ${fq(`(${copy})`)}`);
    for (const kind of positional.kinds) lines.push(`complete -c ${program} ${when} -f -a ${fq(`(${words} ${kind})`)}`);
    for (const o of optionsOf(verb)) {
      const names = [...(o.short ? [`-s ${o.short}`] : []), ...o.long.map((l) => `-l ${l}`)].join(" ");
      const value = o.values
        ? `-x -a ${fq(o.values.join(" "))}`
        : o.dynamic
        ? `-x -a ${fq(`(${words} ${o.dynamic})`)}`
        : o.takesValue
        ? "-r"
        : "";
      lines.push([`complete -c ${program}`, when, names, value, `-d ${fq(o.help)}`].filter((x) => x).join(" "));
    }
  }
  return lines.join("\n") + "\n";
}
