// The feature writer: consumes feature updates (`features.updates.topic`) and applies them to
// the Redis online store. Per chunk of a fetched batch: decode and validate every record,
// apply the valid ones in one pipelined `store.write`, send the invalid ones to
// `features.dlq.topic` (and await the acks), and only then commit the chunk's offsets. So
// offsets never run ahead of Redis: a crash or a Redis outage means a replay, and replays are
// harmless because the store's compare-and-write keeps the newest event time.
//
// Redis unavailable: nothing is committed; the same chunk is retried with bounded exponential
// backoff (processing.retryInitialMs..retryMaxMs) until it lands, the partition is revoked, or
// the writer stops. Nothing is dropped.
//
// Lifecycle: starting → running → draining → stopped | failed. stop() finishes the chunk under
// way within processing.shutdownGraceMs (retrying Redis for at most half of it), leaves the
// group, and resolves with the exit code.
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Message, Producer } from "kafkajs";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { AimassError, errorMessage, isAimassError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { PipelineConfig } from "../common/config/load.js";
import type { FeaturesConfig } from "../common/config/schema.js";
import { createKafka } from "../common/kafka/client.js";
import { createSchemaRegistryClient } from "../common/serde/schema-registry.js";
import { avroCodec, jsonCodec, type ValueCodec } from "../common/serde/codec.js";
import { FeatureStore } from "../common/features/store.js";
import { dlqMessage, type DlqStage } from "../common/dlq.js";
import type { SourceRecord } from "../common/records.js";
import { decodeUpdate, type ValidUpdate } from "./update.js";
import { closeAll, exceedsGrace, sleep } from "../common/lifecycle.js";

export type FeatureWriterState = "starting" | "running" | "draining" | "stopped" | "failed";

export interface FeatureWriterOptions {
  config: PipelineConfig;
  logger: Logger;
  /** Distinguishes writers in client ids and logs. @default "<hostname>-<pid>" */
  instanceId?: string;
}

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class FeatureWriterMetrics {
  readonly registry = new Registry();
  readonly consumed = new Counter({
    name: "aimass_features_updates_consumed_total",
    help: "Feature update records read from the updates topic (replays included).",
    registers: [this.registry],
  });
  readonly applied = new Counter({
    name: "aimass_features_updates_applied_total",
    help: "Updates written to Redis (newer than what was stored).",
    registers: [this.registry],
  });
  readonly skippedStale = new Counter({
    name: "aimass_features_updates_skipped_stale_total",
    help: "Updates not written: Redis already held the same or a newer event time (duplicates, replays, out of order).",
    registers: [this.registry],
  });
  readonly dlq = new Counter({
    name: "aimass_features_dlq_records_total",
    help: "Updates sent to the features DLQ, by reason (error code).",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly writeSeconds = new Histogram({
    name: "aimass_features_write_duration_seconds",
    help: "Time of one successful pipelined write of a chunk's updates.",
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly redisErrors = new Counter({
    name: "aimass_features_redis_errors_total",
    help: "Failed write attempts (Redis unreachable, timed out or busy); each is retried.",
    registers: [this.registry],
  });
  readonly commits = new Counter({
    name: "aimass_features_offset_commits_total",
    help: "Offset commits (one per chunk, after its writes and DLQ records landed).",
    registers: [this.registry],
  });

  constructor(redisAvailable: () => boolean) {
    new Gauge({
      name: "aimass_features_redis_available",
      help: "1 while the Redis connection is ready.",
      registers: [this.registry],
      collect() {
        this.set(redisAvailable() ? 1 : 0);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: "aimass_features_process_" });
  }
}

interface WriterTopics {
  updates: string;
  dlq: string;
}

const ABANDONED = Symbol("abandoned");

export class FeatureWriter {
  private stateValue: FeatureWriterState = "starting";
  private kafka: Kafka | undefined;
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private store: FeatureStore | undefined;
  private codec!: ValueCodec;
  private assigned: number[] = [];
  private abandoned = 0;
  private readonly inBatch = new Set<Promise<void>>();
  private readonly stopController = new AbortController();
  private stopping: Promise<number> | undefined;
  private readonly features: FeaturesConfig;
  private readonly topics: WriterTopics;
  private readonly log: Logger;
  readonly metrics: FeatureWriterMetrics;

  constructor(private readonly options: FeatureWriterOptions) {
    const { features } = options.config;
    const where = options.config.source;
    if (!features) {
      throw new AimassError("CONFIG_INVALID", `${where}: the feature writer needs a "features" section`);
    }
    if (!features.updates) {
      throw new AimassError("CONFIG_INVALID", `${where}: the feature writer needs features.updates.topic`);
    }
    if (!features.dlq) {
      throw new AimassError("CONFIG_INVALID", `${where}: the feature writer needs features.dlq.topic`);
    }
    if (features.updates.topic === features.dlq.topic) {
      throw new AimassError(
        "CONFIG_INVALID",
        `${where}: features.updates and features.dlq topics must differ`,
      );
    }
    this.features = features;
    this.topics = { updates: features.updates.topic, dlq: features.dlq.topic };
    this.log = options.logger.child({ pipeline: options.config.pipeline.name, component: "feature-writer" });
    this.metrics = new FeatureWriterMetrics(() => this.store?.available ?? false);
  }

  get registry(): Registry {
    return this.metrics.registry;
  }

  get state(): FeatureWriterState {
    return this.stateValue;
  }

  /** The consumer group: `<pipeline groupId>-features`. */
  get groupId(): string {
    return `${this.options.config.pipeline.groupId}-features`;
  }

  /** Ready: running with at least one partition of the updates topic assigned. */
  get ready(): boolean {
    return this.stateValue === "running" && this.assigned.length > 0;
  }

  async start(): Promise<void> {
    const { config } = this.options;
    const instanceId = this.options.instanceId ?? `${(await import("node:os")).hostname()}-${process.pid}`;
    try {
      this.store = FeatureStore.connect(config.endpoints.redisUrl, this.features, this.log);
      // Not fatal: a writer started during a Redis outage waits for it batch by batch.
      await this.store.waitReady(5_000).catch((err: unknown) => {
        this.log.warn("redis not ready yet; updates will wait for it", { error: errorMessage(err) });
      });
      this.codec =
        this.features.updates?.format === "avro"
          ? avroCodec({ registry: createSchemaRegistryClient({ url: config.endpoints.schemaRegistryUrl }) })
          : jsonCodec();
      this.kafka = createKafka({
        brokers: config.endpoints.kafkaBrokers,
        clientId: `aimass-${config.pipeline.name}-features-${instanceId}`,
        logger: this.log,
      });
      this.producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      });
      await this.producer.connect();
      const consumer = this.kafka.consumer({
        groupId: this.groupId,
        sessionTimeout: config.processing.sessionTimeoutMs,
        heartbeatInterval: config.processing.heartbeatIntervalMs,
        rebalanceTimeout: Math.max(60_000, config.processing.shutdownGraceMs),
        readUncommitted: false,
        maxWaitTimeInMs: 100,
        allowAutoTopicCreation: false,
        retry: { retries: 10 },
      });
      this.consumer = consumer;
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        this.assigned = [...(e.payload.memberAssignment[this.topics.updates] ?? [])].sort((a, b) => a - b);
        this.log.info("partitions assigned", { partitions: this.assigned });
      });
      consumer.on(consumer.events.CRASH, (e) => {
        const restart = (e.payload as { restart?: boolean }).restart;
        this.log.error("consumer crashed", { error: e.payload.error, restart });
        if (!restart) this.fail(e.payload.error);
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [this.topics.updates], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: (p) => {
          const run = this.onBatch(p);
          this.inBatch.add(run);
          const forget = () => this.inBatch.delete(run);
          run.then(forget, forget);
          return run;
        },
      });
      this.stateValue = "running";
      this.log.info("feature writer running", {
        group: this.groupId,
        updates: this.topics.updates,
        dlq: this.topics.dlq,
        instanceId,
      });
    } catch (err) {
      this.stateValue = "failed";
      await this.closeResources();
      throw err;
    }
  }

  /** Chunks of a batch, each written, dead-lettered and committed before the next. */
  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat } = payload;
    const { topic, partition } = batch;
    const size = this.options.config.processing.maxRecordsPerTransaction;
    for (let i = 0; i < batch.messages.length; i += size) {
      // Not started yet: nothing to abandon; whoever owns the partition next reads it.
      if (this.stateValue !== "running" || !payload.isRunning() || payload.isStale()) return;
      const messages = batch.messages.slice(i, i + size);
      const done = await this.processChunk(topic, partition, messages, payload);
      if (!done) {
        // Revoked: the new owner redoes it, nothing to report. Stopping: not a clean stop.
        if (this.stateValue !== "running") this.abandoned += 1;
        return;
      }
      const last = messages[messages.length - 1] as KafkaMessage;
      const next = (BigInt(last.offset) + 1n).toString();
      await this.consumer?.commitOffsets([{ topic, partition, offset: next }]);
      this.metrics.commits.inc();
      resolveOffset(last.offset);
      await heartbeat();
    }
  }

  /** Applies one chunk; false when it was abandoned (stopping, or the partition moved). */
  private async processChunk(
    topic: string,
    partition: number,
    messages: KafkaMessage[],
    payload: EachBatchPayload,
  ): Promise<boolean> {
    const records: SourceRecord[] = messages.map((m) => ({
      topic,
      partition,
      offset: m.offset,
      timestamp: m.timestamp,
      key: m.key ?? null,
      value: m.value ?? null,
      headers: m.headers ?? {},
    }));
    this.metrics.consumed.inc(records.length);

    // Decode: a registry outage (retryable) retries the chunk; anything else is the record's fault.
    const decoded = await this.retrying("decode", payload, async () => {
      const valid: Array<{ record: SourceRecord; update: ValidUpdate }> = [];
      const invalid: Array<{ record: SourceRecord; stage: DlqStage; error: unknown }> = [];
      for (const record of records) {
        try {
          valid.push({ record, update: await decodeUpdate(this.codec, topic, record.value, this.features) });
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
    });
    if (decoded === ABANDONED) return false;
    const { valid, invalid } = decoded;

    if (valid.length > 0) {
      const store = this.store as FeatureStore;
      const results = await this.retrying("write", payload, async () => {
        const started = performance.now();
        try {
          const r = await store.writeSettled(valid.map((v) => v.update));
          this.metrics.writeSeconds.observe((performance.now() - started) / 1000);
          return r;
        } catch (err) {
          if (isAimassError(err, "FEATURE_STORE_UNAVAILABLE")) this.metrics.redisErrors.inc();
          throw err;
        }
      });
      if (results === ABANDONED) return false;
      results.forEach((r, i) => {
        if (r === 1) this.metrics.applied.inc();
        else if (r === 0) this.metrics.skippedStale.inc();
        else {
          const record = valid[i]?.record;
          // Redis refused this update's data (e.g. its key holds a non-hash value).
          if (record) invalid.push({ record, stage: "validate", error: r });
        }
      });
    }

    if (invalid.length > 0) {
      const ctx = { pipeline: this.options.config.pipeline.name };
      const messagesOut: Message[] = invalid
        .sort((a, b) => Number(BigInt(a.record.offset) - BigInt(b.record.offset)))
        .map((i) => dlqMessage(i.record, i.stage, i.error, ctx));
      const sent = await this.retrying(
        "dlq send",
        payload,
        async () => {
          await this.producer?.send({ topic: this.topics.dlq, messages: messagesOut, acks: -1 });
        },
        () => true,
      );
      if (sent === ABANDONED) return false;
      for (const i of invalid) {
        this.metrics.dlq.inc({ reason: isAimassError(i.error) ? i.error.code : "UNKNOWN" });
      }
      this.log.warn("feature updates sent to the DLQ", {
        topic,
        partition,
        count: invalid.length,
        offsets: invalid.slice(0, 10).map((i) => i.record.offset),
      });
    }
    return true;
  }

  /**
   * Runs `fn` until it succeeds, backing off between attempts (bounded exponential) and
   * heartbeating so the group keeps the partition. Only retryable errors are retried (by
   * default AimassError.canRetry); others propagate. Returns ABANDONED when the writer has
   * given up on retrying (stopping) or the batch is stale (partition revoked).
   */
  private async retrying<T>(
    what: string,
    payload: EachBatchPayload,
    fn: () => Promise<T>,
    retryable: (err: unknown) => boolean = (err) => isAimassError(err) && err.canRetry,
  ): Promise<T | typeof ABANDONED> {
    const { retryInitialMs, retryMaxMs, heartbeatIntervalMs } = this.options.config.processing;
    let backoff = retryInitialMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const value = await fn();
        if (attempt > 1) this.log.info(`${what} succeeded after retries`, { attempts: attempt });
        return value;
      } catch (err) {
        if (!retryable(err)) throw err;
        const give = this.stopController.signal.aborted || !payload.isRunning() || payload.isStale();
        const msg = give
          ? `${what} failed; giving up on this chunk (stopping, or the partition moved)`
          : `${what} failed; retrying`;
        const fields = { attempt, backoffMs: backoff, error: errorMessage(err) };
        if (attempt === 1 || attempt % 20 === 0 || give) this.log.warn(msg, fields);
        else this.log.debug(msg, fields);
        if (give) return ABANDONED;
      }
      // Sleep in heartbeat-sized slices: a long backoff must not cost the partition.
      for (let left = backoff; left > 0; left -= heartbeatIntervalMs) {
        await sleep(Math.min(left, heartbeatIntervalMs), this.stopController.signal);
        if (this.stopController.signal.aborted || !payload.isRunning() || payload.isStale()) return ABANDONED;
        await payload.heartbeat();
      }
      backoff = Math.min(backoff * 2, retryMaxMs);
    }
  }

  private fail(err: unknown): void {
    if (this.stateValue === "failed" || this.stateValue === "stopped") return;
    this.stateValue = "failed";
    this.log.error("feature writer failed", { error: err });
    this.stop().catch((e: unknown) => this.log.error("stop after failure failed", { error: e }));
  }

  /**
   * Finishes the chunk under way and stops. Resolves with the exit code: 0 when everything
   * started was committed within the grace time; 1 when a chunk had to be abandoned (it is
   * redone by the next owner: the offsets were not committed), on timeout, or after a failure.
   */
  stop(): Promise<number> {
    this.stopping ??= this.drain();
    return this.stopping;
  }

  private async drain(): Promise<number> {
    const failed = this.stateValue === "failed";
    if (this.stateValue === "starting") {
      await this.closeResources();
      this.stateValue = "stopped";
      return 1;
    }
    this.stateValue = "draining";
    const graceMs = this.options.config.processing.shutdownGraceMs;
    this.log.info("draining: finishing the chunk under way", { graceMs });
    // The chunk under way may retry Redis for half the grace time; the rest is for
    // committing, leaving the group and closing.
    const giveUp = setTimeout(() => this.stopController.abort(), graceMs / 2);
    const consumer = this.consumer;
    const timedOut = await exceedsGrace(
      (async () => {
        await Promise.allSettled([...this.inBatch]);
        // Leaving the group hands the partitions over at once instead of after a session timeout.
        await closeAll(this.log, [["consumer", consumer && (() => consumer.disconnect())]]);
      })(),
      graceMs,
    );
    clearTimeout(giveUp);
    this.stopController.abort();
    if (timedOut) {
      this.log.error("shutdown grace time exceeded", {
        graceMs,
        error: new AimassError("SHUTDOWN_TIMEOUT", `feature writes not committed within ${graceMs} ms`),
      });
    }
    await this.closeResources({ consumer: false });
    const clean = !timedOut && !failed && this.abandoned === 0;
    this.stateValue = failed ? "failed" : "stopped";
    this.log.info("feature writer stopped", { clean, abandonedChunks: this.abandoned });
    return clean ? 0 : 1;
  }

  private async closeResources(what: { consumer: boolean } = { consumer: true }): Promise<void> {
    const { consumer, producer, store } = this;
    await closeAll(this.log, [
      ["consumer", what.consumer && consumer ? () => consumer.disconnect() : undefined],
      ["producer", producer && (() => producer.disconnect())],
      ["redis", store && (() => store.close())],
    ]);
  }
}
