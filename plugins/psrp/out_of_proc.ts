/**
 * A {@linkcode PsrpWire} over the out-of-process framing (`pwsh -s`, the SSH `powershell` subsystem): it
 * fragments messages into `<Data>` lines, keeps PowerShell's flow control (one `Data` line in flight per
 * GUID until its `DataAck`; a pipeline's data only after its `CommandAck`), and turns the server's lines back
 * into messages for the {@linkcode RunspacePool}. Bytes in through {@linkcode OutOfProcWire.receive}, lines
 * out through the `write` callback: no socket, no timer.
 *
 * @module
 */
import { TransportError } from "../errors.ts";
import { DEFAULT_FRAGMENT_SIZE, MessageType, NIL_GUID } from "./constants.ts";
import { PsrpError } from "./errors.ts";
import { decodeFragments, Defragmenter, Fragmenter } from "./fragment.ts";
import { decodeMessage, encodeMessage, type Message } from "./message.ts";
import { encodePacket, type Packet, PacketParser, type PacketStream } from "./packet.ts";
import type { PsrpWire, RunspacePool } from "./runspace_pool.ts";

/** Options of {@linkcode OutOfProcWire}. */
export interface OutOfProcWireOptions {
  /** writes one packet line (newline included) to the server's stdin, in call order */
  write(line: string): void;
  /** largest fragment sent, header included (default 32 KiB) */
  fragmentSize?: number;
  /** largest message accepted (default 10 MiB) */
  maxObjectSize?: number;
  /** longest packet line accepted (default 16 MiB) */
  maxLineLength?: number;
}

type Item =
  | { kind: "Command" | "Close" | "Signal" }
  /** `alone`: a pipeline's first message, which shares no line (the server sets the pipeline up from it) */
  | { kind: "Data"; stream: PacketStream; data: Uint8Array; alone?: boolean };

const ACK: Record<Item["kind"], Packet["kind"]> = {
  Command: "CommandAck",
  Close: "CloseAck",
  Signal: "SignalAck",
  Data: "DataAck",
};

interface Queue {
  items: Item[];
  /** the ack the head item waits for */
  waiting?: Packet["kind"];
  /** items the awaited ack settles: Data items sent together in one line */
  inFlight: number;
  /** bytes of Data items queued */
  bytes: number;
  /** drained() callers: resolved when bytes fall to their mark */
  waiters: { mark: number; resolve(): void; reject(e: unknown): void }[];
}

/**
 * The out-of-process wire. Attach the pool with {@linkcode OutOfProcWire.attach}, feed the server's stdout to
 * {@linkcode OutOfProcWire.receive} and call {@linkcode OutOfProcWire.end} at its end.
 *
 * @example Lines out
 * ```ts
 * import { OutOfProcWire } from "./out_of_proc.ts";
 * const lines: string[] = [];
 * const wire = new OutOfProcWire({ write: (l) => lines.push(l) });
 * wire.createPipeline("3f1c0b8e-1111-4222-8333-944455556666");
 * console.assert(lines[0] === "<Command PSGuid='3f1c0b8e-1111-4222-8333-944455556666' />\n");
 * ```
 */
export class OutOfProcWire implements PsrpWire {
  readonly #o: OutOfProcWireOptions;
  readonly #parser: PacketParser;
  readonly #fragmenter: Fragmenter;
  readonly #defragmenter: Defragmenter;
  readonly #queues = new Map<string, Queue>();
  #pool?: RunspacePool;
  #closing?: { resolve(): void; reject(e: unknown): void; promise: Promise<void> };
  #closeSent = false;
  #batching = false;
  #ended = false;
  #failure?: Error;

  constructor(options: OutOfProcWireOptions) {
    this.#o = options;
    this.#parser = new PacketParser({ maxLineLength: options.maxLineLength });
    this.#fragmenter = new Fragmenter(options.fragmentSize ?? DEFAULT_FRAGMENT_SIZE);
    this.#defragmenter = new Defragmenter({ maxObjectSize: options.maxObjectSize });
  }

  /** Routes received messages to `pool`. */
  attach(pool: RunspacePool): void {
    this.#pool = pool;
  }

  /** Bytes of unfinished lines and messages held now (bounded by the limits). */
  get buffered(): number {
    return this.#parser.buffered;
  }

  send(message: Message, stream: PacketStream): void {
    const q = this.#queue(message.pid);
    // pwsh 7.6 leaves a pipeline Running when its input shares the CREATE_PIPELINE line
    const alone = message.type === MessageType.CREATE_PIPELINE || message.type === MessageType.GET_COMMAND_METADATA;
    for (const fragment of this.#fragmenter.fragment(encodeMessage(message))) {
      q.items.push({ kind: "Data", stream, data: fragment, alone });
      q.bytes += fragment.length;
    }
    if (!this.#batching) this.#pump(message.pid);
  }

  /** Runs `fn`; the messages it sends go out together, sharing lines up to the fragment size. */
  batch(fn: () => void): void {
    const outer = this.#batching;
    this.#batching = true;
    try {
      fn();
    } finally {
      this.#batching = outer;
      if (!outer) { for (const guid of [...this.#queues.keys()]) this.#pump(guid); }
    }
  }

  createPipeline(pid: string): void {
    this.#enqueue(pid, { kind: "Command" });
  }

  stopPipeline(pid: string): void {
    this.#enqueue(pid, { kind: "Signal" });
  }

  closePipeline(pid: string): void {
    this.#enqueue(pid, { kind: "Close" });
  }

  drained(pid: string, highWaterMark: number): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const q = this.#queues.get(pid);
    if (!q || q.bytes <= highWaterMark) return Promise.resolve();
    return new Promise((resolve, reject) => q.waiters.push({ mark: highWaterMark, resolve, reject }));
  }

  close(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (!this.#closing) {
      let resolve!: () => void, reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#closing = { resolve, reject, promise };
      this.#maybeClosePool();
    }
    return this.#closing.promise;
  }

  /**
   * Takes bytes from the server's stdout.
   *
   * A protocol error fails the pool (every pending call rejects with it) and is thrown.
   */
  receive(chunk: Uint8Array): void {
    if (this.#failure) return;
    try {
      for (const packet of this.#parser.push(chunk)) this.#packet(packet);
    } catch (err) {
      this.#fail(err instanceof Error ? err : new PsrpError(String(err)));
      throw err;
    }
  }

  /**
   * The server's stdout ended; anything still pending fails, with `error` when the stream itself failed (a
   * transport that carries the framing, such as WinRM's, errors its stream with what went wrong).
   */
  end(error?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    if (error) return this.#fail(error);
    if (this.#closing && this.#closeSent && this.#queues.size === 0) return;
    this.#fail(new TransportError("powershell remoting: the server ended the session", { layer: "channel" }));
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#pool?.fail(err);
    this.#closing?.reject(err);
    for (const q of this.#queues.values()) for (const w of q.waiters.splice(0)) w.reject(err);
  }

  #queue(guid: string): Queue {
    let q = this.#queues.get(guid);
    if (!q) this.#queues.set(guid, q = { items: [], bytes: 0, waiters: [], inFlight: 0 });
    return q;
  }

  #enqueue(guid: string, item: Item): void {
    if (this.#failure) return;
    this.#queue(guid).items.push(item);
    this.#pump(guid);
  }

  #pump(guid: string): void {
    const q = this.#queues.get(guid);
    if (!q || q.waiting || !q.items.length || this.#failure) return;
    const item = q.items[0];
    q.waiting = ACK[item.kind];
    q.inFlight = 1;
    if (item.kind !== "Data") {
      this.#o.write(encodePacket({ kind: item.kind, guid }));
      return;
    }
    // As PowerShell's client does, one line carries up to a fragment's size of queued fragments (fragmentor.cs):
    // SESSION_CAPABILITY with INIT_RUNSPACEPOOL, or many small input objects, cost one DataAck instead of one each.
    const limit = this.#fragmenter.maxFragmentSize;
    let size = item.data.length;
    while (q.inFlight < q.items.length) {
      const next = q.items[q.inFlight];
      if (item.alone || next.kind !== "Data" || next.alone || next.stream !== item.stream) break;
      if (size + next.data.length > limit) break;
      size += next.data.length;
      q.inFlight++;
    }
    let data = item.data;
    if (q.inFlight > 1) {
      data = new Uint8Array(size);
      let at = 0;
      for (const sent of q.items.slice(0, q.inFlight) as { data: Uint8Array }[]) {
        data.set(sent.data, at);
        at += sent.data.length;
      }
    }
    this.#o.write(encodePacket({ kind: "Data", stream: item.stream, guid, data }));
  }

  #packet(p: Packet): void {
    switch (p.kind) {
      case "Data":
        for (const f of decodeFragments(p.data)) {
          const bytes = this.#defragmenter.push(f);
          if (bytes) this.#pool?.receive(decodeMessage(bytes));
        }
        return;
      case "DataAck":
      case "CommandAck":
      case "CloseAck":
      case "SignalAck": {
        const q = this.#queues.get(p.guid);
        if (!q || q.waiting !== p.kind) {
          // PowerShell acks a Signal twice in some races and Data of pipelines already gone; unexpected acks
          // carry no data, so they are dropped rather than failing the session
          return;
        }
        const done = q.items.splice(0, q.inFlight);
        q.waiting = undefined;
        q.inFlight = 0;
        if (done[0]?.kind === "Data") {
          for (const d of done) if (d.kind === "Data") q.bytes -= d.data.length;
          q.waiters = q.waiters.filter((w) => q.bytes <= w.mark ? (w.resolve(), false) : true);
        }
        if (p.kind === "CloseAck") {
          this.#queues.delete(p.guid);
          if (p.guid === NIL_GUID) {
            this.#closing?.resolve();
            return;
          }
          this.#maybeClosePool();
          return;
        }
        this.#pump(p.guid);
        if (!q.items.length) this.#maybeClosePool();
        return;
      }
    }
    throw new PsrpError(`the server sent a client packet (${p.kind})`);
  }

  #maybeClosePool(): void {
    if (!this.#closing || this.#closeSent) return;
    // the server holds the pool's CloseAck until every pipeline is closed (OutOfProcServerMediator.cs)
    for (const [guid, q] of this.#queues) if (guid !== NIL_GUID && q.items.length) return;
    const pool = this.#queues.get(NIL_GUID);
    if (pool?.items.length) return;
    this.#closeSent = true;
    this.#enqueue(NIL_GUID, { kind: "Close" });
  }
}

/** Options of {@linkcode connectOutOfProc}. */
export interface ConnectOutOfProcOptions extends Omit<OutOfProcWireOptions, "write"> {
  /** the server's stdout (`pwsh -s`, or the SSH subsystem channel) */
  readable: ReadableStream<Uint8Array>;
  /** the server's stdin */
  writable: WritableStream<Uint8Array>;
}

/** A wire joined to a pair of byte streams. */
export interface OutOfProcConnection {
  wire: OutOfProcWire;
  /** settles when the server's stdout ends; rejects on a protocol error */
  finished: Promise<void>;
  /** closes the server's stdin (after the pool's CloseAck, the server then exits); safe twice */
  closeInput(): Promise<void>;
}

/**
 * Joins an {@linkcode OutOfProcWire} to byte streams: reads the server's stdout into the wire and writes the
 * wire's lines to its stdin. The streams are the caller's; this owns no process or socket.
 *
 * @example
 * ```ts ignore
 * const child = new Deno.Command("pwsh", { args: ["-NoLogo", "-s"], stdin: "piped", stdout: "piped" }).spawn();
 * const { wire } = connectOutOfProc({ readable: child.stdout, writable: child.stdin });
 * const pool = new RunspacePool({ wire });
 * wire.attach(pool);
 * await pool.open();
 * ```
 */
export function connectOutOfProc(options: ConnectOutOfProcOptions): OutOfProcConnection {
  const writer = options.writable.getWriter();
  const encoder = new TextEncoder();
  const wire: OutOfProcWire = new OutOfProcWire({
    ...options,
    write(line) {
      writer.write(encoder.encode(line)).catch((cause) => {
        wire.end();
        void cause;
      });
    },
  });
  const finished = (async () => {
    try {
      for await (const chunk of options.readable) wire.receive(chunk);
    } catch (error) {
      wire.end(error instanceof Error ? error : new Error(String(error)));
      throw error;
    } finally {
      wire.end();
    }
  })();
  finished.catch(() => {});
  let closed: Promise<void> | undefined;
  const closeInput = () => closed ??= writer.close().catch(() => {});
  return { wire, finished, closeInput };
}
