/**
 * Sequencing of the data channel, with no I/O: the buffer of sent-but-unacknowledged messages with
 * an adaptive retransmission timeout, and the receive buffer that delivers in order, holds early
 * messages and drops duplicates.
 *
 * Constants and formulas from aws/session-manager-plugin `src/config/config.go` and
 * `src/datachannel/streaming.go` (`CalculateRetransmissionTimeout`, `ResendStreamDataMessageScheduler`,
 * `HandleOutputMessage`); the agent uses the same (aws/amazon-ssm-agent `agent/session/config`).
 *
 * @module
 */

/** Retransmission constants (plugin `config.go`). */
export const Retransmission = {
  initialRtoMs: 200,
  initialRttMs: 100,
  minRttVarianceTermMs: 10,
  maxRtoMs: 1000,
  schedulerIntervalMs: 100,
  /** resend attempts of one message before the session is given up (about five minutes) */
  maxAttempts: 3000,
} as const;

interface Pending {
  sequenceNumber: number;
  frame: Uint8Array;
  firstSentAt: number;
  lastSentAt: number;
  attempts: number;
  /** the connection it was last put on, and the place of its first transmission there */
  connection: number;
  order: number;
  /** the connection it was first put on */
  firstConnection: number;
}

/** How often a message settled by a later ack is still sent again: from 1 s, doubling, at most every 30 s. */
const SETTLED_RESEND_MS = { initial: 1000, max: 30_000 } as const;

/**
 * Messages sent and not yet acknowledged, in sequence order. Acks match by sequence number only,
 * as both the plugin and the agent do.
 *
 * @example Adaptive timeout
 * ```ts
 * import { SendBuffer } from "./sequencing.ts";
 * const buf = new SendBuffer();
 * buf.add(0, new Uint8Array(1), 0);
 * buf.acknowledge(0, 40);
 * console.assert(buf.rtoMs < 200);
 * ```
 */
export class SendBuffer {
  #pending = new Map<number, Pending>();
  #rtt: number = Retransmission.initialRttMs;
  #rttVariance = 0;
  #rto: number = Retransmission.initialRtoMs;
  #connection = 0;
  #order = 0;
  #implied = 0;
  #settled = new Map<number, { entry: Pending; nextAt: number; backoff: number }>();

  /** the current retransmission timeout in milliseconds */
  get rtoMs(): number {
    return this.#rto;
  }

  /** how many messages wait for an acknowledgement */
  get size(): number {
    return this.#pending.size;
  }

  /** remembers a message just sent */
  add(sequenceNumber: number, frame: Uint8Array, now: number): void {
    this.#pending.set(sequenceNumber, {
      sequenceNumber,
      frame,
      firstSentAt: now,
      lastSentAt: now,
      attempts: 0,
      connection: -1,
      order: 0,
      firstConnection: -1,
    });
  }

  /** a new connection (after a resume): transmission order starts over */
  newConnection(): void {
    this.#connection++;
  }

  /** records that the message was put on the current connection */
  sent(sequenceNumber: number): void {
    const entry = this.#pending.get(sequenceNumber) ?? this.#settled.get(sequenceNumber)?.entry;
    if (!entry || entry.connection === this.#connection) return;
    if (entry.firstConnection < 0) entry.firstConnection = this.#connection;
    entry.connection = this.#connection;
    entry.order = ++this.#order;
  }

  /**
   * Removes an acknowledged message; returns false for unknown or repeated acks. The RTT sample is
   * taken only from messages sent once (Karn), so a resend's ack cannot shrink the timeout.
   *
   * With `impliesEarlier` (agents that discard input they have already processed without a new ack,
   * before 3.2.1041.0) the ack also settles every older message put on this connection before this
   * one: the agent handles messages in the order they arrive and acks each it takes, so one it passed
   * over in silence is one it had processed, whose ack was lost with an earlier connection.
   */
  acknowledge(sequenceNumber: number, now: number, impliesEarlier = false): boolean {
    this.#settled.delete(sequenceNumber); // its ack came after all
    const entry = this.#pending.get(sequenceNumber);
    if (!entry) return false;
    this.#pending.delete(sequenceNumber);
    if (entry.attempts === 0) this.#sample(now - entry.firstSentAt);
    if (impliesEarlier && entry.connection === this.#connection) {
      for (const older of this.#pending.values()) {
        if (older.sequenceNumber > sequenceNumber) break;
        // only a message carried over a dropped connection: at the start of a session these agents also
        // pass over input in silence while their handler is not ready (ErrHandlerNotReady, 3.0.655.0 on),
        // and that input must come again; so a settled message is still sent, rarely, in case
        if (
          older.connection === this.#connection && older.order < entry.order &&
          older.firstConnection < this.#connection
        ) {
          this.#pending.delete(older.sequenceNumber);
          this.#settled.set(older.sequenceNumber, {
            entry: older,
            nextAt: now + SETTLED_RESEND_MS.initial,
            backoff: SETTLED_RESEND_MS.initial,
          });
          this.#implied++;
        }
      }
    }
    return true;
  }

  /**
   * Settled messages (see {@linkcode SendBuffer.acknowledge}) to send again now, with a backoff; they
   * never exhaust the session. An agent that had processed one discards it again; one whose handler
   * was not ready takes it now.
   */
  dueSettled(now: number): { frames: Uint8Array[]; sequenceNumbers: number[] } {
    const frames: Uint8Array[] = [];
    const sequenceNumbers: number[] = [];
    for (const settled of this.#settled.values()) {
      if (settled.nextAt > now) continue;
      settled.backoff = Math.min(settled.backoff * 2, SETTLED_RESEND_MS.max);
      settled.nextAt = now + settled.backoff;
      frames.push(settled.entry.frame);
      sequenceNumbers.push(settled.entry.sequenceNumber);
    }
    return { frames, sequenceNumbers };
  }

  /** messages settled by a later ack (see {@linkcode SendBuffer.acknowledge}) */
  get impliedAcks(): number {
    return this.#implied;
  }

  #sample(rtt: number): void {
    this.#rttVariance = 0.75 * this.#rttVariance + 0.25 * Math.abs(this.#rtt - rtt);
    this.#rtt = 0.875 * this.#rtt + 0.125 * rtt;
    this.#rto = Math.min(
      Retransmission.maxRtoMs,
      this.#rtt + Math.max(Retransmission.minRttVarianceTermMs, 4 * this.#rttVariance),
    );
  }

  /**
   * The frames to send again now: every pending message, oldest first, whose last transmission is
   * older than the timeout, at most `limit` of them. Marks them as sent at `now`.
   */
  due(now: number, limit = 256): { frames: Uint8Array[]; sequenceNumbers: number[]; exhausted: boolean } {
    const frames: Uint8Array[] = [];
    const sequenceNumbers: number[] = [];
    let exhausted = false;
    for (const entry of this.#pending.values()) {
      if (frames.length >= limit) break;
      if (now - entry.lastSentAt < this.#rto) continue;
      entry.attempts++;
      entry.lastSentAt = now;
      if (entry.attempts > Retransmission.maxAttempts) exhausted = true;
      frames.push(entry.frame);
      sequenceNumbers.push(entry.sequenceNumber);
    }
    return { frames, sequenceNumbers, exhausted };
  }

  /** every pending message, oldest first, marked as sent at `now` (after a reconnect) */
  all(now: number): { sequenceNumber: number; frame: Uint8Array }[] {
    return [...this.#pending.values()].map((entry) => {
      entry.lastSentAt = now;
      return { sequenceNumber: entry.sequenceNumber, frame: entry.frame };
    });
  }

  /**
   * Every message not known to be delivered, oldest first: pending ones and those settled by a later
   * ack. A session left disconnected keeps them, to send again when it is resumed.
   */
  unacknowledged(): { sequenceNumber: number; frame: Uint8Array }[] {
    const all = [...this.#pending.values(), ...[...this.#settled.values()].map((s) => s.entry)];
    return all.sort((a, b) => a.sequenceNumber - b.sequenceNumber).map((e) => ({
      sequenceNumber: e.sequenceNumber,
      frame: e.frame,
    }));
  }

  /** the number of resend attempts of the oldest pending message */
  get oldestAttempts(): number {
    for (const entry of this.#pending.values()) return entry.attempts;
    return 0;
  }
}

/** What the receiver does with one incoming stream data message. */
export interface ReceiveResult<T> {
  /** acknowledge it (true for in-order, early and duplicate messages alike) */
  ack: boolean;
  /** messages now deliverable, in order */
  deliver: T[];
  duplicate: boolean;
}

/**
 * The bytes of early (out-of-order) payloads the receiver holds. The plugin bounds the buffer by count
 * only (10000 messages), which a peer sending large frames turns into hundreds of megabytes; beyond
 * this the receiver leaves messages unacknowledged and the agent resends them once the gap is filled.
 * The agent's own payloads are at most 1 KiB, so 4 MiB holds about 4000 of them.
 */
export const EARLY_BYTES_LIMIT = 4 * 1024 * 1024;

/**
 * Orders incoming stream data: delivers the expected sequence number and any buffered successors,
 * buffers early messages (up to `capacity` messages, 10000 as in the plugin, and `maxBytes` bytes),
 * and reports duplicates.
 *
 * @example Early message held until the gap fills
 * ```ts
 * import { ReceiveBuffer } from "./sequencing.ts";
 * const rx = new ReceiveBuffer<string>();
 * console.assert(rx.accept(1, "b", 1).deliver.length === 0);
 * console.assert(rx.accept(0, "a", 1).deliver.join("") === "ab");
 * ```
 */
export class ReceiveBuffer<T> {
  #expected = 0;
  #early = new Map<number, { item: T; size: number }>();
  #earlyBytes = 0;
  readonly capacity: number;
  readonly maxBytes: number;

  constructor(capacity = 10000, maxBytes: number = EARLY_BYTES_LIMIT, expected = 0) {
    this.capacity = capacity;
    this.maxBytes = maxBytes;
    this.#expected = expected;
  }

  /** the early messages held, by sequence number (acknowledged already: a resumed session must keep them) */
  held(): { sequenceNumber: number; item: T }[] {
    return [...this.#early].sort(([a], [b]) => a - b).map(([sequenceNumber, { item }]) => ({ sequenceNumber, item }));
  }

  /** the next sequence number to deliver */
  get expected(): number {
    return this.#expected;
  }

  /** the payload bytes of early messages held now */
  get earlyBytes(): number {
    return this.#earlyBytes;
  }

  /** takes one message of `size` payload bytes */
  accept(sequenceNumber: number, item: T, size = 0): ReceiveResult<T> {
    if (sequenceNumber < this.#expected || this.#early.has(sequenceNumber)) {
      // a duplicate: ack again, since the first ack may have been lost
      return { ack: true, deliver: [], duplicate: true };
    }
    if (sequenceNumber > this.#expected) {
      if (this.#early.size >= this.capacity || this.#earlyBytes + size > this.maxBytes) {
        return { ack: false, deliver: [], duplicate: false };
      }
      this.#early.set(sequenceNumber, { item, size });
      this.#earlyBytes += size;
      return { ack: true, deliver: [], duplicate: false };
    }
    const deliver = [item];
    this.#expected++;
    for (let next = this.#early.get(this.#expected); next !== undefined; next = this.#early.get(this.#expected)) {
      this.#early.delete(this.#expected);
      this.#earlyBytes -= next.size;
      deliver.push(next.item);
      this.#expected++;
    }
    return { ack: true, deliver, duplicate: false };
  }
}
