// Reads a finished run back and judges it: the input topic (what really went in), the
// follower's predictions and DLQ records, the group's committed offsets against the input's
// end offsets, and the output partitions' last stable offsets and high watermarks (a reader
// with read_uncommitted finds the latter). Then the four checks of checks.ts, and one result.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Admin, Kafka } from "kafkajs";
import { sleep } from "../../services/common/lifecycle.js";
import { summarize } from "../lib/percentiles.js";
import {
  checkExactlyOnce,
  checkOffsets,
  checkPerKeyOrder,
  recoveryTimes,
  type FaultWindow,
  type InputRecord,
  type OffsetsResult,
  type OutputRecord,
  type PartitionOffsets,
  type Recovery,
} from "./checks.js";
import { expectationOf, HEADER } from "./events.js";
import { PARTITIONS, type RunPipeline } from "./pipeline.js";
import { headerString, TopicReader, type ReadRecord } from "./reader.js";
import type { Sizing } from "./scenario.js";
import type { WorkerExit } from "./workers.js";

const partitions = Array.from({ length: PARTITIONS }, (_, p) => p);

/** The input topic read to its end offsets: one InputRecord per record in it. */
export async function readInputs(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  groupId: string,
): Promise<InputRecord[]> {
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
  const reader = new TopicReader({ kafka, groupId, topics: [topic], readUncommitted: true });
  try {
    await reader.start();
    const complete = await reader.until(
      () => [...ends].every(([p, end]) => reader.position(topic, p) >= end),
      120_000,
    );
    if (!complete) throw new Error(`could not read ${topic} to its end offsets`);
    return reader.all().map((r) => {
      const kind = headerString(r.headers, HEADER.kind) ?? "foreign";
      return {
        id: headerString(r.headers, HEADER.id) ?? `${r.partition}@${r.offset}`,
        key: r.key?.toString() ?? null,
        partition: r.partition,
        offset: r.offset,
        kind,
        expect: expectationOf(kind),
      };
    });
  } finally {
    await reader.stop();
  }
}

/**
 * Predictions and DLQ records as the checks see them (shadow predictions are not outputs).
 * An output's input is named by the chaos id header it carries; a DLQ record cut to its byte
 * budget has lost the input's headers, and is matched by the source partition and offset
 * headers the predictor always writes (on predictions too, as lineage headers).
 */
export function toOutputs(records: ReadRecord[], p: RunPipeline, inputs: InputRecord[]): OutputRecord[] {
  const byOffset = new Map(inputs.map((r) => [`${r.partition}@${r.offset}`, r.id]));
  const source = (r: ReadRecord, prefix: string) => {
    if (headerString(r.headers, `${prefix}.topic`) !== p.input) return undefined;
    const at = `${headerString(r.headers, `${prefix}.partition`)}@${headerString(r.headers, `${prefix}.offset`)}`;
    return byOffset.get(at);
  };
  const out: OutputRecord[] = [];
  for (const r of records) {
    if (r.topic !== p.output && r.topic !== p.dlq) continue;
    const stream = r.topic === p.output ? "prediction" : "dlq";
    out.push({
      id:
        headerString(r.headers, HEADER.id) ??
        source(r, stream === "dlq" ? "aimass.dlq.source" : "aimass.source"),
      stream,
      key: r.key?.toString() ?? null,
      partition: r.partition,
      offset: r.offset,
      ...(stream === "prediction" ? { eventId: eventIdOf(r.value) } : { reason: dlqReason(r) }),
      seenAt: r.seenAt,
    });
  }
  return out;
}

/** `<stage>/<code>: <message>` from a DLQ record's headers (docs/dlq.md). */
function dlqReason(r: ReadRecord): string {
  const h = (name: string) => headerString(r.headers, `aimass.dlq.${name}`) ?? "?";
  return `${h("stage")}/${h("error.code")}: ${h("error.message")}`;
}

function parse(value: Buffer | null): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(value?.toString() ?? "null");
    return v !== null && typeof v === "object" ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function eventIdOf(value: Buffer | null): string | null {
  const id = parse(value)?.eventId;
  return typeof id === "string" ? id : null;
}

export interface RunOffsets {
  input: PartitionOffsets[];
  outputs: PartitionOffsets[];
}

/**
 * Committed offsets against end offsets (given a few seconds for the last commit to show),
 * and per output partition: how far the read_committed follower got, the last stable offset
 * (ListOffsets read_committed, what kafkajs' fetchTopicOffsets asks for) and the high
 * watermark (what a read_uncommitted reader reaches).
 */
export async function readOffsets(
  kafka: Kafka,
  admin: Admin,
  p: RunPipeline,
  follower: TopicReader,
  groupId: string,
): Promise<RunOffsets> {
  const inputOffsets = async (): Promise<PartitionOffsets[]> => {
    const ends = new Map((await admin.fetchTopicOffsets(p.input)).map((x) => [x.partition, Number(x.high)]));
    const [committed] = await admin.fetchOffsets({ groupId: p.group, topics: [p.input] });
    const at = new Map((committed?.partitions ?? []).map((x) => [x.partition, Number(x.offset)]));
    return partitions.map((partition) => ({
      topic: p.input,
      partition,
      position: at.get(partition) ?? -1,
      end: ends.get(partition) ?? 0,
    }));
  };
  let input = await inputOffsets();
  for (let i = 0; i < 30 && input.some((x) => x.position !== x.end && x.end > 0); i++) {
    await sleep(500);
    input = await inputOffsets();
  }

  const hw = new TopicReader({ kafka, groupId, topics: p.transactional, readUncommitted: true });
  try {
    await hw.start();
    const caughtUp = () =>
      p.transactional.every((t) => partitions.every((x) => hw.position(t, x) >= hw.highWatermark(t, x)));
    await hw.until(caughtUp, 60_000);
    await hw.quiet(2_000, 20_000);
    const end = (t: string, x: number) => Math.max(hw.position(t, x), hw.highWatermark(t, x));
    await follower.until(
      () => p.transactional.every((t) => partitions.every((x) => follower.position(t, x) >= end(t, x))),
      30_000,
    );
    const outputs: PartitionOffsets[] = [];
    for (const t of p.transactional) {
      const stable = new Map((await admin.fetchTopicOffsets(t)).map((x) => [x.partition, Number(x.offset)]));
      for (const x of partitions) {
        outputs.push({
          topic: t,
          partition: x,
          position: follower.position(t, x),
          end: end(t, x),
          lastStable: stable.get(x) ?? 0,
        });
      }
    }
    return { input, outputs };
  } finally {
    await hw.stop();
  }
}

export interface RunResult {
  scenario: string;
  run: number;
  ok: boolean;
  error?: string;
  sizing: Sizing;
  durationS: number;
  /** Input records (read back from the input topic). */
  events: number;
  predictions: number;
  dlq: number;
  lost: number;
  duplicated: number;
  unexpected: number;
  misrouted: number;
  idMismatch: number;
  orderBreaks: number;
  offsets: OffsetsResult;
  recovery: Recovery[];
  /** The worst of the windows' recovery times (null: none, or one never recovered). */
  firstOutputMs: number | null;
  lagZeroMs: number | null;
  /** Load generator acknowledgement → visible to read_committed, ms. */
  latencyMs: { p50: number; p99: number; max: number } | null;
  sendFailures: number;
  /** Records the broker acknowledged that the input topic does not hold (a Kafka or client fault). */
  ackedNotInInput: number;
  crashes: WorkerExit[];
  /** Per record kind: inputs, outputs, and the DLQ stage/code counts. */
  byKind: Record<
    string,
    { inputs: number; predictions: number; dlq: number; dlqReasons: Record<string, number> }
  >;
  modelVersions: Record<string, number>;
  notes: Record<string, unknown>;
  /** Up to 50 of each failure, the full lists in <dir>/evidence.json. */
  samples: Record<string, unknown[]>;
  dir: string;
}

export interface EvaluateInput {
  scenario: string;
  run: number;
  sizing: Sizing;
  dir: string;
  durationS: number;
  inputs: InputRecord[];
  outputs: OutputRecord[];
  offsets: RunOffsets;
  windows: FaultWindow[];
  ackedAt: ReadonlyMap<string, number>;
  sendFailures: number;
  crashes: WorkerExit[];
  notes: Record<string, unknown>;
  /** Prediction values, for the model versions that scored them. */
  predictionValues?: Array<Buffer | null>;
}

export function evaluate(e: EvaluateInput): RunResult {
  const once = checkExactlyOnce(e.inputs, e.outputs);
  const order = checkPerKeyOrder(e.inputs, e.outputs);
  const offsets = checkOffsets(e.offsets.input, e.offsets.outputs);
  // An acknowledged record the input topic does not hold never reached the pipeline: it counts
  // apart (ackedNotInInput), not against the recovery of the pipeline.
  const inputIds = new Set(e.inputs.map((r) => r.id));
  const produced = new Map([...e.ackedAt].filter(([id]) => inputIds.has(id)));
  const ackedNotInInput = [...e.ackedAt.keys()].filter((id) => !inputIds.has(id));
  const recovery = recoveryTimes(e.windows, produced, e.outputs);
  const byKind: RunResult["byKind"] = {};
  const kindOf = new Map(e.inputs.map((r) => [r.id, r.kind]));
  const kindEntry = (kind: string) =>
    (byKind[kind] ??= { inputs: 0, predictions: 0, dlq: 0, dlqReasons: {} });
  for (const r of e.inputs) kindEntry(r.kind).inputs++;
  for (const o of e.outputs) {
    const k = kindEntry((o.id !== undefined && kindOf.get(o.id)) || "unknown");
    if (o.stream === "prediction") {
      k.predictions++;
      continue;
    }
    k.dlq++;
    const code = o.reason?.split(":")[0] ?? "?";
    k.dlqReasons[code] = (k.dlqReasons[code] ?? 0) + 1;
  }
  const latencies: number[] = [];
  for (const o of e.outputs) {
    const acked = o.id === undefined ? undefined : e.ackedAt.get(o.id);
    if (acked !== undefined) latencies.push(Math.max(0, o.seenAt - acked));
  }
  const lat = latencies.length > 0 ? summarize(latencies) : undefined;
  const worst = (f: (r: Recovery) => number | null): number | null =>
    recovery.length === 0 || recovery.some((r) => f(r) === null)
      ? null
      : Math.max(...recovery.map((r) => f(r) as number));
  const modelVersions: Record<string, number> = {};
  for (const v of e.predictionValues ?? []) {
    const model = parse(v)?.model as { version?: unknown } | undefined;
    const version = typeof model?.version === "string" ? model.version : "?";
    modelVersions[version] = (modelVersions[version] ?? 0) + 1;
  }
  const evidence = {
    ackedNotInInput,
    lost: once.lost,
    duplicated: once.duplicated,
    unexpected: once.unexpected,
    misrouted: once.misrouted,
    idMismatch: once.idMismatch,
    orderBreaks: order.examples,
    uncommitted: offsets.uncommitted,
    hanging: offsets.hanging,
  };
  writeFileSync(join(e.dir, "evidence.json"), JSON.stringify(evidence, null, 2));
  const samples = Object.fromEntries(
    Object.entries(evidence)
      .filter(([, v]) => v.length > 0)
      .map(([k, v]) => [k, (v as unknown[]).slice(0, 50)]),
  );
  // A heal after which nothing more came is fine when nothing was left to come; an input
  // produced before a heal that never came out is lost (lagZeroMs null) and fails check 1 too.
  const recovered = recovery.every((r) => r.lagZeroMs !== null);
  const ok =
    once.lost.length === 0 &&
    once.duplicated.length === 0 &&
    once.unexpected.length === 0 &&
    once.misrouted.length === 0 &&
    once.idMismatch.length === 0 &&
    order.breaks === 0 &&
    offsets.ok &&
    recovered;
  return {
    scenario: e.scenario,
    run: e.run,
    ok,
    sizing: e.sizing,
    durationS: Math.round(e.durationS),
    events: once.inputs,
    predictions: once.predictions,
    dlq: once.dlq,
    lost: once.lost.length,
    duplicated: once.duplicated.length,
    unexpected: once.unexpected.length,
    misrouted: once.misrouted.length,
    idMismatch: once.idMismatch.length,
    orderBreaks: order.breaks,
    offsets,
    recovery,
    firstOutputMs: worst((r) => r.firstOutputMs),
    lagZeroMs: worst((r) => r.lagZeroMs),
    latencyMs: lat ? { p50: lat.p50, p99: lat.p99, max: lat.max } : null,
    sendFailures: e.sendFailures,
    ackedNotInInput: ackedNotInInput.length,
    crashes: e.crashes,
    byKind,
    modelVersions,
    notes: e.notes,
    samples,
    dir: e.dir,
  };
}
