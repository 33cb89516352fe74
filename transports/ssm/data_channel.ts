/**
 * The data channel: a WebSocket to the Session Manager message service carrying ClientMessages.
 * Opens with the `open_data_channel` token message, acknowledges every stream data message,
 * delivers in order, resends what the far side has not acknowledged (adaptive timeout), honours
 * pause/start publication, and on a dropped socket calls ResumeSession and re-dials, keeping
 * sequence numbers and buffers so nothing is lost or duplicated.
 *
 * Behaviour from aws/session-manager-plugin `src/datachannel/streaming.go`,
 * `src/communicator/websocketchannel.go` and `src/sessionmanagerplugin/session/sessionhandler.go`.
 *
 * @module
 */
import { WebSocket } from "ws";
import { TransportError } from "../../plugins/mod.ts";
import {
  decodeClientMessage,
  type DecodedMessage,
  encodeAcknowledge,
  encodeClientMessage,
  MalformedMessageError,
  MessageType,
  newMessageId,
  parseJsonPayload,
} from "./client_message.ts";
import { EARLY_BYTES_LIMIT, ReceiveBuffer, Retransmission, SendBuffer } from "./sequencing.ts";
import { maskedBinaryFrames } from "./ws_frames.ts";

/** The client version remote announces; it selects smux port forwarding and separate stderr. */
export const CLIENT_VERSION = "1.2.694.0";

/** The payload size the plugin reads stdin and sockets in (`StreamDataPayloadSize`). */
export const STREAM_DATA_PAYLOAD_SIZE = 1024;

/**
 * The largest WebSocket message accepted. The agent's frames carry at most 1 KiB of payload
 * (`StreamDataPayloadSize`); the `ws` default (100 MiB) would let one frame of a broken or hostile
 * peer take that much memory before it is even parsed.
 */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** A fresh endpoint to dial after a drop. */
export interface StreamGrant {
  streamUrl: string;
  token: string;
}

/**
 * Where a data channel stands, kept while a session is disconnected: the agent keeps its own sequence
 * numbers across a ResumeSession, so the client that resumes must continue them (plugin `sessionhandler.go`
 * resumes with its DataChannel unchanged).
 */
export interface ChannelState {
  /** the sequence number of the next input message */
  nextSequenceNumber: number;
  /** the sequence number of the next output message the agent sends */
  expectedSequenceNumber: number;
  /** input messages sent and not known to be delivered, as framed: sent again on resume */
  unacknowledged: { sequenceNumber: number; frame: Uint8Array }[];
  /** output messages that came early and were acknowledged, as framed: the agent will not send them again */
  early: { sequenceNumber: number; frame: Uint8Array }[];
}

/** How a data channel is opened and where its events go. */
export interface DataChannelOptions {
  streamUrl: string;
  token: string;
  /** called after the socket drops; returns a new token (ResumeSession). Absent: a drop is fatal */
  resume?: () => Promise<StreamGrant>;
  /** a stream data message from the agent, in order and exactly once */
  onMessage(message: DecodedMessage): void;
  /** `channel_closed` arrived; `output` is its Output text */
  onClosed(output: string): void;
  /** the channel is beyond saving */
  onLost(error: Error): void;
  /** unacknowledged outgoing messages before `send` waits (backpressure) */
  window?: number;
  /** resend attempts before giving up; the plugin's 3000 is about five minutes */
  maxAttempts?: number;
  /** attempts to resume after one drop (plugin: 5) */
  resumeAttempts?: number;
  /** the channel was resumed and everything unacknowledged sent again */
  onResumed?(): void;
  /** continue a session left disconnected (see {@linkcode ChannelState}) */
  state?: ChannelState;
}

/** Counters, for tests and `REMOTE_DEBUG`. */
export interface DataChannelStats {
  framesIn: number;
  framesOut: number;
  resent: number;
  duplicates: number;
  malformed: number;
  unknownTypes: number;
  resumes: number;
  /** early messages left unacknowledged because the receive buffer was full */
  refused: number;
  /** input messages settled by a later ack (an agent that discards what it has processed) */
  impliedAcks: number;
}

const MAX_CONSECUTIVE_MALFORMED = 64;

function toBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data) && data.every((d) => d instanceof Uint8Array)) {
    const total = data.reduce((n, d: Uint8Array) => n + d.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const d of data as Uint8Array[]) {
      out.set(d, at);
      at += d.length;
    }
    return out;
  }
  return undefined;
}

/** A socket just opened, and the frames that came on it before the channel took it over. */
interface Dialed {
  ws: WebSocket;
  held: Uint8Array[];
}

function dial(url: string, token: string, clientId: string): Promise<Dialed> {
  return new Promise((resolve, reject) => {
    // no permessage-deflate offer (`ws` offers it by default): the plugin's gorilla/websocket dialer offers none,
    // and compressing kilobyte messages one by one would cost CPU on every message were a service to accept it
    const ws = new WebSocket(url, { handshakeTimeout: 30_000, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });
    const fail = (error: Error) => {
      ws.removeAllListeners();
      ws.on("error", () => {});
      ws.terminate();
      reject(error);
    };
    ws.once("unexpected-response", (_req, res) => {
      const status = res.statusCode ?? 0;
      fail(
        new TransportError(`the SSM data channel refused the connection (HTTP ${status})`, {
          layer: status === 401 || status === 403 ? "auth" : "handshake",
          hint: "the session token may have expired; start the session again",
        }),
      );
    });
    ws.once(
      "error",
      (cause) =>
        fail(new TransportError(`cannot open the SSM data channel: ${cause.message}`, { layer: "socket", cause })),
    );
    ws.once("open", () => {
      ws.removeAllListeners();
      // listening starts before the token goes, as the plugin's reader does (`websocketchannel.go` `Open`): the
      // agent answers the token at once (its handshake request; after a resume, whatever is unacknowledged), and
      // a frame with no listener yet would be dropped unacknowledged, to come again only after the agent's
      // retransmission timeout (up to a second). The channel takes over these listeners and the frames held.
      const held: Uint8Array[] = [];
      ws.on("message", (data: unknown) => {
        const bytes = toBytes(data);
        if (bytes) held.push(bytes);
      });
      ws.on("error", () => {}); // a close follows, which the channel sees through the socket's state
      // the token message is the only text frame the client sends (plugin `streaming.go` OpenDataChannel)
      ws.send(JSON.stringify({
        MessageSchemaVersion: "1.0",
        RequestId: crypto.randomUUID(),
        TokenValue: token,
        ClientId: clientId,
        ClientVersion: CLIENT_VERSION,
      }));
      resolve({ ws, held });
    });
  });
}

/**
 * One data channel. Create with {@linkcode DataChannel.open}; send with `send`; close with `close`.
 *
 * @example Opening (against the test emulator or a real StreamUrl)
 * ```ts ignore
 * import { DataChannel } from "./data_channel.ts";
 * const dc = await DataChannel.open({ streamUrl, token, onMessage: (m) => {}, onClosed: () => {}, onLost: () => {} });
 * await dc.send(1, new TextEncoder().encode("ls\r"));
 * dc.close();
 * ```
 */
export class DataChannel {
  readonly stats: DataChannelStats = {
    framesIn: 0,
    framesOut: 0,
    resent: 0,
    duplicates: 0,
    malformed: 0,
    unknownTypes: 0,
    resumes: 0,
    refused: 0,
    impliedAcks: 0,
  };
  #options: DataChannelOptions;
  #clientId = crypto.randomUUID();
  #streamUrl: string;
  #ws?: WebSocket;
  #tx = new SendBuffer();
  #rx = new ReceiveBuffer<DecodedMessage>();
  #nextSeq = 0;
  #paused = false;
  #ended = false;
  #reconnecting = false;
  #readingPaused = false;
  #corked = false;
  #acks: Uint8Array[] = [];
  #consecutiveMalformed = 0;
  #waiters: (() => void)[] = [];
  /** frames received and not yet handled, while the channel is being handed to its owner */
  #held?: Uint8Array[];
  #releaser?: ReturnType<typeof setTimeout>;
  #timer: ReturnType<typeof setInterval>;
  #pinger: ReturnType<typeof setInterval>;

  private constructor(options: DataChannelOptions, { ws, held }: Dialed) {
    this.#options = options;
    this.#streamUrl = options.streamUrl;
    const state = options.state;
    if (state) {
      this.#nextSeq = state.nextSequenceNumber;
      this.#rx = new ReceiveBuffer<DecodedMessage>(10000, EARLY_BYTES_LIMIT, state.expectedSequenceNumber);
      for (const { sequenceNumber, frame } of state.early) {
        const m = decodeClientMessage(frame);
        this.#rx.accept(sequenceNumber, m, m.payload.length);
      }
      for (const { sequenceNumber, frame } of state.unacknowledged) this.#tx.add(sequenceNumber, frame, Date.now());
    }
    // frames that came before this channel existed, and any that follow them, wait until `open` has returned
    // (a handler may answer at once through the channel the caller does not hold yet): the next task
    this.#held = held;
    this.#attach(ws);
    this.#releaser = setTimeout(() => this.#release(), 0);
    // what the last client left unacknowledged goes first, as after a resume within one run
    for (const { sequenceNumber, frame } of this.#tx.all(Date.now())) this.#transmit(frame, sequenceNumber);
    this.#timer = setInterval(() => this.#resendDue(), Retransmission.schedulerIntervalMs);
    // the plugin pings every 5 minutes so idle sessions survive proxies (`websocketchannel.go`)
    this.#pinger = setInterval(() => this.#ws?.ping("keepalive"), 5 * 60_000);
  }

  /** Dials `streamUrl` and sends the token message. */
  static async open(options: DataChannelOptions): Promise<DataChannel> {
    const clientId = crypto.randomUUID();
    const dc = new DataChannel(options, await dial(options.streamUrl, options.token, clientId));
    dc.#clientId = clientId;
    return dc;
  }

  /** true once closed, by either side or by a failure */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Stops reading the socket, for output backpressure: what the agent sends meanwhile waits in TCP
   * buffers and in the agent's own send buffer (it resends what stays unacknowledged), not here.
   * Messages `ws` had already read are still delivered.
   */
  pauseReading(): void {
    if (this.#readingPaused) return;
    this.#readingPaused = true;
    this.#ws?.pause();
  }

  /** Reads the socket again after {@linkcode DataChannel.pauseReading}. */
  resumeReading(): void {
    if (!this.#readingPaused) return;
    this.#readingPaused = false;
    this.#ws?.resume();
  }

  #attach(ws: WebSocket): void {
    ws.removeAllListeners(); // dial's, which held what came first
    this.#ws = ws;
    if (this.#readingPaused) ws.pause();
    ws.on("message", (data: unknown) => {
      const bytes = toBytes(data);
      if (!bytes) return;
      if (this.#held) this.#held.push(bytes);
      else this.#receive(bytes);
    });
    ws.on("error", (error: Error & { code?: string }) => {
      // otherwise a close event follows and decides; a frame over the limit would come again after a resume
      if (error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") {
        this.#fail(
          new TransportError(`the SSM data channel sent a frame larger than ${MAX_FRAME_BYTES} bytes`, {
            layer: "protocol",
          }),
        );
      }
    });
    const closed = () => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      if (!this.#ended) void this.#reconnect();
    };
    ws.on("close", closed);
    // closed between dial and here: its close event had no listener
    if (ws.readyState === WebSocket.CLOSED) queueMicrotask(closed);
  }

  /** Handles the frames held while the channel was handed over, in order, then each as it comes. */
  #release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const bytes of held) {
      if (this.#ended) return;
      this.#receive(bytes);
    }
  }

  #transmit(frame: Uint8Array, sequenceNumber?: number): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    this.stats.framesOut++;
    this.#cork(ws);
    ws.send(frame);
    if (sequenceNumber !== undefined) this.#tx.sent(sequenceNumber);
  }

  /**
   * Queues an acknowledgement to leave with the others of this task. Those of all the messages one read of the
   * socket brought (tens of them) are framed together and leave in one socket write, as their own WebSocket frames
   * in order: framed one by one, `ws` costs ~3 µs each, as much as decoding the message they acknowledge.
   */
  #acknowledge(frame: Uint8Array): void {
    if (this.#acks.push(frame) === 1) queueMicrotask(() => this.#flushAcks());
  }

  #flushAcks(): void {
    const acks = this.#acks;
    if (acks.length === 0) return; // sent already, by `close`
    this.#acks = [];
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return; // the agent resends what stays unacknowledged
    this.stats.framesOut += acks.length;
    // `ws` keeps its net.Socket as `_socket` and, with no permessage-deflate, writes every frame to it at once, so
    // frames written there directly keep their place among its own
    const socket = (ws as unknown as { _socket?: { write?(bytes: Uint8Array): boolean } })._socket;
    if (typeof socket?.write === "function") socket.write(maskedBinaryFrames(acks));
    else for (const frame of acks) ws.send(frame);
  }

  /**
   * Holds the socket's writes until the current task ends, so the acknowledgements of all the messages one read
   * of the socket brought (tens of them) leave in one write rather than one write operation each; each is still
   * a WebSocket frame of its own. `ws` keeps its net.Socket as `_socket`; without one, frames go one by one.
   */
  #cork(ws: WebSocket): void {
    if (this.#corked) return;
    const socket = (ws as unknown as { _socket?: { cork?(): void; uncork?(): void } })._socket;
    if (!socket?.cork || !socket.uncork) return;
    this.#corked = true;
    socket.cork();
    queueMicrotask(() => {
      this.#corked = false;
      socket.uncork!();
    });
  }

  /**
   * Set once the agent is known to discard input it has already processed without acknowledging
   * it again (agents before 3.2.1041.0, aws/amazon-ssm-agent commit b0e8d778): a later ack then
   * settles older messages, or a message whose ack was lost in a dropped connection would be resent
   * until the session is given up.
   */
  agentDiscardsProcessedInput = false;

  /** stream data messages sent and not yet acknowledged */
  get pendingInput(): number {
    return this.#tx.size;
  }

  /**
   * Sends one `input_stream_data` message. Resolves once it is handed to the socket and the window
   * of unacknowledged messages has room again.
   */
  async send(payloadType: number, payload: Uint8Array): Promise<void> {
    if (this.#ended) throw new TransportError("the SSM data channel is closed", { layer: "channel" });
    const window = this.#options.window ?? 1000;
    while (this.#tx.size >= window && !this.#ended) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    if (this.#ended) throw new TransportError("the SSM data channel is closed", { layer: "channel" });
    const sequenceNumber = this.#nextSeq++;
    const frame = encodeClientMessage({
      messageType: MessageType.input,
      schemaVersion: 1,
      createdDate: Date.now(),
      sequenceNumber,
      flags: 0,
      messageId: newMessageId(),
      payloadType,
      payload,
    });
    this.#tx.add(sequenceNumber, frame, Date.now());
    if (!this.#paused) this.#transmit(frame, sequenceNumber);
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #resendDue(): void {
    if (this.#ended || this.#paused || !this.#ws) return;
    // only the oldest, as the plugin does (`ResendStreamDataMessageScheduler`): the socket is TCP, so a
    // late ack means a busy peer, and resending the whole window would only add to its load
    const { frames, sequenceNumbers, exhausted } = this.#tx.due(Date.now(), 1);
    if (exhausted || this.#tx.oldestAttempts > (this.#options.maxAttempts ?? Retransmission.maxAttempts)) {
      this.#fail(
        new TransportError("the SSM agent stopped acknowledging input", {
          layer: "channel",
          hint: "the instance may be overloaded or the agent stopped; try again",
        }),
      );
      return;
    }
    this.stats.resent += frames.length;
    frames.forEach((frame, i) => this.#transmit(frame, sequenceNumbers[i]));
    const settled = this.#tx.dueSettled(Date.now());
    settled.frames.forEach((frame, i) => this.#transmit(frame, settled.sequenceNumbers[i]));
  }

  #receive(bytes: Uint8Array): void {
    this.stats.framesIn++;
    let message: DecodedMessage;
    try {
      message = decodeClientMessage(bytes, false); // no digest check: see DecodedMessage.digestOk
    } catch (error) {
      if (!(error instanceof MalformedMessageError)) throw error;
      // dropped unacknowledged: the sender resends it, as with a validation failure in the plugin
      this.stats.malformed++;
      if (++this.#consecutiveMalformed > MAX_CONSECUTIVE_MALFORMED) {
        this.#fail(
          new TransportError(`the SSM data channel sends malformed frames: ${error.message}`, { layer: "protocol" }),
        );
      }
      return;
    }
    this.#consecutiveMalformed = 0;
    switch (message.messageType) {
      case MessageType.output: {
        const result = this.#rx.accept(message.sequenceNumber, message, message.payload.length);
        if (result.duplicate) this.stats.duplicates++;
        else if (!result.ack) this.stats.refused++;
        if (result.ack) this.#acknowledge(encodeAcknowledge(message));
        for (const m of result.deliver) {
          if (this.#ended) break;
          this.#options.onMessage(m);
        }
        return;
      }
      case MessageType.acknowledge: {
        const ack = parseJsonPayload(message.payload);
        const seq = ack?.["AcknowledgedMessageSequenceNumber"];
        if (typeof seq === "number" && this.#tx.acknowledge(seq, Date.now(), this.agentDiscardsProcessedInput)) {
          this.stats.impliedAcks = this.#tx.impliedAcks;
          this.#wake();
        }
        if (this.#paused) this.#unpause(); // the agent also resumes on any incoming ack
        return;
      }
      case MessageType.channelClosed: {
        const body = parseJsonPayload(message.payload);
        const output = typeof body?.["Output"] === "string" ? body["Output"] : "";
        this.close();
        this.#options.onClosed(output);
        return;
      }
      case MessageType.pausePublication:
        this.#paused = true;
        return;
      case MessageType.startPublication:
        this.#unpause();
        return;
      default:
        this.stats.unknownTypes++; // the plugin logs and ignores unknown types
    }
  }

  #unpause(): void {
    this.#paused = false;
    for (const { sequenceNumber, frame } of this.#tx.all(Date.now())) this.#transmit(frame, sequenceNumber);
  }

  async #reconnect(): Promise<void> {
    if (this.#reconnecting || this.#ended) return;
    const resume = this.#options.resume;
    if (!resume) {
      this.#fail(new TransportError("the SSM data channel closed unexpectedly", { layer: "channel" }));
      return;
    }
    this.#reconnecting = true;
    let delay = 100 + Math.random() * 100;
    let lastError: unknown;
    for (let attempt = 0; attempt < (this.#options.resumeAttempts ?? 5) && !this.#ended; attempt++) {
      if (attempt > 0) {
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
      try {
        const grant = await resume();
        if (this.#ended) break;
        if (grant.streamUrl) this.#streamUrl = grant.streamUrl;
        const dialed = await dial(this.#streamUrl, grant.token, this.#clientId);
        if (this.#ended) {
          dialed.ws.close(1000);
          break;
        }
        this.stats.resumes++;
        this.#tx.newConnection();
        this.#attach(dialed.ws);
        this.#reconnecting = false;
        // sequence numbers and buffers are kept; everything unacknowledged goes again
        if (!this.#paused) {
          for (const { sequenceNumber, frame } of this.#tx.all(Date.now())) this.#transmit(frame, sequenceNumber);
        }
        this.#options.onResumed?.();
        // what the agent sent again before the socket was attached
        for (const bytes of dialed.held) {
          if (this.#ended || this.#ws !== dialed.ws) break;
          this.#receive(bytes);
        }
        return;
      } catch (error) {
        lastError = error;
        // credentials or a vanished session will not get better by retrying
        if (error instanceof TransportError && (error.layer === "auth" || error.layer === "channel")) break;
      }
    }
    this.#reconnecting = false;
    if (this.#ended) return;
    const message = lastError instanceof Error ? lastError.message : "resume failed";
    this.#fail(
      new TransportError(`the SSM data channel dropped and could not be resumed: ${message}`, {
        layer: "channel",
        cause: lastError,
      }),
    );
  }

  #fail(error: Error): void {
    if (this.#ended) return;
    this.close();
    this.#options.onLost(error);
  }

  /** Where the channel stands, to continue it later from another run (see {@linkcode ChannelState}). */
  snapshot(): ChannelState {
    return {
      nextSequenceNumber: this.#nextSeq,
      expectedSequenceNumber: this.#rx.expected,
      unacknowledged: this.#tx.unacknowledged(),
      early: this.#rx.held().map(({ sequenceNumber, item }) => ({ sequenceNumber, frame: encodeClientMessage(item) })),
    };
  }

  /**
   * Leaves the session running: waits up to `waitMs` for the agent to acknowledge what was sent, then
   * closes the socket without TerminateSession and returns where the channel stands.
   */
  async detach(waitMs = 2000): Promise<ChannelState> {
    const deadline = Date.now() + waitMs;
    while (!this.#ended && this.#tx.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const state = this.snapshot();
    this.close();
    return state;
  }

  /** Closes the socket and stops timers; safe to call twice. */
  close(): void {
    if (this.#ended) return;
    this.#flushAcks(); // those of this task go before the close frame, as they did when each was sent at once
    this.#ended = true;
    clearInterval(this.#timer);
    clearInterval(this.#pinger);
    clearTimeout(this.#releaser);
    this.#wake();
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws) {
      try {
        ws.close(1000);
      } catch {
        ws.terminate();
      }
    }
  }
}
