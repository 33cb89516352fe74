/**
 * A verb's parameters compiled once for lookup: merged duplicates, spellings, shorts, set order and
 * positional slots. Shared by the resolver, help and completions so all three read the same data.
 *
 * @module
 */
import { kebabCase, type ParameterInSet, type ParameterSpec, type ParameterType } from "../plugins/mod.ts";
import type { VerbSpec } from "./verb_spec.ts";

/** PowerShell's name for "every set", used when a verb declares no set at all. */
export const ALL_SETS = "__AllParameterSets";

/** One long spelling a parameter answers to. */
export interface Spelling {
  /** lower case, without dashes */
  text: string;
  /** the PowerShell name run together (`computername`): accepted, never shown */
  hidden: boolean;
}

/** A parameter ready for binding. */
export interface ModelParam {
  spec: ParameterSpec;
  name: string;
  /** canonical long spelling, without dashes */
  flag: string;
  short?: string;
  /** declared aliases, as declared */
  aliases: string[];
  spellings: Spelling[];
  /** null: the parameter is in every set and never narrows */
  sets: ReadonlyMap<string, ParameterInSet> | null;
  type: ParameterType;
  index: number;
}

/** A verb ready for binding. */
export interface VerbModel {
  verb: VerbSpec;
  params: ModelParam[];
  byName: ReadonlyMap<string, ModelParam>;
  shorts: ReadonlyMap<string, ModelParam>;
  /** default first, then in order of first appearance */
  sets: string[];
  defaultSet?: string;
}

const cache = new WeakMap<VerbSpec, VerbModel>();

/**
 * Compiles (and caches) a verb. Inconsistent declarations are bugs in remote or a plugin, so they
 * throw a plain Error rather than a usage error.
 */
export function compileVerb(verb: VerbSpec): VerbModel {
  const known = cache.get(verb);
  if (known) return known;
  const merged = mergeDuplicates(verb);
  const params = merged.map((spec, index): ModelParam => {
    const flag = (spec.flag ?? kebabCase(spec.name)).toLowerCase();
    const aliases = [...(spec.aliases ?? [])];
    const spellings: Spelling[] = [{ text: flag, hidden: false }];
    for (const a of aliases) {
      const text = a.toLowerCase();
      if (!spellings.some((s) => s.text === text)) spellings.push({ text, hidden: false });
    }
    const runTogether = spec.name.toLowerCase();
    if (!spellings.some((s) => s.text === runTogether)) spellings.push({ text: runTogether, hidden: true });
    return {
      spec,
      name: spec.name,
      flag,
      short: spec.short,
      aliases,
      spellings,
      sets: spec.sets ? new Map(Object.entries(spec.sets)) : null,
      type: spec.type,
      index,
    };
  });

  const where = `verb ${verb.name}`;
  const spellingOwner = new Map<string, ModelParam>();
  for (const p of params) {
    for (const s of p.spellings.filter((x) => !x.hidden)) {
      const other = spellingOwner.get(s.text);
      if (other && other !== p) {
        throw new Error(`${where}: --${s.text} is declared by both ${other.name} and ${p.name}`);
      }
      spellingOwner.set(s.text, p);
    }
  }
  // A run-together name yields to any declared spelling, and to an earlier run-together name.
  for (const p of params) {
    p.spellings = p.spellings.filter((s) => {
      if (!s.hidden) return true;
      if (spellingOwner.has(s.text)) return false;
      spellingOwner.set(s.text, p);
      return true;
    });
  }

  const shorts = new Map<string, ModelParam>();
  for (const p of params) {
    if (p.short === undefined) continue;
    if (p.short.length !== 1) throw new Error(`${where}: short flag of ${p.name} must be one character`);
    const other = shorts.get(p.short);
    if (other) throw new Error(`${where}: -${p.short} is declared by both ${other.name} and ${p.name}`);
    shorts.set(p.short, p);
  }

  const sets: string[] = [];
  const addSet = (s: string) => {
    if (!sets.includes(s)) sets.push(s);
  };
  if (verb.defaultSet) addSet(verb.defaultSet);
  for (const p of params) for (const s of p.sets?.keys() ?? []) addSet(s);
  for (const s of verb.remainder?.mandatorySets ?? []) addSet(s);

  for (const set of sets) {
    const taken = new Map<number, string>();
    for (const p of params) {
      const position = p.sets?.get(set)?.position;
      if (position === undefined) continue;
      if (p.type.kind === "switch" || p.type.kind === "count") {
        throw new Error(`${where}: switch ${p.name} cannot have a position`);
      }
      const other = taken.get(position);
      if (other) throw new Error(`${where}: ${other} and ${p.name} both take position ${position} in set ${set}`);
      taken.set(position, p.name);
    }
  }

  const model: VerbModel = {
    verb,
    params,
    byName: new Map(params.map((p) => [p.name, p])),
    shorts,
    sets,
    defaultSet: verb.defaultSet,
  };
  cache.set(verb, model);
  return model;
}

/** The same name declared twice (two transports' `Port`) is one parameter in the union of their sets. */
function mergeDuplicates(verb: VerbSpec): ParameterSpec[] {
  const out: ParameterSpec[] = [];
  const byName = new Map<string, number>();
  for (const spec of verb.parameters) {
    const at = byName.get(spec.name);
    if (at === undefined) {
      byName.set(spec.name, out.length);
      out.push(spec);
      continue;
    }
    const first = out[at];
    if (first.type.kind !== spec.type.kind) {
      throw new Error(`verb ${verb.name}: ${spec.name} is declared as ${first.type.kind} and as ${spec.type.kind}`);
    }
    out[at] = {
      ...first,
      short: first.short ?? spec.short,
      aliases: [...new Set([...(first.aliases ?? []), ...(spec.aliases ?? [])])],
      // no sets means every set, which the union cannot widen
      sets: first.sets && spec.sets ? { ...spec.sets, ...first.sets } : undefined,
    };
  }
  return out;
}

/** The mandatory parameters of `set`, in declaration order. */
export function mandatoryOf(model: VerbModel, set: string): ModelParam[] {
  return model.params.filter((p) => p.sets?.get(set)?.mandatory === true);
}

/** The positional parameters of `set`, by position. */
export function positionalOf(model: VerbModel, set: string): ModelParam[] {
  return model.params
    .filter((p) => p.sets?.get(set)?.position !== undefined)
    .sort((a, b) => (a.sets!.get(set)!.position! - b.sets!.get(set)!.position!));
}

/** Whether `p` belongs to `set`. */
export function inSet(p: ModelParam, set: string): boolean {
  return p.sets === null || p.sets.has(set);
}

/** The sets `p` declares, in the verb's set order; empty means all. */
export function setsOfParam(model: VerbModel, p: ModelParam): string[] {
  return p.sets === null ? [] : model.sets.filter((s) => p.sets!.has(s));
}

/** The value placeholder shown in syntax and help: `<int>`, `<key=value>`, `<Basic|Negotiate>`. */
export function valueNameOf(p: ModelParam): string {
  if (p.spec.valueName) return p.spec.valueName;
  switch (p.type.kind) {
    case "enum":
      return `<${p.type.values.join("|")}>`;
    case "map":
      return "<key=value>";
    case "credential":
      return "<user>";
    case "switch":
    case "count":
      return "";
    case "list":
      return "<string>";
    default:
      return `<${p.type.kind}>`;
  }
}
