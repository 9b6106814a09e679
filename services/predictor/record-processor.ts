// Turns a chunk of input records into the messages its transaction will write: one
// prediction per routable, valid record and one DLQ record for every other, in input
// order, plus shadow predictions when a shadow version is deployed. Pure with respect to
// Kafka: it can run ahead of the commit of the previous chunk and be re-used when a commit
// is retried. Errors that are not the record's fault (registry, feature store or model
// unavailable) are thrown, so the chunk is retried, not dead-lettered.
import type { IHeaders, Message } from "kafkajs";
import { AimassError, isAimassError } from "../common/errors.js";
import type { PipelineConfig } from "../common/config/load.js";
import type { ValueCodec, Decoded } from "../common/serde/codec.js";
import { noopTracer, type BatchTrace, type BatchTracer } from "../common/tracing.js";
import { dlqMessage, recordBytes, type DlqStage } from "../common/dlq.js";
import type { SourceRecord } from "../common/records.js";
import type { LoadedModelInfo } from "./inference/types.js";
import type { ModelOutput } from "./model-runtime.js";
import type { ModelSnapshot, ServedRuntime } from "./served-models.js";
import { getField, nonFiniteOutput, toRow, type Row } from "./tensorize.js";
import { sizeError } from "./size-check.js";
import { outputHeaders, routeOf } from "./routing.js";
import type { ChunkPreparer, ProcessedChunk } from "./chunk.js";
import type { Outcome } from "./batcher.js";
import { viewsOf, type Enricher, type Enrichment } from "./enrich.js";

/** What the processor needs of a served version (ModelRuntime in production). */
export interface ScoringModel extends ServedRuntime {
  readonly info: LoadedModelInfo;
  predict(row: Row): Promise<Outcome<ModelOutput>>;
}

export interface RecordProcessorDeps {
  config: PipelineConfig;
  inputCodec: ValueCodec;
  outputCodec: ValueCodec;
  /** The versions serving now; a chunk holds one snapshot, so changes apply between chunks. */
  snapshot: () => ModelSnapshot<ScoringModel>;
  /** Spans per chunk, linked to the inputs' trace contexts; the no-op tracer when tracing is off. */
  tracer?: BatchTracer;
  /** The online feature store, when the pipeline has feature views. */
  enricher?: Enricher;
}

type Rejected = { kind: "dlq"; stage: DlqStage; error: unknown; model?: ScoringModel };
type Routed = { kind: "routed"; event: Decoded; model: ScoringModel; shadow?: ScoringModel };
type Step =
  | Rejected
  | {
      kind: "predict";
      event: Decoded;
      model: ScoringModel;
      outcome: Promise<Outcome<ModelOutput>>;
      shadow?: { model: ScoringModel; outcome: Promise<Outcome<ModelOutput>> };
      enrichment?: Enrichment;
    };

export class RecordProcessor implements ChunkPreparer {
  constructor(private readonly deps: RecordProcessorDeps) {}

  async prepare(records: SourceRecord[]): Promise<ProcessedChunk> {
    const first = records[0];
    const span = (this.deps.tracer ?? noopTracer).start(
      "aimass.batch",
      records.map((r) => r.headers),
      first
        ? {
            "messaging.system": "kafka",
            "messaging.source.name": first.topic,
            "messaging.kafka.partition": first.partition,
          }
        : {},
    );
    const snapshot = this.deps.snapshot();
    try {
      return await this.processTraced(records, span, snapshot);
    } finally {
      snapshot.release();
      span.end();
    }
  }

  private async processTraced(
    records: SourceRecord[],
    span: BatchTrace,
    snapshot: ModelSnapshot<ScoringModel>,
  ): Promise<ProcessedChunk> {
    // Decode and route every record, look up the features the whole chunk needs in one
    // round trip, then submit every valid row to its model's batcher at once, so the
    // chunk's rows share batches (and share them with other partitions' chunks).
    const routed: Array<Rejected | Routed> = [];
    for (const record of records) routed.push(await this.decodeAndRoute(record, snapshot));
    const enrichments = this.deps.enricher
      ? await this.deps.enricher.enrich(
          routed.map((s) =>
            s.kind === "routed"
              ? {
                  event: s.event,
                  views: [
                    ...new Set([...viewsOf(s.model.config), ...(s.shadow ? viewsOf(s.shadow.config) : [])]),
                  ],
                }
              : undefined,
          ),
        )
      : [];
    const steps: Step[] = routed.map((s, i) => (s.kind === "dlq" ? s : this.submit(s, enrichments[i])));

    const out: ProcessedChunk = {
      predictions: [],
      predictionSources: [],
      dlq: [],
      shadow: [],
      dlqByStage: {},
      shadowFailures: 0,
    };
    const dlq = (i: number, record: SourceRecord, stage: DlqStage, error: unknown, model?: ScoringModel) => {
      span.fail(i, stage);
      this.addDlq(out, record, stage, error, model);
    };
    for (let i = 0; i < records.length; i++) {
      const record = records[i] as SourceRecord;
      const step = steps[i] as Step;
      if (step.kind === "dlq") {
        dlq(i, record, step.stage, step.error, step.model);
        continue;
      }
      const outcome = await step.outcome;
      if (!outcome.ok) {
        if (isAimassError(outcome.error) && outcome.error.canRetry) throw outcome.error;
        if (!isAimassError(outcome.error, "INFERENCE_FAILED")) throw outcome.error;
        dlq(i, record, "inference", outcome.error, step.model);
        continue;
      }
      // Per record: a NaN or Infinity is this row's failure, never a committed null.
      const nonFinite = nonFiniteOutput(step.model.config, outcome.value);
      if (nonFinite) {
        dlq(i, record, "inference", nonFinite, step.model);
        continue;
      }
      try {
        const headers = this.headers(record, step.model, span.headersFor(i));
        if (step.enrichment?.fallback) headers["aimass.features.fallback"] = "1";
        out.predictions.push(await this.prediction(record, step, outcome.value, headers));
        out.predictionSources.push(i);
      } catch (error) {
        if (isAimassError(error) && error.canRetry) throw error;
        dlq(i, record, "encode", error, step.model);
      }
      if (step.shadow) await this.addShadow(out, record, step.event, step.shadow, step.enrichment);
    }
    return out;
  }

  /** The prediction message; ENCODE_FAILED over output.maxRecordBytes (key and headers count). */
  private async prediction(
    record: SourceRecord,
    { event, model, enrichment }: Pick<Routed, "event" | "model"> & { enrichment?: Enrichment | undefined },
    fields: ModelOutput,
    headers: IHeaders,
  ): Promise<Message> {
    const { config, outputCodec } = this.deps;
    const info = model.info;
    const prediction: Decoded = {
      eventId: getField(event, config.input.idField) ?? null,
      model: { name: info.name, version: info.version, sha256: info.sha256 },
      ...fields,
      // Which feature values (by their event time) this prediction used: traces
      // training/serving skew back to the store.
      ...(enrichment ? { featureTs: enrichment.ts } : {}),
      eventTs: numberOrNull(getField(event, config.input.timeField)),
      predictedAt: Date.now(),
    };
    const value = await outputCodec.encode(config.output.topic, prediction);
    const bytes = recordBytes({ key: record.key, value, headers });
    if (bytes > config.output.maxRecordBytes) {
      throw new AimassError(
        "ENCODE_FAILED",
        `prediction is ${bytes} bytes (value ${value.length}, key and headers ${bytes - value.length}), over output.maxRecordBytes ${config.output.maxRecordBytes}`,
      );
    }
    return { key: record.key, value, headers };
  }

  /** A shadow's failures are counted and dropped: the candidate must never hurt the primary. */
  private async addShadow(
    out: ProcessedChunk,
    record: SourceRecord,
    event: Decoded,
    shadow: { model: ScoringModel; outcome: Promise<Outcome<ModelOutput>> },
    enrichment: Enrichment | undefined,
  ): Promise<void> {
    try {
      const outcome = await shadow.outcome;
      if (!outcome.ok || nonFiniteOutput(shadow.model.config, outcome.value)) {
        out.shadowFailures++;
        return;
      }
      const headers = { ...this.headers(record, shadow.model, {}), "aimass.shadow": "1" };
      out.shadow.push(
        await this.prediction(record, { event, model: shadow.model, enrichment }, outcome.value, headers),
      );
    } catch {
      out.shadowFailures++;
    }
  }

  private async decodeAndRoute(
    record: SourceRecord,
    snapshot: ModelSnapshot<ScoringModel>,
  ): Promise<Rejected | Routed> {
    const { config, inputCodec } = this.deps;
    // Size first: an oversize record is never parsed.
    const tooLarge = sizeError(record, config.input);
    if (tooLarge) return { kind: "dlq", stage: "size", error: tooLarge };
    if (record.value === null) {
      return {
        kind: "dlq",
        stage: "decode",
        error: new AimassError("DECODE_FAILED", "record has no value (tombstone)"),
      };
    }
    let event: Decoded;
    try {
      event = await inputCodec.decode(config.input.topic, record.value);
    } catch (error) {
      if (isAimassError(error) && error.canRetry) throw error;
      return { kind: "dlq", stage: "decode", error };
    }
    const route = routeOf(config.routing, event, record.headers);
    const model = route.model === undefined ? undefined : snapshot.select(route.model, record.key);
    if (!model || route.model === undefined) {
      return {
        kind: "dlq",
        stage: "route",
        error: new AimassError("ROUTE_UNKNOWN", `no model for ${route.by}=${JSON.stringify(route.value)}`),
      };
    }
    const shadow = snapshot.shadowFor(route.model);
    return { kind: "routed", event, model, ...(shadow ? { shadow } : {}) };
  }

  /** Builds the row (with its features) and hands it to the model's batcher. */
  private submit(s: Routed, enrichment: Enrichment | undefined): Step {
    if (enrichment?.staleError)
      return { kind: "dlq", stage: "features", error: enrichment.staleError, model: s.model };
    const features = enrichment?.values;
    let step: Step;
    try {
      step = {
        kind: "predict",
        event: s.event,
        model: s.model,
        outcome: s.model.predict(toRow(s.model.config, s.event, features)),
        ...(enrichment ? { enrichment } : {}),
      };
    } catch (error) {
      return { kind: "dlq", stage: "validate", error, model: s.model };
    }
    if (s.shadow) {
      try {
        step.shadow = {
          model: s.shadow,
          outcome: s.shadow.predict(toRow(s.shadow.config, s.event, features)),
        };
      } catch (error) {
        step.shadow = { model: s.shadow, outcome: Promise.resolve({ ok: false, error }) };
      }
    }
    return step;
  }

  private headers(record: SourceRecord, model: ScoringModel, trace: Record<string, string>) {
    return outputHeaders(this.deps.config.output.lineageHeaders, record, model.info, trace);
  }

  private addDlq(
    out: ProcessedChunk,
    record: SourceRecord,
    stage: DlqStage,
    error: unknown,
    model?: ScoringModel,
  ): void {
    const ctx = {
      pipeline: this.deps.config.pipeline.name,
      maxRecordBytes: this.deps.config.dlq.maxRecordBytes,
      ...(model ? { model: { name: model.info.name, version: model.info.version } } : {}),
    };
    out.dlq.push(dlqMessage(record, stage, error, ctx));
    out.dlqByStage[stage] = (out.dlqByStage[stage] ?? 0) + 1;
  }
}

function numberOrNull(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
