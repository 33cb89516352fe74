/**
 * The transports known to this run, each as a manifest plus a loader. The types are the SDK's
 * (plugins/transport_catalog.ts), since validation works on them; the core's modules import them from here.
 *
 * @module
 */
export type { TransportEntry, TransportOrigin } from "../plugins/mod.ts";
