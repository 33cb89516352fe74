/**
 * One Session Manager session: StartSession, the data channel, the agent-initiated handshake, and
 * the payload types a client handles afterwards. Shells (`mod.ts`) and port forwarding
 * (`port_forward.ts`) build on it.
 *
 * Handshake per aws/amazon-ssm-agent `agent/session/datachannel/datachannel.go` (`PerformHandshake`)
 * and aws/session-manager-plugin `src/datachannel/streaming.go` (`handleHandshakeRequest`,
 * `handleEncryptionChallengeRequest`, `HandleOutputMessage`); old agents without a handshake start with Output (plugin
 * `sessionhandler.go` `ProcessFirstMessage`).
 *
 * @module
 */
import { TransportError } from "../../plugins/mod.ts";
import { type DecodedMessage, parseJsonPayload, PayloadType } from "./client_message.ts";
import {
  type ControlPlaneConfig,
  resumeSession,
  startSession,
  type StartSessionInput,
  terminateSession,
} from "./control_plane.ts";
import { type ChannelState, CLIENT_VERSION, DataChannel, STREAM_DATA_PAYLOAD_SIZE } from "./data_channel.ts";
import { decryptSessionKey, encryptionContext, generateSessionKey, type SessionCipher } from "./kms.ts";

/**
 * The first agent release that acknowledges again input it has already processed (commit b0e8d778);
 * older ones discard it in silence.
 */
const RE_ACKS_PROCESSED_INPUT_FROM = "3.2.1041.0";

/** What the agent told us in the handshake. */
export interface SessionInfo {
  sessionId: string;
  /** `Standard_Stream`, `Port`, `InteractiveCommands`, `NonInteractiveCommands`, or "" for old agents */
  sessionType: string;
  properties: Record<string, unknown>;
  agentVersion: string;
  /**
   * a KMS-encrypted session's data key as KMS encrypted it (base64), with its key and context: a later
   * run that resumes the session gets the key back with kms:Decrypt
   */
  kms?: { keyId: string; cipherTextKey: string; context: Record<string, string> };
}

/** Where session events go. */
export interface SessionHandlers {
  onOutput(data: Uint8Array): void;
  onStdErr?(data: Uint8Array): void;
  onExitCode?(code: number): void;
  onFlag?(flag: number): void;
  /** the session ended: `channel_closed` (with its Output text) or a failure */
  onEnd(result: { kind: "closed"; output: string } | { kind: "lost"; error: Error }): void;
}

/** Options of {@linkcode SsmSession.start}. */
export interface StartOptions {
  control: ControlPlaneConfig;
  input: StartSessionInput;
  handlers: SessionHandlers;
  notice(line: string): void;
  /** how long the agent may take to complete the handshake */
  handshakeTimeoutMs?: number;
  signal?: AbortSignal;
  /** data channel tuning, for tests */
  window?: number;
  maxAttempts?: number;
  /**
   * Continue a session another run left disconnected: ResumeSession instead of StartSession, no
   * handshake (the agent did it with the first client), sequence numbers where they stood.
   */
  resume?: { info: SessionInfo; state: ChannelState };
}

/** A session left running without a client: what the next client needs to continue it. */
export interface DetachedSession {
  info: SessionInfo;
  state: ChannelState;
}

/** A versioned comparison of dotted version strings (`3.0.196.0`). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map((n) => parseInt(n, 10) || 0);
  const pb = b.split(".").map((n) => parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Reads an ExitCode payload: `EXIT_CODE: n` text (agent `shell.go`) or a bare number. */
export function parseExitCode(payload: Uint8Array): number | undefined {
  const m = /(-?\d+)/.exec(new TextDecoder().decode(payload));
  return m ? Number(m[1]) : undefined;
}

/** A started session. */
export class SsmSession {
  readonly info: SessionInfo;
  #dc: DataChannel;
  #control: ControlPlaneConfig;
  #queue: Promise<void> = Promise.resolve();
  #terminated = false;
  #size?: { columns: number; rows: number };
  /** a KMS-encrypted session's keys: Output payloads go encrypted */
  #cipher?: SessionCipher;

  private constructor(info: SessionInfo, dc: DataChannel, control: ControlPlaneConfig) {
    this.info = info;
    this.#dc = dc;
    this.#control = control;
  }

  /** input messages sent and not yet acknowledged */
  get pendingInput(): number {
    return this.#dc.pendingInput;
  }

  /** the data channel's counters */
  get stats(): DataChannel["stats"] {
    return this.#dc.stats;
  }

  /**
   * Starts a session and completes the handshake, with KMS encryption when the agent asks for it
   * (`kms.ts`); or resumes a kept one.
   *
   * @throws {TransportError} from the control plane, KMS, the data channel, or the handshake (`timeout`
   *   when the agent never completes it)
   */
  static async start(options: StartOptions): Promise<SsmSession> {
    const control = options.control;
    const resuming = options.resume;
    const grant = resuming
      ? await resumeSession(control, resuming.info.sessionId)
      : await startSession(control, options.input);
    const sessionId = grant.SessionId;
    const info: SessionInfo = resuming
      ? { ...resuming.info }
      : { sessionId, sessionType: "", properties: {}, agentVersion: "" };
    const { promise: ready, resolve: setReady, reject: failReady } = Promise.withResolvers<void>();
    let isReady = resuming !== undefined;
    if (isReady) setReady();
    let cipher: SessionCipher | undefined;
    if (resuming?.info.kms) {
      const k = resuming.info.kms;
      cipher = await decryptSessionKey(
        control,
        k.keyId,
        Uint8Array.from(atob(k.cipherTextKey), (c) => c.charCodeAt(0)),
        k.context,
      );
    }
    // deno-lint-ignore prefer-const -- assigned once the handshake is done; closures read it before
    let session: SsmSession | undefined;
    const early: DecodedMessage[] = [];

    const deliver = (m: DecodedMessage) => {
      const h = options.handlers;
      const sealed = m.payloadType === PayloadType.output || m.payloadType === PayloadType.stdErr ||
        m.payloadType === PayloadType.exitCode;
      if (cipher && sealed && m.payload.length > 0) {
        try {
          m = { ...m, payload: cipher.decrypt(m.payload) };
        } catch (error) {
          dc?.close();
          end({ kind: "lost", error: error as Error });
          return;
        }
      }
      switch (m.payloadType) {
        case PayloadType.output:
          if (m.payload.length > 0) h.onOutput(m.payload);
          return;
        case PayloadType.stdErr:
          if (m.payload.length > 0) (h.onStdErr ?? h.onOutput)(m.payload);
          return;
        case PayloadType.exitCode: {
          const code = parseExitCode(m.payload);
          if (code !== undefined) h.onExitCode?.(code);
          return;
        }
        case PayloadType.flag:
          if (m.payload.length >= 4) {
            h.onFlag?.(new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0));
          }
          return;
      }
    };

    const onMessage = (m: DecodedMessage) => {
      if (isReady) return deliver(m);
      switch (m.payloadType) {
        case PayloadType.handshakeRequest:
          void answerHandshake(m).catch((e) => failReady(e));
          return;
        case PayloadType.handshakeComplete: {
          const body = parseJsonPayload(m.payload);
          const text = typeof body?.["CustomerMessage"] === "string" ? body["CustomerMessage"] : "";
          // one notice per line: the sink escapes control characters, so a banner's line breaks would
          // otherwise show as `\n`
          for (const line of text.split(/\r?\n/)) if (line.trim() !== "") options.notice(line);
          isReady = true;
          setReady();
          return;
        }
        case PayloadType.encChallengeRequest:
          void answerChallenge(m).catch((e) => failReady(e));
          return;
        case PayloadType.output:
          if (info.agentVersion === "") {
            // an agent without a handshake: a shell that starts talking right away
            info.sessionType = "Standard_Stream";
            if (dc) dc.agentDiscardsProcessedInput = true;
            isReady = true;
            setReady();
            deliver(m);
            return;
          }
          early.push(m);
          return;
        default:
          early.push(m);
      }
    };

    // deno-lint-ignore prefer-const -- assigned after the handlers that use it are defined
    let dc: DataChannel | undefined;
    const answerHandshake = async (m: DecodedMessage) => {
      const body = parseJsonPayload(m.payload);
      if (!body) throw new TransportError("the SSM agent sent a handshake that is not JSON", { layer: "handshake" });
      info.agentVersion = typeof body.AgentVersion === "string" ? body.AgentVersion : "unknown";
      dc!.agentDiscardsProcessedInput = compareVersions(info.agentVersion, RE_ACKS_PROCESSED_INPUT_FROM) < 0;
      const actions = Array.isArray(body.RequestedClientActions) ? body.RequestedClientActions : [];
      const processed: Record<string, unknown>[] = [];
      let kmsFailure: Error | undefined;
      for (const action of actions) {
        const a = typeof action === "object" && action !== null ? action as Record<string, unknown> : {};
        const params = typeof a.ActionParameters === "object" && a.ActionParameters !== null
          ? a.ActionParameters as Record<string, unknown>
          : {};
        if (a.ActionType === "SessionType") {
          info.sessionType = String(params.SessionType ?? "");
          info.properties = typeof params.Properties === "object" && params.Properties !== null
            ? params.Properties as Record<string, unknown>
            : {};
          processed.push({ ActionType: "SessionType", ActionStatus: 1, ActionResult: null, Error: "" });
        } else if (a.ActionType === "KMSEncryption") {
          const keyId = typeof params.KMSKeyId === "string" ? params.KMSKeyId : "";
          const challenge = typeof params.Challenge === "string" && params.Challenge !== ""
            ? params.Challenge
            : undefined;
          const context = encryptionContext(sessionId, options.input.Target, challenge);
          try {
            const key = await generateSessionKey(control, keyId, context);
            cipher = key.cipher;
            const blob = btoa(String.fromCharCode(...key.cipherTextKey));
            info.kms = { keyId, cipherTextKey: blob, context };
            processed.push({
              ActionType: "KMSEncryption",
              ActionStatus: 1,
              ActionResult: {
                KMSCipherTextKey: blob,
                KMSCipherTextHash: null,
                ...(challenge ? { ChallengeAcknowledgement: true } : {}),
              },
              Error: "",
            });
          } catch (error) {
            kmsFailure = error as Error;
            processed.push({
              ActionType: "KMSEncryption",
              ActionStatus: 2,
              ActionResult: null,
              Error: `Failed to process action KMSEncryption: ${(error as Error).message}`,
            });
          }
        } else {
          processed.push({ ActionType: a.ActionType, ActionStatus: 3, ActionResult: null, Error: "" });
        }
      }
      const response = { ClientVersion: CLIENT_VERSION, ProcessedClientActions: processed, Errors: [] };
      await sendSerial(PayloadType.handshakeResponse, new TextEncoder().encode(JSON.stringify(response)));
      if (kmsFailure) throw kmsFailure;
    };

    // the agent's random bytes under its key, sent back under ours (plugin `handleEncryptionChallengeRequest`)
    const answerChallenge = async (m: DecodedMessage) => {
      const body = parseJsonPayload(m.payload);
      if (!cipher || typeof body?.Challenge !== "string") {
        throw new TransportError("the SSM agent sent an encryption challenge without a KMS handshake", {
          layer: "handshake",
        });
      }
      const plain = cipher.decrypt(Uint8Array.from(atob(body.Challenge), (c) => c.charCodeAt(0)));
      const again = btoa(String.fromCharCode(...cipher.encrypt(plain)));
      await sendSerial(
        PayloadType.encChallengeResponse,
        new TextEncoder().encode(JSON.stringify({ Challenge: again })),
      );
    };

    // before the session object exists, sends go straight to the data channel in order
    let preQueue: Promise<void> = Promise.resolve();
    const sendSerial = (type: number, payload: Uint8Array): Promise<void> => {
      if (session) return session.#send(type, payload);
      preQueue = preQueue.then(() => dc!.send(type, payload));
      return preQueue;
    };

    let ended = false;
    const end = (result: Parameters<SessionHandlers["onEnd"]>[0]) => {
      if (ended) return;
      ended = true;
      if (!isReady) {
        failReady(
          result.kind === "lost" ? result.error : new TransportError(
            `the SSM session closed during the handshake${result.output ? ": " + result.output : ""}`,
            {
              layer: "handshake",
            },
          ),
        );
      }
      options.handlers.onEnd(result);
    };

    dc = await DataChannel.open({
      streamUrl: grant.StreamUrl,
      token: grant.TokenValue,
      resume: async () => {
        const again = await resumeSession(control, sessionId);
        return { streamUrl: again.StreamUrl, token: again.TokenValue };
      },
      onMessage,
      onClosed: (output) => end({ kind: "closed", output }),
      onLost: (error) => end({ kind: "lost", error }),
      window: options.window,
      maxAttempts: options.maxAttempts,
      onResumed: () => {
        if (session) session.#probe();
      },
      state: resuming?.state,
    });
    if (resuming) dc.agentDiscardsProcessedInput = compareVersions(info.agentVersion, RE_ACKS_PROCESSED_INPUT_FROM) < 0;

    const timeoutMs = options.handshakeTimeoutMs ?? 30_000;
    const timer = setTimeout(
      () =>
        failReady(
          new TransportError("the SSM agent did not complete the session handshake", {
            layer: "timeout",
            hint: "check the agent on the instance (it must be 2.3.x or newer) and try again",
          }),
        ),
      timeoutMs,
    );
    const onAbort = () =>
      failReady(new TransportError("connecting was cancelled", { layer: "channel", code: "interrupted" }));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await ready;
    } catch (error) {
      dc.close();
      // a resumed session belongs to its owner: failing to attach to it must not end it
      if (!resuming) {
        await terminateSession({ ...control, signal: AbortSignal.timeout(10_000) }, sessionId).catch(() => {});
      }
      throw error;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }
    session = new SsmSession(info, dc, control);
    session.#queue = preQueue;
    session.#cipher = cipher;
    for (const m of early) deliver(m);
    return session;
  }

  #send(type: number, payload: Uint8Array): Promise<void> {
    const next = this.#queue.then(() => this.#dc.send(type, payload));
    this.#queue = next.catch(() => {});
    return next;
  }

  /**
   * Sends Output bytes in payloads of at most 1024 bytes, in order. One call is one unit on the
   * send queue: concurrent writers (smux streams) must not interleave their chunks, or the agent's
   * smux reader sees half a frame followed by another frame's bytes.
   */
  write(data: Uint8Array): Promise<void> {
    const next = this.#queue.then(async () => {
      for (let at = 0; at < data.length; at += STREAM_DATA_PAYLOAD_SIZE) {
        const chunk = data.slice(at, at + STREAM_DATA_PAYLOAD_SIZE);
        await this.#dc.send(PayloadType.output, this.#cipher ? this.#cipher.encrypt(chunk) : chunk);
      }
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  /**
   * Stops taking output from the agent until {@linkcode SsmSession.resumeOutput}: the caller's
   * consumer is not draining (stdout piped to a slow reader, a local socket not read).
   */
  pauseOutput(): void {
    this.#dc.pauseReading();
  }

  /** Takes output again after {@linkcode SsmSession.pauseOutput}. */
  resumeOutput(): void {
    this.#dc.resumeReading();
  }

  /** sends a terminal size (`{"cols","rows"}`) */
  resize(columns: number, rows: number): Promise<void> {
    this.#size = { columns, rows };
    return this.#send(PayloadType.size, new TextEncoder().encode(JSON.stringify({ cols: columns, rows })));
  }

  /**
   * After a resume, with an agent that discards input it has processed in silence: something it acks
   * at once, so that ack settles what it passed over (see `SendBuffer.acknowledge`) even when nothing
   * else is sent; else a message whose ack was lost would be resent until the session is given up. A
   * shell gets its size again (no change, no SIGWINCH); a port session ignores Size payloads.
   */
  #probe(): void {
    if (!this.#dc.agentDiscardsProcessedInput || this.#dc.pendingInput === 0) return;
    const size = this.#size ?? (this.info.sessionType === "Port" ? { columns: 0, rows: 0 } : undefined);
    if (size) void this.resize(size.columns, size.rows).catch(() => {});
  }

  /** sends a Flag payload */
  flag(value: number): Promise<void> {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint32(0, value);
    return this.#send(PayloadType.flag, payload);
  }

  /** true once the data channel has closed */
  get ended(): boolean {
    return this.#dc.ended;
  }

  /**
   * Leaves the session running on the service: what was typed is delivered first (up to 2 s), then the
   * data channel closes without TerminateSession (the service reports the session Disconnected).
   * Returns what the next client needs to continue it.
   */
  async detach(): Promise<DetachedSession> {
    this.#terminated = true;
    await this.#queue;
    return { info: { ...this.info }, state: await this.#dc.detach() };
  }

  /**
   * Ends the session: TerminateSession (or the TerminateSession flag for port sessions) and closes
   * the socket. Safe to call twice.
   */
  async terminate(): Promise<void> {
    if (this.#terminated) return;
    this.#terminated = true;
    this.#dc.close();
    await terminateSession(this.#cleanupControl(), this.info.sessionId).catch(() => {});
  }

  /**
   * The control plane for TerminateSession: the caller's signal is usually the one that was just
   * aborted (Ctrl-C, `~.`), and an aborted request would leave the session open on the service.
   */
  #cleanupControl(): ControlPlaneConfig {
    return { ...this.#control, signal: AbortSignal.timeout(10_000) };
  }
}
