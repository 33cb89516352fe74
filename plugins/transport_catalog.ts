/**
 * The transports known to this run: built-ins, in-process plugins and out-of-process plugins, each
 * as a manifest (data, cheap) plus a loader that imports the code only when the transport is used.
 *
 * @module
 */
import type { Transport, TransportManifest } from "./types.ts";

/** Where a transport came from, for `remote plugin list`. */
export type TransportOrigin =
  | { kind: "builtin" }
  | { kind: "module"; specifier: string }
  | { kind: "executable"; path: string };

/** One known transport: its manifest now, its code on demand. */
export interface TransportEntry {
  manifest: TransportManifest;
  origin: TransportOrigin;
  /** imports (or starts) the transport; called at most once per run by the core */
  load(): Promise<Transport>;
  /**
   * A cheap check that {@linkcode load} can work in this installation (a native addon is on disk, say),
   * without loading the transport; rejects with why not. `remote --version` lists only the transports
   * whose check passes. Absent: nothing to check.
   */
  probe?(): Promise<void>;
}
