/**
 * The fragment layer (MS-PSRP §2.2.4): every message travels as one or more fragments, each with a
 * 21-byte big-endian header.
 *
 * ```
 * offset 0  ObjectId   uint64  same for all fragments of one message, > 0
 *        8  FragmentId uint64  0, 1, 2, … within the object
 *       16  flags      uint8   0x01 start, 0x02 end
 *       17  BlobLength uint32
 *       21  Blob
 * ```
 *
 * @module
 */
import { DEFAULT_FRAGMENT_SIZE, DEFAULT_MAX_OBJECT_SIZE } from "./constants.ts";
import { PsrpError } from "./errors.ts";

/** Size of a fragment header. */
export const FRAGMENT_HEADER_SIZE = 21;

/** One fragment. */
export interface Fragment {
  objectId: bigint;
  fragmentId: bigint;
  start: boolean;
  end: boolean;
  blob: Uint8Array;
}

/**
 * The bytes of one fragment.
 *
 * @example
 * ```ts
 * import { encodeFragment } from "./fragment.ts";
 * const b = encodeFragment({ objectId: 1n, fragmentId: 0n, start: true, end: true, blob: new Uint8Array([9]) });
 * console.assert(b.length === 22 && b[16] === 3 && b[20] === 1);
 * ```
 */
export function encodeFragment(f: Fragment): Uint8Array {
  const out = new Uint8Array(FRAGMENT_HEADER_SIZE + f.blob.length);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, f.objectId);
  v.setBigUint64(8, f.fragmentId);
  v.setUint8(16, (f.start ? 1 : 0) | (f.end ? 2 : 0));
  v.setUint32(17, f.blob.length);
  out.set(f.blob, FRAGMENT_HEADER_SIZE);
  return out;
}

/**
 * Every fragment in a buffer (one `Data` packet or WS-Man stream may hold several).
 *
 * @throws {PsrpError} when the buffer ends inside a fragment or a header is invalid
 * @example
 * ```ts
 * import { decodeFragments, encodeFragment } from "./fragment.ts";
 * const one = encodeFragment({ objectId: 1n, fragmentId: 0n, start: true, end: true, blob: new Uint8Array(3) });
 * const two = new Uint8Array([...one, ...one]);
 * console.assert(decodeFragments(two).length === 2);
 * ```
 */
export function decodeFragments(bytes: Uint8Array): Fragment[] {
  const out: Fragment[] = [];
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  while (o < bytes.length) {
    if (bytes.length - o < FRAGMENT_HEADER_SIZE) throw new PsrpError("a fragment header is cut short");
    const objectId = v.getBigUint64(o);
    const fragmentId = v.getBigUint64(o + 8);
    const flags = v.getUint8(o + 16);
    const length = v.getUint32(o + 17);
    if (objectId === 0n) throw new PsrpError("a fragment has object id 0");
    if (flags & ~3) throw new PsrpError(`a fragment has reserved flag bits set (0x${flags.toString(16)})`);
    const from = o + FRAGMENT_HEADER_SIZE;
    if (bytes.length - from < length) throw new PsrpError("a fragment's blob is cut short");
    out.push({
      objectId,
      fragmentId,
      start: (flags & 1) !== 0,
      end: (flags & 2) !== 0,
      blob: bytes.subarray(from, from + length),
    });
    o = from + length;
  }
  return out;
}

/**
 * Splits messages into fragments of at most `maxFragmentSize` bytes (header included), numbering objects
 * from 1 as PowerShell does (one counter per sender).
 *
 * @example
 * ```ts
 * import { Fragmenter } from "./fragment.ts";
 * const f = new Fragmenter(21 + 4);
 * const parts = f.fragment(new Uint8Array(10));
 * console.assert(parts.length === 3 && parts[0][16] === 1 && parts[2][16] === 2);
 * ```
 */
export class Fragmenter {
  #nextObjectId = 1n;
  #size: number;

  constructor(maxFragmentSize: number = DEFAULT_FRAGMENT_SIZE) {
    this.#size = 0;
    this.maxFragmentSize = maxFragmentSize;
  }

  /** Largest fragment written, header included (at least 22). */
  get maxFragmentSize(): number {
    return this.#size;
  }

  set maxFragmentSize(size: number) {
    if (!Number.isInteger(size) || size <= FRAGMENT_HEADER_SIZE) {
      throw new RangeError(`a fragment size must exceed the ${FRAGMENT_HEADER_SIZE}-byte header`);
    }
    this.#size = size;
  }

  /** The fragments of one message, in order. */
  fragment(message: Uint8Array): Uint8Array[] {
    const objectId = this.#nextObjectId++;
    const room = this.#size - FRAGMENT_HEADER_SIZE;
    const out: Uint8Array[] = [];
    let fragmentId = 0n;
    let o = 0;
    do {
      const blob = message.subarray(o, o + room);
      o += blob.length;
      out.push(encodeFragment({ objectId, fragmentId, start: fragmentId === 0n, end: o >= message.length, blob }));
      fragmentId++;
    } while (o < message.length);
    return out;
  }
}

/** Options of {@linkcode Defragmenter}. */
export interface DefragmenterOptions {
  /** largest message accepted (default 10 MiB, PowerShell's own limit) */
  maxObjectSize?: number;
  /** most objects in assembly at once (default 64) */
  maxPendingObjects?: number;
}

interface Assembly {
  next: bigint;
  parts: Uint8Array[];
  size: number;
}

/**
 * Reassembles messages from fragments, objects possibly interleaved. Bounded: an object over the size limit,
 * or too many unfinished objects, is a protocol error.
 *
 * @example
 * ```ts
 * import { Defragmenter, Fragmenter, decodeFragments } from "./fragment.ts";
 * const parts = new Fragmenter(23).fragment(new Uint8Array([1, 2, 3]));
 * const d = new Defragmenter();
 * const done = parts.flatMap((p) => decodeFragments(p)).map((f) => d.push(f)).filter((m) => m);
 * console.assert(done.length === 1 && done[0]!.length === 3);
 * ```
 */
export class Defragmenter {
  readonly #max: number;
  readonly #maxPending: number;
  readonly #pending = new Map<bigint, Assembly>();

  constructor(options: DefragmenterOptions = {}) {
    this.#max = options.maxObjectSize ?? DEFAULT_MAX_OBJECT_SIZE;
    this.#maxPending = options.maxPendingObjects ?? 64;
  }

  /**
   * Takes one fragment; returns the whole message when this was its last fragment.
   *
   * @throws {PsrpError} on fragments out of order, a missing start, or a limit exceeded
   */
  push(f: Fragment): Uint8Array | undefined {
    if (f.start) {
      if (f.fragmentId !== 0n) throw new PsrpError(`object ${f.objectId} starts at fragment ${f.fragmentId}`);
      if (this.#pending.has(f.objectId)) throw new PsrpError(`object ${f.objectId} started twice`);
      if (f.blob.length > this.#max) throw this.#tooBig(f.objectId);
      if (f.end) return f.blob;
      if (this.#pending.size >= this.#maxPending) {
        throw new PsrpError(`more than ${this.#maxPending} messages are in assembly at once`);
      }
      this.#pending.set(f.objectId, { next: 1n, parts: [f.blob.slice()], size: f.blob.length });
      return undefined;
    }
    const a = this.#pending.get(f.objectId);
    if (!a) throw new PsrpError(`fragment ${f.fragmentId} of object ${f.objectId} has no start fragment`);
    if (f.fragmentId !== a.next) {
      throw new PsrpError(`object ${f.objectId}: fragment ${f.fragmentId} arrived, expected ${a.next}`);
    }
    a.size += f.blob.length;
    if (a.size > this.#max) {
      this.#pending.delete(f.objectId);
      throw this.#tooBig(f.objectId);
    }
    a.next++;
    a.parts.push(f.blob.slice());
    if (!f.end) return undefined;
    this.#pending.delete(f.objectId);
    const out = new Uint8Array(a.size);
    let o = 0;
    for (const p of a.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /** Number of messages started and not yet finished. */
  get pending(): number {
    return this.#pending.size;
  }

  #tooBig(objectId: bigint): PsrpError {
    return new PsrpError(`object ${objectId} is larger than ${this.#max} bytes`);
  }
}
