import { deepStrictEqual as assertEquals, ok as assert, strictEqual } from "node:assert/strict";
import { ReceiveBuffer, Retransmission, SendBuffer } from "./sequencing.ts";

const frame = (n: number) => new Uint8Array([n]);

Deno.test("ReceiveBuffer delivers in order, holds early messages and fills the gap", () => {
  const rx = new ReceiveBuffer<string>();
  assertEquals(rx.accept(2, "c"), { ack: true, deliver: [], duplicate: false });
  assertEquals(rx.accept(1, "b"), { ack: true, deliver: [], duplicate: false });
  strictEqual(rx.expected, 0);
  assertEquals(rx.accept(0, "a"), { ack: true, deliver: ["a", "b", "c"], duplicate: false });
  strictEqual(rx.expected, 3);
  assertEquals(rx.accept(3, "d").deliver, ["d"]);
});

Deno.test("ReceiveBuffer acknowledges duplicates again but never delivers them twice", () => {
  const rx = new ReceiveBuffer<string>();
  rx.accept(0, "a");
  rx.accept(2, "c");
  assertEquals(rx.accept(0, "a"), { ack: true, deliver: [], duplicate: true }, "already delivered");
  assertEquals(rx.accept(2, "c"), { ack: true, deliver: [], duplicate: true }, "already buffered");
  assertEquals(rx.accept(1, "b").deliver, ["b", "c"]);
});

Deno.test("ReceiveBuffer does not acknowledge early messages beyond its capacity", () => {
  const rx = new ReceiveBuffer<string>(2);
  rx.accept(1, "b");
  rx.accept(2, "c");
  assertEquals(rx.accept(3, "d"), { ack: false, deliver: [], duplicate: false }, "the sender must resend it");
  assertEquals(rx.accept(0, "a").deliver, ["a", "b", "c"]);
  assertEquals(rx.accept(3, "d").deliver, ["d"]);
});

Deno.test("ReceiveBuffer bounds early messages by bytes, not only by count", () => {
  const rx = new ReceiveBuffer<string>(10000, 100);
  strictEqual(rx.accept(1, "b", 60).ack, true);
  assertEquals(rx.accept(2, "c", 60), { ack: false, deliver: [], duplicate: false }, "160 bytes > 100");
  strictEqual(rx.accept(3, "d", 40).ack, true, "exactly 100 bytes fit");
  strictEqual(rx.earlyBytes, 100);
  assertEquals(rx.accept(0, "a", 60).deliver, ["a", "b"]);
  strictEqual(rx.earlyBytes, 40, "delivered messages free their bytes");
  assertEquals(rx.accept(2, "c", 60).deliver, ["c", "d"], "the resend fills the gap");
  strictEqual(rx.earlyBytes, 0);
});

Deno.test("SendBuffer matches acks by sequence number and ignores unknown or repeated ones", () => {
  const tx = new SendBuffer();
  tx.add(0, frame(0), 0);
  tx.add(1, frame(1), 0);
  strictEqual(tx.size, 2);
  strictEqual(tx.acknowledge(1, 10), true);
  strictEqual(tx.acknowledge(1, 10), false);
  strictEqual(tx.acknowledge(7, 10), false);
  strictEqual(tx.size, 1);
});

Deno.test("SendBuffer adapts the timeout to the measured round trip as the plugin does", () => {
  const tx = new SendBuffer();
  strictEqual(tx.rtoMs, Retransmission.initialRtoMs);
  // sample 20: RTTV = 0.25·|100−20| = 20, RTT = 0.875·100 + 0.125·20 = 90, RTO = 90 + max(10, 80) = 170
  tx.add(0, frame(0), 1000);
  tx.acknowledge(0, 1020);
  strictEqual(tx.rtoMs, 170);
  // a steady 90 ms round trip shrinks the variance term to its 10 ms floor
  for (let i = 1; i < 60; i++) {
    tx.add(i, frame(i), 0);
    tx.acknowledge(i, 90);
  }
  assert(Math.abs(tx.rtoMs - 100) < 0.5, `rto ${tx.rtoMs}`);
  // a huge sample is capped at 1 s
  for (let i = 60; i < 100; i++) {
    tx.add(i, frame(i), 0);
    tx.acknowledge(i, 60_000);
  }
  strictEqual(tx.rtoMs, Retransmission.maxRtoMs);
});

Deno.test("SendBuffer resends the oldest due frames first and skips RTT samples of resent ones (Karn)", () => {
  const tx = new SendBuffer();
  tx.add(0, frame(0), 0);
  tx.add(1, frame(1), 50);
  assertEquals(tx.due(100).frames, [], "nothing is older than 200 ms yet");
  assertEquals(tx.due(210, 1).frames, [frame(0)], "only the oldest with a limit of 1");
  strictEqual(tx.oldestAttempts, 1);
  assertEquals(tx.due(260).frames, [frame(1)], "frame 0 was just resent");
  const rto = tx.rtoMs;
  tx.acknowledge(0, 5000);
  strictEqual(tx.rtoMs, rto, "the ack of a resent frame is no RTT sample");
  assertEquals(tx.all(6000).map((e) => e.frame), [frame(1)]);
  assertEquals(tx.due(6100).frames, [], "all() marks frames as sent");
});

Deno.test("SendBuffer settles older messages with a later ack only for agents that discard processed input", () => {
  const frame = (n: number) => new Uint8Array([n]);
  for (const impliesEarlier of [false, true]) {
    const tx = new SendBuffer();
    for (let n = 0; n < 3; n++) {
      tx.add(n, frame(n), 0);
      tx.sent(n);
    }
    tx.acknowledge(0, 10);
    // the connection drops before the ack of 1 arrives; 1 and 2 go again on the next one, then 3 is new
    tx.newConnection();
    for (const { sequenceNumber } of tx.all(20)) tx.sent(sequenceNumber);
    tx.add(3, frame(3), 30);
    tx.sent(3);
    tx.acknowledge(2, 40, impliesEarlier); // the agent passed over 1 in silence: it had processed it
    strictEqual(tx.size, impliesEarlier ? 1 : 2, `impliesEarlier ${impliesEarlier}`);
    strictEqual(tx.impliedAcks, impliesEarlier ? 1 : 0);
    tx.acknowledge(3, 50, impliesEarlier);
    strictEqual(tx.size, impliesEarlier ? 0 : 1);
    if (impliesEarlier) {
      // a settled message still goes now and then, with a backoff, and a late ack ends that
      assertEquals(tx.dueSettled(1000).frames, []);
      assertEquals(tx.dueSettled(1040).frames, [frame(1)]);
      assertEquals(tx.dueSettled(2000).frames, [], "the next one waits 2 s");
      assertEquals(tx.dueSettled(3040).frames, [frame(1)]);
      tx.acknowledge(1, 3050, true);
      assertEquals(tx.dueSettled(100_000).frames, []);
    }
  }
});

Deno.test("SendBuffer settles only messages carried over a dropped connection", () => {
  // at the start of a session an agent whose handler is not ready passes over input in silence too
  const tx = new SendBuffer();
  for (let n = 0; n < 2; n++) {
    tx.add(n, new Uint8Array([n]), 0);
    tx.sent(n);
  }
  tx.acknowledge(1, 10, true);
  strictEqual(tx.size, 1, "0 was never on an earlier connection: it must come again");
});

Deno.test("SendBuffer does not settle a message put on the connection after the acknowledged one", () => {
  const tx = new SendBuffer();
  tx.add(0, new Uint8Array([0]), 0);
  tx.add(1, new Uint8Array([1]), 0);
  tx.sent(0);
  tx.sent(1);
  tx.newConnection();
  tx.sent(1); // on the new connection 1 went first (0 waited, e.g. publication paused)
  tx.sent(0);
  tx.acknowledge(1, 10, true);
  strictEqual(tx.size, 1, "0 reached the agent after 1: its silence says nothing yet");
});

Deno.test("SendBuffer reports exhaustion after the maximum number of attempts", () => {
  const tx = new SendBuffer();
  tx.add(0, frame(0), 0);
  let exhausted = false;
  for (let i = 1; i <= Retransmission.maxAttempts + 1 && !exhausted; i++) exhausted = tx.due(i * 1000).exhausted;
  strictEqual(exhausted, true);
  strictEqual(tx.oldestAttempts, Retransmission.maxAttempts + 1);
});

Deno.test("SendBuffer lists every message not known delivered, settled ones too, for a kept session", () => {
  const tx = new SendBuffer();
  for (let n = 0; n < 3; n++) {
    tx.add(n, frame(n), 0);
    tx.sent(n);
  }
  tx.newConnection();
  tx.sent(0);
  tx.sent(2);
  tx.acknowledge(2, 10, true); // settles 0 (carried over the drop, passed over in silence)
  strictEqual(tx.size, 1);
  assertEquals(tx.unacknowledged().map((m) => m.sequenceNumber), [0, 1]);
});

Deno.test("ReceiveBuffer continues a kept session's numbering and hands back what it holds early", () => {
  const rx = new ReceiveBuffer<string>(10000, 1024, 7);
  assertEquals(rx.accept(3, "old"), { ack: true, deliver: [], duplicate: true });
  assertEquals(rx.accept(9, "early"), { ack: true, deliver: [], duplicate: false });
  assertEquals(rx.held(), [{ sequenceNumber: 9, item: "early" }]);
  assertEquals(rx.accept(7, "a").deliver, ["a"]);
  assertEquals(rx.accept(8, "b").deliver, ["b", "early"]);
  assertEquals(rx.held(), []);
});
