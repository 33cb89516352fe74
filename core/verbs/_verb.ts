/**
 * What a verb module exports, and what its handler is given.
 *
 * @module
 */
import type { Prompter, TransportManifest } from "../../plugins/mod.ts";
import type { UserConfig } from "../config.ts";
import type { Resolution } from "../parameter_set.ts";
import type { Registry } from "../registry.ts";
import type { TransportEntry } from "../transport_catalog.ts";
import type { VerbSpec } from "../verb_spec.ts";

/** Where a verb writes what the user reads. */
export interface VerbIo {
  /** writes all of `data` to stdout */
  out(data: string | Uint8Array): Promise<void>;
  /** writes all of `data` to stderr */
  err(data: string | Uint8Array): Promise<void>;
}

/** Everything a verb's handler is given: the bound parameters, the transports, and its I/O. */
export interface VerbInput {
  /** the verb's declaration, as bound */
  spec: VerbSpec;
  resolution: Resolution;
  entries: readonly TransportEntry[];
  config: UserConfig;
  prompter: Prompter;
  /** the local session registry; opened on first use, so a verb that never records loads none of it */
  registry(): Promise<Registry>;
  io: VerbIo;
}

/** What a verb module exports. */
export interface Verb {
  /** the verb's declaration, with the parameters of `manifests` joined to the connecting verbs */
  spec(manifests: readonly TransportManifest[]): VerbSpec;
  /** runs the verb once its parameter set is resolved; returns the exit code */
  run(input: VerbInput): Promise<number>;
}
