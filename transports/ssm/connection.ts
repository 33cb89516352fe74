/**
 * Turns the bound parameters of a connecting verb into what the SSM control plane needs: target,
 * region, endpoint, credentials, document and its parameters.
 *
 * @module
 */
import { type OpenContext, TransportError } from "../../plugins/mod.ts";
import { resolveAws } from "./aws.ts";
import type { ControlPlaneConfig, StartSessionInput } from "./control_plane.ts";
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

function text(value: unknown): string | undefined {
  if (value instanceof URL) return value.href;
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * Reads `Target` (or the host of `ssm://i-…`), `DocumentName`, `Parameter`, `Reason`, `ProfileName`,
 * `Region`, `EndpointUrl`.
 */
export function readParameters(ctx: Pick<OpenContext, "target" | "parameters">): SsmParameters {
  const p = ctx.parameters;
  let parameters: Record<string, string[]> | undefined;
  const map = p.Parameter;
  if (typeof map === "object" && map !== null && !(map instanceof URL)) {
    for (const [k, v] of Object.entries(map as Record<string, unknown>)) {
      (parameters ??= {})[k] = Array.isArray(v) ? v.map(String) : [String(v)];
    }
  }
  return {
    target: text(p.Target) ?? text(ctx.target.host),
    documentName: text(p.DocumentName),
    parameters,
    reason: text(p.Reason),
    profile: text(p.ProfileName),
    region: text(p.Region),
    endpointUrl: text(p.EndpointUrl),
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
  if (p.endpointUrl !== undefined) {
    try {
      new URL(p.endpointUrl);
    } catch {
      throw new TransportError(`--endpoint-url ${p.endpointUrl} is not a URL`, {
        layer: "config",
        hint: "use a URL such as https://vpce-….ssm.eu-west-1.vpce.amazonaws.com",
      });
    }
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
