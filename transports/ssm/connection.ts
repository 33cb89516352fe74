/**
 * Turns the bound parameters of a connecting verb into what the SSM control plane needs: target,
 * region, endpoint, credentials, document and its parameters.
 *
 * @module
 */
import { type OpenContext, TransportError } from "../../plugins/mod.ts";
import { resolveAws } from "./aws.ts";
import type { ControlPlaneConfig, StartSessionInput } from "./control_plane.ts";
import { parameters } from "./manifest.ts";
import { resolveTarget } from "./names.ts";

/** The control plane to call and the StartSession input to send. */
export interface SsmConnection {
  control: ControlPlaneConfig;
  input: StartSessionInput;
}

/** The transport's parameters, read in one place. */
export interface SsmParameters {
  target?: string;
  documentName?: string;
  parameters?: Record<string, string[]>;
  reason?: string;
  profile?: string;
  region?: string;
  endpointUrl?: string;
}

/**
 * Reads `Target` (or the host of `ssm://i-…`), `DocumentName`, `Parameter`, `Reason`, `ProfileName`,
 * `Region`, `EndpointUrl` through their declaration in manifest.ts.
 *
 * @throws {UsageError} when `EndpointUrl` is text that is no URL
 */
export function readParameters(ctx: Pick<OpenContext, "target" | "parameters">): SsmParameters {
  const p = parameters.read(ctx.parameters);
  const documentParameters = Object.entries(p.parameter ?? {});
  // an empty value is no value, as the AWS CLI treats `--region ""`
  return {
    target: p.target || ctx.target.host || undefined,
    documentName: p.documentName || undefined,
    parameters: documentParameters.length > 0
      ? Object.fromEntries(documentParameters.map(([k, v]) => [k, [v]]))
      : undefined,
    reason: p.reason || undefined,
    profile: p.profileName || undefined,
    region: p.region || undefined,
    endpointUrl: p.endpointUrl?.href,
  };
}

/**
 * Resolves a connection from `ctx`: credentials and region as the AWS CLI v2 does, the target by ID
 * or by Name tag.
 *
 * @throws {TransportError} `usage` without a target or region, `auth` without credentials,
 *   `notFound` when no instance has the name
 */
export async function resolveConnection(
  ctx: Pick<OpenContext, "target" | "parameters" | "signal" | "prompt" | "notice">,
): Promise<SsmConnection> {
  const p = readParameters(ctx);
  if (!p.target) {
    throw new TransportError("no SSM target given", {
      layer: "config",
      hint: "pass --target i-0123456789abcdef0 (or a Name tag) or use ssm://i-0123456789abcdef0",
    });
  }
  const aws = await resolveAws({ profile: p.profile, region: p.region }, ctx.prompt);
  const control: ControlPlaneConfig = {
    endpoint: p.endpointUrl,
    region: aws.region,
    credentials: aws.credentials,
    signal: ctx.signal,
  };
  const input: StartSessionInput = { Target: await resolveTarget(control, p.target, ctx.prompt, ctx.notice) };
  if (p.documentName) input.DocumentName = p.documentName;
  if (p.reason) input.Reason = p.reason;
  if (p.parameters) input.Parameters = p.parameters;
  return { control, input };
}
