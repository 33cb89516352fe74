/**
 * The Session Manager control plane: StartSession, ResumeSession, TerminateSession, DescribeSessions and
 * DescribeInstanceInformation through AWS's SDK (`@aws-sdk/client-ssm`, loaded on first use), and
 * AWS errors mapped to remote's exit codes.
 *
 * Endpoint: `--endpoint-url` when given, else the SDK's resolution as the CLI's
 * (`AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL`, `endpoint_url` in the profile, the region's default).
 *
 * @module
 */
import { RemoteError, TransportError } from "../../plugins/mod.ts";
import type { CredentialProvider } from "./aws.ts";
import { loadAwsSdk } from "./sdk_loader.ts";

/** Where and as whom to call AWS. */
export interface ControlPlaneConfig {
  /** `--endpoint-url`; undefined lets the SDK resolve it */
  endpoint?: string;
  region: string;
  credentials: CredentialProvider;
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

function errorFor(
  operation: string,
  status: number,
  type: string,
  message: string,
  target?: string,
  service = "SSM",
): TransportError {
  const detail = message ? `: ${message}` : "";
  switch (type) {
    case "UnrecognizedClientException":
    case "InvalidClientTokenId":
    case "AuthFailure":
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
    case "AccessDenied":
    case "UnauthorizedOperation":
      return new TransportError(`AWS denied ${operation}${detail}`, {
        layer: "auth",
        hint: `the IAM identity needs ${service.toLowerCase()}:${operation}` + (target ? " on the target" : ""),
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
      return new TransportError(`the session no longer exists${detail}`, { layer: "channel", code: "notFound" });
    default:
      return new TransportError(`AWS ${service} ${operation} failed (${type || `HTTP ${status}`})${detail}`, {
        layer: "server",
      });
  }
}

/** The SSM operations remote calls. */
export type SsmOperation =
  | "StartSession"
  | "ResumeSession"
  | "TerminateSession"
  | "DescribeSessions"
  | "DescribeInstanceInformation";

/** Options every SDK client remote makes shares: region, credentials, endpoint, timeouts, no stray logs. */
export function clientOptions(config: ControlPlaneConfig): Record<string, unknown> {
  return {
    region: config.region,
    credentials: config.credentials,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 30_000 },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  };
}

/**
 * Maps what an SDK call threw to a TransportError: an AWS error by its type, a failure to reach the
 * endpoint by its kind.
 */
export function sdkError(service: string, operation: string, cause: unknown, target?: string): RemoteError {
  // remote's own, from the credential provider (no credentials, the MFA prompt without a terminal)
  if (cause instanceof RemoteError) return cause;
  const e = cause as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 300) {
    return errorFor(operation, status, e.name ?? "", String(e.message ?? "").split("\n")[0], target, service);
  }
  const text = `${e?.name ?? ""} ${e?.code ?? ""} ${e?.message ?? cause}`;
  if (/TimeoutError|ETIMEDOUT|timed? ?out/i.test(text) && !/AbortError/.test(text)) {
    return new TransportError(`AWS ${service} ${operation} timed out`, { layer: "timeout", cause });
  }
  if (/AbortError|aborted/i.test(text)) {
    return new TransportError(`AWS ${service} ${operation} was cancelled`, { layer: "channel", code: "interrupted" });
  }
  const dns = /ENOTFOUND|EAI_AGAIN|dns error|failed to lookup|Name or service not known/i.test(text);
  return new TransportError(
    `cannot reach the AWS ${service} endpoint (${String(e?.message ?? cause).split("\n")[0]})`,
    {
      layer: dns ? "dns" : "socket",
      hint: dns ? "check --region and --endpoint-url" : "check --endpoint-url and the network",
      cause,
    },
  );
}

/**
 * Calls one SSM operation and returns its output.
 *
 * @throws {TransportError} mapped from the AWS error type, or `socket`/`dns`/`timeout` when the
 *   endpoint cannot be reached
 */
/** What a command of AWS's SDK takes: its service's request shape. */
type InputOf<C extends new (...args: never[]) => unknown> = NonNullable<ConstructorParameters<C>[0]>;

export async function callSsm(
  config: ControlPlaneConfig,
  operation: SsmOperation,
  input: object,
  target?: string,
): Promise<Record<string, unknown>> {
  const sdk = await loadAwsSdk();
  // a client per call, destroyed once the reply is read: a pooled keep-alive connection would outlive the session
  const client = new sdk.SSMClient(clientOptions(config));
  // one call site for four operations whose inputs differ: each input is the service's JSON as read from the wire
  const commands = {
    StartSession: (i: object) =>
      client.send(new sdk.StartSessionCommand(i as InputOf<typeof sdk.StartSessionCommand>), {
        abortSignal: config.signal,
      }),
    ResumeSession: (i: object) =>
      client.send(new sdk.ResumeSessionCommand(i as InputOf<typeof sdk.ResumeSessionCommand>), {
        abortSignal: config.signal,
      }),
    TerminateSession: (i: object) =>
      client.send(new sdk.TerminateSessionCommand(i as InputOf<typeof sdk.TerminateSessionCommand>), {
        abortSignal: config.signal,
      }),
    DescribeSessions: (i: object) =>
      client.send(new sdk.DescribeSessionsCommand(i as InputOf<typeof sdk.DescribeSessionsCommand>), {
        abortSignal: config.signal,
      }),
    DescribeInstanceInformation: (i: object) =>
      client.send(
        new sdk.DescribeInstanceInformationCommand(i as InputOf<typeof sdk.DescribeInstanceInformationCommand>),
        { abortSignal: config.signal },
      ),
  };
  try {
    const out: object = await commands[operation](input);
    return out as Record<string, unknown>;
  } catch (cause) {
    throw sdkError("SSM", operation, cause, target);
  } finally {
    client.destroy();
  }
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
    throw new TransportError("the SSM session timed out while disconnected", { layer: "channel", code: "notFound" });
  }
  return grantFrom("ResumeSession", { StreamUrl: "", ...out });
}

/** TerminateSession. */
export async function terminateSession(config: ControlPlaneConfig, sessionId: string): Promise<void> {
  await callSsm(config, "TerminateSession", { SessionId: sessionId });
}

/** A session as DescribeSessions reports it (the fields remote reads). */
export interface DescribedSession {
  SessionId: string;
  Target?: string;
  /** Connected, Connecting, Disconnected, Terminated, Terminating or Failed */
  Status?: string;
  StartDate?: Date;
  EndDate?: Date;
  DocumentName?: string;
  Owner?: string;
  Reason?: string;
}

/**
 * DescribeSessions of one state (`Active` or `History`) with a Target filter, every page (bounded to
 * 20 pages of 200).
 */
export async function describeSessions(
  config: ControlPlaneConfig,
  state: "Active" | "History",
  target: string,
): Promise<DescribedSession[]> {
  const found: DescribedSession[] = [];
  let next: string | undefined;
  for (let page = 0; page < 20; page++) {
    const out = await callSsm(config, "DescribeSessions", {
      State: state,
      MaxResults: 200,
      Filters: [{ key: "Target", value: target }],
      ...(next ? { NextToken: next } : {}),
    }, target);
    const sessions = Array.isArray(out.Sessions) ? out.Sessions as DescribedSession[] : [];
    found.push(...sessions.filter((s) => typeof s?.SessionId === "string"));
    next = typeof out.NextToken === "string" && out.NextToken !== "" ? out.NextToken : undefined;
    if (!next) break;
  }
  return found;
}
