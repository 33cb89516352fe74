/**
 * The Session Manager control plane: StartSession, ResumeSession and TerminateSession over AWS JSON
 * 1.1 (`POST /`, `X-Amz-Target: AmazonSSM.<Operation>`), signed with SigV4 for service `ssm`, and
 * AWS errors mapped to remote's exit codes.
 *
 * Shapes from aws-sdk-go `service/ssm/api.go` (`StartSessionInput`/`StartSessionOutput`,
 * `ResumeSessionInput`, `TerminateSessionInput`) and `private/protocol/jsonrpc`.
 *
 * @module
 */
import { TransportError } from "../../plugins/mod.ts";
import { type AwsCredentials, signRequest } from "./sigv4.ts";

/** Where and as whom to call SSM. */
export interface ControlPlaneConfig {
  endpoint: URL;
  region: string;
  credentials: AwsCredentials;
  signal?: AbortSignal;
}

/** StartSession's input. */
export interface StartSessionInput {
  Target: string;
  DocumentName?: string;
  Parameters?: Record<string, string[]>;
  Reason?: string;
}

/** What StartSession and ResumeSession return. */
export interface SessionGrant {
  SessionId: string;
  StreamUrl: string;
  TokenValue: string;
}

/** The default endpoint of a region. */
export function defaultEndpoint(region: string): URL {
  return new URL(`https://ssm.${region}.amazonaws.com/`);
}

function errorFor(operation: string, status: number, type: string, message: string, target?: string): TransportError {
  const detail = message ? `: ${message}` : "";
  switch (type) {
    case "UnrecognizedClientException":
    case "InvalidClientTokenId":
      return new TransportError(`AWS does not recognise the access key${detail}`, {
        layer: "auth",
        hint: "check AWS_ACCESS_KEY_ID or the profile's aws_access_key_id (and --profile)",
      });
    case "InvalidSignatureException":
    case "SignatureDoesNotMatch":
      return new TransportError(`AWS rejected the request signature${detail}`, {
        layer: "auth",
        hint: "check the secret access key, and that the system clock is correct",
      });
    case "ExpiredTokenException":
    case "ExpiredToken":
    case "RequestExpired":
      return new TransportError(`the AWS credentials have expired${detail}`, {
        layer: "auth",
        hint: "get fresh credentials (a new session token) and try again",
      });
    case "AccessDeniedException":
      return new TransportError(`AWS denied ${operation}${detail}`, {
        layer: "auth",
        hint: "the IAM identity needs ssm:" + operation + " on the target",
      });
    case "TargetNotConnected":
      return new TransportError(`${target ?? "the target"} is not connected to Session Manager${detail}`, {
        layer: "server",
        code: "unreachable",
        hint: "check that the SSM agent runs on the instance and can reach ssmmessages, and the region is right",
      });
    case "InvalidTarget":
      return new TransportError(`${target ?? "the target"} is not a managed instance in this region${detail}`, {
        layer: "server",
        code: "notFound",
        hint: "check the instance ID and --region",
      });
    case "InvalidDocument":
      return new TransportError(`the session document is not valid${detail}`, {
        layer: "server",
        hint: "check --document-name and --parameter",
      });
    case "DoesNotExistException":
      return new TransportError(`the session no longer exists${detail}`, { layer: "channel" });
    default:
      return new TransportError(`AWS SSM ${operation} failed (${type || `HTTP ${status}`})${detail}`, {
        layer: "server",
      });
  }
}

/**
 * Calls one SSM operation and returns its JSON output.
 *
 * @throws {TransportError} mapped from the AWS error type, or `socket`/`dns`/`timeout` when the
 *   endpoint cannot be reached
 */
export async function callSsm(
  config: ControlPlaneConfig,
  operation: "StartSession" | "ResumeSession" | "TerminateSession",
  input: object,
  target?: string,
): Promise<Record<string, unknown>> {
  // a client per call, closed once the reply is read: a pooled keep-alive connection would outlive the session
  const client = Deno.createHttpClient({});
  try {
    return await call(client, config, operation, input, target);
  } finally {
    client.close();
  }
}

async function call(
  client: Deno.HttpClient,
  config: ControlPlaneConfig,
  operation: "StartSession" | "ResumeSession" | "TerminateSession",
  input: object,
  target?: string,
): Promise<Record<string, unknown>> {
  const body = JSON.stringify(input);
  const signed = signRequest({
    method: "POST",
    url: config.endpoint,
    headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": `AmazonSSM.${operation}` },
    body,
    region: config.region,
    service: "ssm",
    credentials: config.credentials,
    date: new Date(),
  });
  const { host: _host, ...headers } = signed.headers;
  let response: Response;
  try {
    response = await fetch(config.endpoint, {
      client,
      method: "POST",
      headers,
      body,
      signal: AbortSignal.any([config.signal ?? new AbortController().signal, AbortSignal.timeout(30_000)]),
    });
  } catch (cause) {
    if (cause instanceof DOMException && cause.name === "TimeoutError") {
      throw new TransportError(`AWS SSM ${operation} timed out at ${config.endpoint.host}`, {
        layer: "timeout",
        cause,
      });
    }
    const text = String(cause);
    const dns = /dns error|failed to lookup|Name or service not known/i.test(text);
    throw new TransportError(`cannot reach the SSM endpoint ${config.endpoint.host}`, {
      layer: dns ? "dns" : "socket",
      hint: dns ? "check --region and --endpoint-url" : "check --endpoint-url and the network",
      cause,
    });
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text === "" ? {} : JSON.parse(text);
  } catch {
    json = undefined;
  }
  const obj = typeof json === "object" && json !== null ? json as Record<string, unknown> : undefined;
  if (!response.ok) {
    const rawType = String(response.headers.get("x-amzn-errortype") ?? obj?.["__type"] ?? obj?.["code"] ?? "");
    const type = rawType.split(":")[0].split("#").pop() ?? "";
    const message = String(obj?.["message"] ?? obj?.["Message"] ?? "");
    throw errorFor(operation, response.status, type, message, target);
  }
  if (!obj) {
    throw new TransportError(`AWS SSM ${operation} returned a body that is not JSON`, { layer: "protocol" });
  }
  return obj;
}

function grantFrom(operation: string, out: Record<string, unknown>): SessionGrant {
  const { SessionId, StreamUrl, TokenValue } = out;
  if (typeof SessionId !== "string" || typeof StreamUrl !== "string" || typeof TokenValue !== "string") {
    throw new TransportError(`AWS SSM ${operation} returned no SessionId, StreamUrl or TokenValue`, {
      layer: "protocol",
    });
  }
  return { SessionId, StreamUrl, TokenValue };
}

/** StartSession. */
export async function startSession(config: ControlPlaneConfig, input: StartSessionInput): Promise<SessionGrant> {
  return grantFrom("StartSession", await callSsm(config, "StartSession", input, input.Target));
}

/** ResumeSession; an empty TokenValue means the session timed out (plugin `sessionhandler.go`). */
export async function resumeSession(config: ControlPlaneConfig, sessionId: string): Promise<SessionGrant> {
  const out = await callSsm(config, "ResumeSession", { SessionId: sessionId });
  if (out.TokenValue === "" || out.TokenValue === undefined) {
    throw new TransportError("the SSM session timed out while disconnected", { layer: "channel" });
  }
  return grantFrom("ResumeSession", { StreamUrl: "", ...out });
}

/** TerminateSession. */
export async function terminateSession(config: ControlPlaneConfig, sessionId: string): Promise<void> {
  await callSsm(config, "TerminateSession", { SessionId: sessionId });
}
