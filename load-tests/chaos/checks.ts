// The four checks a chaos run must pass, as pure functions over the records read back
// (events in, predictions and dead letters out), so they are unit-tested without Kafka:
// 1. exactly once: every input record has exactly one prediction or DLQ record, in the
//    place its kind expects, and nothing else came out;
// 2. per-key order: for each key, predictions follow the input order of that key;
// 3. offsets: the group committed the input's end offsets, and a read_committed reader
//    reached every output partition's high watermark (no transaction left open);
// 4. recovery: after each heal, how long until the first committed output, and until every
//    input produced before the heal had its output (the lag on the backlog back to zero).

/** Where a record is expected to end up: a prediction, or the DLQ. */
export type Expectation = "prediction" | "dlq";

/** One record of the input topic, as read back from it (the ground truth of what went in). */
export interface InputRecord {
  id: string;
  key: string | null;
  partition: number;
  offset: number;
  kind: string;
  expect: Expectation;
}

/** One prediction or DLQ record, as a read_committed reader saw it. */
export interface OutputRecord {
  /** The input's id, from the header the load generator puts on every input record. */
  id: string | undefined;
  stream: "prediction" | "dlq";
  key: string | null;
  partition: number;
  offset: number;
  /** A prediction's `eventId` field (null when the value had none or did not parse). */
  eventId?: string | null | undefined;
  /** A DLQ record's stage, error code and message, as its headers give them. */
  reason?: string | undefined;
  /** When the reader saw it (epoch ms): the record was committed by then. */
  seenAt: number;
}

export interface ExactlyOnceResult {
  inputs: number;
  predictions: number;
  dlq: number;
  /** Input records with no output at all. */
  lost: string[];
  /** Ids with more outputs than input records, how many, and where each copy is. */
  duplicated: Array<{ id: string; copies: number; at: string[] }>;
  /** Outputs whose id is not an input's (or that carry none). */
  unexpected: Array<{
    id: string | undefined;
    stream: OutputRecord["stream"];
    partition: number;
    offset: number;
  }>;
  /** Inputs that came out once, but in the other stream than their kind expects. */
  misrouted: Array<{ id: string; kind: string; expected: Expectation; got: Expectation; reason?: string }>;
  /** Predictions whose `eventId` is not the id of the input they carry the header of. */
  idMismatch: Array<{ id: string; eventId: string | null }>;
}

const SAMPLE = 20;

/** Check 1: input = predictions ∪ DLQ, each exactly once, in the expected stream. */
export function checkExactlyOnce(inputs: InputRecord[], outputs: OutputRecord[]): ExactlyOnceResult {
  const expected = new Map<string, { n: number; kind: string; expect: Expectation }>();
  for (const r of inputs) {
    const e = expected.get(r.id);
    if (e) e.n++;
    else expected.set(r.id, { n: 1, kind: r.kind, expect: r.expect });
  }
  const got = new Map<string, { prediction: number; dlq: number; reason?: string; at: string[] }>();
  const result: ExactlyOnceResult = {
    inputs: inputs.length,
    predictions: 0,
    dlq: 0,
    lost: [],
    duplicated: [],
    unexpected: [],
    misrouted: [],
    idMismatch: [],
  };
  for (const o of outputs) {
    if (o.stream === "prediction") result.predictions++;
    else result.dlq++;
    if (o.id === undefined || !expected.has(o.id)) {
      result.unexpected.push({ id: o.id, stream: o.stream, partition: o.partition, offset: o.offset });
      continue;
    }
    const g = got.get(o.id) ?? { prediction: 0, dlq: 0, at: [] };
    g[o.stream]++;
    g.at.push(`${o.stream} ${o.partition}@${o.offset} seen ${new Date(o.seenAt).toISOString()}`);
    if (o.reason !== undefined) g.reason = o.reason;
    got.set(o.id, g);
    if (o.stream === "prediction" && o.eventId !== undefined && o.eventId !== o.id) {
      result.idMismatch.push({ id: o.id, eventId: o.eventId });
    }
  }
  for (const [id, e] of expected) {
    const g = got.get(id) ?? { prediction: 0, dlq: 0, at: [] };
    const total = g.prediction + g.dlq;
    if (total < e.n) result.lost.push(id);
    else if (total > e.n) result.duplicated.push({ id, copies: total, at: g.at });
    else if (e.n === 1) {
      const stream: Expectation = g.prediction === 1 ? "prediction" : "dlq";
      if (stream !== e.expect) {
        const why = g.reason === undefined ? {} : { reason: g.reason };
        result.misrouted.push({ id, kind: e.kind, expected: e.expect, got: stream, ...why });
      }
    }
  }
  return result;
}

export interface OrderResult {
  /** Keys with at least one prediction checked. */
  keys: number;
  /** Adjacent predictions of one key whose inputs came in the other order. */
  breaks: number;
  examples: Array<{ key: string; before: string; after: string }>;
}

/**
 * Check 2: for each key, its predictions (in output partition and offset order) come from
 * input offsets that increase. The input is keyed, so partition order is key order. Records
 * without a key (spread over partitions by the producer) and outputs of unknown ids (check 1
 * reports those) have no order to keep.
 */
export function checkPerKeyOrder(inputs: InputRecord[], outputs: OutputRecord[]): OrderResult {
  const inputOf = new Map<string, InputRecord>();
  for (const r of inputs) inputOf.set(r.id, r);
  const predictions = outputs
    .filter((o) => o.stream === "prediction" && o.key !== null && o.id !== undefined && inputOf.has(o.id))
    .sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  const last = new Map<string, InputRecord>();
  const result: OrderResult = { keys: 0, breaks: 0, examples: [] };
  for (const p of predictions) {
    const input = inputOf.get(p.id as string) as InputRecord;
    const key = p.key as string;
    const prev = last.get(key);
    if (prev === undefined) result.keys++;
    else if (!(input.partition === prev.partition && input.offset > prev.offset)) {
      result.breaks++;
      if (result.examples.length < SAMPLE) result.examples.push({ key, before: prev.id, after: input.id });
    }
    last.set(key, input);
  }
  return result;
}

/** One partition's offsets at the end of a run. */
export interface PartitionOffsets {
  topic: string;
  partition: number;
  /** Input: the group's committed offset (-1: none). Outputs: what a read_committed reader reached. */
  position: number;
  /** Input: the end offset. Outputs: the high watermark. */
  end: number;
  /** Outputs: the last stable offset (ListOffsets read_committed); absent for the input. */
  lastStable?: number;
}

export interface OffsetsResult {
  ok: boolean;
  /** Input partitions whose committed offset is not the end offset. */
  uncommitted: Array<{ partition: number; committed: number; end: number }>;
  /** Output partitions a read_committed reader could not read to the end: an open transaction. */
  hanging: Array<{
    topic: string;
    partition: number;
    reached: number;
    lastStable: number | null;
    end: number;
  }>;
}

/** Check 3: committed offsets = input end offsets; read_committed reaches every high watermark. */
export function checkOffsets(input: PartitionOffsets[], outputs: PartitionOffsets[]): OffsetsResult {
  const uncommitted = input
    .filter((p) => (p.end === 0 ? p.position > 0 : p.position !== p.end))
    .map((p) => ({ partition: p.partition, committed: p.position, end: p.end }));
  const hanging = outputs
    .filter((p) => p.position < p.end || (p.lastStable !== undefined && p.lastStable < p.end))
    .map((p) => ({
      topic: p.topic,
      partition: p.partition,
      reached: p.position,
      lastStable: p.lastStable ?? null,
      end: p.end,
    }));
  return { ok: uncommitted.length === 0 && hanging.length === 0, uncommitted, hanging };
}

/** A fault and its heal (epoch ms). */
export interface FaultWindow {
  label: string;
  faultAt: number;
  healAt: number;
}

export interface Recovery {
  label: string;
  /** heal − fault. */
  outageMs: number;
  /** From the heal to the first output committed after it (null: none came). */
  firstOutputMs: number | null;
  /**
   * From the heal until every input produced (acknowledged) before it had its output: the
   * backlog the fault built up is gone, the lag back to zero. 0 when nothing was behind;
   * null when some such input never came out (check 1 reports it).
   */
  lagZeroMs: number | null;
}

/**
 * Check 4: recovery time of each fault window. `producedAt` is when the load generator's
 * send of an id was acknowledged; outputs carry when the reader saw them.
 */
export function recoveryTimes(
  windows: FaultWindow[],
  producedAt: ReadonlyMap<string, number>,
  outputs: OutputRecord[],
): Recovery[] {
  const seenAt = new Map<string, number>();
  for (const o of outputs) {
    if (o.id === undefined) continue;
    const s = seenAt.get(o.id);
    if (s === undefined || o.seenAt < s) seenAt.set(o.id, o.seenAt);
  }
  const times = [...seenAt.values()].sort((a, b) => a - b);
  return windows.map((w) => {
    const first = times.find((t) => t >= w.healAt);
    let lagZero: number | null = 0;
    for (const [id, at] of producedAt) {
      if (at > w.healAt) continue;
      const seen = seenAt.get(id);
      if (seen === undefined) {
        lagZero = null;
        break;
      }
      lagZero = Math.max(lagZero, seen - w.healAt);
    }
    return {
      label: w.label,
      outageMs: w.healAt - w.faultAt,
      firstOutputMs: first === undefined ? null : first - w.healAt,
      lagZeroMs: lagZero,
    };
  });
}
