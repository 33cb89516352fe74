/**
 * `remote forward`: a local port forwarded to a port on or near the target.
 *
 * @module
 */
import { declareParameters, type ForwardRequest, HOST_SET, type TransportManifest } from "../../plugins/mod.ts";
import { RemoteError } from "../errors.ts";
import { type Route, route } from "../route.ts";
import { loadTransport, requireCapability } from "../transport_use.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import {
  hostNameParameter,
  letterHints,
  noCommandParameter,
  transportParameters,
  viaParameter,
} from "./_parameters.ts";
import { contextFor, interruptSignal, throughVia } from "./_run.ts";

/** The parameters `forward` declares itself; the transports' join them in {@linkcode spec}. */
export const parameters = declareParameters([
  { ...hostNameParameter(HOST_SET), aliases: [], sets: { [HOST_SET]: { position: 0 } } },
  {
    name: "LocalPort",
    type: { kind: "int", min: 0, max: 65535 },
    help: "local port to listen on (0 picks a free one)",
  },
  {
    name: "RemotePort",
    type: { kind: "int", min: 1, max: 65535 },
    help: "port to reach on the far side",
  },
  {
    name: "RemoteHost",
    flag: "host",
    type: { kind: "string" },
    help: "reach this host as seen from the target instead of the target itself",
  },
  { ...noCommandParameter, help: "accepted for ssh's habit: remote forward runs no command anyway" },
  viaParameter,
]);

/** `remote forward`'s declaration. */
export function spec(manifests: readonly TransportManifest[]): VerbSpec {
  return {
    name: "forward",
    summary: "Forwards a local port to a port on or near the target (Start-SSMSession port forwarding)",
    defaultSet: HOST_SET,
    parameters: [parameters.specs[0], ...transportParameters(manifests), ...parameters.specs.slice(1)],
    letterHints: letterHints(manifests),
    examples: [
      {
        command: "remote forward db1 -L 8080:localhost:80 -D 1080",
        description: "localhost:8080 reaches port 80 of db1; localhost:1080 is a SOCKS proxy leaving from db1",
      },
      {
        command: "remote forward db1 -R 9000:localhost:3000",
        description: "port 9000 on db1 reaches port 3000 here",
      },
      {
        command: "remote forward --target i-0123456789abcdef0 --local-port 8080 --remote-port 80",
        description: "localhost:8080 reaches port 80 of the instance",
      },
    ],
  };
}

/** Forwards until Ctrl-C. */
export async function run(input: VerbInput): Promise<number> {
  const { resolution, entries, config } = input;
  const params = parameters.read(resolution.values);
  const direct = route(resolution, parameters.names, entries, config, params.hostName, "ignore");
  // --via (or the host's via in the config): its connection is closed once forwarding ends
  await using routed = await throughVia(input, direct, params.via, parameters.names);
  return await holdForwards(input, routed.route, {
    localPort: params.localPort,
    remotePort: params.remotePort,
    remoteHost: params.remoteHost,
  });
}

/**
 * Runs the routed transport's `forward` until Ctrl-C (also `remote enter -N`); a request with no remote
 * port leaves the forwardings to the transport's own parameters (ssh's -L/-R/-D).
 */
export async function holdForwards(input: VerbInput, r: Route, request: ForwardRequest): Promise<number> {
  requireCapability(r.entry, "forward");
  const transport = await loadTransport(r.entry);
  if (!transport.forward) {
    throw new RemoteError("plugin", `plugin ${r.entry.manifest.id} advertises forward but has no forward()`, {
      hint: "report this to the plugin's author",
    });
  }
  using interrupt = interruptSignal();
  const { remotePort, remoteHost } = request;
  try {
    await transport.forward(contextFor(r, input.prompter, interrupt.signal), {
      ...request,
      onListening: (port) =>
        void (remotePort !== undefined && input.io.err(
          `remote: forwarding 127.0.0.1:${port} to ${
            remoteHost ?? r.target.host
          }:${remotePort} via ${r.target.display}\n`,
        )),
    });
  } catch (error) {
    if (interrupt.signal.aborted) return 0;
    throw error;
  }
  return 0;
}
