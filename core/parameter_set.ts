/**
 * PowerShell's parameter-set resolution for a POSIX command line: argv is paired into options and
 * bare arguments, bound by name and then by position, and exactly one parameter set is chosen, the
 * way PowerShell's `ParameterBinderController` does it (PowerShell/PowerShell,
 * src/System.Management.Automation/engine/ParameterBinderController.cs; about_Parameter_Sets). The
 * errors go further than PowerShell's: they name the clashing options, the missing ones, and the
 * option to add.
 *
 * Pure functions: no I/O. Prompting goes through a {@linkcode Prompter}.
 *
 * @module
 */
import { type CredentialValue, exampleOf, expectedOf, type Prompter } from "../plugins/mod.ts";
import { UsageError } from "./errors.ts";
import { convertValue, fitsExactly } from "./_convert.ts";
import { closestSpelling } from "./_spelling.ts";
import { withoutTypedPassword } from "./target.ts";
import {
  ALL_SETS,
  compileVerb,
  mandatoryOf,
  type ModelParam,
  positionalOf,
  setsOfParam,
  valueNameOf,
  type VerbModel,
} from "./_verb_model.ts";
import type { VerbSpec } from "./verb_spec.ts";
export type { VerbSpec } from "./verb_spec.ts";
export { type CredentialValue, flagOf } from "../plugins/mod.ts";

/** The outcome of binding argv to a verb. */
export interface Resolution {
  verb: string;
  /** the chosen parameter set (`__AllParameterSets` for a verb that declares none) */
  set: string;
  /**
   * Bound values by PowerShell name: `string`, `number` (int; duration in milliseconds), `boolean`
   * (switch), `URL` (uri), lower-case `string` (guid), `string[]` (list, remainder),
   * `Record<string, string>` (map), {@linkcode CredentialValue} (credential)
   */
  values: Record<string, unknown>;
  /** PowerShell names bound from argv, in binding order */
  given: string[];
  /** mandatory parameters of the chosen set still unbound */
  missing: string[];
}

/** Stable IDs of binding errors, named after PowerShell's error IDs. */
export type BindingErrorId =
  | "NamedParameterNotFound"
  | "AmbiguousParameter"
  | "MissingArgument"
  | "ParameterAlreadyBound"
  | "ParameterArgumentTransformationError"
  | "ParameterSetConflict"
  | "PositionalParameterNotFound"
  | "AmbiguousParameterSet"
  | "MissingMandatoryParameter";

/** A usage error (exit 230) from binding, tagged with a stable {@linkcode BindingErrorId}. */
export class ParameterBindingError extends UsageError {
  readonly errorId: BindingErrorId;

  constructor(errorId: BindingErrorId, message: string, hint: string) {
    super(message, { hint });
    this.name = "ParameterBindingError";
    this.errorId = errorId;
  }
}

/**
 * The parameter sets of a verb: the default first, then in order of first declaration.
 *
 * @throws {Error} when the verb's declaration is inconsistent (a bug, not a usage error)
 */
export function setsOf(verb: VerbSpec): string[] {
  return [...compileVerb(verb).sets];
}

interface NamedArg {
  param: ModelParam;
  /** the option as typed, without any value: `--comp`, `-p` */
  typed: string;
  /** undefined for a switch given bare */
  value?: string;
  /** the whole argv token, for hints */
  token: string;
}

interface Binding {
  typed: string;
  text: string;
  positional: boolean;
}

interface State {
  model: VerbModel;
  candidates: Set<string>;
  values: Record<string, unknown>;
  given: string[];
  bound: Map<string, Binding>;
  /** bound parameters that narrowed, in binding order */
  narrowing: NamedArg[];
}

/**
 * Binds argv to one of the verb's parameter sets, PowerShell's way: named options narrow the
 * candidate sets, bare arguments fill the positional slots (the default set first, exact types before
 * coercion), then the default set or the only complete set is chosen. Mandatory parameters still
 * unbound are returned in `missing`; nothing is prompted for here.
 *
 * @example Binding
 * ```ts
 * import { resolveParameterSet, type VerbSpec } from "./parameter_set.ts";
 * const verb: VerbSpec = {
 *   name: "enter",
 *   summary: "open a shell",
 *   defaultSet: "SSHHost",
 *   parameters: [
 *     { name: "HostName", type: { kind: "string" }, sets: { SSHHost: { position: 0, mandatory: true } }, help: "" },
 *     { name: "Port", short: "p", type: { kind: "int", min: 1, max: 65535 }, sets: { SSHHost: {} }, help: "" },
 *   ],
 *   examples: [],
 * };
 * const r = resolveParameterSet(verb, ["db1", "-p", "2222"]);
 * console.assert(r.set === "SSHHost" && r.values.Port === 2222 && r.values.HostName === "db1");
 * ```
 *
 * @throws {ParameterBindingError} (a {@linkcode UsageError}, exit 230) for an unknown or ambiguous
 * option, a missing or malformed value, an option given twice, options from different sets, a bare
 * argument no slot takes, or a tie between sets
 */
export function resolveParameterSet(verb: VerbSpec, argv: string[]): Resolution {
  const model = compileVerb(verb);
  const parsed = parseArgv(model, argv);
  const state: State = {
    model,
    candidates: new Set(allSets(model)),
    values: {},
    given: [],
    bound: new Map(),
    narrowing: [],
  };
  for (const arg of parsed.named) bindNamed(state, arg);
  bindPositionals(state, parsed.bare);
  const remainder = verb.remainder;
  if (remainder && parsed.remainder && parsed.remainder.length > 0) {
    state.values[remainder.name] = parsed.remainder;
    state.given.push(remainder.name);
  }
  const set = chooseSet(state);
  return { verb: verb.name, set, values: state.values, given: state.given, missing: missingIn(state, set) };
}

/**
 * Asks for the mandatory parameters a resolution still lacks, converting each answer like argv
 * text. Secret parameters and the password of a `credential` are asked for without echo.
 *
 * @example Filling in
 * ```ts
 * import { promptForMissing, resolveParameterSet, type VerbSpec } from "./parameter_set.ts";
 * const verb: VerbSpec = {
 *   name: "enter",
 *   summary: "open a shell",
 *   parameters: [{ name: "HostName", type: { kind: "string" }, sets: { SSHHost: { mandatory: true } }, help: "" }],
 *   examples: [],
 * };
 * const prompter = { interactive: true, ask: () => Promise.resolve("db1") };
 * const r = await promptForMissing(verb, resolveParameterSet(verb, []), prompter);
 * console.assert(r.values.HostName === "db1" && r.missing.length === 0);
 * ```
 *
 * @throws {ParameterBindingError} when nobody can answer (`prompter.interactive` is false), naming
 * every missing option, or after three answers that do not convert
 */
export async function promptForMissing(
  verb: VerbSpec,
  resolution: Resolution,
  prompter: Prompter,
): Promise<Resolution> {
  if (resolution.missing.length === 0) return resolution;
  const model = compileVerb(verb);
  if (!prompter.interactive) throw missingMandatory(model, resolution);
  const values = { ...resolution.values };
  for (const name of resolution.missing) {
    const remainder = verb.remainder;
    if (remainder && name === remainder.name) {
      const line = await askUntil(prompter, `${remainder.name.toLowerCase()} to run: `, {
        what: "--",
        convert: (t) => t.trim() === "" ? undefined : t,
        problem: "a command",
      });
      values[name] = [line];
      continue;
    }
    const p = model.byName.get(name);
    if (!p) throw new Error(`verb ${verb.name}: missing parameter ${name} is not declared`);
    const what = `--${p.flag}`;
    if (p.type.kind === "credential") {
      const user = await askUntil(prompter, `user name for ${what}: `, {
        what,
        convert: (t) => t.trim() === "" ? undefined : t.trim(),
        problem: "a user name",
      });
      const password = await prompter.ask(`password for ${user}: `, { secret: true, what });
      values[name] = { user, password } satisfies CredentialValue;
      continue;
    }
    const type = p.type;
    const converted = await askUntil(prompter, `${p.flag} (${p.spec.help}): `, {
      what,
      secret: p.spec.secret,
      convert: (t) => {
        if (t === "") return undefined;
        const c = convertValue(type, t);
        return c.ok ? c.value : undefined;
      },
      problem: expectedOf(type),
    });
    values[name] = type.kind === "map" ? Object.fromEntries([converted as [string, string]]) : converted;
  }
  return { ...resolution, values, missing: [] };
}

async function askUntil<T>(
  prompter: Prompter,
  question: string,
  options: { what: string; secret?: boolean; convert: (text: string) => T | undefined; problem: string },
): Promise<T> {
  let asked = question;
  for (let attempt = 0; attempt < 3; attempt++) {
    const answer = await prompter.ask(asked, { secret: options.secret, what: options.what });
    const value = options.convert(answer);
    if (value !== undefined) return value;
    asked = `${options.what} expects ${options.problem}; ${question}`;
  }
  throw new ParameterBindingError(
    "ParameterArgumentTransformationError",
    `no valid value for ${options.what} after 3 tries`,
    `give ${options.what} on the command line`,
  );
}

// ---------------------------------------------------------------------------------------------------
// argv → named options and bare arguments

interface Parsed {
  named: NamedArg[];
  bare: string[];
  remainder?: string[];
}

const NUMBER = /^-\d+(?:\.\d+)?$/;

function parseArgv(model: VerbModel, argv: string[]): Parsed {
  const named: NamedArg[] = [];
  const bare: string[] = [];
  let remainder: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (token === "--") {
      const rest = argv.slice(i + 1);
      // Without a remainder, `--` still ends options: what follows is bare, as in POSIX utilities.
      if (model.verb.remainder) remainder = rest;
      else bare.push(...rest);
      break;
    }
    if (token.startsWith("--")) {
      const body = token.slice(2);
      const eq = body.indexOf("=");
      const name = eq < 0 ? body : body.slice(0, eq);
      const typed = `--${name}`;
      const param = matchLong(model, name, typed);
      if (param.type.kind === "switch" || param.type.kind === "count" || eq >= 0) {
        named.push({ param, typed, value: eq < 0 ? undefined : body.slice(eq + 1), token });
        continue;
      }
      const next = argv[i + 1];
      if (next === undefined || looksLikeOption(model, next)) throw missingArgument(param, typed);
      named.push({ param, typed, value: next, token });
      i++;
      continue;
    }
    if (token.length > 1 && token.startsWith("-") && !(NUMBER.test(token) && !model.shorts.has(token[1]))) {
      const first = model.shorts.get(token[1]);
      if (!first) throw unknownShort(model, token, token[1]);
      const typed = `-${token[1]}`;
      if (first.type.kind !== "switch" && first.type.kind !== "count") {
        if (token.length > 2) {
          const attached = token.slice(2);
          named.push({ param: first, typed, value: attached.startsWith("=") ? attached.slice(1) : attached, token });
          continue;
        }
        const next = argv[i + 1];
        if (next === undefined || looksLikeOption(model, next)) throw missingArgument(first, typed);
        named.push({ param: first, typed, value: next, token });
        i++;
        continue;
      }
      const letters = [...token.slice(1)];
      for (const [k, ch] of letters.entries()) {
        const p = model.shorts.get(ch);
        if (!p) throw unknownShort(model, token, ch);
        if (p.type.kind !== "switch" && p.type.kind !== "count") throw badCluster(model, token, letters, k);
        named.push({ param: p, typed: `-${ch}`, token });
      }
      continue;
    }
    bare.push(token);
  }
  return { named, bare, remainder };
}

/** A token after a valued option that is itself an option means the value was left out. */
function looksLikeOption(model: VerbModel, token: string): boolean {
  if (token === "--") return true;
  if (token.length < 2 || !token.startsWith("-")) return false;
  return !(NUMBER.test(token) && !model.shorts.has(token[1]));
}

function matchLong(model: VerbModel, name: string, typed: string): ModelParam {
  const text = name.toLowerCase();
  if (text !== "") {
    const exact = model.params.find((p) => p.spellings.some((s) => s.text === text));
    if (exact) return exact;
    const matches = model.params.filter((p) => p.spellings.some((s) => s.text.startsWith(text)));
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) throw ambiguousOption(model, text, typed, matches);
  }
  const near = nearestOption(model, text);
  throw new ParameterBindingError(
    "NamedParameterNotFound",
    `unknown option ${typed}`,
    near ? `did you mean --${near}? see: remote ${model.verb.name} --help` : seeHelp(model),
  );
}

/** Whether `text` names a long option exactly or by a unique prefix. */
function longMatch(model: VerbModel, text: string): ModelParam | undefined {
  const t = text.toLowerCase();
  const exact = model.params.find((p) => p.spellings.some((s) => s.text === t));
  if (exact) return exact;
  const matches = model.params.filter((p) => p.spellings.some((s) => s.text.startsWith(t)));
  return matches.length === 1 ? matches[0] : undefined;
}

function ambiguousOption(model: VerbModel, text: string, typed: string, matches: ModelParam[]): ParameterBindingError {
  const shown = matches.map((p) => {
    // Name the alias that matched when the canonical spelling did not (PowerShell #6343).
    if (p.flag.startsWith(text)) return `--${p.flag}`;
    const alias = p.spellings.find((s) => !s.hidden && s.text.startsWith(text));
    return alias ? `--${alias.text} (--${p.flag})` : `--${p.flag}`;
  }).sort();
  // The hint teaches prefixes with the shortest one that would have worked.
  const [prefix, p] = matches
    .map((m) => [uniquePrefix(model, m), m] as const)
    .reduce((best, next) => next[0].length < best[0].length ? next : best);
  return new ParameterBindingError(
    "AmbiguousParameter",
    `${typed} is ambiguous: it matches ${shown.join(", ")}`,
    prefix === p.flag
      ? `type more of the name, e.g. --${p.flag}`
      : `type more of the name, e.g. --${prefix} for --${p.flag}`,
  );
}

function uniquePrefix(model: VerbModel, p: ModelParam): string {
  for (let n = 1; n <= p.flag.length; n++) {
    const prefix = p.flag.slice(0, n);
    if (longMatch(model, prefix) === p) return prefix;
  }
  return p.flag;
}

function unknownShort(model: VerbModel, token: string, ch: string): ParameterBindingError {
  // `-target` is a long option short of a dash; `-D` alone is a letter, never the prefix of --document-name
  const asLong = token.length > 2 ? longMatch(model, token.slice(1)) : undefined;
  let hint = model.verb.letterHints?.[ch] ?? seeHelp(model);
  if (asLong) hint = `long options take two dashes: --${asLong.flag}`;
  return new ParameterBindingError(
    "NamedParameterNotFound",
    token.length > 2 && !asLong ? `unknown option -${ch} in ${token}` : `unknown option ${token}`,
    hint,
  );
}

function badCluster(model: VerbModel, token: string, letters: string[], k: number): ParameterBindingError {
  const asLong = longMatch(model, token.slice(1));
  const ch = letters[k];
  const apart = [...letters.slice(0, k).map((c) => `-${c}`), `-${ch}`];
  const rest = letters.slice(k + 1).join("");
  if (rest !== "") apart.push(rest);
  return new ParameterBindingError(
    "MissingArgument",
    `-${ch} takes a value, so it cannot be grouped with other short options in ${token}`,
    asLong ? `long options take two dashes: --${asLong.flag}` : `write them apart: ${apart.join(" ")}`,
  );
}

function missingArgument(p: ModelParam, typed: string): ParameterBindingError {
  const name = `--${p.flag}`;
  return new ParameterBindingError(
    "MissingArgument",
    `${label(typed, p)} needs a value`,
    `write ${name} ${valueNameOf(p)}; use ${name}=<value> for a value that starts with -`,
  );
}

function seeHelp(model: VerbModel): string {
  return `see the options with: remote ${model.verb.name} --help`;
}

/** The closest spelling of an option of `model` to `text`, shown as the user may type it. */
function nearestOption(model: VerbModel, text: string): string | undefined {
  const shown = new Map<string, string>();
  for (const p of model.params) {
    for (const s of p.spellings) if (!shown.has(s.text)) shown.set(s.text, s.hidden ? p.flag : s.text);
  }
  const near = closestSpelling(text, shown.keys());
  return near === undefined ? undefined : shown.get(near);
}

// ---------------------------------------------------------------------------------------------------
// binding

function allSets(model: VerbModel): string[] {
  return model.sets.length > 0 ? model.sets : [ALL_SETS];
}

/** `--flag`, or `-p (--port)` when typed otherwise. */
function label(typed: string, p: ModelParam): string {
  return typed.replace(/^-+/, "").toLowerCase() === p.flag ? `--${p.flag}` : `${typed} (--${p.flag})`;
}

function shownValue(p: ModelParam, text: string): string {
  return p.spec.secret ? "(hidden)" : `"${withoutTypedPassword(text)}"`;
}

function store(state: State, p: ModelParam, value: unknown): void {
  const values = state.values;
  if (p.type.kind === "list") {
    const prior = Array.isArray(values[p.name]) ? values[p.name] as string[] : [];
    values[p.name] = [...prior, ...value as string[]];
  } else if (p.type.kind === "map") {
    const prior = (values[p.name] ?? {}) as Record<string, string>;
    const [k, v] = value as [string, string];
    values[p.name] = { ...prior, [k]: v };
  } else {
    values[p.name] = value;
  }
}

function bindNamed(state: State, arg: NamedArg): void {
  const p = arg.param;
  const prior = state.bound.get(p.name);
  const repeatable = p.type.kind === "list" || p.type.kind === "map" || p.type.kind === "count";
  if (prior && !repeatable) {
    const flag = `--${p.flag}`;
    const spellings = prior.typed === arg.typed ? "" : ` (as ${prior.typed} and ${arg.typed})`;
    throw new ParameterBindingError(
      "ParameterAlreadyBound",
      `${flag} given twice${spellings}`,
      `keep one; ${flag} takes a single value`,
    );
  }
  let value: unknown = true;
  if (p.type.kind === "count" && arg.value === undefined) {
    // each -v adds one, as ssh counts them; --verbose=N sets N
    const prior = state.values[p.name];
    value = (typeof prior === "number" ? prior : 0) + 1;
  } else if (p.type.kind === "switch") {
    if (arg.value !== undefined) {
      const c = convertValue(p.type, arg.value);
      if (!c.ok) {
        throw new ParameterBindingError(
          "ParameterArgumentTransformationError",
          `${label(arg.typed, p)} is a switch: it takes true or false, got "${arg.value}"`,
          `write --${p.flag} to turn it on, --${p.flag}=false to turn it off`,
        );
      }
      value = c.value;
    }
  } else {
    const text = arg.value ?? "";
    const c = convertValue(p.type, text);
    if (!c.ok) {
      const got = p.spec.secret ? "" : `, got "${withoutTypedPassword(text)}"`;
      const asLong = !arg.token.startsWith("--") && arg.token.length > 2
        ? state.model.params.find((q) => q.spellings.some((s) => s.text === arg.token.slice(1).toLowerCase()))
        : undefined;
      throw new ParameterBindingError(
        "ParameterArgumentTransformationError",
        `${label(arg.typed, p)} expects ${c.expected}${got}`,
        asLong ? `long options take two dashes: --${asLong.flag}` : `e.g. --${p.flag} ${exampleFor(p)}`,
      );
    }
    value = c.value;
  }
  store(state, p, value);
  if (!prior) {
    state.given.push(p.name);
    state.bound.set(p.name, { typed: arg.typed, text: arg.value ?? "", positional: false });
  }
  if (p.sets === null) return;
  const next = new Set([...state.candidates].filter((s) => p.sets!.has(s)));
  if (!state.narrowing.some((a) => a.param === p)) state.narrowing.push(arg);
  if (next.size === 0) throw conflict(state);
  state.candidates = next;
}

function exampleFor(p: ModelParam): string {
  const d = p.spec.default;
  if (d !== undefined && convertValue(p.type, d).ok) return d;
  return exampleOf(p.type);
}

/** Names the smallest group of given options that share no set; the last one bound is in it. */
function conflict(state: State): ParameterBindingError {
  const { model } = state;
  const args = state.narrowing;
  const last = args[args.length - 1];
  const earlier = args.slice(0, -1);
  const sharesNoSet = (group: NamedArg[]) =>
    allSets(model).every((s) => !group.every((a) => a.param.sets === null || a.param.sets.has(s)));
  let clash: NamedArg[] = args;
  search: for (let size = 1; size <= Math.min(earlier.length, 4); size++) {
    for (const combo of combinations(earlier, size)) {
      if (sharesNoSet([...combo, last])) {
        clash = [...combo, last];
        break search;
      }
    }
  }
  const describe = (a: NamedArg) => `${label(a.typed, a.param)} [${setsOfParam(model, a.param).join(", ")}]`;
  const remainingWithout = (dropped: NamedArg) =>
    allSets(model).filter((s) => args.every((a) => a === dropped || a.param.sets === null || a.param.sets.has(s)));
  if (clash.length === 2) {
    const [a, b] = clash;
    const keepA = remainingWithout(b);
    const keepB = remainingWithout(a);
    const options: string[] = [];
    if (keepA.length > 0) options.push(`drop --${b.param.flag} to use ${setWord(keepA)}`);
    if (keepB.length > 0) options.push(`--${a.param.flag} to use ${setWord(keepB)}`);
    return new ParameterBindingError(
      "ParameterSetConflict",
      `${describe(a)} cannot be used with ${describe(b)}`,
      options.length > 0 ? options.join(", or ") : `drop one of them; ${seeHelp(model)}`,
    );
  }
  const shown = clash.map(describe);
  return new ParameterBindingError(
    "ParameterSetConflict",
    `${shown.slice(0, -1).join(", ")} and ${shown[shown.length - 1]} cannot be used together`,
    `drop one of them; ${seeHelp(model)}`,
  );
}

function setWord(sets: string[]): string {
  return sets.length === 1 ? `set ${sets[0]}` : `sets ${sets.join(", ")}`;
}

function* combinations<T>(items: T[], size: number, start = 0): Generator<T[]> {
  if (size === 0) {
    yield [];
    return;
  }
  for (let i = start; i <= items.length - size; i++) {
    for (const rest of combinations(items, size - 1, i + 1)) yield [items[i], ...rest];
  }
}

interface SlotEntry {
  param: ModelParam;
  set: string;
}

/**
 * PowerShell's `BindPositionalParameters`: positions only order the slots; the k-th bare argument
 * goes to the k-th slot still open. A parameter bound at a position narrows to the sets where it has
 * that position, which avoids the misbinding of PowerShell #2212.
 */
function bindPositionals(state: State, bare: string[]): void {
  const { model } = state;
  if (bare.length === 0) return;
  const slots = new Map<number, SlotEntry[]>();
  for (const p of model.params) {
    for (const [set, at] of p.sets ?? []) {
      if (at.position === undefined || !state.candidates.has(set)) continue;
      const list = slots.get(at.position) ?? [];
      list.push({ param: p, set });
      slots.set(at.position, list);
    }
  }
  const positions = [...slots.keys()].sort((a, b) => a - b);
  const leftovers: number[] = [];
  const failures = new Map<number, { param: ModelParam; expected: string; example: string }>();
  let next = 0;
  for (const position of positions) {
    const entries = slots.get(position)!.filter((e) => state.candidates.has(e.set) && !state.bound.has(e.param.name));
    if (next >= bare.length) break;
    if (entries.length === 0) {
      // A list named in the last open slot takes the bare words after it too: `--container-id a b c -- cmd`.
      const named = slots.get(position)!.find((e) =>
        state.candidates.has(e.set) && e.param.type.kind === "list" &&
        state.bound.get(e.param.name)?.positional === false
      );
      if (named && !laterSlotOpen(state, slots, position)) {
        for (; next < bare.length; next++) {
          const more = convertValue(named.param.type, bare[next]);
          if (!more.ok) break;
          store(state, named.param, more.value);
        }
      }
      continue;
    }
    const index = next++;
    const text = bare[index];
    const dflt = model.defaultSet;
    const inDefault = entries.filter((e) => e.set === dflt);
    const stages: [SlotEntry[], boolean][] = [[inDefault, true], [entries, true], [inDefault, false], [entries, false]];
    let done = false;
    for (const [stage, exact] of stages) {
      for (const p of distinctParams(stage)) {
        if (exact && !fitsExactly(p.type, text)) continue;
        const c = convertValue(p.type, text);
        if (!c.ok) {
          failures.set(index, { param: p, expected: c.expected, example: exampleFor(p) });
          continue;
        }
        store(state, p, c.value);
        state.given.push(p.name);
        state.bound.set(p.name, { typed: `[--${p.flag}]`, text, positional: true });
        state.candidates = new Set(entries.filter((e) => e.param === p).map((e) => e.set));
        if (p.type.kind === "list" && !laterSlotOpen(state, slots, position)) {
          // A list in the last open slot takes the rest, so `remote invoke db1 db2 -- uptime` reads naturally.
          for (; next < bare.length; next++) {
            const more = convertValue(p.type, bare[next]);
            if (!more.ok) break;
            store(state, p, more.value);
          }
        }
        done = true;
        break;
      }
      if (done) break;
    }
    if (!done) leftovers.push(index);
  }
  for (let i = next; i < bare.length; i++) leftovers.push(i);
  if (leftovers.length === 0) return;
  const index = leftovers[0];
  const text = bare[index];
  const failure = failures.get(index);
  if (failure) {
    const p = failure.param;
    throw new ParameterBindingError(
      "PositionalParameterNotFound",
      `argument ${shownValue(p, text)} does not fit [--${p.flag}], which expects ${failure.expected}`,
      `e.g. --${p.flag} ${failure.example}, or name the option the argument belongs to`,
    );
  }
  throw strayPositional(state, text);
}

function laterSlotOpen(state: State, slots: Map<number, SlotEntry[]>, position: number): boolean {
  for (const [at, entries] of slots) {
    if (at <= position) continue;
    if (entries.some((e) => state.candidates.has(e.set) && !state.bound.has(e.param.name))) return true;
  }
  return false;
}

function distinctParams(entries: SlotEntry[]): ModelParam[] {
  return [...new Set(entries.map((e) => e.param))].sort((a, b) => a.index - b.index);
}

function strayPositional(state: State, text: string): ParameterBindingError {
  const { model } = state;
  const shown = withoutTypedPassword(text);
  const sets = [...state.candidates];
  const parts = sets.slice(0, 4).map((set) => {
    const slots = positionalOf(model, set);
    if (slots.length === 0) {
      return `${set === ALL_SETS ? `remote ${model.verb.name}` : `set ${set}`} takes no bare arguments`;
    }
    const filled = slots.map((p) => {
      const b = state.bound.get(p.name);
      if (!b) return `--${p.flag} unset`;
      return `${b.positional ? `[--${p.flag}]` : `--${p.flag}`} ${shownValue(p, b.text)}`;
    });
    const n = slots.length;
    return `set ${set} takes ${n} bare argument${n === 1 ? "" : "s"} (${filled.join(", ")})`;
  });
  if (sets.length > 4) parts.push(`${sets.length - 4} more sets`);
  const remainder = model.verb.remainder;
  const hint = remainder
    ? `put the ${remainder.name.toLowerCase()} after --, e.g. remote ${model.verb.name} <target> -- ${shown}`
    : `name the option "${shown}" belongs to; ${seeHelp(model)}`;
  return new ParameterBindingError(
    "PositionalParameterNotFound",
    `unexpected argument "${shown}": ${parts.join("; ")}`,
    hint,
  );
}

// ---------------------------------------------------------------------------------------------------
// choosing the set

function missingIn(state: State, set: string, assumed: ReadonlySet<string> = new Set()): string[] {
  const missing = mandatoryOf(state.model, set)
    .filter((p) => !state.bound.has(p.name) && !assumed.has(p.name))
    .map((p) => p.name);
  const remainder = state.model.verb.remainder;
  if (remainder?.mandatorySets?.includes(set) && !state.given.includes(remainder.name)) missing.push(remainder.name);
  return missing;
}

function pick(state: State, candidates: ReadonlySet<string>, assumed?: ReadonlySet<string>): string | undefined {
  if (candidates.size === 1) return [...candidates][0];
  const dflt = state.model.defaultSet;
  if (dflt !== undefined && candidates.has(dflt)) return dflt;
  const complete = [...candidates].filter((s) => missingIn(state, s, assumed).length === 0);
  return complete.length === 1 ? complete[0] : undefined;
}

/** PowerShell's `ValidateParameterSets` plus `ResolveParameterSetAmbiguityBasedOnMandatoryParameters`. */
function chooseSet(state: State): string {
  const chosen = pick(state, state.candidates);
  if (chosen !== undefined) return chosen;
  throw tie(state);
}

function flagLabel(model: VerbModel, name: string): string {
  const p = model.byName.get(name);
  if (p) return `--${p.flag}`;
  return `-- <${name.toLowerCase()}>`;
}

function tie(state: State): ParameterBindingError {
  const { model } = state;
  const sets = model.sets.filter((s) => state.candidates.has(s));
  const complete = sets.filter((s) => missingIn(state, s).length === 0);
  const given = state.given.map((n) => flagLabel(model, n));
  const forGiven = given.length > 0 ? ` for ${given.join(" ")}` : "";
  const adds: string[] = [];
  if (complete.length === 0) {
    const parts = sets.map((s) => `${s} needs ${missingIn(state, s).map((n) => flagLabel(model, n)).join(", ")}`);
    for (const s of sets) {
      const needed = missingIn(state, s);
      const narrowed = new Set(
        sets.filter((c) => needed.every((n) => model.byName.get(n)?.sets?.has(c) ?? true)),
      );
      if (pick(state, narrowed, new Set(needed)) === s) {
        adds.push(`add ${needed.map((n) => flagLabel(model, n)).join(" ")} to pick set ${s}`);
      }
    }
    return new ParameterBindingError(
      "AmbiguousParameterSet",
      `cannot choose a parameter set${forGiven}: ${parts.join("; ")}`,
      adds.length > 0 ? adds.join("; ") : seeHelp(model),
    );
  }
  for (const s of complete) {
    const unique = model.params.find((p) =>
      !state.bound.has(p.name) && p.sets !== null && p.sets.has(s) && complete.every((o) => o === s || !p.sets!.has(o))
    );
    if (unique) adds.push(`add --${unique.flag} to pick set ${s}`);
  }
  const names = complete.length === 2 ? `${complete[0]} and ${complete[1]}` : complete.join(", ");
  return new ParameterBindingError(
    "AmbiguousParameterSet",
    `cannot choose between parameter sets ${names}${forGiven}: each has what it needs`,
    adds.length > 0 ? adds.join("; ") : seeHelp(model),
  );
}

function missingMandatory(model: VerbModel, resolution: Resolution): ParameterBindingError {
  const set = resolution.set;
  const parts = resolution.missing.map((name) => {
    const p = model.byName.get(name);
    if (!p) return `-- <${name.toLowerCase()}>`;
    const value = valueNameOf(p);
    const flag = p.sets?.get(set)?.position !== undefined ? `[--${p.flag}]` : `--${p.flag}`;
    return value === "" ? flag : `${flag} ${value}`;
  });
  return new ParameterBindingError(
    "MissingMandatoryParameter",
    `missing ${resolution.missing.map((n) => flagLabel(model, n)).join(", ")} for parameter set ${set}`,
    `add ${parts.join(" ")}, or run in a terminal to be asked`,
  );
}
