// The chaos input: seeded and repeatable, unique ids, every bad kind present once the run is
// long enough, each record tagged with its id, kind and per-key sequence number.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AVRO_KINDS,
  AVRO_PLAN_KINDS,
  eventPlan,
  expectationOf,
  HEADER,
  KINDS,
  recordBytes,
  type PlannedRecord,
} from "../../../../load-tests/chaos/events.js";

const plan = (o: {
  count: number;
  badShare: number;
  seed?: number;
  kinds?: typeof AVRO_PLAN_KINDS;
}): PlannedRecord[] => [
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

/** Reads the zig-zag varint at `pos` (an Avro long) as a bigint. */
function readLong(b: Buffer, pos: number): { value: bigint; end: number } {
  let z = 0n;
  let shift = 0n;
  let i = pos;
  for (;;) {
    const byte = b[i++] as number;
    z |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if ((byte & 0x80) === 0) break;
  }
  return { value: (z >> 1n) ^ -(z & 1n), end: i };
}

test("Avro kinds: bombs declare 2^52 items in place of the array's or the map's terminator; ids and magic bytes are changed; keys only in the plan", () => {
  // Wire format header, then a body whose last two bytes are the empty vec and tags terminators.
  const encoded = Buffer.concat([Buffer.from([0, 0, 0, 0, 7]), Buffer.from("body"), Buffer.from([0, 0])]);
  const kind = (name: string) => {
    const k = AVRO_KINDS.find((x) => x.kind === name);
    assert.ok(k, name);
    return k;
  };
  const map = kind("avro-map-bomb").finish?.(encoded);
  assert.ok(map);
  assert.deepEqual(map.subarray(0, encoded.length - 1), encoded.subarray(0, encoded.length - 1));
  const mapCount = readLong(map, encoded.length - 1);
  assert.equal(mapCount.value, 2n ** 52n);
  assert.equal(mapCount.end, map.length);
  const array = kind("avro-array-bomb").finish?.(encoded);
  assert.ok(array);
  const arrayCount = readLong(array, encoded.length - 2);
  assert.equal(arrayCount.value, 2n ** 52n);
  assert.deepEqual([...array.subarray(arrayCount.end)], [0]);
  assert.equal(kind("avro-unknown-schema-id").finish?.(encoded).readInt32BE(1), 0x7ffffff0);
  assert.equal(encoded.readInt32BE(1), 7, "the encoding it was given is unchanged");
  assert.equal(kind("avro-bad-magic").finish?.(encoded)[0], 1);
  assert.ok((kind("avro-truncated").finish?.(Buffer.alloc(40)).length ?? 40) < 40);
  for (const k of AVRO_KINDS) assert.equal(expectationOf(k.kind), k.expect, k.kind);

  const rs = plan({ count: AVRO_KINDS.length * 100, badShare: 0.01, kinds: AVRO_PLAN_KINDS });
  const bad = rs.filter((r) => r.kind !== "good");
  assert.deepEqual(new Set(bad.map((r) => r.kind)), new Set(AVRO_KINDS.map((k) => k.kind)));
  for (const r of bad) {
    assert.equal(r.key === null, r.kind === "avro-null-key", r.kind);
    // Values stay the good event's JSON until avro.ts encodes them.
    assert.equal(typeof (JSON.parse(r.value?.toString() ?? "null") as { id?: unknown }).id, "string");
  }
});
