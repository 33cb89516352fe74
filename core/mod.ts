/**
 * The core of remote: parameter-set resolution, the session lifecycle and registry, the verbs and
 * the terminal bridge. Transports may import types from here; the core imports no transport.
 *
 * @example Parsing a target
 * ```ts
 * import { parseTarget } from "./mod.ts";
 * console.assert(parseTarget("admin@db1:2222").port === 2222);
 * ```
 *
 * @module
 */
export * from "./errors.ts";
export { type ParsedTarget, parseTarget } from "./target.ts";
export type { TransportEntry, TransportOrigin } from "./transport_catalog.ts";
export type { Availability, SessionRecord, SessionState } from "./session.ts";
