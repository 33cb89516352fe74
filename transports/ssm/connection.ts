/**
 * Turns the bound parameters of a connecting verb into what the SSM control plane needs: target,
 * region, endpoint, credentials, document and its parameters.
 *
 * @module
 */
import { type OpenContext, TransportError } from "../../plugins/mod.ts";
import { type ControlPlaneConfig, defaultEndpoint, type StartSessionInput } from "./control_plane.ts";
import { type CredentialSources, resolveAws } from "./credentials.ts";
import { parameters } from "./manifest.ts";

/** The control plane to call and the StartSession input to send. */
export interface SsmConnection {
  control: ControlPlaneConfig;
  input: StartSessionInput;
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
  const p = parameters.read(ctx.parameters);
  // an empty value is no value, as the AWS CLI treats `--region ""`
  const target = p.target || ctx.target.host || undefined;
  if (!target) {
    throw new TransportError("no SSM target given", {
      layer: "config",
      hint: "pass --target i-0123456789abcdef0 or use ssm://i-0123456789abcdef0",
    });
  }
  const aws = resolveAws({ ...sources, profile: p.profileName || undefined, region: p.region || undefined });
  const endpoint = p.endpointUrl ?? defaultEndpoint(aws.region);
  const input: StartSessionInput = { Target: target };
  if (p.documentName) input.DocumentName = p.documentName;
  if (p.reason) input.Reason = p.reason;
  const documentParameters = Object.entries(p.parameter ?? {});
  if (documentParameters.length > 0) {
    input.Parameters = Object.fromEntries(documentParameters.map(([k, v]) => [k, [v]]));
  }
  return { control: { endpoint, region: aws.region, credentials: aws.credentials, signal: ctx.signal }, input };
}
