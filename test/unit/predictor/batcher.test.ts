// MicroBatcher: batches close at maxBatchSize, after maxDelayMs, or on flush; at most
// maxInFlightBatches run at once, in order; every item gets its own outcome.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MicroBatcher, type BatcherOptions, type Outcome } from "../../../services/predictor/batcher.js";

type Reason = "size" | "delay" | "flush";

/** A batcher whose run doubles numbers, recording every batch and why it closed. */
function recording(options: Partial<BatcherOptions<number, number>> = {}): {
  batcher: MicroBatcher<number, number>;
  batches: number[][];
  reasons: Reason[];
} {
  const batches: number[][] = [];
  const reasons: Reason[] = [];
  const batcher = new MicroBatcher<number, number>({
    maxBatchSize: 4,
    maxDelayMs: 60_000,
    maxInFlightBatches: 1,
    run: async (items) => {
      batches.push([...items]);
      return items.map((value) => ({ ok: true, value: value * 2 }));
    },
    onBatch: (info) => reasons.push(info.reason),
    ...options,
  });
  return { batcher, batches, reasons };
}

function values(outcomes: Outcome<number>[]): number[] {
  return outcomes.map((o) => {
    assert.ok(o.ok, `expected ok, got ${String(!o.ok && o.error)}`);
    return o.value;
  });
}

/** A gate a test opens by hand. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

test("a batch closes at maxBatchSize with exactly that many items, in order", async () => {
  const { batcher, batches, reasons } = recording({ maxBatchSize: 4 });
  const results = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => batcher.submit(i));
  assert.deepEqual(values(await Promise.all(results)), [2, 4, 6, 8, 10, 12, 14, 16]);
  assert.deepEqual(batches, [
    [1, 2, 3, 4],
    [5, 6, 7, 8],
  ]);
  assert.deepEqual(reasons, ["size", "size"]);
  assert.equal(batcher.queued, 0);
});

test("a batch with fewer items closes after maxDelayMs", async () => {
  const { batcher, batches, reasons } = recording({ maxBatchSize: 100, maxDelayMs: 20 });
  const results = [1, 2, 3].map((i) => batcher.submit(i));
  assert.deepEqual(batches, [], "nothing runs before the delay");
  assert.equal(batcher.queued, 3);
  assert.deepEqual(values(await Promise.all(results)), [2, 4, 6]);
  assert.deepEqual(batches, [[1, 2, 3]]);
  assert.deepEqual(reasons, ["delay"]);
});

test("after a size close the next item starts a new delay", async () => {
  const { batcher, batches, reasons } = recording({ maxBatchSize: 2, maxDelayMs: 20 });
  const results = [1, 2, 3].map((i) => batcher.submit(i));
  assert.deepEqual(values(await Promise.all(results)), [2, 4, 6]);
  assert.deepEqual(batches, [[1, 2], [3]]);
  assert.deepEqual(reasons, ["size", "delay"]);
});

test("at most maxInFlightBatches run at once; waiting batches start in order", async () => {
  const gates: Array<ReturnType<typeof gate>> = [];
  const started: number[][] = [];
  let running = 0;
  let maxRunning = 0;
  const batcher = new MicroBatcher<number, number>({
    maxBatchSize: 1,
    maxDelayMs: 60_000,
    maxInFlightBatches: 2,
    run: async (items) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      started.push([...items]);
      const g = gate();
      gates.push(g);
      await g.promise;
      running--;
      return items.map((value) => ({ ok: true, value }));
    },
  });
  const results = [1, 2, 3, 4, 5].map((i) => batcher.submit(i));
  await tick();
  assert.deepEqual(started, [[1], [2]]);
  assert.equal(batcher.inFlightBatches, 2);
  assert.equal(batcher.queued, 3);

  gates[1]?.open(); // the second finishes first: the third starts, nothing else
  await tick();
  assert.deepEqual(started, [[1], [2], [3]]);
  assert.equal(batcher.inFlightBatches, 2);
  assert.equal(batcher.queued, 2);

  gates[0]?.open();
  await tick();
  assert.deepEqual(started, [[1], [2], [3], [4]]);
  gates[2]?.open();
  gates[3]?.open();
  await tick();
  assert.deepEqual(started, [[1], [2], [3], [4], [5]]);
  gates[4]?.open();
  assert.deepEqual(values(await Promise.all(results)), [1, 2, 3, 4, 5]);
  assert.equal(maxRunning, 2);
  assert.equal(batcher.inFlightBatches, 0);
});

test("each item's outcome reaches its own submitter", async () => {
  const batcher = new MicroBatcher<number, string>({
    maxBatchSize: 6,
    maxDelayMs: 60_000,
    maxInFlightBatches: 1,
    run: async (items) =>
      items.map((i) =>
        i % 2 === 0
          ? { ok: true as const, value: `even ${i}` }
          : { ok: false as const, error: new Error(`odd ${i}`) },
      ),
  });
  const outcomes = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => batcher.submit(i)));
  outcomes.forEach((o, idx) => {
    const i = idx + 1;
    if (i % 2 === 0) assert.deepEqual(o, { ok: true, value: `even ${i}` });
    else {
      assert.equal(o.ok, false);
      assert.equal(!o.ok && (o.error as Error).message, `odd ${i}`);
    }
  });
});

test("a run that throws fails every item of its batch and only that batch", async () => {
  const boom = new Error("model exploded");
  const batcher = new MicroBatcher<number, number>({
    maxBatchSize: 2,
    maxDelayMs: 60_000,
    maxInFlightBatches: 2,
    run: async (items) => {
      if (items.includes(3)) throw boom;
      return items.map((value) => ({ ok: true, value }));
    },
  });
  const outcomes = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => batcher.submit(i)));
  assert.deepEqual(outcomes[0], { ok: true, value: 1 });
  assert.deepEqual(outcomes[1], { ok: true, value: 2 });
  assert.deepEqual(outcomes[2], { ok: false, error: boom });
  assert.deepEqual(outcomes[3], { ok: false, error: boom });
  assert.deepEqual(outcomes[4], { ok: true, value: 5 });
  assert.deepEqual(outcomes[5], { ok: true, value: 6 });
});

test("a run returning too few outcomes fails the items left without one", async () => {
  const batcher = new MicroBatcher<number, number>({
    maxBatchSize: 3,
    maxDelayMs: 60_000,
    maxInFlightBatches: 1,
    run: async (items) => [{ ok: true, value: (items[0] ?? 0) * 10 }],
  });
  const [a, b, c] = await Promise.all([1, 2, 3].map((i) => batcher.submit(i)));
  assert.deepEqual(a, { ok: true, value: 10 });
  assert.equal(b?.ok, false);
  assert.equal(c?.ok, false);
  assert.match(String(!c?.ok && (c?.error as Error).message), /no outcome/);
});

test("flush() closes the open batch now; an empty flush runs nothing", async () => {
  const { batcher, batches, reasons } = recording({ maxBatchSize: 10, maxDelayMs: 60_000 });
  batcher.flush();
  const results = [1, 2].map((i) => batcher.submit(i));
  await tick();
  assert.deepEqual(batches, []);
  batcher.flush();
  assert.deepEqual(values(await Promise.all(results)), [2, 4]);
  assert.deepEqual(batches, [[1, 2]]);
  assert.deepEqual(reasons, ["flush"]);
  batcher.flush();
  await tick();
  assert.equal(batches.length, 1);
});

test("stop() completes what was submitted; a submit after it resolves ok:false", async () => {
  const { batcher, batches, reasons } = recording({ maxBatchSize: 10, maxDelayMs: 60_000 });
  const before = [1, 2, 3].map((i) => batcher.submit(i));
  batcher.stop();
  const after = await batcher.submit(4);
  assert.equal(after.ok, false);
  assert.match(String(!after.ok && (after.error as Error).message), /closed/);
  assert.deepEqual(values(await Promise.all(before)), [2, 4, 6]);
  assert.deepEqual(batches, [[1, 2, 3]]);
  assert.deepEqual(reasons, ["flush"]);
});
