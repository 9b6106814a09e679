// One chunk of the updates topic, end to end: decode and validate every record, apply the
// valid ones in one pipelined compare-and-write, and send the invalid ones (and any Redis
// refused) to the features DLQ, awaiting the acks. Once `apply` resolves true the chunk's
// offsets may be committed: everything in it has landed in Redis or in the DLQ.
import type { KafkaMessage, Message, Producer } from "kafkajs";
import { isAimassError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { FeaturesConfig } from "../common/config/schema.js";
import type { ValueCodec } from "../common/serde/codec.js";
import type { FeatureStore } from "../common/features/store.js";
import { dlqMessage, type DlqStage } from "../common/dlq.js";
import { toSourceRecords, type SourceRecord } from "../common/records.js";
import { decodeUpdate, type ValidUpdate } from "./update.js";
import type { FeatureWriterMetrics } from "./metrics.js";
import { ABANDONED, retrying, type ChunkLease, type RetryPolicy } from "./retry.js";

export interface ChunkApplierOptions {
  codec: ValueCodec;
  features: FeaturesConfig;
  store: FeatureStore;
  producer: Producer;
  dlqTopic: string;
  /** The byte budget of one DLQ record (`features.dlq.maxRecordBytes`): a larger one is cut down. */
  dlqMaxRecordBytes: number;
  /** The pipeline name, for the DLQ headers. */
  pipeline: string;
  retry: RetryPolicy;
  metrics: FeatureWriterMetrics;
  logger: Logger;
}

interface Valid {
  record: SourceRecord;
  update: ValidUpdate;
}

interface Invalid {
  record: SourceRecord;
  stage: DlqStage;
  error: unknown;
}

export class ChunkApplier {
  constructor(private readonly o: ChunkApplierOptions) {}

  /** Applies one chunk; false when it was abandoned (the lease was lost: stopping, or revoked). */
  async apply(
    topic: string,
    partition: number,
    messages: KafkaMessage[],
    lease: ChunkLease,
  ): Promise<boolean> {
    const records = toSourceRecords(topic, partition, messages);
    this.o.metrics.consumed.inc(records.length);
    const decoded = await this.retry("decode", lease, () => this.decode(topic, records));
    if (decoded === ABANDONED) return false;
    const { valid, invalid } = decoded;
    if (valid.length > 0) {
      const refused = await this.write(valid, lease);
      if (refused === ABANDONED) return false;
      invalid.push(...refused);
    }
    if (invalid.length > 0 && !(await this.deadLetter(topic, partition, invalid, lease))) return false;
    return true;
  }

  /** A registry outage (retryable) rejects, so the chunk is retried; anything else is the record's fault. */
  private async decode(
    topic: string,
    records: SourceRecord[],
  ): Promise<{ valid: Valid[]; invalid: Invalid[] }> {
    const valid: Valid[] = [];
    const invalid: Invalid[] = [];
    for (const record of records) {
      try {
        valid.push({
          record,
          update: await decodeUpdate(this.o.codec, topic, record.value, this.o.features),
        });
      } catch (err) {
        if (isAimassError(err) && err.canRetry) throw err;
        invalid.push({
          record,
          stage: isAimassError(err, "FIELD_INVALID") ? "validate" : "decode",
          error: err,
        });
      }
    }
    return { valid, invalid };
  }

  /** Writes the valid updates; resolves with those Redis refused for their data (e.g. WRONGTYPE). */
  private async write(valid: Valid[], lease: ChunkLease): Promise<Invalid[] | typeof ABANDONED> {
    const { store, metrics } = this.o;
    const results = await this.retry("write", lease, async () => {
      const started = performance.now();
      try {
        const r = await store.writeSettled(valid.map((v) => v.update));
        metrics.writeSeconds.observe((performance.now() - started) / 1000);
        return r;
      } catch (err) {
        if (isAimassError(err, "FEATURE_STORE_UNAVAILABLE")) metrics.redisErrors.inc();
        throw err;
      }
    });
    if (results === ABANDONED) return ABANDONED;
    const refused: Invalid[] = [];
    results.forEach((r, i) => {
      const record = valid[i]?.record;
      if (r === 1) metrics.applied.inc();
      else if (r === 0) metrics.skippedStale.inc();
      else if (record) refused.push({ record, stage: "validate", error: r });
    });
    return refused;
  }

  /** Sends the invalid records to the DLQ in offset order and awaits the acks; false when abandoned. */
  private async deadLetter(topic: string, partition: number, invalid: Invalid[], lease: ChunkLease) {
    const ctx = { pipeline: this.o.pipeline, maxRecordBytes: this.o.dlqMaxRecordBytes };
    const messages: Message[] = invalid
      .sort((a, b) => Number(BigInt(a.record.offset) - BigInt(b.record.offset)))
      .map((i) => dlqMessage(i.record, i.stage, i.error, ctx));
    // Any send failure is retried: the records must reach the DLQ before the offsets commit.
    const sent = await this.retry(
      "dlq send",
      lease,
      () => this.o.producer.send({ topic: this.o.dlqTopic, messages, acks: -1 }),
      () => true,
    );
    if (sent === ABANDONED) return false;
    for (const i of invalid)
      this.o.metrics.dlq.inc({ reason: isAimassError(i.error) ? i.error.code : "UNKNOWN" });
    this.o.logger.warn("feature updates sent to the DLQ", {
      topic,
      partition,
      count: invalid.length,
      offsets: invalid.slice(0, 10).map((i) => i.record.offset),
    });
    return true;
  }

  private retry<T>(
    what: string,
    lease: ChunkLease,
    fn: () => Promise<T>,
    retryable?: (err: unknown) => boolean,
  ) {
    return retrying(what, lease, this.o.retry, this.o.logger, fn, retryable);
  }
}
