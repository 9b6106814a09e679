// The input of a chaos run: a seeded sequence of shop events with unique ids, keyed by user,
// and (for the poison scenario) records of every bad kind mixed in at a set share. Every
// record carries headers naming its id, kind and per-key sequence number; the predictor
// copies input headers to predictions and DLQ records, so any output maps back to its input
// even when its value is unreadable. Same options, same records.
import { padJson } from "../lib/padding.js";
import { prng, shopEvents, type ShopEvent } from "../lib/shop-events.js";
import type { Expectation } from "./checks.js";

export const HEADER = {
  id: "chaos.id",
  kind: "chaos.kind",
  seq: "chaos.seq",
} as const;

export interface PlannedRecord {
  id: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  kind: string;
  expect: Expectation;
}

/** What a kind changes in a good event. */
interface Made {
  key?: string | null;
  value?: Buffer | null;
  extraHeaders?: Record<string, string>;
  /**
   * Pad the (JSON) value so that value + key + every header name and value, the chaos headers
   * included, come to this many bytes: how input.maxRecordBytes counts a record.
   */
  recordBytes?: number;
}

/** A fault in the data: how to make it from a good event, and where the record should go. */
export interface Kind {
  kind: string;
  expect: Expectation;
  make(e: ShopEvent, limits: { maxRecordBytes: number }): Made;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v), "utf8");
const without = (e: ShopEvent, field: keyof ShopEvent) => {
  const copy: Record<string, unknown> = { ...e };
  delete copy[field];
  return copy;
};
const headers = (count: number, bytes: number) =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`chaos.pad.${i}`, "h".repeat(bytes)]));
/** An event whose itemId holds bytes that are not UTF-8 (the rest is valid JSON). */
const utf8InString = (e: ShopEvent) => {
  const [head, tail] = JSON.stringify(e).split(`"itemId":"`) as [string, string];
  return Buffer.concat([Buffer.from(`${head}"itemId":"`), Buffer.from([0xc3, 0x28]), Buffer.from(tail)]);
};

/**
 * Records the pipeline must dead-letter (expect "dlq") and edge cases it must score (expect
 * "prediction"), after docs/dlq.md: both stress the record path, only the first are poison.
 * `overflow-1e39` needs the chaos pipeline's identity column on `quantity` (pipeline.ts): 1e39
 * is a finite double but not a finite float32. The input limits are the pipeline's defaults
 * (64 headers, 16384 bytes per header) and its maxRecordBytes.
 */
export const KINDS: readonly Kind[] = [
  { kind: "not-json", expect: "dlq", make: (e) => ({ value: json(e).subarray(0, 40) }) },
  {
    kind: "invalid-utf8",
    expect: "dlq",
    make: (e) => ({ value: Buffer.concat([Buffer.from([0xff, 0xfe, 0xc3, 0x28]), json(e)]) }),
  },
  { kind: "invalid-utf8-in-string", expect: "dlq", make: (e) => ({ value: utf8InString(e) }) },
  { kind: "json-array", expect: "dlq", make: (e) => ({ value: json([e]) }) },
  {
    kind: "wrong-type-string",
    expect: "dlq",
    make: (e) => ({ value: json({ ...e, price: String(e.price) }) }),
  },
  { kind: "wrong-type-route", expect: "dlq", make: (e) => ({ value: json({ ...e, type: 7 }) }) },
  {
    kind: "nan-literal",
    expect: "dlq",
    make: (e) => ({ value: Buffer.from(JSON.stringify(e).replace(/"price":[^,}]+/, '"price":NaN')) }),
  },
  {
    kind: "infinity-literal",
    expect: "dlq",
    make: (e) => ({ value: Buffer.from(JSON.stringify(e).replace(/"price":[^,}]+/, '"price":Infinity')) }),
  },
  { kind: "nan-string", expect: "dlq", make: (e) => ({ value: json({ ...e, price: "NaN" }) }) },
  { kind: "overflow-1e39", expect: "dlq", make: (e) => ({ value: json({ ...e, quantity: 1e39 }) }) },
  { kind: "missing-field", expect: "dlq", make: (e) => ({ value: json(without(e, "price")) }) },
  { kind: "missing-route", expect: "dlq", make: (e) => ({ value: json(without(e, "type")) }) },
  { kind: "tombstone", expect: "dlq", make: () => ({ value: null }) },
  { kind: "null-key-tombstone", expect: "dlq", make: () => ({ key: null, value: null }) },
  { kind: "over-size-limit", expect: "dlq", make: (_, l) => ({ recordBytes: l.maxRecordBytes + 1 }) },
  { kind: "too-many-headers", expect: "dlq", make: () => ({ extraHeaders: headers(70, 8) }) },
  { kind: "header-over-limit", expect: "dlq", make: () => ({ extraHeaders: headers(1, 17_000) }) },
  {
    // Its DLQ record is over the run's dlq.maxRecordBytes: cut, its own headers dropped.
    kind: "large-headers-not-json",
    expect: "dlq",
    make: (e) => ({ value: json(e).subarray(0, 20), extraHeaders: headers(12, 1024) }),
  },
  { kind: "null-key", expect: "prediction", make: () => ({ key: null }) },
  { kind: "at-size-limit", expect: "prediction", make: (_, l) => ({ recordBytes: l.maxRecordBytes }) },
  { kind: "large-headers", expect: "prediction", make: () => ({ extraHeaders: headers(12, 1024) }) },
  { kind: "1e39-under-log1p", expect: "prediction", make: (e) => ({ value: json({ ...e, price: 1e39 }) }) },
];

/** Bytes of a record as input.maxRecordBytes counts them. */
export function recordBytes(r: Pick<PlannedRecord, "key" | "value" | "headers">): number {
  let n = (r.value?.length ?? 0) + (r.key === null ? 0 : Buffer.byteLength(r.key));
  for (const [name, value] of Object.entries(r.headers))
    n += Buffer.byteLength(name) + Buffer.byteLength(value);
  return n;
}

export interface EventPlanOptions {
  /** Id prefix: ids are `<runId>-<n>`. */
  runId: string;
  seed: number;
  count: number;
  users: number;
  /** Share of records that are one of KINDS (0: none), e.g. 0.01. */
  badShare: number;
  /** The pipeline's input.maxRecordBytes, for the records at and over the limit. */
  maxRecordBytes: number;
  /** The bad and edge-case kinds to mix in. @default KINDS (JSON input) */
  kinds?: readonly Kind[];
}

/**
 * The run's records in production order. Bad records replace good ones at evenly spread,
 * seeded positions and take KINDS in turn, so every kind appears once the run holds
 * `KINDS.length / badShare` records.
 */
export function* eventPlan(o: EventPlanOptions): Generator<PlannedRecord> {
  const rand = prng((o.seed ^ 0x9e3779b9) >>> 0);
  const events = shopEvents({ seed: o.seed, users: o.users, items: 500, runId: o.runId });
  const seqs = new Map<string, number>();
  const every = o.badShare > 0 ? 1 / o.badShare : Number.POSITIVE_INFINITY;
  // Slot s of `every` records holds one bad record, at a seeded place inside the slot.
  let slot = 0;
  const placeIn = (s: number) =>
    Number.isFinite(every) ? Math.floor((s + rand()) * every) : Number.POSITIVE_INFINITY;
  let nextBad = placeIn(slot);
  let kindIndex = 0;
  const kinds = o.kinds ?? KINDS;
  for (let i = 0; i < o.count; i++) {
    const e = events.next().value as ShopEvent;
    let record: PlannedRecord;
    let made: Made = {};
    if (i === nextBad) {
      const k = kinds[kindIndex++ % kinds.length] as Kind;
      made = k.make(e, { maxRecordBytes: o.maxRecordBytes });
      record = {
        id: e.id,
        key: made.key === undefined ? e.userId : made.key,
        value: made.value === undefined ? json(e) : made.value,
        headers: { ...made.extraHeaders },
        kind: k.kind,
        expect: k.expect,
      };
      nextBad = Math.max(i + 1, placeIn(++slot));
    } else {
      record = { id: e.id, key: e.userId, value: json(e), headers: {}, kind: "good", expect: "prediction" };
    }
    const seqKey = record.key ?? "";
    const seq = (seqs.get(seqKey) ?? -1) + 1;
    seqs.set(seqKey, seq);
    record.headers[HEADER.id] = record.id;
    record.headers[HEADER.kind] = record.kind;
    record.headers[HEADER.seq] = String(seq);
    if (made.recordBytes !== undefined) {
      const rest = recordBytes({ ...record, value: null });
      record.value = Buffer.from(padJson(JSON.stringify(e), made.recordBytes - rest));
    }
    yield record;
  }
}

/**
 * Bad and edge-case kinds of an Avro input (Confluent wire format, AVRO_EVENT_SCHEMA): each is
 * a good event changed before it is encoded (`event`), its encoding changed after (`finish`),
 * or a value that is no Avro at all (`plain`). avro.ts encodes them; the plan only places them.
 */
export interface AvroKind {
  kind: string;
  expect: Expectation;
  key?: null;
  event?: (e: AvroEvent) => AvroEvent;
  finish?: (encoded: Buffer) => Buffer;
  plain?: (e: ShopEvent) => Buffer | null;
}

/** A shop event as AVRO_EVENT_SCHEMA holds it: an array and a map last, both empty. */
export type AvroEvent = Omit<ShopEvent, "type"> & {
  type: string;
  vec: number[];
  tags: Record<string, string>;
};

export const AVRO_EVENT_SCHEMA = {
  type: "record",
  name: "ChaosShopEvent",
  namespace: "dev.aimass.chaos",
  fields: [
    { name: "id", type: "string" },
    { name: "type", type: "string" },
    { name: "userId", type: "string" },
    { name: "itemId", type: "string" },
    { name: "ts", type: "long" },
    { name: "price", type: "double" },
    { name: "quantity", type: "double" },
    { name: "vec", type: { type: "array", items: "double" } },
    { name: "tags", type: { type: "map", values: "string" } },
  ],
} as const;

/** Avro's zig-zag varint of a non-negative count, as a block header declares it. */
function varint(n: bigint): Buffer {
  const bytes: number[] = [];
  let z = n * 2n;
  do {
    const low = Number(z & 0x7fn);
    z >>= 7n;
    bytes.push(z > 0n ? low | 0x80 : low);
  } while (z > 0n);
  return Buffer.from(bytes);
}

/**
 * The encoded event ends with the empty `vec` array's and `tags` map's terminators (0x00 0x00):
 * a bomb puts a block header declaring 2^52 items in place of one of them. Unbounded, avsc
 * loops that many times on the main thread (services/common/serde/avro-bounds.ts).
 */
const bomb = (fromEnd: 1 | 2) => (encoded: Buffer) =>
  Buffer.concat([
    encoded.subarray(0, encoded.length - fromEnd),
    varint(2n ** 52n),
    encoded.subarray(encoded.length - fromEnd + 1),
  ]);

export const AVRO_KINDS: readonly AvroKind[] = [
  { kind: "avro-map-bomb", expect: "dlq", finish: bomb(1) },
  { kind: "avro-array-bomb", expect: "dlq", finish: bomb(2) },
  {
    kind: "avro-unknown-schema-id",
    expect: "dlq",
    finish: (b) => {
      const copy = Buffer.from(b);
      copy.writeInt32BE(0x7ffffff0, 1);
      return copy;
    },
  },
  { kind: "avro-truncated", expect: "dlq", finish: (b) => b.subarray(0, b.length - 12) },
  { kind: "avro-bad-magic", expect: "dlq", finish: (b) => Buffer.concat([Buffer.from([1]), b.subarray(1)]) },
  { kind: "avro-json-value", expect: "dlq", plain: (e) => json(e) },
  { kind: "avro-tombstone", expect: "dlq", plain: () => null },
  { kind: "avro-nan-price", expect: "dlq", event: (e) => ({ ...e, price: Number.NaN }) },
  { kind: "avro-infinite-price", expect: "dlq", event: (e) => ({ ...e, price: Number.POSITIVE_INFINITY }) },
  { kind: "avro-overflow-1e39", expect: "dlq", event: (e) => ({ ...e, quantity: 1e39 }) },
  { kind: "avro-unknown-route", expect: "dlq", event: (e) => ({ ...e, type: "refund" }) },
  { kind: "avro-null-key", expect: "prediction", key: null },
  { kind: "avro-1e39-under-log1p", expect: "prediction", event: (e) => ({ ...e, price: 1e39 }) },
];

/** AVRO_KINDS as the plan places them: only a key can change before encoding. */
export const AVRO_PLAN_KINDS: readonly Kind[] = AVRO_KINDS.map((k) => ({
  kind: k.kind,
  expect: k.expect,
  make: () => (k.key === null ? { key: null } : {}),
}));

/** The expectation of a kind name read back from a header (unknown kinds: a prediction). */
export function expectationOf(kind: string): Expectation {
  return [...KINDS, ...AVRO_KINDS].find((k) => k.kind === kind)?.expect ?? "prediction";
}
