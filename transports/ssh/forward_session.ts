/**
 * The forwardings of one SSH session, as ssh(1) sets them up: `-L`, `-R` and `-D` from the command line
 * (the transport's LocalForward, RemoteForward and DynamicForward parameters) and LocalForward,
 * RemoteForward and DynamicForward from ssh_config, with ExitOnForwardFailure and GatewayPorts as
 * ssh_config (or `-o`) sets them. `remote forward` and `remote enter -N` hold them until Ctrl-C
 * ({@linkcode forward}); `remote enter` holds them for the life of its shell ({@linkcode sessionForwards}).
 *
 * @module
 */
import { type ForwardRequest, type OpenContext, UsageError } from "../../plugins/mod.ts";
import type { SshConnection } from "./connection.ts";
import type { Forwarding } from "./forward.ts";
import { describeEndpoint, type ForwardSpec, parseForwardSpec } from "./forward_spec.ts";
import { parameters } from "./manifest.ts";

/** The forwardings given on the command line, parsed (so a malformed one fails before connecting). */
export function commandLineForwards(ctx: Pick<OpenContext, "parameters">): ForwardSpec[] {
  const p = parameters.read(ctx.parameters);
  return [
    ...(p.localForward ?? []).map((t) => parseForwardSpec("L", t)),
    ...(p.remoteForward ?? []).map((t) => parseForwardSpec("R", t)),
    ...(p.dynamicForward ?? []).map((t) => parseForwardSpec("D", t)),
  ];
}

/** Identical forwardings once, as readconf.c's add_local_forward() keeps them. */
function distinct(specs: readonly ForwardSpec[]): ForwardSpec[] {
  const seen = new Set<string>();
  return specs.filter((s) => {
    const key = JSON.stringify([s.kind, s.listen, s.connect]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Starts the command line's forwardings and ssh_config's on `connection`; undefined when there are none.
 * With `announce`, one line per forwarding says where it listens (for `remote forward`, `enter -N`); without
 * `configured`, ssh_config's are left out.
 *
 * @throws {RemoteError} with ExitOnForwardFailure, for the first forwarding that cannot be set up
 */
export async function sessionForwards(
  connection: SshConnection,
  ctx: Pick<OpenContext, "notice">,
  given: readonly ForwardSpec[],
  announce: boolean | ((spec: ForwardSpec) => boolean) = false,
  configured = true,
  /** a run that is nothing but forwarding: when its only forwarding fails, that is the error, said once */
  forwardingOnly = false,
): Promise<Forwarding | undefined> {
  const specs = distinct([...given, ...configured ? connection.config.forwards ?? [] : []]);
  if (specs.length === 0) return undefined;
  const alone = forwardingOnly && specs.length === 1;
  const { startForwarding } = await import("./forward.ts");
  const fwd = await startForwarding(connection, specs, {
    notice: ctx.notice,
    exitOnForwardFailure: alone || connection.config.exitOnForwardFailure,
    gatewayPorts: connection.config.gatewayPorts,
  });
  for (const { spec, bound } of fwd.active) {
    if (announce === true || (announce && announce(spec))) ctx.notice(describeActive(spec, bound, connection.display));
  }
  return fwd;
}

function describeActive(spec: ForwardSpec, bound: ForwardSpec["listen"], via: string): string {
  const here = describeEndpoint(bound);
  if (spec.kind === "dynamic") return `remote: SOCKS proxy on ${here}, connecting from ${via}`;
  if (spec.kind === "local") return `remote: forwarding ${here} to ${describeEndpoint(spec.connect!)} via ${via}`;
  const to = spec.connect ? describeEndpoint(spec.connect) : "a SOCKS proxy here";
  return `remote: forwarding ${here} on ${via} to ${to}`;
}

/**
 * The transport's `forward`: connects, sets up `request`'s port (if any) and the session's forwardings,
 * and holds them until `ctx.signal` aborts or the connection is lost.
 *
 * @throws {UsageError} when there is nothing to forward
 * @throws {RemoteError} when a forwarding fails with ExitOnForwardFailure, or when none could be set up
 */
export async function forward(ctx: OpenContext, request: ForwardRequest): Promise<void> {
  const given = commandLineForwards(ctx);
  // --local-port/--remote-port: one more -L, announced by the caller through onListening
  let requested: ForwardSpec | undefined;
  if (request.remotePort !== undefined) {
    const host = request.remoteHost ?? "localhost";
    requested = {
      kind: "local",
      listen: { kind: "tcp", host: undefined, port: request.localPort ?? 0 },
      connect: { kind: "tcp", host, port: request.remotePort },
      text: `${request.localPort ?? 0}:${host}:${request.remotePort}`,
    };
    given.unshift(requested);
  }
  const { connectSsh } = await import("./connection.ts");
  await using connection = await connectSsh(ctx);
  await using fwd = await sessionForwards(connection, ctx, given, (spec) => spec !== requested, true, true);
  if (!fwd) {
    throw new UsageError("nothing to forward", {
      hint: "give -L [bind:]port:host:hostport, -R [bind:]port:host:hostport or -D [bind:]port",
    });
  }
  // nothing is up (each failure was warned about): the first one ends the run, with its exit code
  if (fwd.active.length === 0) throw fwd.failures[0];
  const mine = fwd.active.find((a) => a.spec === requested);
  if (mine?.bound.kind === "tcp") request.onListening?.(mine.bound.port);
  const aborted = new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    ctx.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  const lost = await Promise.race([aborted, connection.lost]);
  if (lost && !ctx.signal.aborted) throw lost;
}
