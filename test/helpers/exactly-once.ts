// Checks on a prediction topic read with read_committed: exactly one prediction per input
// id, none missing, and per-key order kept (ids carry their production sequence number).
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { readTopic, type ReadRecord } from "./kafka-read.js";
import { testKafka } from "./stack.js";
import { produceEvents } from "../../load-tests/produce-events.js";

export interface Prediction {
  eventId: string;
  key: string | null;
  partition: number;
}

export function parsePredictions(records: ReadRecord[]): Prediction[] {
  return records.map((r) => {
    const v = JSON.parse(r.value?.toString() ?? "null") as { eventId: string };
    return { eventId: v.eventId, key: r.key, partition: r.partition };
  });
}

/** Event ids look like "<runId>-<seq>". */
const seqOf = (id: string): number => Number(id.slice(id.lastIndexOf("-") + 1));

export function assertExactlyOnce(predictions: Prediction[], expectedIds: string[]): void {
  const counts = new Map<string, number>();
  for (const p of predictions) counts.set(p.eventId, (counts.get(p.eventId) ?? 0) + 1);
  const duplicates = [...counts].filter(([, n]) => n > 1);
  const missing = expectedIds.filter((id) => !counts.has(id));
  const unexpected = [...counts.keys()].filter((id) => !expectedIds.includes(id));
  assert.deepEqual(
    { duplicates: duplicates.length, missing: missing.length, unexpected: unexpected.length },
    { duplicates: 0, missing: 0, unexpected: 0 },
    `duplicates ${JSON.stringify(duplicates.slice(0, 5))}, missing ${JSON.stringify(missing.slice(0, 5))}`,
  );
}

export function assertPerKeyOrder(predictions: Prediction[]): void {
  const lastSeq = new Map<string, number>();
  for (const p of predictions) {
    const key = `${p.key}`;
    const seq = seqOf(p.eventId);
    const prev = lastSeq.get(key);
    assert.ok(prev === undefined || seq > prev, `key ${key}: ${p.eventId} after seq ${prev}`);
    lastSeq.set(key, seq);
  }
}

/** Produces `count` shop events with ids `<runId>-<seq>` at `rate`/s (0: flat out). */
export function produceRun(topic: string, count: number, rate: number, runId: string, batch = 100) {
  return produceEvents([
    ...["--topic", topic, "--count", String(count), "--rate", String(rate)],
    ...["--run-id", runId, "--batch", String(batch)],
  ]);
}

/**
 * Reads `topic` read_committed until `count` predictions arrived (and a little longer, so a
 * late duplicate would be seen), then asserts one per id of the run, none missing, per-key
 * order kept. Returns the records for further checks.
 */
export async function assertRunExactlyOnce(
  t: Pick<TestContext, "after">,
  topic: string,
  runId: string,
  count: number,
  timeoutMs = 180_000,
): Promise<ReadRecord[]> {
  const records = await readTopic(t, testKafka(), topic, {
    until: (r) => r.length >= count,
    timeoutMs,
    lingerMs: 3_000,
  });
  const predictions = parsePredictions(records);
  assertExactlyOnce(
    predictions,
    Array.from({ length: count }, (_, i) => `${runId}-${i}`),
  );
  assertPerKeyOrder(predictions);
  assert.equal(predictions.length, count);
  return records;
}
