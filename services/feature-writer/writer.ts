// The feature writer: consumes feature updates (`features.updates.topic`) and applies them to
// the Redis online store. Per chunk of a fetched batch (chunk.ts): decode and validate every
// record, apply the valid ones in one pipelined `store.write`, send the invalid ones to
// `features.dlq.topic` (and await the acks), and only then commit the chunk's offsets. So
// offsets never run ahead of Redis: a crash or a Redis outage means a replay, and replays are
// harmless because the store's compare-and-write keeps the newest event time.
//
// Redis unavailable: nothing is committed; the same chunk is retried with bounded exponential
// backoff (processing.retryInitialMs..retryMaxMs) until it lands, the partition is revoked, or
// the writer stops. Nothing is dropped.
//
// This module keeps the group membership and the lifecycle (services/common/service.ts):
// stop() finishes the chunk under way within processing.shutdownGraceMs (retrying Redis for
// part of it), leaves the group, and resolves with the exit code.
import { hostname } from "node:os";
import type { Consumer, EachBatchPayload, KafkaMessage, Producer } from "kafkajs";
import type { Registry } from "prom-client";
import { AimassError, errorMessage } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { PipelineConfig } from "../common/config/load.js";
import type { FeaturesConfig } from "../common/config/schema.js";
import { createKafka } from "../common/kafka/client.js";
import { groupConsumerConfig } from "../common/kafka/consumer.js";
import { createSchemaRegistryClient } from "../common/serde/schema-registry.js";
import { avroCodec, jsonCodec } from "../common/serde/codec.js";
import { FeatureStore } from "../common/features/store.js";
import { closeAll, exceedsGrace } from "../common/lifecycle.js";
import type { Service, ServiceState } from "../common/service.js";
import { TUNING } from "../common/tuning.js";
import { ChunkApplier } from "./chunk.js";
import { FeatureWriterMetrics } from "./metrics.js";
import type { ChunkLease } from "./retry.js";

export type FeatureWriterState = ServiceState;

export interface FeatureWriterOptions {
  config: PipelineConfig;
  logger: Logger;
  /** Distinguishes writers in client ids and logs. @default "<hostname>-<pid>" */
  instanceId?: string;
}

/** The features section with the two topics a writer needs (optional in the schema). */
type WriterFeatures = FeaturesConfig & {
  updates: NonNullable<FeaturesConfig["updates"]>;
  dlq: NonNullable<FeaturesConfig["dlq"]>;
};

export class FeatureWriter implements Service {
  private stateValue: FeatureWriterState = "starting";
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private store: FeatureStore | undefined;
  private chunks: ChunkApplier | undefined;
  private assigned: number[] = [];
  private abandoned = 0;
  private readonly inBatch = new Set<Promise<void>>();
  /** When the chunk under way of each partition started: a liveness bound. */
  private readonly chunkSince = new Map<number, number>();
  /** Aborted when the chunk under way must stop retrying (part of the way into a drain). */
  private readonly giveUp = new AbortController();
  private stopping: Promise<number> | undefined;
  private resolveFailed: (err: unknown) => void = () => undefined;
  readonly failed = new Promise<unknown>((r) => (this.resolveFailed = r));
  private readonly features: WriterFeatures;
  private readonly log: Logger;
  readonly metrics: FeatureWriterMetrics;

  constructor(private readonly options: FeatureWriterOptions) {
    this.features = writerFeatures(options.config);
    this.log = options.logger.child({ pipeline: options.config.pipeline.name, component: "feature-writer" });
    this.metrics = new FeatureWriterMetrics(() => this.store?.available ?? false);
  }

  /** The Prometheus registry with the writer's metrics (`metrics.prometheus`). */
  get registry(): Registry {
    return this.metrics.prometheus;
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

  get notReadyReason(): string | undefined {
    if (this.ready) return undefined;
    return this.stateValue !== "running" ? `state ${this.stateValue}` : "no partitions assigned";
  }

  /** False too while a chunk has been retried past processing.stallTimeoutMs (Redis, the DLQ). */
  get alive(): boolean {
    if (this.stateValue === "failed" || this.stateValue === "stopped") return false;
    const since = Math.min(...this.chunkSince.values());
    return !(performance.now() - since > this.options.config.processing.stallTimeoutMs);
  }

  async start(): Promise<void> {
    const { config } = this.options;
    const { updates, dlq } = this.features;
    const instanceId = this.options.instanceId ?? `${hostname()}-${process.pid}`;
    try {
      const store = FeatureStore.connect(config.endpoints.redisUrl, this.features, this.log);
      this.store = store;
      // Not fatal: a writer started during a Redis outage waits for it chunk by chunk.
      await store.waitReady(TUNING.features.writerStoreReadyMs).catch((err: unknown) => {
        this.log.warn("redis not ready yet; updates will wait for it", { error: errorMessage(err) });
      });
      const kafka = createKafka({
        brokers: config.endpoints.kafkaBrokers,
        clientId: `aimass-${config.pipeline.name}-features-${instanceId}`,
        logger: this.log,
      });
      const producer = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      });
      this.producer = producer;
      await producer.connect();
      this.chunks = new ChunkApplier({
        codec:
          updates.format === "avro"
            ? avroCodec({ registry: createSchemaRegistryClient({ url: config.endpoints.schemaRegistryUrl }) })
            : jsonCodec(),
        features: this.features,
        store,
        producer,
        dlqTopic: dlq.topic,
        dlqMaxRecordBytes: dlq.maxRecordBytes,
        pipeline: config.pipeline.name,
        retry: {
          initialMs: config.processing.retryInitialMs,
          maxMs: config.processing.retryMaxMs,
          heartbeatIntervalMs: config.processing.heartbeatIntervalMs,
        },
        metrics: this.metrics,
        logger: this.log,
      });
      const consumer = kafka.consumer(
        groupConsumerConfig(config, this.groupId, { allowAutoTopicCreation: false }),
      );
      this.consumer = consumer;
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        this.assigned = [...(e.payload.memberAssignment[updates.topic] ?? [])].sort((a, b) => a - b);
        this.log.info("partitions assigned", { partitions: this.assigned });
      });
      consumer.on(consumer.events.CRASH, (e) => {
        const restart = (e.payload as { restart?: boolean }).restart;
        this.log.error("consumer crashed", { error: e.payload.error, restart });
        if (!restart) this.fail(e.payload.error);
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [updates.topic], fromBeginning: true });
      await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (p) => this.track(p) });
      this.stateValue = "running";
      this.log.info("feature writer running", {
        group: this.groupId,
        updates: updates.topic,
        dlq: dlq.topic,
        instanceId,
      });
    } catch (err) {
      this.stateValue = "failed";
      await this.closeResources();
      throw err;
    }
  }

  /** Runs a batch, remembered until it settles so a drain can wait for it. */
  private track(payload: EachBatchPayload): Promise<void> {
    const run = this.onBatch(payload);
    this.inBatch.add(run);
    const forget = () => this.inBatch.delete(run);
    run.then(forget, forget);
    return run;
  }

  /** Chunks of a batch, each written, dead-lettered and committed before the next. */
  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat } = payload;
    const { topic, partition } = batch;
    const size = this.options.config.processing.maxRecordsPerTransaction;
    const lease: ChunkLease = {
      lost: () => this.giveUp.signal.aborted || !payload.isRunning() || payload.isStale(),
      heartbeat,
      signal: this.giveUp.signal,
    };
    for (let i = 0; i < batch.messages.length; i += size) {
      // Not running (draining): nothing to abandon; whoever owns the partition next reads it.
      if (!this.chunks || this.stateValue !== "running" || !payload.isRunning() || payload.isStale()) return;
      const messages = batch.messages.slice(i, i + size);
      this.chunkSince.set(partition, performance.now());
      const applied = await this.chunks
        .apply(topic, partition, messages, lease)
        .finally(() => this.chunkSince.delete(partition));
      if (!applied) {
        // Revoked: the new owner redoes it, nothing to report. Stopping: not a clean stop.
        if (this.stateValue !== "running") this.abandoned += 1;
        return;
      }
      const last = messages[messages.length - 1] as KafkaMessage;
      await this.consumer?.commitOffsets([
        { topic, partition, offset: (BigInt(last.offset) + 1n).toString() },
      ]);
      this.metrics.commits.inc();
      resolveOffset(last.offset);
      await heartbeat();
    }
  }

  private fail(err: unknown): void {
    if (this.stateValue === "failed" || this.stateValue === "stopped") return;
    this.stateValue = "failed";
    this.log.error("feature writer failed", { error: err });
    this.resolveFailed(err);
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
    const giveUp = setTimeout(() => this.giveUp.abort(), graceMs * TUNING.features.drainRetryShareOfGrace);
    const { consumer } = this;
    const finished = Promise.allSettled([...this.inBatch]).then(() =>
      // Leaving the group hands the partitions over at once instead of after a session timeout.
      closeAll(this.log, [["consumer", consumer && (() => consumer.disconnect())]]),
    );
    const timedOut = await exceedsGrace(finished, graceMs);
    clearTimeout(giveUp);
    this.giveUp.abort();
    if (timedOut) {
      this.log.error("shutdown grace time exceeded", {
        graceMs,
        error: new AimassError("SHUTDOWN_TIMEOUT", `feature writes not committed within ${graceMs} ms`),
      });
    }
    await this.closeResources({ leaveGroup: false });
    const clean = !timedOut && !failed && this.abandoned === 0;
    this.stateValue = failed ? "failed" : "stopped";
    this.log.info("feature writer stopped", { clean, abandonedChunks: this.abandoned });
    return clean ? 0 : 1;
  }

  private async closeResources({ leaveGroup } = { leaveGroup: true }): Promise<void> {
    const { consumer, producer, store } = this;
    await closeAll(this.log, [
      ["consumer", leaveGroup && consumer ? () => consumer.disconnect() : undefined],
      ["producer", producer && (() => producer.disconnect())],
      ["redis", store && (() => store.close())],
    ]);
  }
}

/** The features section, checked for what a writer needs beyond the schema. */
function writerFeatures(config: PipelineConfig): WriterFeatures {
  const { features, source: where } = config;
  if (!features)
    throw new AimassError("CONFIG_INVALID", `${where}: the feature writer needs a "features" section`);
  const { updates, dlq } = features;
  if (!updates)
    throw new AimassError("CONFIG_INVALID", `${where}: the feature writer needs features.updates.topic`);
  if (!dlq) throw new AimassError("CONFIG_INVALID", `${where}: the feature writer needs features.dlq.topic`);
  if (updates.topic === dlq.topic) {
    throw new AimassError("CONFIG_INVALID", `${where}: features.updates and features.dlq topics must differ`);
  }
  return { ...features, updates, dlq };
}
