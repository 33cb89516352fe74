/**
 * A verb declared as data. The resolver, help and completions all read this one shape; the verbs
 * themselves live one per module in `core/verbs/`.
 *
 * @module
 */
import type { ParameterSpec } from "../plugins/mod.ts";

/** A verb declared as data: help, completions and binding all read it. */
export interface VerbSpec {
  /** the word after `remote`, e.g. `enter` */
  name: string;
  /** one line for help */
  summary: string;
  parameters: ParameterSpec[];
  /** the set chosen when several remain, as PowerShell's `DefaultParameterSetName` */
  defaultSet?: string;
  examples: { command: string; description: string }[];
  /** words after a literal `--` (`remote invoke host -- ls -l`), bound under `name` as `string[]` */
  remainder?: { name: string; help: string; mandatorySets?: string[] };
  /** hints for one-letter options the verb does not take, from its transports' `letterHints` */
  letterHints?: Readonly<Record<string, string>>;
}
