// The chaos input: seeded and repeatable, unique ids, every bad kind present once the run is
// long enough, each record tagged with its id, kind and per-key sequence number.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  eventPlan,
  expectationOf,
  HEADER,
  KINDS,
  recordBytes,
  type PlannedRecord,
} from "../../../../load-tests/chaos/events.js";

const plan = (o: { count: number; badShare: number; seed?: number }): PlannedRecord[] => [
  ...eventPlan({ runId: "r", seed: o.seed ?? 7, users: 50, maxRecordBytes: 4096, ...o }),
];

test("the same options give the same records; another seed, other records", () => {
  // Event times are wall clock; everything else is fixed by the seed.
  const fixed = (rs: PlannedRecord[]) =>
    rs.map((r) => [r.id, r.key, r.kind, r.value?.toString("latin1").replace(/"ts":\d+/, "") ?? null]);
  const a = plan({ count: 500, badShare: 0.05 });
  assert.deepEqual(fixed(a), fixed(plan({ count: 500, badShare: 0.05 })));
  assert.notDeepEqual(
    plan({ count: 500, badShare: 0.05, seed: 8 }).map((r) => r.key),
    a.map((r) => r.key),
  );
});

test("ids are unique and every record says who it is in its headers", () => {
  const rs = plan({ count: 2_000, badShare: 0.02 });
  assert.equal(new Set(rs.map((r) => r.id)).size, rs.length);
  for (const r of rs) {
    assert.equal(r.headers[HEADER.id], r.id);
    assert.equal(r.headers[HEADER.kind], r.kind);
    assert.match(r.headers[HEADER.seq] ?? "", /^\d+$/);
  }
});

test("bad records come at the share asked for, every kind of them once the run is long enough", () => {
  const rs = plan({ count: KINDS.length * 100, badShare: 0.01 });
  const bad = rs.filter((r) => r.kind !== "good");
  assert.equal(bad.length, KINDS.length);
  assert.deepEqual(new Set(bad.map((r) => r.kind)), new Set(KINDS.map((k) => k.kind)));
  assert.equal(plan({ count: 1_000, badShare: 0 }).filter((r) => r.kind !== "good").length, 0);
});

test("bad kinds are what they say: over the size limit by a byte (key and headers counted), at it, tombstones null, poison expected in the DLQ", () => {
  const byKind = new Map(plan({ count: KINDS.length * 20, badShare: 0.05 }).map((r) => [r.kind, r]));
  const size = (kind: string) => {
    const r = byKind.get(kind);
    assert.ok(r, kind);
    return recordBytes(r);
  };
  assert.equal(size("over-size-limit"), 4097);
  assert.equal(size("at-size-limit"), 4096);
  assert.ok(JSON.parse(byKind.get("at-size-limit")?.value?.toString() ?? "").pad);
  assert.equal(byKind.get("tombstone")?.value, null);
  assert.equal(byKind.get("null-key-tombstone")?.key, null);
  assert.equal(byKind.get("null-key")?.key, null);
  assert.throws(() => JSON.parse(byKind.get("not-json")?.value?.toString() ?? ""));
  assert.equal(expectationOf("not-json"), "dlq");
  assert.equal(expectationOf("null-key"), "prediction");
  assert.equal(expectationOf("good"), "prediction");
});

test("per-key sequence numbers count up from 0 for each key", () => {
  const last = new Map<string | null, number>();
  for (const r of plan({ count: 1_000, badShare: 0.01 })) {
    const seq = Number(r.headers[HEADER.seq]);
    assert.equal(seq, (last.get(r.key) ?? -1) + 1, `key ${r.key}`);
    last.set(r.key, seq);
  }
});
