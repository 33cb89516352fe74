/**
 * Finding the agent's next expected input number without state, by probing with idempotent messages
 * (a `size` input message carrying the terminal size). No I/O: the caller sends the probes.
 *
 * It holds only for agents before 3.2.1041.0: aws/amazon-ssm-agent `agent/session/datachannel/datachannel.go`
 * `handleStreamDataMessage` processes and acks the expected number, acks and keeps a higher one in its
 * IncomingMessageBuffer (capacity 100000, `agent/session/config/config.go`), and until commit b0e8d778
 * discarded a lower one without an ack. From that commit on a lower one is acked too, so acks tell nothing
 * and {@linkcode probeExpectedSequence} must not be used (the handshake's AgentVersion tells which).
 *
 * @module
 */

/** Limits of {@linkcode probeExpectedSequence}. */
export interface SequenceProbeOptions {
  /** probes per narrowing round (default 16) */
  perRound?: number;
  /** the highest number the first, geometric round probes (default 2^31) */
  ceiling?: number;
  /** probes in all (default 200) */
  maxProbes?: number;
}

/** What probing found. */
export interface SequenceProbeResult {
  /** the agent's expected number once it has processed the probes it kept: the next number to use */
  next: number;
  /** probes above `next` the agent keeps and will apply when the sequence reaches them: never reuse them */
  kept: number[];
  /** probes sent */
  probes: number;
  /** rounds, each waiting for the acks that do not come */
  rounds: number;
}

/**
 * Sends rounds of probes through `round` (which resolves with the numbers acknowledged within its
 * bounded wait) and brackets the agent's expected number E: a probe at s is acked iff s ≥ E. The first
 * round is geometric (0, 1, 2, 4, …), the next ones evenly spaced inside the bracket. A probe at E is
 * processed, and so are the kept probes that follow it without a gap, so `next` is past them.
 *
 * @throws {Error} when no probe of the first round is acknowledged (the agent is gone or the number is
 *   above the ceiling), or when the probe budget runs out
 * @example Against a stand-in agent expecting 1000
 * ```ts
 * import { probeExpectedSequence } from "./sequence_probe.ts";
 * const r = await probeExpectedSequence((seqs) => Promise.resolve(new Set(seqs.filter((s) => s >= 1000))));
 * console.log(r.next >= 1000);
 * ```
 */
export async function probeExpectedSequence(
  round: (seqs: number[]) => Promise<ReadonlySet<number>>,
  options: SequenceProbeOptions = {},
): Promise<SequenceProbeResult> {
  const perRound = options.perRound ?? 16;
  const ceiling = options.ceiling ?? 2 ** 31;
  const maxProbes = options.maxProbes ?? 200;
  const sent = new Set<number>();
  let probes = 0;
  let rounds = 0;
  const send = async (seqs: number[]) => {
    if (probes + seqs.length > maxProbes) throw new Error(`no expected number found within ${maxProbes} probes`);
    probes += seqs.length;
    rounds++;
    for (const s of seqs) sent.add(s);
    return await round(seqs);
  };
  const first = [0];
  for (let s = 1; s <= ceiling; s *= 2) first.push(s);
  const acked = await send(first);
  // below is the highest number known unacked (below E), above the lowest known acked (≥ E)
  let above = Infinity;
  for (const s of first) if (acked.has(s)) above = Math.min(above, s);
  if (above === Infinity) throw new Error("no probe was acknowledged");
  let below = -1;
  for (const s of first) if (s < above) below = Math.max(below, s);
  while (above - below > 1) {
    const gap = above - below - 1;
    const n = Math.min(perRound, gap);
    const seqs: number[] = [];
    for (let i = 1; i <= n; i++) {
      const s = below + Math.round((i * (gap + 1)) / (n + 1));
      if (s > below && s < above && !sent.has(s) && seqs.at(-1) !== s) seqs.push(s);
    }
    if (seqs.length === 0) break;
    const got = await send(seqs);
    for (const s of seqs) {
      if (got.has(s)) above = Math.min(above, s);
    }
    for (const s of seqs) if (s < above) below = Math.max(below, s);
  }
  let next = above;
  while (sent.has(next)) next++;
  const kept = [...sent].filter((s) => s > next).sort((a, b) => a - b);
  return { next, kept, probes, rounds };
}
