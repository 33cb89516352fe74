/**
 * The ssh transport (not built yet).
 * @module
 */
import { type Channel, type OpenContext, type OpenRequest, TransportError } from "../../plugins/mod.ts";
export { manifest } from "./manifest.ts";

/** Opens a ssh connection. */
export function open(_ctx: OpenContext, _request: OpenRequest): Promise<Channel> {
  return Promise.reject(new TransportError("the ssh transport is not built yet", { layer: "config" }));
}
