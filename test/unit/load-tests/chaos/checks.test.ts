// The chaos checks as pure functions: they pass a clean run and catch a lost id, a duplicate,
// an output nobody sent, a poison record that was scored, an order break, an uncommitted
// input partition, an open transaction, and they time recovery from the outputs.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  checkExactlyOnce,
  checkOffsets,
  checkPerKeyOrder,
  recoveryTimes,
  type InputRecord,
  type OutputRecord,
} from "../../../../load-tests/chaos/checks.js";

/** The element at `i`, failing the test when there is none. */
function at<T>(xs: T[], i: number): T {
  const x = xs[i];
  assert.ok(x !== undefined, `no element ${i}`);
  return x;
}

/** Inputs e-0..e-(n-1), keys k-0/k-1 alternating, on partition (key index), offsets in order. */
function inputs(n: number): InputRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `e-${i}`,
    key: `k-${i % 2}`,
    partition: i % 2,
    offset: Math.floor(i / 2),
    kind: "good",
    expect: "prediction",
  }));
}

/** One prediction per input, in input order, on the input's partition number. */
function predictions(ins: InputRecord[], seenAt = 1_000): OutputRecord[] {
  return ins.map((r) => ({
    id: r.id,
    stream: "prediction",
    key: r.key,
    partition: r.partition,
    offset: r.offset,
    eventId: r.id,
    seenAt,
  }));
}

test("a run with one prediction per input, in order, passes every check", () => {
  const ins = inputs(10);
  const outs = predictions(ins);
  const once = checkExactlyOnce(ins, outs);
  assert.deepEqual(
    [once.lost, once.duplicated, once.unexpected, once.misrouted, once.idMismatch],
    [[], [], [], [], []],
  );
  assert.equal(once.predictions, 10);
  assert.deepEqual(checkPerKeyOrder(ins, outs), { keys: 2, breaks: 0, examples: [] });
});

test("an input with no output is lost", () => {
  const ins = inputs(6);
  const outs = predictions(ins).filter((o) => o.id !== "e-3");
  assert.deepEqual(checkExactlyOnce(ins, outs).lost, ["e-3"]);
});

test("an id that came out twice is duplicated, also when once as a prediction and once as a DLQ record", () => {
  const ins = inputs(4);
  const outs = predictions(ins);
  const twice: OutputRecord = { ...at(outs, 1), offset: 99 };
  const dlqToo: OutputRecord = { ...at(outs, 2), stream: "dlq", offset: 0 };
  const r = checkExactlyOnce(ins, [...outs, twice, dlqToo]);
  assert.deepEqual(
    r.duplicated.map((d) => [d.id, d.copies, d.at.map((a) => a.replace(/ seen .*/, ""))]),
    [
      ["e-1", 2, ["prediction 1@0", "prediction 1@99"]],
      ["e-2", 2, ["prediction 0@1", "dlq 0@0"]],
    ],
  );
  assert.deepEqual(r.lost, []);
});

test("an output no input explains, or one without an id, is unexpected", () => {
  const ins = inputs(2);
  const stranger: OutputRecord = { ...at(predictions(ins), 0), id: "e-77" };
  const anonymous: OutputRecord = { ...at(predictions(ins), 0), id: undefined, stream: "dlq" };
  const r = checkExactlyOnce(ins, [...predictions(ins), stranger, anonymous]);
  assert.deepEqual(
    r.unexpected.map((u) => u.id),
    ["e-77", undefined],
  );
});

test("a poison record that was scored, or a good one dead-lettered, is misrouted", () => {
  const ins = inputs(3);
  ins[0] = { ...at(ins, 0), kind: "not-json", expect: "dlq" };
  const outs = predictions(ins);
  outs[1] = { ...at(outs, 1), stream: "dlq" };
  assert.deepEqual(checkExactlyOnce(ins, outs).misrouted, [
    { id: "e-0", kind: "not-json", expected: "dlq", got: "prediction" },
    { id: "e-1", kind: "good", expected: "prediction", got: "dlq" },
  ]);
});

test("a prediction carrying another event's id is an id mismatch", () => {
  const ins = inputs(2);
  const outs = predictions(ins);
  outs[0] = { ...at(outs, 0), eventId: "e-1" };
  assert.deepEqual(checkExactlyOnce(ins, outs).idMismatch, [{ id: "e-0", eventId: "e-1" }]);
});

test("two predictions of one key in the other order than their inputs are an order break", () => {
  const ins = inputs(8);
  const outs = predictions(ins);
  // Key k-0 (partition 0): e-2 and e-4 swap places in the output partition.
  const a = at(outs, 2);
  const b = at(outs, 4);
  assert.deepEqual([a.id, b.id], ["e-2", "e-4"]);
  [a.offset, b.offset] = [b.offset, a.offset];
  const r = checkPerKeyOrder(ins, outs);
  assert.equal(r.breaks, 1);
  assert.deepEqual(r.examples, [{ key: "k-0", before: "e-4", after: "e-2" }]);
});

test("order is per key: interleaved keys and records without a key break nothing", () => {
  const ins = inputs(6);
  const outs = predictions(ins).map((o, i) => ({ ...o, partition: 0, offset: 100 - i }));
  // All on one output partition, in reverse: both keys broken...
  assert.equal(checkPerKeyOrder(ins, outs).breaks, 4);
  // ...but without keys there is no order to keep.
  const keyless = outs.map((o) => ({ ...o, key: null }));
  assert.equal(checkPerKeyOrder(ins, keyless).breaks, 0);
});

test("offsets: an input partition not committed to its end, or an output a read_committed reader cannot finish, fail", () => {
  const input = [
    { topic: "in", partition: 0, position: 10, end: 10 },
    { topic: "in", partition: 1, position: 7, end: 9 },
    { topic: "in", partition: 2, position: -1, end: 0 },
  ];
  const outputs = [
    { topic: "out", partition: 0, position: 12, end: 12, lastStable: 12 },
    { topic: "out", partition: 1, position: 5, end: 8, lastStable: 5 },
    { topic: "dlq", partition: 0, position: 3, end: 3, lastStable: 2 },
  ];
  const r = checkOffsets(input, outputs);
  assert.equal(r.ok, false);
  assert.deepEqual(r.uncommitted, [{ partition: 1, committed: 7, end: 9 }]);
  assert.deepEqual(r.hanging, [
    { topic: "out", partition: 1, reached: 5, lastStable: 5, end: 8 },
    { topic: "dlq", partition: 0, reached: 3, lastStable: 2, end: 3 },
  ]);
  assert.equal(checkOffsets(input.slice(0, 1), outputs.slice(0, 1)).ok, true);
});

test("recovery: first output after the heal, and when the last input from before it came out", () => {
  const produced = new Map([
    ["a", 1_000],
    ["b", 2_000],
    ["c", 6_000],
  ]);
  const out = (id: string, seenAt: number): OutputRecord => ({
    id,
    stream: "prediction",
    key: "k",
    partition: 0,
    offset: 0,
    seenAt,
  });
  const window = { label: "kill", faultAt: 3_000, healAt: 5_000 };
  const [r] = recoveryTimes([window], produced, [out("a", 1_100), out("b", 7_500), out("c", 6_500)]);
  assert.deepEqual(r, { label: "kill", outageMs: 2_000, firstOutputMs: 1_500, lagZeroMs: 2_500 });
  const [never] = recoveryTimes([window], produced, [out("a", 1_100), out("c", 6_500)]);
  assert.equal(never?.lagZeroMs, null, "b, produced before the heal, never came out");
  const [idle] = recoveryTimes([window], new Map([["a", 1_000]]), [out("a", 1_100)]);
  assert.deepEqual(idle, { label: "kill", outageMs: 2_000, firstOutputMs: null, lagZeroMs: 0 });
});
