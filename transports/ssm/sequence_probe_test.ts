import { deepStrictEqual as assertEquals, ok as assert, rejects, strictEqual } from "node:assert/strict";
import { probeExpectedSequence } from "./sequence_probe.ts";

/** An agent before 3.2.1041.0: acks s ≥ expected, processes in order, keeps early ones, drops old ones unacked. */
function oldAgent(expected: number) {
  const kept = new Set<number>();
  const agent = {
    expected,
    round(seqs: number[]): Promise<ReadonlySet<number>> {
      const acked = new Set<number>();
      for (const s of seqs) {
        if (s < agent.expected) continue;
        acked.add(s);
        kept.add(s);
        while (kept.delete(agent.expected)) agent.expected++;
      }
      return Promise.resolve(acked);
    },
  };
  return agent;
}

Deno.test("probeExpectedSequence() finds the agent's expected number and the probes it keeps", async () => {
  for (const e of [0, 1, 2, 3, 5, 17, 1000, 4097, 123456, 2 ** 30 + 7]) {
    const agent = oldAgent(e);
    const r = await probeExpectedSequence((seqs) => agent.round(seqs));
    strictEqual(r.next, agent.expected, `expected ${e}: next is where the agent stands after the probes`);
    assert(r.next >= e);
    assert(r.kept.every((s) => s > r.next), "kept probes lie beyond next");
    assert(r.probes <= 200 && r.rounds <= 10, `expected ${e}: ${r.probes} probes in ${r.rounds} rounds`);
  }
});

Deno.test("probeExpectedSequence() costs few probes for a session of a few thousand inputs", async () => {
  const agent = oldAgent(3000);
  const r = await probeExpectedSequence((seqs) => agent.round(seqs));
  strictEqual(r.next, agent.expected);
  assertEquals([r.probes <= 33 + 3 * 16, r.rounds <= 4], [true, true], `${r.probes} probes, ${r.rounds} rounds`);
});

Deno.test("probeExpectedSequence() fails when no probe is acknowledged", async () => {
  await rejects(probeExpectedSequence(() => Promise.resolve(new Set())), /no probe was acknowledged/);
});

Deno.test("probeExpectedSequence() stops at its probe budget", async () => {
  const agent = oldAgent(2 ** 30 + 7);
  await rejects(probeExpectedSequence((seqs) => agent.round(seqs), { maxProbes: 40 }), /within 40 probes/);
});
