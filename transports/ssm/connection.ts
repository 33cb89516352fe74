/**
 * Turns the bound parameters of a connecting verb into what the SSM control plane needs: target,
 * region, endpoint, credentials, document and its parameters.
 *
 * @module
 */
import { type OpenContext, TransportError } from "../../plugins/mod.ts";
import { type ControlPlaneConfig, defaultEndpoint, type StartSessionInput } from "./control_plane.ts";
import { type CredentialSources, resolveAws } from "./credentials.ts";

/** The control plane to call and the StartSession input to send. */
export interface SsmConnection {
  control: ControlPlaneConfig;
  input: StartSessionInput;
}

function text(value: unknown): string | undefined {
  if (value instanceof URL) return value.href;
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * Resolves a connection from `ctx`: `Target` (or the host of `ssm://i-…`), `DocumentName`,
 * `Parameter`, `Reason`, `ProfileName`, `Region`, `EndpointUrl`.
 *
 * @throws {TransportError} `usage` without a target or region, `auth` without credentials
 */
export function resolveConnection(
  ctx: Pick<OpenContext, "target" | "parameters" | "signal">,
  sources: Omit<CredentialSources, "profile" | "region"> = {},
): SsmConnection {
  const p = ctx.parameters;
  const target = text(p.Target) ?? text(ctx.target.host);
  if (!target) {
    throw new TransportError("no SSM target given", {
      layer: "config",
      hint: "pass --target i-0123456789abcdef0 or use ssm://i-0123456789abcdef0",
    });
  }
  const aws = resolveAws({ ...sources, profile: text(p.ProfileName), region: text(p.Region) });
  const endpointText = text(p.EndpointUrl);
  let endpoint: URL;
  try {
    endpoint = endpointText ? new URL(endpointText) : defaultEndpoint(aws.region);
  } catch {
    throw new TransportError(`--endpoint-url ${endpointText} is not a URL`, {
      layer: "config",
      hint: "use a URL such as https://vpce-….ssm.eu-west-1.vpce.amazonaws.com",
    });
  }
  const input: StartSessionInput = { Target: target };
  const document = text(p.DocumentName);
  if (document) input.DocumentName = document;
  const reason = text(p.Reason);
  if (reason) input.Reason = reason;
  const map = p.Parameter;
  if (typeof map === "object" && map !== null && !(map instanceof URL)) {
    const parameters: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(map as Record<string, unknown>)) {
      parameters[k] = Array.isArray(v) ? v.map(String) : [String(v)];
    }
    if (Object.keys(parameters).length > 0) input.Parameters = parameters;
  }
  return { control: { endpoint, region: aws.region, credentials: aws.credentials, signal: ctx.signal }, input };
}
