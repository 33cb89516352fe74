/**
 * The verbs of remote, one module each (`enter.ts`, `invoke.ts`…): each exports its declaration
 * (`spec`) and its handler (`run`). Each `import()` below has a literal specifier, so `deno compile`
 * and `deno bundle` embed the module while a run loads only the verb it runs.
 *
 * @example Running a verb
 * ```ts ignore
 * import { loadVerb } from "./mod.ts";
 * const verb = await loadVerb("get");
 * const spec = verb?.spec([]);
 * ```
 *
 * @module
 */
import type { TransportManifest } from "../../plugins/mod.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { Verb } from "./_verb.ts";
export type { Verb, VerbInput, VerbIo } from "./_verb.ts";

/** The verbs, by name, in the order help lists them. */
export const VERBS: Readonly<Record<string, () => Promise<Verb>>> = {
  enter: () => import("./enter.ts"),
  new: () => import("./new.ts"),
  get: () => import("./get.ts"),
  connect: () => import("./connect.ts"),
  disconnect: () => import("./disconnect.ts"),
  receive: () => import("./receive.ts"),
  remove: () => import("./remove.ts"),
  invoke: () => import("./invoke.ts"),
  forward: () => import("./forward.ts"),
  copy: () => import("./copy.ts"),
};

/** The verb named `name`, loaded; undefined when remote has no such verb. */
export async function loadVerb(name: string): Promise<Verb | undefined> {
  return Object.hasOwn(VERBS, name) ? await VERBS[name]() : undefined;
}

/** Every verb's declaration, for completions and the verbs of `remote plugin info`. */
export async function verbSpecs(manifests: readonly TransportManifest[]): Promise<VerbSpec[]> {
  return (await Promise.all(Object.values(VERBS).map((load) => load()))).map((verb) => verb.spec(manifests));
}
