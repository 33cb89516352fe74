/**
 * A verb's help, generated from its {@linkcode VerbSpec}: NAME, SYNTAX (one line per parameter set, as
 * `Get-Command -Syntax` prints it but with CLI spellings), PARAMETERS and EXAMPLES, always in that
 * order.
 *
 * @module
 */
import { expectedOf } from "../plugins/mod.ts";
import { compileVerb, inSet, type ModelParam, setsOfParam, valueNameOf, type VerbModel } from "./_verb_model.ts";
import type { VerbSpec } from "./verb_spec.ts";

/** Options of {@linkcode renderHelp} and {@linkcode renderSyntax}. */
export interface HelpOptions {
  /** ANSI bold for headings and option names */
  color?: boolean;
  /** the command name shown before the verb; `remote` unless given */
  program?: string;
}

/**
 * One syntax line per parameter set, default set first: `remote enter [--host-name] <string> [--port <int>]`.
 * A bare-argument slot shows as `[--flag] <value>`, a mandatory option without brackets, an optional
 * one in `[ ]`, and a repeatable one followed by `...`.
 *
 * @example Syntax
 * ```ts
 * import { renderSyntax } from "./help.ts";
 * const lines = renderSyntax({
 *   name: "enter",
 *   summary: "open a shell",
 *   parameters: [{ name: "HostName", type: { kind: "string" }, sets: { SSHHost: { position: 0, mandatory: true } }, help: "" }],
 *   examples: [],
 * });
 * console.assert(lines[0] === "remote enter [--host-name] <string>");
 * ```
 */
export function renderSyntax(verb: VerbSpec, options: HelpOptions = {}): string[] {
  const model = compileVerb(verb);
  const program = options.program ?? "remote";
  const sets = model.sets.length > 0 ? model.sets : [undefined];
  return sets.map((set) => [`${program} ${verb.name}`, ...syntaxTokens(model, set)].join(" "));
}

function syntaxTokens(model: VerbModel, set: string | undefined): string[] {
  const members = model.params.filter((p) => set === undefined ? true : inSet(p, set));
  const at = (p: ModelParam) => set === undefined ? undefined : p.sets?.get(set);
  const positional = members
    .filter((p) => at(p)?.position !== undefined)
    .sort((a, b) => at(a)!.position! - at(b)!.position!);
  const named = members.filter((p) => at(p)?.position === undefined);
  const mandatory = named.filter((p) => at(p)?.mandatory === true);
  const optional = named.filter((p) => at(p)?.mandatory !== true && !flagOnly(p));
  const switches = named.filter((p) => at(p)?.mandatory !== true && flagOnly(p));
  const repeat = (p: ModelParam) => p.type.kind === "list" || p.type.kind === "map" ? "..." : "";
  const withValue = (flag: string, p: ModelParam) => {
    const value = valueNameOf(p);
    return value === "" ? flag : `${flag} ${value}`;
  };
  const tokens: string[] = [];
  for (const p of positional) {
    const inner = withValue(`[--${p.flag}]`, p);
    tokens.push(at(p)!.mandatory ? `${inner}${repeat(p)}` : `[${inner}]${repeat(p)}`);
  }
  for (const p of mandatory) tokens.push(`${withValue(`--${p.flag}`, p)}${repeat(p)}`);
  for (const p of [...optional, ...switches]) tokens.push(`[${withValue(`--${p.flag}`, p)}]${repeat(p)}`);
  const remainder = model.verb.remainder;
  if (remainder) {
    const words = `-- <${remainder.name.toLowerCase()}>...`;
    tokens.push(set !== undefined && remainder.mandatorySets?.includes(set) ? words : `[${words}]`);
  }
  return tokens;
}

/**
 * The full help of a verb: NAME, SYNTAX, PARAMETERS, EXAMPLES.
 *
 * @example Help
 * ```ts
 * import { renderHelp } from "./help.ts";
 * const text = renderHelp({ name: "get", summary: "lists sessions", parameters: [], examples: [] });
 * console.assert(text.startsWith("NAME\n  remote get - lists sessions\n"));
 * ```
 */
export function renderHelp(verb: VerbSpec, options: HelpOptions = {}): string {
  const model = compileVerb(verb);
  const program = options.program ?? "remote";
  const bold = (text: string) => options.color ? `\x1b[1m${text}\x1b[0m` : text;
  const out: string[] = [];
  out.push(bold("NAME"), `  ${program} ${verb.name} - ${verb.summary}`, "");

  out.push(bold("SYNTAX"));
  const lines = renderSyntax(verb, options);
  const labelled = model.sets.length > 1;
  model.sets.forEach((set, i) => {
    const label = set === model.defaultSet ? `(set ${set}, default)` : `(set ${set})`;
    out.push(labelled ? `  ${lines[i]}  ${label}` : `  ${lines[i]}`);
  });
  if (model.sets.length === 0) out.push(`  ${lines[0]}`);
  out.push("");

  if (model.params.length > 0 || verb.remainder) {
    out.push(bold("PARAMETERS"));
    for (const p of model.params) {
      out.push(`  ${bold(spellingsOf(p))}`, `      ${p.spec.help}`);
      const facts = [typeFact(p), p.spec.default !== undefined ? `default ${p.spec.default}` : ""].filter((f) => f);
      if (facts.length > 0) out.push(`      ${facts.join("; ")}`);
      out.push(`      ${setsFact(model, p)}`);
    }
    const remainder = verb.remainder;
    if (remainder) {
      out.push(`  ${bold(`-- <${remainder.name.toLowerCase()}>...`)}`, `      ${remainder.help}`);
      out.push(`      every word after --, taken as it is`);
      const required = remainder.mandatorySets ?? [];
      out.push(`      ${required.length > 0 ? `mandatory in: ${required.join(", ")}` : "sets: all"}`);
    }
    out.push("");
  }

  if (verb.examples.length > 0) {
    out.push(bold("EXAMPLES"));
    for (const e of verb.examples) out.push(`  ${e.command}`, `      ${e.description}`);
    out.push("");
  }
  return out.join("\n");
}

function spellingsOf(p: ModelParam): string {
  const names = [
    ...(p.short ? [`-${p.short}`] : []),
    `--${p.flag}`,
    ...p.aliases.map((a) => `--${a.toLowerCase()}`).filter((a) => a !== `--${p.flag}`),
  ];
  const value = valueNameOf(p);
  return value === "" ? names.join(", ") : `${names.join(", ")} ${value}`;
}

/** A flag that takes no value: a switch or a count. */
function flagOnly(p: ModelParam): boolean {
  return p.type.kind === "switch" || p.type.kind === "count";
}

function typeFact(p: ModelParam): string {
  const secret = p.spec.secret ? "never echoed" : "";
  let fact: string;
  switch (p.type.kind) {
    case "string":
      fact = "";
      break;
    case "switch":
      fact = `a switch; --${p.flag}=false turns it off`;
      break;
    case "count":
      fact = p.short
        ? `repeatable for more: -${p.short}${p.short}, -${p.short}${p.short}${p.short}`
        : "repeatable for more";
      break;
    case "list":
      fact = p.type.split === false ? "repeatable" : "repeatable, or comma-separated";
      break;
    case "map":
      fact = "key=value, repeatable";
      break;
    case "credential":
      fact = "a user name; the password is asked for without echo";
      break;
    default:
      fact = expectedOf(p.type);
  }
  return [fact, secret].filter((f) => f).join("; ");
}

function setsFact(model: VerbModel, p: ModelParam): string {
  const sets = setsOfParam(model, p);
  if (sets.length === 0) return "sets: all";
  return `sets: ${
    sets.map((set) => {
      const at = p.sets!.get(set)!;
      const notes = [
        ...(at.position !== undefined ? [`position ${at.position}`] : []),
        ...(at.mandatory ? ["mandatory"] : []),
      ];
      return notes.length > 0 ? `${set} (${notes.join(", ")})` : set;
    }).join(", ")
  }`;
}

/** A guide `remote help <topic>` prints: one of docs/*.md (or the README), carried inside the program. */
export interface HelpTopic {
  /** the file's name without `.md`: `ssh`, `exit-codes`, `readme` */
  name: string;
  /** its first heading */
  title: string;
  /** its Markdown, links rewritten for a terminal */
  text: string;
}

/**
 * The guide `name` names: `ssh`, `ssh.md` or `docs/ssh.md`, in any case; undefined when none does.
 *
 * @example Finding a guide
 * ```ts
 * import { findTopic } from "./help.ts";
 * const topics = [{ name: "exit-codes", title: "Exit codes", text: "# Exit codes\n" }];
 * console.assert(findTopic(topics, "docs/EXIT-CODES.md")?.title === "Exit codes");
 * ```
 */
export function findTopic(topics: readonly HelpTopic[], name: string): HelpTopic | undefined {
  const wanted = name.toLowerCase().replace(/^docs\//, "").replace(/\.md$/, "");
  return topics.find((t) => t.name === wanted);
}

/**
 * `remote help topics`: each guide's name and title, one a line. A guide named like a verb is listed
 * as `name.md`, since `remote help <name>` shows the verb.
 *
 * @example The list
 * ```ts
 * import { renderTopicList } from "./help.ts";
 * const text = renderTopicList([{ name: "invoke", title: "remote invoke", text: "" }], ["invoke"]);
 * console.assert(text.includes("invoke.md  remote invoke"));
 * ```
 */
export function renderTopicList(topics: readonly HelpTopic[], verbs: readonly string[]): string {
  const shown = topics.map((t) => ({ name: verbs.includes(t.name) ? `${t.name}.md` : t.name, title: t.title }));
  const width = Math.max(0, ...shown.map((t) => t.name.length));
  return "guides (remote help <topic>):\n" + shown.map((t) => `  ${t.name.padEnd(width)}  ${t.title}\n`).join("");
}
