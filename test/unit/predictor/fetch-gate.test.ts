// Per-partition backpressure: a full partition pauses alone and resumes below half its share.
import { test } from "node:test";
import assert from "node:assert/strict";
import { silentLogger } from "../../../services/common/logger.js";
import { FetchGate, type PausableConsumer } from "../../../services/predictor/fetch-gate.js";

function consumer(options: { throwing?: boolean } = {}) {
  const paused = new Set<number>();
  const c: PausableConsumer = {
    pause: (ts) => {
      if (options.throwing) throw new Error("consumer is restarting");
      for (const t of ts) for (const p of t.partitions) paused.add(p);
    },
    resume: (ts) => {
      for (const t of ts) for (const p of t.partitions) paused.delete(p);
    },
  };
  return { c, paused };
}

const gate = (c: PausableConsumer) =>
  new FetchGate({
    consumer: c,
    topic: "in",
    maxInFlightRecords: 1_000,
    minPerPartition: 100,
    logger: silentLogger,
  });

test("one full partition is paused while the others keep fetching", () => {
  const { c, paused } = consumer();
  const g = gate(c);
  g.assign([0, 1, 2, 3]);
  assert.equal(g.share, 250);
  g.update(1, 250);
  g.update(2, 10);
  assert.deepEqual([...paused], [1]);
  g.update(1, 200);
  assert.deepEqual([...paused], [1], "not resumed above half its share");
  g.update(1, 125);
  assert.deepEqual([...paused], []);
});

test("a share is never below one transaction's worth", () => {
  const g = gate(consumer().c);
  g.assign(Array.from({ length: 50 }, (_, i) => i));
  assert.equal(g.share, 100);
});

test("a new assignment lifts earlier pauses and holds; a closed gate never resumes", () => {
  const { c, paused } = consumer();
  const g = gate(c);
  g.assign([0, 1]);
  g.update(0, 600);
  g.hold(1);
  assert.deepEqual([...paused].sort(), [0, 1]);
  g.assign([0, 1]);
  assert.deepEqual([...paused], []);
  g.close();
  assert.deepEqual([...paused].sort(), [0, 1]);
  g.update(0, 0);
  g.unhold(1);
  assert.deepEqual([...paused].sort(), [0, 1]);
});

test("a held partition stays paused whatever its queue until unheld", () => {
  const { c, paused } = consumer();
  const g = gate(c);
  g.assign([0]);
  g.hold(0);
  g.update(0, 0);
  assert.deepEqual([...paused], [0]);
  g.unhold(0);
  assert.deepEqual([...paused], []);
});

test("pause failing while kafkajs restarts the group does not throw", () => {
  const g = gate(consumer({ throwing: true }).c);
  g.assign([0]);
  assert.doesNotThrow(() => g.update(0, 1_000));
});

test("updates for partitions no longer assigned are ignored", () => {
  const { c, paused } = consumer();
  const g = gate(c);
  g.assign([0]);
  g.update(5, 10_000);
  assert.deepEqual([...paused], []);
});

test("a partition paused, then assigned elsewhere, then back here fetches again", () => {
  const { c, paused } = consumer();
  const g = gate(c);
  g.assign([0, 1]);
  g.update(1, 600);
  assert.deepEqual([...paused], [1]);
  // kafkajs keeps the pause of a partition that a new assignment leaves out.
  g.assign([0]);
  g.assign([0, 1]);
  assert.deepEqual([...paused], []);
});
