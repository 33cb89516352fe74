import { AssertionError, deepStrictEqual as assertEquals, ok as assert, strictEqual } from "node:assert/strict";
import { generateSessionName, LEGAL_TRANSITIONS, SESSION_STATES, type SessionState, transition } from "./session.ts";

function throwsError(fn: () => unknown, includes: string): Error {
  try {
    fn();
  } catch (err) {
    assert(err instanceof Error, `expected an Error, got ${String(err)}`);
    assert(
      err.message.includes(includes),
      `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(includes)}`,
    );
    return err;
  }
  throw new AssertionError({ message: "expected a throw" });
}

const EXPECTED: [SessionState, SessionState][] = [
  ["Opening", "Opened"],
  ["Opening", "Broken"],
  ["Opening", "Closed"],
  ["Opened", "Disconnected"],
  ["Opened", "Closing"],
  ["Opened", "Broken"],
  ["Disconnected", "Reconnecting"],
  ["Disconnected", "Closing"],
  ["Disconnected", "Closed"],
  ["Disconnected", "Broken"],
  ["Reconnecting", "Opened"],
  ["Reconnecting", "Disconnected"],
  ["Reconnecting", "Broken"],
  ["Closing", "Closed"],
  ["Broken", "Closing"],
];

Deno.test("transition() allows every legal transition and returns the new state", () => {
  for (const [from, to] of EXPECTED) strictEqual(transition(from, to), to);
});

Deno.test("LEGAL_TRANSITIONS holds exactly the documented transitions", () => {
  const listed: [SessionState, SessionState][] = [];
  for (const from of SESSION_STATES) for (const to of LEGAL_TRANSITIONS[from]) listed.push([from, to]);
  assertEquals(listed.map((t) => t.join("->")).sort(), EXPECTED.map((t) => t.join("->")).sort());
});

Deno.test("transition() throws a plain Error naming both states for every illegal transition", () => {
  const legal = new Set(EXPECTED.map((t) => t.join("->")));
  let illegal = 0;
  for (const from of SESSION_STATES) {
    for (const to of SESSION_STATES) {
      if (legal.has(`${from}->${to}`)) continue;
      illegal++;
      const err = throwsError(() => transition(from, to), `illegal session state transition ${from} -> ${to}`);
      strictEqual(err.constructor, Error);
    }
  }
  strictEqual(illegal, 7 * 7 - EXPECTED.length);
});

Deno.test("transition() says Closed is final", () => {
  throwsError(() => transition("Closed", "Opening"), "Closed may move to nothing: it is final");
});

Deno.test("transition() rejects a state that does not exist", () => {
  throwsError(() => transition("Lost" as SessionState, "Opened"), 'unknown session state "Lost"');
});

Deno.test("generateSessionName() starts at Session1", () => {
  strictEqual(generateSessionName([]), "Session1");
});

Deno.test("generateSessionName() takes the next number", () => {
  strictEqual(generateSessionName(["Session1", "Session2"]), "Session3");
});

Deno.test("generateSessionName() fills the smallest gap and compares case-insensitively", () => {
  strictEqual(generateSessionName(["session1", "SESSION3", "Session2"]), "Session4");
  strictEqual(generateSessionName(["Session1", "Session3"]), "Session2");
});

Deno.test("generateSessionName() ignores names that are not SessionN", () => {
  strictEqual(generateSessionName(["ITTask", "Session01", "Session", "Session1x"]), "Session1");
});
