/**
 * The ssm transport (not built yet).
 * @module
 */
import { type Channel, type OpenContext, type OpenRequest, TransportError } from "../../plugins/mod.ts";
export { manifest } from "./manifest.ts";

/** Opens a ssm connection. */
export function open(_ctx: OpenContext, _request: OpenRequest): Promise<Channel> {
  return Promise.reject(new TransportError("the ssm transport is not built yet", { layer: "config" }));
}
