/**
 * A loopback stand-in for AWS Systems Manager Session Manager: the SSM control plane (AWS JSON 1.1,
 * SigV4-verified) and the data channel service with an agent behind it, for tests and benchmarks.
 *
 * Documents followed (public sources, named by repository and file):
 * - aws-sdk-go `service/ssm/api.go` and `private/protocol/jsonrpc` (StartSession, ResumeSession,
 *   TerminateSession shapes; `__type` error bodies), AWS General Reference "Signature Version 4".
 * - The AWS Systems Manager API Reference, as AWS's SDK for JavaScript v3 carries it
 *   (`@aws-sdk/client-ssm` command docs): ResumeSession (SessionId 1–96 characters; DoesNotExistException
 *   for an unknown or ended session; the plugin's `sessionhandler.go` reads an empty TokenValue as a
 *   session timed out, which the emulator returns for one its idle timeout ended), TerminateSession (the
 *   SessionId back, also for an ended session), DescribeSessions (State Active | History; Filters keys
 *   InvokedAfter, InvokedBefore, Target, Owner, Status, SessionId, AccessType, else InvalidFilterKey;
 *   MaxResults 1–200; NextToken, else InvalidNextToken; Session Status Connected, Connecting,
 *   Disconnected, Terminated; StartDate, EndDate, DocumentName, Owner, Reason), StartSession's Reason
 *   (1–256 characters). The Session Manager preference idleSessionTimeout ends an idle session.
 * - While no client is connected the service pauses the agent's publication and the agent stops
 *   reading the shell's output (aws/amazon-ssm-agent `agent/session/shell/shell.go` `writePump` checks
 *   `IsActive`, `datachannel.go` `handlePausePublicationMessage`): output waits, nothing is lost; a
 *   second client takes the session over. Which of the service's steps pauses the agent is not
 *   published; the emulator pauses it when the client's socket closes.
 * - AWS's "Session document schema": the AWS-StartNonInteractiveCommand and AWS-StartInteractiveCommand
 *   documents (sessionType NonInteractiveCommands / InteractiveCommands, `command` parameter) and a
 *   customer document with `separateOutputStream`; the agent's `shell.go` (`processCommandsWithExec`
 *   merges stderr and sends no exit code; `processCommandsWithOutputStreamSeparate` sends StdErr
 *   payloads and `EXIT_CODE: n`, `sendExitCode`).
 * - aws/session-manager-plugin `src/message/clientmessage.go`, `messageparser.go` (binary
 *   ClientMessage: 116-byte header, space padding, swapped MessageId halves, SHA-256 digest),
 *   `src/datachannel/streaming.go` (token message, acks, resends), `sessionhandler.go` (resume).
 * - aws/amazon-ssm-agent `agent/session/datachannel/datachannel.go` (handshake, sequencing: acks
 *   early and duplicate messages, buffers early ones, ignores client data before the handshake
 *   completes and does not ack it, never checks the digest, pause/start publication; since commit
 *   b0e8d778, release 3.2.1041.0, it acks a message already processed too, so acks no longer tell a
 *   client the agent's expected number), `agent/session/config/config.go` (IncomingMessageBufferCapacity
 *   100000: a message ahead of the expected one beyond it is dropped without an ack),
 *   `agent/session/shell` (Size payloads, Ctrl-C as a byte), `agent/plugins/port/port_mux.go`
 *   (smux v1 server, Flag ConnectToPortError).
 * - mmmorris1975/ssm-session-client `datachannel/agent_message.go` (112-byte `channel_closed` header).
 *
 * - AWS's SDK for JavaScript v3 and the service references for the calls around a session, each
 *   SigV4-verified unless the service does not sign: EC2 `DescribeInstances` (query API, XML reply,
 *   `Filter.N.Name`/`Filter.N.Value.M`), SSM `DescribeInstanceInformation` (`tag:Name` filter), STS
 *   `AssumeRole` (with `SerialNumber`/`TokenCode` for MFA) and `AssumeRoleWithWebIdentity`
 *   (unsigned), the IAM Identity Center portal `GetRoleCredentials` (`GET /federation/credentials`,
 *   `x-amz-sso_bearer_token`), the ECS/EKS container credentials endpoint (`GET` with `Authorization:
 *   AWS_CONTAINER_AUTHORIZATION_TOKEN`, a JSON body of AccessKeyId, SecretAccessKey, Token, Expiration), IMDSv2 (`PUT /latest/api/token`, `GET
 *   /latest/meta-data/iam/security-credentials/<role>` with `X-aws-ec2-metadata-token`), and the
 *   `credential_process` output format (AWS CLI "Sourcing credentials with an external process").
 *   Tests point the SDK here with `AWS_ENDPOINT_URL` and `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
 *
 * The codec here is written separately from transports/ssm/client_message.ts on purpose, so a
 * mistake in one is not mirrored by the other. The same holds for SigV4: remote signs with AWS's
 * SDK, the emulator verifies with tests/ssm_sigv4.ts, checked against AWS's published test-suite
 * values.
 *
 * - aws/amazon-ssm-agent at tag 3.0.196.0 `agent/session/plugins/port/port.go` and at HEAD
 *   `port_basic.go` (basic port sessions: raw bytes, the destination dialled at session start and
 *   again after DisconnectToPort, input refused unacknowledged until connected), `port.go`
 *   `GetSession` (smux only for LocalPortForwarding, agents after 3.0.196.0 and clients ≥ 1.1.70).
 * - The AWS-StartSSHSession document (AWS Systems Manager User Guide, "Allow and control permissions for SSH
 *   connections through Session Manager"): session type Port, properties `portNumber` only (default 22), so the
 *   session is basic, to the instance's own port; the plugin's `standardstreamforwarding.go` streams it over stdio.
 *
 * - KMS: the API Reference's GenerateDataKey and Decrypt (JSON 1.1, `TrentService.*`), and the KMS handshake
 *   as the agent does it (aws/amazon-ssm-agent `agent/session/datachannel/datachannel.go` `PerformHandshake`,
 *   `finalizeKMSEncryption`, `sendEncryptionChallenge`, `agent/session/crypto/blockcipher.go`: kms:Decrypt
 *   of the client's blob with `aws:ssm:SessionId`, `aws:ssm:TargetId` and, when the client acknowledges
 *   it, `aws:ssm:RandomChallenge`; the agent's key is the data key's first half; AES-256-GCM with the
 *   nonce in front; Output, StdErr and ExitCode encrypted; "This session is encrypted using AWS KMS.").
 *
 * Fault knobs: drop the socket after N output bytes or instead of acknowledging the Nth input,
 * reorder, duplicate, corrupt digests, bad lengths, unknown message types, never acknowledge, pause
 * publication, KMS or legacy handshakes, a KMS key that does not exist, an agent challenge under another
 * key, the idle timeout; the shell's `flood N` sends large frames out of order, `later MS TEXT` prints
 * while nobody is attached.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID } from "node:crypto";
import type { Channel, OpenContext } from "../plugins/mod.ts";
import { signRequest } from "./ssm_sigv4.ts";

/** The key pair the emulator accepts. */
export const TEST_CREDENTIALS = {
  accessKeyId: "AKIDEMULATOR0000TEST",
  secretAccessKey: "emulator/secret/KEY+0123456789abcdefghij",
} as const;

/** Temporary credentials a `credential_process` in the tests prints; the emulator accepts them. */
export const PROCESS_CREDENTIALS = {
  accessKeyId: "ASIAPROCESS00000TEST",
  secretAccessKey: "process/secret/KEY+0123456789abcdefghij",
  sessionToken: "process-session-token",
} as const;

/** The SSO access token the portal accepts (what `aws sso login` leaves in the cache). */
export const SSO_ACCESS_TOKEN = "emulator-sso-access-token";
/** The web identity token STS accepts. */
export const WEB_IDENTITY_TOKEN = "emulator-web-identity-token";
/** The KMS key the emulator's KMS has (its alias `alias/emulator` too). */
export const EMULATOR_KMS_KEY = "arn:aws:kms:us-east-1:111122223333:key/emulator";

/** The MFA code STS accepts for AssumeRole with a SerialNumber. */
export const MFA_CODE = "123456";

/** The `Authorization` value the container credentials endpoint accepts (AWS_CONTAINER_AUTHORIZATION_TOKEN). */
export const CONTAINER_AUTHORIZATION_TOKEN = "emulator-container-authorization-token";
/** The path of the emulator's container credentials endpoint, as ECS's relative URIs look. */
export const CONTAINER_CREDENTIALS_PATH = "/v2/credentials/emulator-task";

/** An EC2 instance DescribeInstances knows. */
export interface EmulatedInstance {
  id: string;
  /** the Name tag */
  name?: string;
  /** default `running` */
  state?: string;
  privateIp?: string;
}

/** What can go wrong, on purpose. Every `…Every` counts output frames (1 = each one). */
export interface SsmFaults {
  /** close the WebSocket once the agent has sent this many output payload bytes (once) */
  dropAfterBytes?: number;
  /** swap each pair of consecutive output frames */
  reorder?: boolean;
  duplicateEvery?: number;
  /** send the frame with a wrong digest (payload intact), as some agents do */
  corruptDigestEvery?: number;
  /** send a first copy with an inconsistent PayloadLength; the resend is good */
  badLengthEvery?: number;
  /** insert a frame of an unknown MessageType */
  unknownTypeEvery?: number;
  /** never acknowledge client input */
  neverAck?: boolean;
  /** send pause_publication after the handshake, start_publication this many ms later */
  pauseMs?: number;
  /**
   * process the Nth client data message after the handshake (1 = the first), then drop the socket
   * instead of acknowledging it (once): the ack is lost with the connection
   */
  loseInputAck?: number;
}

/** Options of {@linkcode startSsmEmulator}. */
export interface SsmEmulatorOptions {
  faults?: SsmFaults;
  /** names the instance resolves (its /etc/hosts or VPC DNS), for port sessions to another host: name → address */
  hosts?: Readonly<Record<string, string>>;
  /** session tokens (`X-Amz-Security-Token`) that are expired */
  expiredTokens?: readonly string[];
  /** targets that exist but whose agent is offline */
  offlineTargets?: readonly string[];
  /** `modern` (default), `legacy` (no handshake, old agent), `kms` (asks for KMS encryption) */
  handshake?: "modern" | "legacy" | "kms";
  /** the KMSKeyId the agent names in a `kms` handshake (default {@linkcode EMULATOR_KMS_KEY}) */
  kmsKeyId?: string;
  /** the agent encrypts its challenge under a key of its own, not the session's data key */
  kmsChallengeWrongKey?: boolean;
  /**
   * the AgentVersion of the handshake (default 3.3.1142.0). It selects behaviour as the real agent's
   * releases differ: up to 3.0.196.0 port sessions are basic (raw bytes, no smux: `port.go` at tag
   * 3.0.196.0); before 3.2.1041.0 client data already processed is discarded without a new ack
   * (`datachannel.go` `handleStreamDataMessage`, changed by commit b0e8d778)
   */
  agentVersion?: string;
  /** payload bytes per frame of the shell's `flood N` command (default 65536; the real agent sends ≤ 1024) */
  floodFrameBytes?: number;
  /** unacknowledged output frames before the agent waits (default 1000) */
  agentWindow?: number;
  /**
   * client data messages ahead of the expected one the agent keeps (default 100000, `config.go`
   * IncomingMessageBufferCapacity); one more is dropped without an ack
   */
  incomingBufferCapacity?: number;
  /**
   * `front` resends as the agent's ResendStreamDataMessageScheduler does: only the oldest unacknowledged
   * output message, at most one per 100 ms tick, nothing at once on a resume, so N frames lost in a drop
   * take about N × 100 ms to come again. `eager` (default, a shortcut of the emulator's) resends all
   * unacknowledged frames at once on a resume and up to 64 per tick
   */
  agentResend?: "front" | "eager";
  /** the HandshakeComplete's CustomerMessage, shown to the user (default "") */
  customerMessage?: string;
  /** send channel_closed with the 112-byte header (default true) */
  shortChannelClosed?: boolean;
  /** the EC2 instances DescribeInstances knows */
  instances?: readonly EmulatedInstance[];
  /** DescribeInstances is denied (UnauthorizedOperation), as for a role without ec2:DescribeInstances */
  denyDescribeInstances?: boolean;
  /**
   * the Session Manager preference idleSessionTimeout: a session whose client sends nothing for this
   * long is terminated (AWS: 1–60 minutes, default 20), and ResumeSession then returns no token
   */
  idleSessionTimeoutMs?: number;
  /**
   * check the PayloadDigest of every frame from the client and count the wrong ones in `badClientDigests`
   * (default true). The real agent never checks; the bench turns it off so that the emulator spends no more per
   * acknowledgement than the service would, the same for every client
   */
  checkClientDigests?: boolean;
  /** managed nodes DescribeInstanceInformation knows, by Name tag (hybrid `mi-…` nodes) */
  managedNodes?: readonly { id: string; name?: string; computerName?: string; pingStatus?: string }[];
}

/** Counters the tests assert on. */
export interface SsmEmulatorStats {
  calls: Record<string, number>;
  /** the access key ID that signed each call, by operation, in order */
  signers: Record<string, string[]>;
  /** credentials the emulator handed out (STS, SSO, IMDS), by access key ID: which call made them */
  vended: Record<string, string>;
  /** the Target of each StartSession, in order */
  startedTargets: string[];
  /** the document of each StartSession, in order */
  startedDocuments: string[];
  /** the EC2 filters of the last DescribeInstances, `name=value,value` */
  lastEc2Filters: string[];
  signatureFailures: number;
  resumes: number;
  /** input frames the agent received while it had paused publication */
  inputWhilePaused: number;
  inputDuplicates: number;
  /** client data messages already processed, discarded unacknowledged (agents before 3.2.1041.0) */
  inputDiscarded: number;
  /** client data messages ahead of the expected one dropped unacknowledged: the agent's buffer was full */
  inputEarlyDropped: number;
  /** how the port session runs: smux streams or basic (raw bytes on the data channel) */
  portMode?: "mux" | "basic";
  /** connections the basic port session opened to the destination */
  basicDials: number;
  /** each destination a port session connected to, `host:port` as the session named it */
  destinations: string[];
  /** the Sec-WebSocket-Extensions each data channel connection offered ("" for none) */
  dataChannelExtensions: string[];
  /** smux frames with a version other than 1 (the stream of Output payloads was corrupted) */
  smuxProtocolErrors: number;
  /** frames from the client whose PayloadDigest is not the SHA-256 of their payload (see `checkClientDigests`) */
  badClientDigests: number;
  /** frames the agent put on the socket, resends and acks included */
  framesOut: number;
  /** output payload bytes the client acknowledged (each frame once) */
  outputBytesAcked: number;
  /** payload bytes of a `flood` the client acknowledged before the frame that fills its gap: what it buffered */
  floodEarlyAckedBytes: number;
  /** the most resends of one output frame still unacknowledged */
  maxResendAttempts: number;
  lastSize?: { cols: number; rows: number };
  clientVersions: string[];
  handshakeResponses: unknown[];
  /** the encryption context of each KMS GenerateDataKey, in order */
  kmsContexts: Record<string, string>[];
}

/** A running emulator. */
export interface SsmEmulator extends AsyncDisposable {
  /** `http://127.0.0.1:<port>/`, for `--endpoint-url` */
  endpoint: string;
  region: string;
  stats: SsmEmulatorStats;
  close(): Promise<void>;
}

// ---- codec (independent of the client's) --------------------------------------------------------

const te = new TextEncoder();
const td = new TextDecoder();

interface Frame {
  type: string;
  seq: number;
  flags: number;
  id: string;
  payloadType: number;
  payload: Uint8Array;
}

const BYTE_HEX = Array.from({ length: 256 }, (_, v) => v.toString(16).padStart(2, "0"));
const NIBBLE = new Int8Array(128).fill(-1);
for (let v = 0; v < 16; v++) {
  NIBBLE[v.toString(16).charCodeAt(0)] = v;
  NIBBLE[v.toString(16).toUpperCase().charCodeAt(0)] = v;
}

function digestOf(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(b).digest());
}

function frameBytes(f: Frame, opts: { shortHeader?: boolean; badDigest?: boolean; lengthDelta?: number } = {}) {
  const hl = opts.shortHeader ? 112 : 116;
  const out = new Uint8Array(hl + 4 + f.payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, hl);
  for (let i = 0; i < 32; i++) out[4 + i] = 0x20;
  te.encodeInto(f.type, out.subarray(4, 36));
  dv.setUint32(36, 1);
  // 64-bit fields as 32-bit halves, not BigInts: the bench runs this per KiB (all these values are below 2^53)
  const date = Date.now();
  dv.setUint32(40, Math.floor(date / 2 ** 32));
  dv.setUint32(44, date >>> 0);
  dv.setInt32(48, Math.floor(f.seq / 2 ** 32));
  dv.setUint32(52, f.seq >>> 0);
  dv.setUint32(56, Math.floor(f.flags / 2 ** 32));
  dv.setUint32(60, f.flags >>> 0);
  // least-significant half first (plugin `putUuid`); a table of character codes, not parseInt or substrings
  for (let i = 0, n = 0; i < f.id.length && n < 32; i++) {
    const v = NIBBLE[f.id.charCodeAt(i)];
    if (v === undefined || v < 0) continue; // the hyphens
    const at = n < 16 ? 72 + (n >> 1) : 64 + ((n - 16) >> 1);
    out[at] |= n & 1 ? v : v << 4;
    n++;
  }
  const digest = digestOf(f.payload);
  if (opts.badDigest) digest[0] ^= 0xff;
  out.set(digest, 80);
  if (!opts.shortHeader) dv.setUint32(112, f.payloadType);
  dv.setUint32(hl, f.payload.length + (opts.lengthDelta ?? 0));
  out.set(f.payload, hl + 4);
  return out;
}

function parseFrame(b: Uint8Array, checkDigest = true): Frame & { digestOk: boolean } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const hl = dv.getUint32(0);
  if (hl !== 116 || b.length < 120) throw new Error(`agent: bad header length ${hl}`);
  const len = dv.getUint32(116);
  if (len !== b.length - 120) throw new Error("agent: bad payload length");
  const type = td.decode(b.subarray(4, 36)).replace(/[\s\0]+$/, "").replace(/^[\s\0]+/, "");
  let hex = "";
  for (let i = 72; i < 80; i++) hex += BYTE_HEX[b[i]];
  for (let i = 64; i < 72; i++) hex += BYTE_HEX[b[i]];
  const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  const payload = b.slice(120);
  let digestOk = true;
  if (checkDigest) {
    const want = digestOf(payload);
    for (let i = 0; i < 32 && digestOk; i++) digestOk = want[i] === b[80 + i];
  }
  return {
    type,
    seq: Number(dv.getBigInt64(48)),
    flags: Number(dv.getBigUint64(56)),
    id,
    payloadType: dv.getUint32(112),
    payload,
    digestOk,
  };
}

/** `a` compared with `b` as dotted versions (`3.0.196.0`): negative, 0 or positive. */
function versionCompare(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] || 0) - (pb[i] || 0);
    if (d !== 0) return d;
  }
  return 0;
}

// ---- smux v1 server side ----------------------------------------------------------------------

function smuxFrame(cmd: number, sid: number, data = new Uint8Array()): Uint8Array {
  const out = new Uint8Array(8 + data.length);
  out[0] = 1;
  out[1] = cmd;
  out[2] = data.length & 0xff;
  out[3] = data.length >> 8;
  new DataView(out.buffer).setUint32(4, sid, true);
  out.set(data, 8);
  return out;
}

// ---- the agent ----------------------------------------------------------------------------------

interface SessionRecord {
  id: string;
  target: string;
  document: string;
  parameters: Record<string, string[]>;
  token: string;
  terminated: boolean;
  agent?: Agent;
  /** the caller's ARN (DescribeSessions `Owner`) */
  owner: string;
  reason?: string;
  startDate: Date;
  endDate?: Date;
  /** how it ended: TerminateSession, the shell's exit, or the idle timeout (ResumeSession then gives no token) */
  endedBy?: "terminate" | "exit" | "timeout";
  /** a client has opened the data channel at least once */
  everConnected: boolean;
}

/** The documents whose sessions run one command (`sessionType` InteractiveCommands or NonInteractiveCommands). */
const COMMAND_DOCUMENTS: Record<string, { sessionType: string; separateOutputStream: boolean }> = {
  "AWS-StartNonInteractiveCommand": { sessionType: "NonInteractiveCommands", separateOutputStream: false },
  "AWS-StartInteractiveCommand": { sessionType: "InteractiveCommands", separateOutputStream: false },
  // a customer's document as AWS's "Session document schema" describes it, with separateOutputStream set
  "Emulator-SeparateOutputCommand": { sessionType: "NonInteractiveCommands", separateOutputStream: true },
};

const PT = {
  output: 1,
  size: 3,
  hsReq: 5,
  hsResp: 6,
  hsDone: 7,
  encChallengeReq: 8,
  encChallengeResp: 9,
  flag: 10,
  stdErr: 11,
  exitCode: 12,
} as const;

/** AES-256-GCM as the agent and the plugin use it: nonce ‖ ciphertext ‖ tag, with optional associated data. */
function seal(key: Uint8Array, plain: Uint8Array, aad?: Uint8Array): Uint8Array {
  const nonce = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, nonce);
  if (aad) c.setAAD(aad);
  return new Uint8Array(Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]));
}

function open(key: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array {
  const d = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, 12));
  if (aad) d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return new Uint8Array(Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]));
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
const unb64 = (t: string) => new Uint8Array(Buffer.from(t, "base64"));

/**
 * The emulator's KMS: one symmetric key; a data key's CiphertextBlob is the key's ID and the data key
 * sealed under a master secret with the encryption context as associated data, so Decrypt with another
 * context fails (InvalidCiphertextException), as KMS's does.
 */
class KmsStore {
  #master = randomBytes(32);
  readonly keys = new Map([[EMULATOR_KMS_KEY, EMULATOR_KMS_KEY], ["alias/emulator", EMULATOR_KMS_KEY]]);
  /** the encryption context of each GenerateDataKey, in order */
  readonly contexts: Record<string, string>[] = [];

  #aad(keyArn: string, context: Record<string, string>): Uint8Array {
    const sorted = Object.keys(context).sort().map((k) => [k, context[k]]);
    return te.encode(keyArn + JSON.stringify(sorted));
  }

  generate(
    keyId: string,
    bytes: number,
    context: Record<string, string>,
  ): { arn: string; blob: Uint8Array; plain: Uint8Array } {
    const arn = this.keys.get(keyId);
    if (!arn) throw Object.assign(new Error(`Key '${keyId}' does not exist`), { type: "NotFoundException" });
    this.contexts.push(context);
    const plain = new Uint8Array(randomBytes(bytes));
    const head = te.encode(arn);
    const sealed = seal(this.#master, plain, this.#aad(arn, context));
    const blob = new Uint8Array(2 + head.length + sealed.length);
    blob.set([head.length >> 8, head.length & 0xff]);
    blob.set(head, 2);
    blob.set(sealed, 2 + head.length);
    return { arn, blob, plain };
  }

  decrypt(blob: Uint8Array, context: Record<string, string>): { arn: string; plain: Uint8Array } {
    const invalid = () =>
      Object.assign(new Error("The ciphertext is invalid for this key and context."), {
        type: "InvalidCiphertextException",
      });
    if (blob.length < 2) throw invalid();
    const n = (blob[0] << 8) | blob[1];
    const arn = td.decode(blob.subarray(2, 2 + n));
    try {
      return { arn, plain: open(this.#master, blob.subarray(2 + n), this.#aad(arn, context)) };
    } catch {
      throw invalid();
    }
  }
}

class Agent {
  #rec: SessionRecord;
  #opts: SsmEmulatorOptions;
  #stats: SsmEmulatorStats;
  #ws?: WebSocket;
  #outSeq = 0;
  #unacked = new Map<number, { frame: Frame; sentAt: number; attempts: number }>();
  #floodGap?: { seq: number; last: number };
  #windowWaiters: (() => void)[] = [];
  #expected = 0;
  #early = new Map<number, Frame>();
  #ready = false;
  #paused = false;
  #closed = false;
  #bytesOut = 0;
  #dropped = false;
  #frameCount = 0;
  #held?: Uint8Array;
  #timer: ReturnType<typeof setInterval>;
  #line = "";
  #size = { cols: 80, rows: 24 };
  // port sessions
  #smuxChunks: Uint8Array[] = [];
  #smuxLength = 0;
  #smuxNeed = 8;
  #streams = new Map<number, { conn?: Deno.TcpConn; chain: Promise<void>; closed: boolean }>();
  #outChain: Promise<void> = Promise.resolve();
  #closeTimer?: ReturnType<typeof setTimeout>;
  // basic port sessions (`port.go` before smux): one destination connection, raw bytes
  #basic = false;
  #basicConn?: Deno.TcpConn;
  #basicReconnect = false;
  #basicChain: Promise<void> = Promise.resolve();
  #clientVersion = "";
  /** pending while no client is connected: output waits (the shell blocks) */
  #away?: PromiseWithResolvers<void>;
  #inputCount = 0;
  #ackLost = false;
  #closingWs?: WebSocket;

  #kms: KmsStore;
  // a KMS-encrypted session: the agent's encryption key is the data key's first half, the client's its second
  #agentKey?: Uint8Array;
  #clientKey?: Uint8Array;
  #challenge?: Uint8Array;

  constructor(rec: SessionRecord, opts: SsmEmulatorOptions, stats: SsmEmulatorStats, kms: KmsStore) {
    this.#rec = rec;
    this.#opts = opts;
    this.#stats = stats;
    this.#kms = kms;
    this.#timer = setInterval(() => this.#resend(), 100);
  }

  get sessionType(): string {
    if (this.#rec.document.startsWith("AWS-StartPortForwardingSession")) return "Port";
    if (this.#rec.document === "AWS-StartSSHSession") return "Port";
    return COMMAND_DOCUMENTS[this.#rec.document]?.sessionType ?? "Standard_Stream";
  }

  /** a client holds the data channel now */
  get connected(): boolean {
    return this.#ws !== undefined;
  }

  attach(ws: WebSocket): void {
    const first = this.#ws === undefined && this.#outSeq === 0;
    // a second client takes the session over: the service closes the first one's socket
    if (this.#ws && this.#ws !== ws) this.#closeSocket(this.#ws);
    this.#ws = ws;
    this.#touch();
    ws.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) this.#onFrame(new Uint8Array(ev.data));
    };
    ws.onclose = () => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      // the service pauses the agent's publication while no client is connected: the agent stops reading
      // the shell's output (`writePump` checks `IsActive`), so the program blocks; nothing is lost
      this.#away = Promise.withResolvers<void>();
    };
    const away = this.#away;
    this.#away = undefined;
    away?.resolve();
    if (first) this.#begin();
    // after a resume the agent sends nothing again at once: its resend scheduler finds the oldest
    // unacknowledged message at its next tick; by default the emulator shortcuts that (see agentResend)
    else if (this.#opts.agentResend !== "front") {
      for (const [, u] of this.#unacked) {
        this.#rawSend(frameBytes(u.frame));
      }
    }
  }

  // the idle timeout: no data from the client for this long ends the session (the account preference)
  #idleTimer?: ReturnType<typeof setTimeout>;
  #touch(): void {
    const ms = this.#opts.idleSessionTimeoutMs;
    if (ms === undefined || this.#closed) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      this.#rec.endedBy ??= "timeout";
      this.closeChannel("Your session timed out due to inactivity and has been terminated.");
    }, ms);
  }

  #begin(): void {
    const hs = this.#opts.handshake ?? "modern";
    if (hs === "legacy") {
      this.#ready = true;
      this.#startSession();
      return;
    }
    const actions: unknown[] = [{
      ActionType: "SessionType",
      ActionParameters: { SessionType: this.sessionType, Properties: this.#properties() },
    }];
    if (hs === "kms") {
      actions.push({
        ActionType: "KMSEncryption",
        ActionParameters: {
          KMSKeyId: this.#opts.kmsKeyId ?? EMULATOR_KMS_KEY,
          Challenge: this.#randomChallenge,
        },
      });
    }
    void this.#send(
      PT.hsReq,
      te.encode(JSON.stringify({
        AgentVersion: this.#agentVersion,
        RequestedClientActions: actions,
      })),
    );
  }

  // the agent's 16 random bytes for the encryption context (`blockcipher.go` `randomChallengeSize`)
  #randomChallenge = b64(randomBytes(16));

  get #agentVersion(): string {
    return this.#opts.agentVersion ?? "3.3.1142.0";
  }

  #properties(): Record<string, unknown> {
    const command = COMMAND_DOCUMENTS[this.#rec.document];
    if (command) {
      return {
        commands: this.#rec.parameters.command?.[0] ?? "",
        runAsElevated: false,
        ...(command.separateOutputStream ? { separateOutputStream: true } : {}),
      };
    }
    if (this.sessionType !== "Port") return {};
    const p = this.#rec.parameters;
    // AWS-StartSSHSession's properties are its port alone (no type): the plugin streams it over stdio, the agent
    // runs it basic (`port.go` `GetSession`), to the instance's own port (default 22)
    if (this.#rec.document === "AWS-StartSSHSession") return { portNumber: p.portNumber?.[0] ?? "22" };
    // the document's properties with the session's parameters filled in, localPortNumber included
    return {
      portNumber: p.portNumber?.[0] ?? "",
      type: "LocalPortForwarding",
      ...(p.localPortNumber ? { localPortNumber: p.localPortNumber[0] } : {}),
      ...(p.host ? { host: p.host[0] } : {}),
    };
  }

  #startSession(): void {
    if (this.#opts.faults?.pauseMs) {
      this.#paused = true;
      this.#rawSend(
        frameBytes({
          type: "pause_publication",
          seq: 0,
          flags: 0,
          id: randomUUID(),
          payloadType: 0,
          payload: new Uint8Array(),
        }),
      );
      setTimeout(() => {
        this.#paused = false;
        this.#rawSend(
          frameBytes({
            type: "start_publication",
            seq: 0,
            flags: 0,
            id: randomUUID(),
            payloadType: 0,
            payload: new Uint8Array(),
          }),
        );
      }, this.#opts.faults.pauseMs);
    }
    if (this.sessionType === "Standard_Stream") void this.#out("$ ");
    if (COMMAND_DOCUMENTS[this.#rec.document]) this.#runCommand();
    if (this.sessionType === "Port") {
      // smux iff the agent has it (after 3.0.196.0), the session is LocalPortForwarding and the client is
      // 1.1.70 or newer (`port.go` `GetSession`); else basic, which dials the destination at once
      this.#basic = versionCompare(this.#agentVersion, "3.0.196.0") <= 0 ||
        this.#properties().type !== "LocalPortForwarding" || versionCompare(this.#clientVersion, "1.1.70") < 0;
      this.#stats.portMode = this.#basic ? "basic" : "mux";
      if (this.#basic) this.#basicChain = this.#basicDial();
    }
  }

  // -- outgoing

  #rawSend(bytes: Uint8Array): void {
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      this.#stats.framesOut++;
      ws.send(bytes);
    }
  }

  async #send(payloadType: number, payload: Uint8Array): Promise<void> {
    while (this.#unacked.size >= (this.#opts.agentWindow ?? 1000) && !this.#closed) {
      await new Promise<void>((r) => this.#windowWaiters.push(r));
    }
    if (this.#closed) return;
    if (this.#agentKey && (payloadType === PT.output || payloadType === PT.stdErr || payloadType === PT.exitCode)) {
      payload = seal(this.#agentKey, payload);
    }
    const seq = this.#outSeq++;
    const frame: Frame = {
      type: "output_stream_data",
      seq,
      flags: seq === 0 ? 1 : 0,
      id: randomUUID(),
      payloadType,
      payload,
    };
    this.#unacked.set(seq, { frame, sentAt: Date.now(), attempts: 0 });
    this.#transmit(frame);
  }

  #transmit(frame: Frame): void {
    const f = this.#opts.faults ?? {};
    const n = ++this.#frameCount;
    if (f.dropAfterBytes !== undefined && !this.#dropped && this.#bytesOut >= f.dropAfterBytes) {
      this.#dropped = true;
      this.#ws?.close(4000, "emulated drop"); // this frame stays unacked and goes again after the resume
      return;
    }
    if (frame.payloadType === PT.output) this.#bytesOut += frame.payload.length;
    if (f.unknownTypeEvery && n % f.unknownTypeEvery === 0) {
      this.#rawSend(frameBytes({ ...frame, type: "agent_unknown_type", id: randomUUID() }));
    }
    if (f.badLengthEvery && n % f.badLengthEvery === 0) {
      this.#rawSend(frameBytes(frame, { lengthDelta: 7 })); // dropped by the client; the resend is good
      return;
    }
    let bytes: Uint8Array = frameBytes(frame, { badDigest: !!f.corruptDigestEvery && n % f.corruptDigestEvery === 0 });
    if (f.reorder) {
      if (!this.#held) {
        this.#held = bytes;
        setTimeout(() => {
          if (this.#held) this.#rawSend(this.#held);
          this.#held = undefined;
        }, 20);
        return;
      }
      this.#rawSend(bytes);
      bytes = this.#held;
      this.#held = undefined;
    }
    this.#rawSend(bytes);
    if (f.duplicateEvery && n % f.duplicateEvery === 0) this.#rawSend(bytes);
  }

  #resend(): void {
    // `front`, as the agent's ResendStreamDataMessageScheduler: every ResendSleepInterval (100 ms) only the
    // front of its OutgoingMessageBuffer, the oldest unacknowledged message, goes again once its
    // retransmission timeout has passed (the emulator takes the cap, MaxTransmissionTimeout 1 s)
    if (this.#ws === undefined) return; // paused while no client is connected
    const now = Date.now();
    const front = this.#opts.agentResend === "front";
    let budget = front ? 1 : 64;
    for (const [, u] of this.#unacked) {
      if (budget-- <= 0) return;
      if (now - u.sentAt < 1000) {
        if (front) return;
        continue;
      }
      u.sentAt = now;
      u.attempts++;
      this.#stats.maxResendAttempts = Math.max(this.#stats.maxResendAttempts, u.attempts);
      this.#rawSend(frameBytes(u.frame));
    }
  }

  #out(text: string | Uint8Array, payloadType: number = PT.output): Promise<void> {
    const bytes = typeof text === "string" ? te.encode(text) : text;
    const run = async () => {
      for (let at = 0; at < bytes.length; at += 1024) {
        while (this.#away && !this.#closed) await this.#away.promise;
        await this.#send(payloadType, bytes.slice(at, at + 1024));
      }
    };
    this.#outChain = this.#outChain.then(run);
    return this.#outChain;
  }

  // -- incoming

  #onFrame(bytes: Uint8Array): void {
    let f: Frame & { digestOk: boolean };
    try {
      f = parseFrame(bytes, this.#opts.checkClientDigests ?? true);
    } catch {
      return;
    }
    if (!f.digestOk) this.#stats.badClientDigests++;
    if (f.type === "acknowledge") {
      const ack = JSON.parse(td.decode(f.payload));
      const seq = ack.AcknowledgedMessageSequenceNumber;
      const acked = this.#unacked.get(seq);
      if (acked?.frame.payloadType === PT.output) {
        this.#stats.outputBytesAcked += acked.frame.payload.length;
        const gap = this.#floodGap;
        if (gap && seq === gap.seq) this.#floodGap = undefined;
        else if (gap && seq > gap.seq && seq <= gap.last) {
          this.#stats.floodEarlyAckedBytes += acked.frame.payload.length;
        }
      }
      if (this.#unacked.delete(seq)) {
        const w = this.#windowWaiters;
        this.#windowWaiters = [];
        w.forEach((r) => r());
      }
      return;
    }
    if (f.type !== "input_stream_data") return;
    this.#touch();
    if (this.#paused) this.#stats.inputWhilePaused++;
    // not acked: the client resends
    if (!this.#ready && f.payloadType !== PT.hsResp && f.payloadType !== PT.encChallengeResp) return;
    if (this.#ready && this.#opts.faults?.neverAck) return;
    // the port plugin's handler is not ready before its destination connection: ErrHandlerNotReady, no ack
    if (this.#basic && !this.#basicConn && f.payloadType === PT.output) return;
    const ack = () =>
      this.#rawSend(frameBytes({
        type: "acknowledge",
        seq: 0,
        flags: 3,
        id: randomUUID(),
        payloadType: 0,
        payload: te.encode(JSON.stringify({
          AcknowledgedMessageType: f.type,
          AcknowledgedMessageId: f.id,
          AcknowledgedMessageSequenceNumber: f.seq,
          IsSequentialMessage: true,
        })),
      }));
    const capacity = this.#opts.incomingBufferCapacity ?? 100000;
    if (f.seq < this.#expected || (this.#early.has(f.seq) && this.#early.size < capacity)) {
      this.#stats.inputDuplicates++;
      if (f.seq < this.#expected && versionCompare(this.#agentVersion, "3.2.1041.0") < 0) {
        this.#stats.inputDiscarded++; // "Discarding already processed message", no ack
        return;
      }
      ack();
      return;
    }
    const lose = this.#ready && f.seq === this.#expected && f.payloadType !== PT.hsResp &&
      f.payloadType !== PT.encChallengeResp &&
      ++this.#inputCount === this.#opts.faults?.loseInputAck && !this.#ackLost;
    if (lose) {
      this.#ackLost = true;
      this.#process(f);
      this.#expected++;
      this.#ws?.close(4000, "emulated drop before the ack");
      return;
    }
    if (f.seq > this.#expected && this.#early.size >= capacity) {
      this.#stats.inputEarlyDropped++; // the IncomingMessageBuffer is full: neither kept nor acknowledged
      return;
    }
    ack();
    if (f.seq > this.#expected) {
      this.#early.set(f.seq, f);
      return;
    }
    this.#process(f);
    this.#expected++;
    for (let next = this.#early.get(this.#expected); next; next = this.#early.get(this.#expected)) {
      this.#early.delete(this.#expected);
      this.#process(next);
      this.#expected++;
    }
  }

  #process(f: Frame): void {
    switch (f.payloadType) {
      case PT.hsResp: {
        const body = JSON.parse(td.decode(f.payload));
        this.#stats.handshakeResponses.push(body);
        this.#stats.clientVersions.push(body.ClientVersion);
        this.#clientVersion = String(body.ClientVersion ?? "");
        const actions = (body.ProcessedClientActions ?? []) as {
          ActionType: string;
          ActionStatus: number;
          ActionResult?: { KMSCipherTextKey?: string; ChallengeAcknowledgement?: boolean };
          Error?: string;
        }[];
        const failed = actions.find((a) => a.ActionStatus !== 1);
        if (failed) {
          void this.closeChannel(
            `${failed.ActionType} failed on client with status ${failed.ActionStatus} error: ${failed.Error}`,
          );
          return;
        }
        if ((this.#opts.handshake ?? "modern") === "kms") {
          // `finalizeKMSEncryption`: kms:Decrypt of the client's blob with the session's context, then the challenge
          const result = actions.find((a) => a.ActionType === "KMSEncryption")?.ActionResult;
          try {
            const context: Record<string, string> = {
              "aws:ssm:SessionId": this.#rec.id,
              "aws:ssm:TargetId": this.#rec.target,
              ...(result?.ChallengeAcknowledgement ? { "aws:ssm:RandomChallenge": this.#randomChallenge } : {}),
            };
            const { plain } = this.#kms.decrypt(unb64(result?.KMSCipherTextKey ?? ""), context);
            this.#agentKey = plain.slice(0, 32);
            this.#clientKey = plain.slice(32, 64);
          } catch (error) {
            void this.closeChannel(`Fetching data key failed: ${(error as Error).message}`);
            return;
          }
          this.#challenge = new Uint8Array(randomBytes(64));
          const key = this.#opts.kmsChallengeWrongKey ? new Uint8Array(randomBytes(32)) : this.#agentKey;
          void this.#send(
            PT.encChallengeReq,
            te.encode(JSON.stringify({ Challenge: b64(seal(key, this.#challenge)) })),
          );
          return;
        }
        this.#completeHandshake();
        return;
      }
      case PT.encChallengeResp: {
        let ok = false;
        try {
          const body = JSON.parse(td.decode(f.payload));
          const back = open(this.#clientKey!, unb64(String(body.Challenge)));
          ok = this.#challenge !== undefined && Buffer.compare(back, this.#challenge) === 0;
        } catch { /* not decryptable: does not match */ }
        if (!ok) {
          void this.closeChannel("Encryption challenge does not match!");
          return;
        }
        this.#completeHandshake("This session is encrypted using AWS KMS.");
        return;
      }
      case PT.size: {
        const s = JSON.parse(td.decode(f.payload));
        this.#size = { cols: s.cols, rows: s.rows };
        this.#stats.lastSize = this.#size;
        return;
      }
      case PT.flag: {
        const v = new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0);
        if (v === 2) void this.closeChannel(""); // TerminateSession flag
        if (v === 1 && this.#basic) {
          // DisconnectToPort: close the destination connection; the next data from the client dials again
          this.#basicChain = this.#basicChain.then(() => this.#basicClose());
        }
        return;
      }
      case PT.output:
        if (this.#clientKey) {
          try {
            f = { ...f, payload: open(this.#clientKey, f.payload) };
          } catch {
            void this.closeChannel("Error decrypting stream data message");
            return;
          }
        }
        if (this.#basic) this.#basicIn(f.payload);
        else if (this.sessionType === "Port") this.#smuxIn(f.payload);
        else if (COMMAND_DOCUMENTS[this.#rec.document]) this.#commandIn(f.payload);
        else this.#shellIn(f.payload);
    }
  }

  #completeHandshake(customerMessage = ""): void {
    void this.#send(
      PT.hsDone,
      te.encode(JSON.stringify({
        HandshakeTimeToComplete: 1000000,
        CustomerMessage: this.#opts.customerMessage ?? customerMessage,
      })),
    );
    this.#ready = true;
    this.#startSession();
  }

  // -- the scripted shell

  #shellIn(bytes: Uint8Array): void {
    for (const b of bytes) {
      if (b === 0x03) {
        this.#line = "";
        void this.#out("^C\r\n$ ");
      } else if (b === 0x0d || b === 0x0a) {
        const line = this.#line;
        this.#line = "";
        void this.#out("\r\n");
        this.#run(line.trim());
      } else if (b === 0x7f) {
        if (this.#line) {
          this.#line = this.#line.slice(0, -1);
          void this.#out("\b \b");
        }
      } else {
        this.#line += String.fromCharCode(b);
        void this.#out(new Uint8Array([b])); // the pty echoes
      }
    }
  }

  #run(line: string): void {
    const [cmd, ...args] = line.split(/\s+/);
    if (cmd === "") return void this.#out("$ ");
    if (cmd === "echo") return void this.#out(args.join(" ") + "\r\n$ ");
    if (cmd === "later") {
      // `later MS TEXT`: prints TEXT on a line of its own MS milliseconds from now, as a background job would
      setTimeout(() => void this.#out(args.slice(1).join(" ") + "\r\n"), Number(args[0] ?? 0));
      return void this.#out("$ ");
    }
    if (cmd === "stty" && args[0] === "size") return void this.#out(`${this.#size.rows} ${this.#size.cols}\r\n$ `);
    if (cmd === "flood") {
      // `flood N`: N bytes as `blob` prints them, in large frames, the first one held back until all the
      // others are on the socket: the client must buffer them out of order (or refuse some), then catch up
      const bytes = blobBytes(Number(args[0] ?? 0));
      this.#outChain = this.#outChain.then(() => this.#sendGapped(bytes)).then(() =>
        this.#send(PT.output, te.encode("$ "))
      );
      return;
    }
    if (cmd === "blob") {
      // `blob N`: N deterministic bytes, then the prompt
      void this.#out(blobBytes(Number(args[0] ?? 0))).then(() => this.#out("$ "));
      return;
    }
    if (cmd === "exit") {
      // the shell's last output is delivered (acknowledged) before the channel closes
      void this.#outChain.then(() => this.#drained()).then(() => {
        this.#rec.endedBy ??= "exit";
        this.closeChannel("");
      });
      return;
    }
    void this.#out(`sh: ${cmd}: command not found\r\n$ `);
  }

  // -- one command (NonInteractiveCommands, InteractiveCommands), as the agent's shell plugin runs it

  #stdinLines: string[] = [];
  #stdinPartial = "";
  #stdinWaiter?: () => void;

  #commandIn(bytes: Uint8Array): void {
    this.#stdinPartial += td.decode(bytes);
    const lines = this.#stdinPartial.split(/\r?\n|\r/);
    this.#stdinPartial = lines.pop() ?? "";
    this.#stdinLines.push(...lines);
    this.#stdinWaiter?.();
  }

  async #readLine(): Promise<string> {
    while (this.#stdinLines.length === 0 && !this.#closed) {
      await new Promise<void>((r) => this.#stdinWaiter = r);
    }
    return this.#stdinLines.shift() ?? "";
  }

  /**
   * Runs `commands`: `;`-separated steps `echo TEXT` (stdout), `warn TEXT` (stderr), `readline` (a line
   * of stdin, printed as `got: …`), `size` (the terminal's rows and columns), `cat` (stdin back, until the session ends: the data channel has no
   * end of input), `blob N` (as the shell's), `sleep N` (seconds), `exit N`. Without separateOutputStream stderr goes as Output and no
   * exit code is sent (`processCommandsWithExec`); with it, StdErr payloads and `EXIT_CODE: n`
   * (`processCommandsWithOutputStreamSeparate`, `sendExitCode`). Then the channel closes.
   */
  #runCommand(): void {
    const doc = COMMAND_DOCUMENTS[this.#rec.document];
    const steps = String(this.#properties().commands ?? "").split(";").map((s) => s.trim()).filter((s) => s);
    const err = doc.separateOutputStream ? PT.stdErr : PT.output;
    void (async () => {
      let code = 0;
      for (const step of steps) {
        const [cmd, ...args] = step.split(/\s+/);
        if (cmd === "echo") await this.#out(args.join(" ") + "\n");
        else if (cmd === "warn") await this.#out(args.join(" ") + "\n", err);
        else if (cmd === "readline") await this.#out(`got: ${await this.#readLine()}\n`);
        else if (cmd === "blob") await this.#out(blobBytes(Number(args[0] ?? 0)));
        else if (cmd === "size") await this.#out(`${this.#size.rows} ${this.#size.cols}\n`);
        else if (cmd === "sleep") await new Promise((r) => setTimeout(r, Number(args[0] ?? 0) * 1000));
        else if (cmd === "cat") {
          while (!this.#closed) await this.#out(`${await this.#readLine()}\n`);
        } else if (cmd === "exit") {
          code = Number(args[0] ?? 0);
          break;
        } else {
          await this.#out(`sh: ${cmd}: command not found\n`, err);
          code = 127;
          break;
        }
      }
      if (doc.separateOutputStream) await this.#out(`EXIT_CODE: ${code}`, PT.exitCode);
      await this.#drained();
      this.#rec.endedBy ??= "exit";
      this.closeChannel("");
    })();
  }

  async #sendGapped(bytes: Uint8Array): Promise<void> {
    const size = this.#opts.floodFrameBytes ?? 65536;
    let gap: Frame | undefined;
    const sendGap = () => {
      if (gap) this.#rawSend(frameBytes(gap));
      gap = undefined;
    };
    for (let at = 0; at < bytes.length; at += size) {
      while (this.#unacked.size >= (this.#opts.agentWindow ?? 1000) && !this.#closed) {
        sendGap(); // a full window must not wait for the frame held back
        await new Promise<void>((r) => this.#windowWaiters.push(r));
      }
      if (this.#closed) return;
      const seq = this.#outSeq++;
      const frame: Frame = {
        type: "output_stream_data",
        seq,
        flags: 0,
        id: randomUUID(),
        payloadType: PT.output,
        payload: bytes.slice(at, at + size),
      };
      this.#unacked.set(seq, { frame, sentAt: Date.now(), attempts: 0 });
      if (at === 0) {
        gap = frame;
        this.#floodGap = { seq, last: seq };
        continue;
      }
      if (this.#floodGap) this.#floodGap.last = seq;
      this.#rawSend(frameBytes(frame));
    }
    sendGap();
  }

  async #drained(): Promise<void> {
    for (let waited = 0; this.#unacked.size > 0 && !this.#closed && waited < 10_000; waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  // -- the basic port session: raw bytes to one destination connection (`port_basic.go`)

  async #basicDial(): Promise<void> {
    const host = this.#rec.parameters.host?.[0] ?? "127.0.0.1";
    const port = Number(this.#rec.parameters.portNumber?.[0] ?? "22");
    try {
      const conn = await Deno.connect({ hostname: this.#opts.hosts?.[host] ?? host, port });
      this.#stats.destinations.push(`${host}:${port}`);
      if (this.#closed) return conn.close();
      this.#stats.basicDials++;
      this.#basicConn = conn;
      this.#basicReconnect = false;
      void this.#basicPump(conn);
    } catch (error) {
      // the plugin's execute() ends the session with the error as its output
      this.closeChannel(`Unable to connect to specified port: ${(error as Error).message}`);
    }
  }

  #basicIn(payload: Uint8Array): void {
    this.#basicChain = this.#basicChain.then(async () => {
      if (this.#basicReconnect) await this.#basicDial();
      const conn = this.#basicConn;
      if (!conn || this.#closed) return;
      let off = 0;
      while (off < payload.length) off += await conn.write(payload.subarray(off));
    }).catch(() => {});
  }

  #basicClose(): void {
    try {
      this.#basicConn?.close();
    } catch { /* closed by the read error already */ }
    this.#basicReconnect = true;
  }

  async #basicPump(conn: Deno.TcpConn): Promise<void> {
    const buf = new Uint8Array(1024);
    try {
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) await this.#out(buf.slice(0, n));
    } catch { /* closed on DisconnectToPort */ }
    // an SSH session (no type) ends with its connection (`port_basic.go` reconnects for LocalPortForwarding only)
    if (this.#basicConn === conn && this.#properties().type !== "LocalPortForwarding") {
      return void this.#outChain.then(() => this.#drained()).then(() => this.closeChannel(""));
    }
    // LocalPortForwarding: close and wait for the client's next data to dial again; the client is not told
    if (this.#basicConn === conn) this.#basicClose();
  }

  // -- the port session: smux v1 server, one TCP connection per stream

  #smuxIn(bytes: Uint8Array): void {
    // queued until a whole frame is there, then joined once: re-joining on every 1 KiB payload of a
    // 32 KiB frame would make this peer the bottleneck of the throughput benchmark
    this.#smuxChunks.push(bytes);
    this.#smuxLength += bytes.length;
    if (this.#smuxLength < this.#smuxNeed) return;
    const joined = new Uint8Array(this.#smuxLength);
    let off = 0;
    for (const c of this.#smuxChunks) {
      joined.set(c, off);
      off += c.length;
    }
    let at = 0;
    this.#smuxNeed = 8;
    while (joined.length - at >= 8) {
      if (joined[at] !== 1) {
        // xtaci/smux `recvLoop`: a bad version is ErrInvalidProtocol and ends the smux session; the agent's
        // port session ends with it (`port_mux.go`)
        this.#stats.smuxProtocolErrors++;
        this.#smuxChunks = [];
        this.#smuxLength = 0;
        this.closeChannel("smux: invalid protocol");
        return;
      }
      const len = joined[at + 2] | (joined[at + 3] << 8);
      if (joined.length - at < 8 + len) {
        this.#smuxNeed = 8 + len;
        break;
      }
      const cmd = joined[at + 1];
      const sid = new DataView(joined.buffer, at + 4, 4).getUint32(0, true);
      const data = joined.slice(at + 8, at + 8 + len);
      at += 8 + len;
      this.#smuxFrame(cmd, sid, data);
    }
    const left = joined.subarray(at);
    this.#smuxChunks = left.length > 0 ? [left] : [];
    this.#smuxLength = left.length;
  }

  #smuxFrame(cmd: number, sid: number, data: Uint8Array): void {
    if (cmd === 0) {
      const stream = { conn: undefined as Deno.TcpConn | undefined, chain: Promise.resolve(), closed: false };
      this.#streams.set(sid, stream);
      const host = this.#rec.parameters.host?.[0] ?? "127.0.0.1";
      const port = Number(this.#rec.parameters.portNumber?.[0]);
      stream.chain = Deno.connect({ hostname: this.#opts.hosts?.[host] ?? host, port }).then(
        (conn) => {
          this.#stats.destinations.push(`${host}:${port}`);
          stream.conn = conn;
          if (stream.closed) return conn.close();
          void this.#pumpDestination(sid, conn);
        },
        () => {
          const flag = new Uint8Array(4);
          new DataView(flag.buffer).setUint32(0, 3); // ConnectToPortError
          void this.#send(PT.flag, flag);
          this.#streams.delete(sid);
          void this.#out(smuxFrame(1, sid));
        },
      );
    } else if (cmd === 2) {
      const s = this.#streams.get(sid);
      if (!s) return;
      s.chain = s.chain.then(async () => {
        if (!s.conn || s.closed) return;
        let off = 0;
        while (off < data.length) off += await s.conn.write(data.subarray(off));
      }).catch(() => {});
    } else if (cmd === 1) {
      const s = this.#streams.get(sid);
      if (!s) return;
      this.#streams.delete(sid);
      s.chain = s.chain.then(() => {
        s.closed = true;
        try {
          s.conn?.close();
        } catch { /* closed */ }
      });
    }
  }

  async #pumpDestination(sid: number, conn: Deno.TcpConn): Promise<void> {
    const buf = new Uint8Array(32768);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        await this.#out(smuxFrame(2, sid, buf.slice(0, n)));
      }
    } catch { /* closed by FIN */ }
    if (this.#streams.delete(sid)) {
      await this.#out(smuxFrame(1, sid));
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }

  closeChannel(output: string): void {
    if (this.#closed) return;
    const payload = te.encode(JSON.stringify({
      MessageId: randomUUID(),
      CreatedDate: new Date().toISOString(),
      DestinationId: "",
      SessionId: this.#rec.id,
      MessageType: "channel_closed",
      SchemaVersion: 1,
      Output: output,
    }));
    const short = this.#opts.shortChannelClosed ?? true;
    this.#rawSend(
      frameBytes({ type: "channel_closed", seq: 0, flags: 0, id: randomUUID(), payloadType: 0, payload }, {
        shortHeader: short,
      }),
    );
    // Deno's server WebSocket can drop a frame sent just before close() while the client floods it
    // (the client then sees 1006 and no channel_closed); the service flushes, so close a little later
    this.shutdown(100);
  }

  shutdown(graceMs = 0): void {
    if (this.#closeTimer !== undefined) {
      clearTimeout(this.#closeTimer);
      this.#closeTimer = undefined;
      this.#closeSocket(this.#closingWs);
      return;
    }
    this.#closed = true;
    this.#rec.terminated = true;
    this.#rec.endDate ??= new Date();
    clearInterval(this.#timer);
    clearTimeout(this.#idleTimer);
    this.#away?.resolve();
    this.#stdinWaiter?.();
    this.#windowWaiters.forEach((r) => r());
    for (const s of this.#streams.values()) {
      s.closed = true;
      try {
        s.conn?.close();
      } catch { /* closed */ }
    }
    this.#streams.clear();
    try {
      this.#basicConn?.close();
    } catch { /* closed */ }
    const ws = this.#ws;
    this.#ws = undefined;
    if (graceMs > 0 && ws) {
      this.#closingWs = ws;
      this.#closeTimer = setTimeout(() => {
        this.#closeTimer = undefined;
        this.#closeSocket(ws);
      }, graceMs);
      return;
    }
    this.#closeSocket(ws);
  }

  #closeSocket(ws: WebSocket | undefined): void {
    try {
      ws?.close(1000);
    } catch { /* closed */ }
  }
}

/** The bytes `blob N` prints: a fixed pseudo-random sequence, so two runs compare byte for byte. */
export function blobBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 0x12345678;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = 0x21 + ((x >>> 0) % 90); // printable, so no terminal control bytes
  }
  return out;
}

// ---- the control plane --------------------------------------------------------------------------

function awsError(status: number, type: string, message: string): Response {
  return new Response(JSON.stringify({ __type: `com.amazonaws.ssm#${type}`, message }), {
    status,
    headers: { "content-type": "application/x-amz-json-1.1", "x-amzn-errortype": `${type}:` },
  });
}

interface KeyRecord {
  secret: string;
  token?: string;
}

function xmlError(status: number, code: string, message: string): Response {
  return new Response(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${
      xmlText(message)
    }</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`,
    { status, headers: { "content-type": "text/xml" } },
  );
}

/** STS's error shape (`ErrorResponse`), as the query protocol's services other than EC2 send it. */
function stsError(status: number, code: string, message: string): Response {
  return new Response(
    `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code>` +
      `<Message>${xmlText(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
    { status, headers: { "content-type": "text/xml" } },
  );
}

function xmlText(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

type Reject = (status: number, type: string, message: string) => Response;

/** Verifies a request's SigV4 signature for `service`; returns the signing key ID, or the error to send. */
function verify(
  req: Request,
  body: string,
  options: SsmEmulatorOptions,
  region: string,
  service: string,
  keys: Map<string, KeyRecord>,
  reject: Reject,
): Response | string {
  const auth = req.headers.get("authorization") ?? "";
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/
      .exec(auth);
  if (!m) return reject(400, "IncompleteSignatureException", "Authorization header is missing or malformed");
  const [, akid, , reqRegion, reqService, signedHeaders, signature] = m;
  const key = keys.get(akid);
  if (!key) {
    return reject(400, "UnrecognizedClientException", "The security token included in the request is invalid.");
  }
  const token = req.headers.get("x-amz-security-token") ?? undefined;
  if (token && options.expiredTokens?.includes(token)) {
    return reject(400, "ExpiredTokenException", "The security token included in the request is expired");
  }
  if (key.token !== undefined && token !== key.token) {
    return reject(400, "UnrecognizedClientException", "The security token included in the request is invalid.");
  }
  const stamp = req.headers.get("x-amz-date") ?? "";
  const d = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp);
  if (!d || reqService !== service || reqRegion !== region) {
    return reject(400, "InvalidSignatureException", "Credential should be scoped to a valid region and service");
  }
  const date = new Date(Date.UTC(+d[1], +d[2] - 1, +d[3], +d[4], +d[5], +d[6]));
  const names = signedHeaders.split(";");
  if (!names.includes("host") || !names.includes("x-amz-date")) {
    return reject(400, "InvalidSignatureException", "host and x-amz-date must be signed");
  }
  if (service === "ssm" && !names.includes("x-amz-target")) {
    return reject(400, "InvalidSignatureException", "x-amz-target must be signed");
  }
  const headers: Record<string, string> = {};
  for (const n of names) {
    if (n === "host" || n === "x-amz-date" || n === "x-amz-security-token") continue;
    headers[n] = req.headers.get(n) ?? "";
  }
  const url = new URL(req.url);
  const expected = signRequest({
    method: req.method,
    url: new URL(`${url.protocol}//${req.headers.get("host")}${url.pathname}${url.search}`),
    headers,
    body,
    region,
    service,
    credentials: { accessKeyId: akid, secretAccessKey: key.secret, sessionToken: token },
    date,
  });
  if (expected.signature !== signature || expected.signedHeaders !== signedHeaders) {
    return reject(
      400,
      "InvalidSignatureException",
      "The request signature we calculated does not match the signature you provided.",
    );
  }
  return akid;
}

/**
 * Starts the emulator on 127.0.0.1 with an ephemeral port.
 *
 * @example
 * ```ts ignore
 * await using emu = await startSsmEmulator();
 * // remote enter --target i-0123456789abcdef0 --endpoint-url emu.endpoint --region emu.region
 * ```
 */
export function startSsmEmulator(options: SsmEmulatorOptions = {}): Promise<SsmEmulator> {
  const region = "us-east-1";
  const sessions = new Map<string, SessionRecord>();
  const sockets = new Set<WebSocket>();
  const keys = new Map<string, KeyRecord>([
    [TEST_CREDENTIALS.accessKeyId, { secret: TEST_CREDENTIALS.secretAccessKey }],
    [PROCESS_CREDENTIALS.accessKeyId, {
      secret: PROCESS_CREDENTIALS.secretAccessKey,
      token: PROCESS_CREDENTIALS.sessionToken,
    }],
  ]);
  const imdsTokens = new Set<string>();
  const stats: SsmEmulatorStats = {
    calls: {},
    signers: {},
    vended: {},
    lastEc2Filters: [],
    startedTargets: [],
    startedDocuments: [],
    signatureFailures: 0,
    resumes: 0,
    inputWhilePaused: 0,
    inputDuplicates: 0,
    inputDiscarded: 0,
    inputEarlyDropped: 0,
    basicDials: 0,
    destinations: [],
    dataChannelExtensions: [],
    smuxProtocolErrors: 0,
    badClientDigests: 0,
    framesOut: 0,
    outputBytesAcked: 0,
    floodEarlyAckedBytes: 0,
    maxResendAttempts: 0,
    clientVersions: [],
    handshakeResponses: [],
    kmsContexts: [],
  };
  const kmsStore = new KmsStore();
  stats.kmsContexts = kmsStore.contexts;
  const { promise: listening, resolve: onListen } = Promise.withResolvers<number>();

  const json = (value: unknown) =>
    new Response(JSON.stringify(value), { headers: { "content-type": "application/x-amz-json-1.1" } });

  const count = (op: string, signer?: string) => {
    stats.calls[op] = (stats.calls[op] ?? 0) + 1;
    if (signer) (stats.signers[op] ??= []).push(signer);
  };
  /** New temporary credentials, accepted from now on. */
  const vend = (by: string) => {
    const accessKeyId = `ASIA${randomUUID().replaceAll("-", "").slice(0, 16).toUpperCase()}`;
    const creds = { accessKeyId, secretAccessKey: randomUUID() + randomUUID(), sessionToken: randomUUID() };
    keys.set(accessKeyId, { secret: creds.secretAccessKey, token: creds.sessionToken });
    stats.vended[accessKeyId] = by;
    return { ...creds, expiration: new Date(Date.now() + 3600_000) };
  };

  // IAM Identity Center portal: GetRoleCredentials with the cached access token
  const sso = (req: Request, url: URL): Response => {
    count("GetRoleCredentials");
    const bearer = req.headers.get("x-amz-sso_bearer_token");
    if (req.method !== "GET" || bearer !== SSO_ACCESS_TOKEN) {
      return new Response(JSON.stringify({ message: "Session token not found or invalid" }), {
        status: 401,
        headers: { "content-type": "application/json", "x-amzn-errortype": "UnauthorizedException" },
      });
    }
    const c = vend(`sso:${url.searchParams.get("account_id")}:${url.searchParams.get("role_name")}`);
    return new Response(
      JSON.stringify({
        roleCredentials: {
          accessKeyId: c.accessKeyId,
          secretAccessKey: c.secretAccessKey,
          sessionToken: c.sessionToken,
          expiration: c.expiration.getTime(),
        },
      }),
      { headers: { "content-type": "application/json" } },
    );
  };

  // IMDSv2: a session token first, then the role's credentials with it
  const imds = (req: Request, url: URL): Response => {
    count(`IMDS ${req.method} ${url.pathname}`);
    if (req.method === "PUT" && url.pathname === "/latest/api/token") {
      if (!req.headers.get("x-aws-ec2-metadata-token-ttl-seconds")) return new Response("", { status: 400 });
      const token = randomUUID();
      imdsTokens.add(token);
      return new Response(token);
    }
    if (!imdsTokens.has(req.headers.get("x-aws-ec2-metadata-token") ?? "")) return new Response("", { status: 401 });
    const base = "/latest/meta-data/iam/security-credentials/";
    if (url.pathname === base) return new Response("emulator-role");
    if (url.pathname === `${base}emulator-role`) {
      const c = vend("imds:emulator-role");
      return new Response(JSON.stringify({
        Code: "Success",
        LastUpdated: new Date().toISOString(),
        Type: "AWS-HMAC",
        AccessKeyId: c.accessKeyId,
        SecretAccessKey: c.secretAccessKey,
        Token: c.sessionToken,
        Expiration: c.expiration.toISOString().replace(/\.\d{3}/, ""),
      }));
    }
    return new Response("", { status: 404 });
  };

  // the ECS/EKS container credentials endpoint: GET with the Authorization header, keys as JSON
  const container = (req: Request): Response => {
    count("ContainerCredentials");
    if (req.method !== "GET") return new Response("", { status: 405 });
    if (req.headers.get("authorization") !== CONTAINER_AUTHORIZATION_TOKEN) {
      return new Response(JSON.stringify({ Code: "AccessDenied", Message: "bad authorization token" }), {
        status: 403,
        headers: { "content-type": "application/json" },
      });
    }
    const c = vend("container:emulator-task");
    return new Response(
      JSON.stringify({
        RoleArn: "arn:aws:iam::111122223333:role/emulator-task",
        AccessKeyId: c.accessKeyId,
        SecretAccessKey: c.secretAccessKey,
        Token: c.sessionToken,
        Expiration: c.expiration.toISOString().replace(/\.\d{3}/, ""),
      }),
      { headers: { "content-type": "application/json" } },
    );
  };

  const stsCredentials = (action: string, c: ReturnType<typeof vend>, role: string) =>
    new Response(
      `<${action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><${action}Result><Credentials>` +
        `<AccessKeyId>${c.accessKeyId}</AccessKeyId><SecretAccessKey>${c.secretAccessKey}</SecretAccessKey>` +
        `<SessionToken>${c.sessionToken}</SessionToken><Expiration>${c.expiration.toISOString()}</Expiration>` +
        `</Credentials><AssumedRoleUser><Arn>${xmlText(role)}/remote</Arn><AssumedRoleId>AROAEMULATOR:remote` +
        `</AssumedRoleId></AssumedRoleUser></${action}Result><ResponseMetadata><RequestId>${randomUUID()}` +
        `</RequestId></ResponseMetadata></${action}Response>`,
      { headers: { "content-type": "text/xml" } },
    );

  // the query protocol: EC2 (DescribeInstances) and STS (AssumeRole, AssumeRoleWithWebIdentity)
  const query = (req: Request, body: string): Response => {
    const form = new URLSearchParams(body);
    const action = form.get("Action") ?? "";
    if (action === "AssumeRoleWithWebIdentity") {
      count(action); // unsigned: the token is the proof
      if (form.get("WebIdentityToken") !== WEB_IDENTITY_TOKEN) {
        return stsError(400, "InvalidIdentityToken", "the web identity token is not valid");
      }
      return stsCredentials(action, vend(`web-identity:${form.get("RoleArn")}`), form.get("RoleArn") ?? "");
    }
    const service = action === "DescribeInstances" ? "ec2" : "sts";
    const signer = verify(req, body, options, region, service, keys, service === "ec2" ? xmlError : stsError);
    if (signer instanceof Response) {
      stats.signatureFailures++;
      return signer;
    }
    count(action, signer);
    if (action === "AssumeRole") {
      const serial = form.get("SerialNumber");
      if (serial !== null && form.get("TokenCode") !== MFA_CODE) {
        return stsError(403, "AccessDenied", "MultiFactorAuthentication failed with invalid MFA one time pass code.");
      }
      const role = form.get("RoleArn") ?? "";
      return stsCredentials(action, vend(`assume-role:${role}${serial ? ":mfa" : ""}`), role);
    }
    if (action !== "DescribeInstances") return xmlError(400, "InvalidAction", `The action ${action} is not valid`);
    if (options.denyDescribeInstances) {
      return xmlError(403, "UnauthorizedOperation", "You are not authorized to perform this operation.");
    }
    const filters = new Map<string, string[]>();
    for (let i = 1; form.has(`Filter.${i}.Name`); i++) {
      const values: string[] = [];
      for (let j = 1; form.has(`Filter.${i}.Value.${j}`); j++) values.push(form.get(`Filter.${i}.Value.${j}`)!);
      filters.set(form.get(`Filter.${i}.Name`)!, values);
    }
    stats.lastEc2Filters = [...filters].map(([k, v]) => `${k}=${v.join(",")}`);
    const matches = (options.instances ?? []).filter((inst) => {
      const names = filters.get("tag:Name");
      const states = filters.get("instance-state-name");
      return (!names || (inst.name !== undefined && names.includes(inst.name))) &&
        (!states || states.includes(inst.state ?? "running"));
    });
    const items = matches.map((inst) =>
      `<item><instanceId>${inst.id}</instanceId><instanceType>t3.micro</instanceType>` +
      `<instanceState><code>16</code><name>${inst.state ?? "running"}</name></instanceState>` +
      `<placement><availabilityZone>${region}a</availabilityZone></placement>` +
      (inst.privateIp ? `<privateIpAddress>${inst.privateIp}</privateIpAddress>` : "") +
      (inst.name !== undefined
        ? `<tagSet><item><key>Name</key><value>${xmlText(inst.name)}</value></item></tagSet>`
        : "") +
      `</item>`
    ).join("");
    return new Response(
      `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` +
        `<requestId>${randomUUID()}</requestId><reservationSet>` +
        (items ? `<item><reservationId>r-0emulator</reservationId><instancesSet>${items}</instancesSet></item>` : "") +
        `</reservationSet></DescribeInstancesResponse>`,
      { headers: { "content-type": "text/xml" } },
    );
  };

  // KMS (JSON 1.1, `TrentService.*`, SigV4 service `kms`): GenerateDataKey and Decrypt with the test key, as
  // the KMS API Reference describes them (KeyId, NumberOfBytes 1–1024, EncryptionContext; NotFoundException,
  // InvalidCiphertextException); blobs and keys travel base64-encoded
  const kms = (req: Request, body: string): Response => {
    const kmsError = (status: number, type: string, message: string) =>
      new Response(JSON.stringify({ __type: type, message }), {
        status,
        headers: { "content-type": "application/x-amz-json-1.1", "x-amzn-errortype": `${type}:` },
      });
    const signer = verify(req, body, options, region, "kms", keys, kmsError);
    if (signer instanceof Response) {
      stats.signatureFailures++;
      return signer;
    }
    const op = req.headers.get("x-amz-target")!.replace(/^TrentService\./, "");
    count(op, signer);
    const input = JSON.parse(body);
    const context = (input.EncryptionContext ?? {}) as Record<string, string>;
    try {
      if (op === "GenerateDataKey") {
        const bytes = input.NumberOfBytes ?? 32;
        if (!Number.isInteger(bytes) || bytes < 1 || bytes > 1024) {
          return kmsError(400, "ValidationException", "NumberOfBytes must be between 1 and 1024");
        }
        const { arn, blob, plain } = kmsStore.generate(String(input.KeyId ?? ""), bytes, context);
        return json({ KeyId: arn, CiphertextBlob: b64(blob), Plaintext: b64(plain) });
      }
      if (op === "Decrypt") {
        const { arn, plain } = kmsStore.decrypt(unb64(String(input.CiphertextBlob ?? "")), context);
        return json({ KeyId: arn, Plaintext: b64(plain), EncryptionAlgorithm: "SYMMETRIC_DEFAULT" });
      }
    } catch (error) {
      return kmsError(400, (error as { type?: string }).type ?? "KMSInternalException", (error as Error).message);
    }
    return kmsError(400, "UnknownOperationException", op);
  };

  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    if (url.pathname.startsWith("/v1/data-channel/")) {
      const rec = sessions.get(url.pathname.split("/").pop() ?? "");
      if (!rec || rec.terminated || req.headers.get("upgrade") !== "websocket") {
        return new Response("no such session", { status: 404 });
      }
      stats.dataChannelExtensions.push(req.headers.get("sec-websocket-extensions") ?? "");
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.binaryType = "arraybuffer";
      sockets.add(socket);
      socket.addEventListener("close", () => sockets.delete(socket));
      socket.onmessage = (ev) => {
        // the first frame is the open_data_channel token message (text)
        let ok = false;
        try {
          const open = JSON.parse(String(ev.data));
          ok = open.TokenValue === rec.token && typeof open.ClientId === "string";
          if (ok) stats.clientVersions.push(`token:${open.ClientVersion}`);
        } catch { /* not JSON */ }
        if (!ok || rec.terminated) {
          socket.close(4003, "invalid token");
          return;
        }
        rec.agent ??= new Agent(rec, options, stats, kmsStore);
        rec.everConnected = true;
        rec.agent.attach(socket);
      };
      return response;
    }
    if (url.pathname === "/federation/credentials") return sso(req, url);
    if (url.pathname.startsWith("/latest/")) return imds(req, url);
    if (url.pathname === CONTAINER_CREDENTIALS_PATH) return container(req);
    if (req.method !== "POST" || url.pathname !== "/") return new Response("not found", { status: 404 });
    const body = await req.text();
    if (!req.headers.has("x-amz-target")) return query(req, body);
    if (req.headers.get("x-amz-target")!.startsWith("TrentService.")) return kms(req, body);
    const signer = verify(req, body, options, region, "ssm", keys, awsError);
    if (signer instanceof Response) {
      stats.signatureFailures++;
      return signer;
    }
    const op = (req.headers.get("x-amz-target") ?? "").replace(/^AmazonSSM\./, "");
    count(op, signer);
    if (req.headers.get("content-type") !== "application/x-amz-json-1.1") {
      return awsError(400, "SerializationException", "bad content type");
    }
    const input = JSON.parse(body);
    const port = await listening;
    switch (op) {
      case "StartSession": {
        if (typeof input.Target !== "string" || input.Target === "") {
          return awsError(
            400,
            "ValidationException",
            "1 validation error detected: Value at 'target' failed to satisfy constraint",
          );
        }
        if (options.offlineTargets?.includes(input.Target)) {
          return awsError(400, "TargetNotConnected", `${input.Target} is not connected.`);
        }
        const document = input.DocumentName ?? "SSM-SessionManagerRunShell";
        if (
          ![
            "SSM-SessionManagerRunShell",
            "AWS-StartPortForwardingSession",
            "AWS-StartPortForwardingSessionToRemoteHost",
            ...Object.keys(COMMAND_DOCUMENTS),
            "AWS-StartSSHSession",
          ]
            .includes(document)
        ) {
          return awsError(400, "InvalidDocument", `Document with name ${document} does not exist.`);
        }
        if (COMMAND_DOCUMENTS[document] && !input.Parameters?.command?.[0]) {
          return awsError(400, "InvalidParameters", "Missing required parameter: command.");
        }
        if (input.Reason !== undefined && !/^.{1,256}$/.test(input.Reason)) {
          return awsError(
            400,
            "ValidationException",
            "1 validation error detected: Value at 'reason' failed to satisfy constraint",
          );
        }
        stats.startedTargets.push(input.Target);
        stats.startedDocuments.push(document);
        const id = `${signer}-${randomUUID().replaceAll("-", "").slice(0, 17)}`;
        const rec: SessionRecord = {
          id,
          target: input.Target,
          document,
          parameters: input.Parameters ?? {},
          token: randomUUID(),
          terminated: false,
          owner: `arn:aws:iam::111122223333:user/${signer}`,
          reason: input.Reason,
          startDate: new Date(),
          everConnected: false,
        };
        sessions.set(id, rec);
        return json({
          SessionId: id,
          TokenValue: rec.token,
          StreamUrl: `ws://127.0.0.1:${port}/v1/data-channel/${id}?role=publish_subscribe&cell-number=1`,
        });
      }
      case "ResumeSession": {
        // API reference: SessionId required (1–96 characters); an unknown or ended session is
        // DoesNotExistException, except one the idle timeout ended: no token (the plugin's "session timed out")
        if (typeof input.SessionId !== "string" || !/^.{1,96}$/.test(input.SessionId)) {
          return awsError(
            400,
            "ValidationException",
            "1 validation error detected: Value at 'sessionId' failed to satisfy constraint",
          );
        }
        const rec = sessions.get(input.SessionId);
        if (!rec || (rec.terminated && rec.endedBy !== "timeout")) {
          return awsError(400, "DoesNotExistException", `Session ${input.SessionId} does not exist`);
        }
        if (rec.terminated) return json({ SessionId: rec.id, TokenValue: "", StreamUrl: "" });
        stats.resumes++;
        rec.token = randomUUID();
        return json({
          SessionId: rec.id,
          TokenValue: rec.token,
          StreamUrl: `ws://127.0.0.1:${port}/v1/data-channel/${rec.id}?role=publish_subscribe&cell-number=1`,
        });
      }
      case "DescribeSessions": {
        // API reference: State (Active | History) required; Filters of key InvokedAfter, InvokedBefore, Target,
        // Owner, Status, SessionId, AccessType (else InvalidFilterKey); MaxResults 1–200; NextToken from a reply
        if (input.State !== "Active" && input.State !== "History") {
          return awsError(
            400,
            "ValidationException",
            "1 validation error detected: Value at 'state' failed to satisfy constraint",
          );
        }
        const max = input.MaxResults ?? 200;
        if (!Number.isInteger(max) || max < 1 || max > 200) {
          return awsError(
            400,
            "ValidationException",
            "1 validation error detected: Value at 'maxResults' failed to satisfy constraint",
          );
        }
        const keys = ["InvokedAfter", "InvokedBefore", "Target", "Owner", "Status", "SessionId", "AccessType"];
        const filters = (input.Filters ?? []) as { key?: string; value?: string }[];
        const bad = filters.find((f) => !keys.includes(f.key ?? ""));
        if (bad) return awsError(400, "InvalidFilterKey", `The filter key ${bad.key} is not valid.`);
        const status = (r: SessionRecord) =>
          r.terminated
            ? "Terminated"
            : !r.everConnected
            ? "Connecting"
            : r.agent?.connected
            ? "Connected"
            : "Disconnected";
        let list = [...sessions.values()].filter((r) => (input.State === "Active") === !r.terminated);
        for (const f of filters) {
          const v = f.value ?? "";
          if (f.key === "Target") list = list.filter((r) => r.target === v);
          if (f.key === "Owner") list = list.filter((r) => r.owner === v);
          if (f.key === "Status") list = list.filter((r) => status(r) === v);
          if (f.key === "SessionId") list = list.filter((r) => r.id === v);
          if (f.key === "InvokedAfter") list = list.filter((r) => r.startDate >= new Date(v));
          if (f.key === "InvokedBefore") list = list.filter((r) => r.startDate <= new Date(v));
        }
        let from = 0;
        if (input.NextToken !== undefined) {
          from = Number(/^page-(\d+)$/.exec(String(input.NextToken))?.[1] ?? NaN);
          if (!Number.isInteger(from)) return awsError(400, "InvalidNextToken", "The specified token is not valid.");
        }
        const page = list.slice(from, from + max);
        return json({
          Sessions: page.map((r) => ({
            SessionId: r.id,
            Target: r.target,
            Status: status(r),
            StartDate: r.startDate.getTime() / 1000,
            ...(r.endDate ? { EndDate: r.endDate.getTime() / 1000 } : {}),
            DocumentName: r.document,
            Owner: r.owner,
            ...(r.reason ? { Reason: r.reason } : {}),
            MaxSessionDuration: "",
            AccessType: "Standard",
          })),
          ...(from + max < list.length ? { NextToken: `page-${from + max}` } : {}),
        });
      }
      case "DescribeInstanceInformation": {
        const filter = (key: string) =>
          (input.Filters ?? []).find((f: { Key?: string }) => f.Key === key)?.Values as string[] | undefined;
        const names = filter("tag:Name");
        const pings = filter("PingStatus");
        const list = (options.managedNodes ?? []).filter((n) =>
          (!names || (n.name && names.includes(n.name))) && (!pings || pings.includes(n.pingStatus ?? "Online"))
        );
        return json({
          InstanceInformationList: list.map((n) => ({
            InstanceId: n.id,
            PingStatus: n.pingStatus ?? "Online",
            ResourceType: "ManagedInstance",
            ComputerName: n.computerName ?? n.id,
          })),
        });
      }
      case "TerminateSession": {
        // API reference: SessionId required; the reply names it even for a session that has ended
        if (typeof input.SessionId !== "string" || !/^.{1,96}$/.test(input.SessionId)) {
          return awsError(
            400,
            "ValidationException",
            "1 validation error detected: Value at 'sessionId' failed to satisfy constraint",
          );
        }
        const rec = sessions.get(input.SessionId);
        if (rec && !rec.terminated) {
          rec.endedBy ??= "terminate";
          rec.terminated = true;
          rec.endDate = new Date();
          void rec.agent?.closeChannel("");
        }
        return json({ SessionId: input.SessionId });
      }
      default:
        return awsError(400, "UnknownOperationException", op);
    }
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => onListen(port) }, handler);
  return listening.then((port) => {
    const close = async () => {
      for (const rec of sessions.values()) rec.agent?.shutdown();
      for (const s of sockets) {
        try {
          s.close();
        } catch { /* closed */ }
      }
      await server.shutdown();
    };
    return { endpoint: `http://127.0.0.1:${port}/`, region, stats, close, [Symbol.asyncDispose]: close };
  });
}

// ---- helpers for the tests that drive the emulator ------------------------------------------------

/**
 * The environment of a CLI run against the emulator: `home`'s, the emulator's keys, no session token or profile, and
 * AWS files inside `home`; `extra` added last (e.g. another key id, an endpoint).
 */
export function emulatorEnv(
  home: { env: Record<string, string>; dir: string },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    ...home.env,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_SESSION_TOKEN: "",
    AWS_PROFILE: "",
    AWS_SHARED_CREDENTIALS_FILE: `${home.dir}/.aws/credentials`,
    AWS_CONFIG_FILE: `${home.dir}/.aws/config`,
    ...extra,
  };
}

/** Points the AWS credential chain at the emulator's key pair only (no files, no token). */
export function useEmulatorCredentials(): void {
  Deno.env.set("AWS_ACCESS_KEY_ID", TEST_CREDENTIALS.accessKeyId);
  Deno.env.set("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIALS.secretAccessKey);
  Deno.env.delete("AWS_SESSION_TOKEN");
  Deno.env.delete("AWS_PROFILE");
  Deno.env.set("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/remote-test-credentials");
  Deno.env.set("AWS_CONFIG_FILE", "/nonexistent/remote-test-config");
}

/** An OpenContext for `ssm://<target>` against the emulator; notices are collected. */
export function emulatorContext(
  emu: SsmEmulator,
  parameters: Record<string, unknown> = {},
  target = "i-0123456789abcdef0",
): OpenContext & { notices: string[]; abort: AbortController } {
  const abort = new AbortController();
  const notices: string[] = [];
  return {
    target: { transport: "ssm", host: target, display: `ssm://${target}` },
    parameters: { EndpointUrl: emu.endpoint, Region: emu.region, ...parameters },
    signal: abort.signal,
    prompt: { interactive: false, ask: () => Promise.reject(new Error("no prompts in tests")) },
    notice: (line) => void notices.push(line),
    notices,
    abort,
  };
}

/** Reads a channel's stdout, so tests can wait for text to appear. */
export class OutputReader {
  #chunks: Uint8Array[] = [];
  #length = 0;
  #text = "";
  // the unsearched text: searching the whole output would flatten a multi-megabyte rope on every chunk
  #window = "";
  #decoder = new TextDecoder();
  #finished = false;
  #waiters: (() => void)[] = [];
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      try {
        for await (const chunk of stream) {
          this.#chunks.push(chunk);
          this.#length += chunk.length;
          const text = this.#decoder.decode(chunk, { stream: true });
          this.#text += text;
          this.#window += text;
          this.#waiters.splice(0).forEach((w) => w());
        }
      } finally {
        this.#finished = true;
        this.#waiters.splice(0).forEach((w) => w());
      }
    })();
  }

  /** everything read so far */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  /** everything read so far, as text */
  text(): string {
    return this.#text;
  }

  /**
   * Waits until `needle` appears after what earlier waits consumed. Waits are sequential: text
   * searched without a match is consumed too, except a tail that could start the needle.
   */
  async waitFor(needle: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = this.#window.indexOf(needle);
      if (at >= 0) {
        this.#window = this.#window.slice(at + needle.length);
        return;
      }
      this.#window = this.#window.slice(Math.max(0, this.#window.length - needle.length + 1));
      const tail = () => JSON.stringify(this.#text.slice(-200));
      if (this.#finished) throw new Error(`output ended without ${JSON.stringify(needle)}: ${tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${JSON.stringify(needle)}: ${tail()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** Types `text` into the channel. */
export async function type(channel: Channel, text: string): Promise<void> {
  const writer = channel.stdin.getWriter();
  try {
    await writer.write(new TextEncoder().encode(text));
  } finally {
    writer.releaseLock();
  }
}
