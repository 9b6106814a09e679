// Judges a finished run: the four checks of checks.ts over what readback.ts read, the counts
// per record kind and model version, the latencies, and one result with its evidence file.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
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
  type Recovery,
} from "./checks.js";
import { parse, type RunOffsets } from "./readback.js";
import type { Sizing } from "./scenario.js";
import type { WorkerExit } from "./workers.js";

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
