/**
 * `remote forward`: a local port forwarded to a port on or near the target.
 *
 * @module
 */
import { HOST_SET, type TransportManifest } from "../../plugins/types.ts";
import { RemoteError, UsageError } from "../errors.ts";
import { route } from "../route.ts";
import { loadTransport, requireCapability } from "../transport_use.ts";
import type { VerbSpec } from "../verb_spec.ts";
import type { VerbInput } from "./_verb.ts";
import { hostNameParameter, transportParameters } from "./_parameters.ts";
import { contextFor, interruptSignal, targetText } from "./_run.ts";

/** `remote forward`'s declaration. */
export function spec(manifests: readonly TransportManifest[]): VerbSpec {
  return {
    name: "forward",
    summary: "Forwards a local port to a port on or near the target (Start-SSMSession port forwarding)",
    defaultSet: HOST_SET,
    parameters: [
      { ...hostNameParameter(HOST_SET, false), aliases: [], sets: { [HOST_SET]: { position: 0 } } },
      ...transportParameters(manifests),
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
    ],
    examples: [{
      command: "remote forward --target i-0123456789abcdef0 --local-port 8080 --remote-port 80",
      description: "localhost:8080 reaches port 80 of the instance",
    }],
  };
}

/** Forwards until Ctrl-C. */
export async function run(input: VerbInput): Promise<number> {
  const { resolution, entries, config, prompter } = input;
  const r = route(resolution, entries, config, targetText(resolution));
  requireCapability(r.entry, "forward");
  const transport = await loadTransport(r.entry);
  const v = resolution.values;
  if (typeof v.RemotePort !== "number") {
    throw new UsageError("missing --remote-port", { hint: "e.g. --local-port 8080 --remote-port 80" });
  }
  if (!transport.forward) {
    throw new RemoteError("plugin", `plugin ${r.entry.manifest.id} advertises forward but has no forward()`, {
      hint: "report this to the plugin's author",
    });
  }
  using interrupt = interruptSignal();
  const remoteHost = typeof v.RemoteHost === "string" ? v.RemoteHost : undefined;
  try {
    await transport.forward(contextFor(r, prompter, interrupt.signal), {
      localPort: typeof v.LocalPort === "number" ? v.LocalPort : 0,
      remotePort: v.RemotePort,
      remoteHost,
      onListening: (port) =>
        void input.io.err(
          `remote: forwarding 127.0.0.1:${port} to ${
            remoteHost ?? r.target.host
          }:${v.RemotePort} via ${r.target.display}\n`,
        ),
    });
  } catch (error) {
    if (interrupt.signal.aborted) return 0;
    throw error;
  }
  return 0;
}
