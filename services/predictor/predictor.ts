// A predictor worker: one member of the pipeline's consumer group. It loads and warms its
// models before joining (a model that does not fit its config stops it here), then hands
// each fetched batch to the partition's PartitionWorker and returns at once, so kafkajs
// keeps fetching while earlier chunks are inferred and committed. Backpressure: above
// `maxInFlightRecords` uncommitted records the input topic is paused, below half resumed.
//
// Lifecycle: starting → running → draining → stopped | failed. stop() drains within the
// grace time (finish and commit what was fetched, leave the group) or aborts past it.
import type { Admin, Consumer, EachBatchPayload, Kafka } from "kafkajs";
import { AimassError, errorMessage } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { PipelineConfig } from "../common/config/load.js";
import { createKafka } from "../common/kafka/client.js";
import { createSchemaRegistryClient } from "../common/serde/schema-registry.js";
import { avroCodec, jsonCodec, type Format, type ValueCodec } from "../common/serde/codec.js";
import { ServedModels } from "./served-models.js";
import { ControlListener } from "./control-listener.js";
import { Enricher } from "./enrich.js";
import { FeatureStore } from "../common/features/store.js";
import { resolveVersion } from "../common/models/repository.js";
import type { ModelConfig } from "../common/config/schema.js";
import { RecordProcessor } from "./record-processor.js";
import { PartitionWorker } from "./partition-worker.js";
import { PredictorMetrics } from "./metrics.js";
import type { SourceRecord } from "../common/records.js";
import { noopTracer, type BatchTracer } from "../common/tracing.js";
import { closeAll, exceedsGrace } from "../common/lifecycle.js";
import type { Service, ServiceState } from "../common/service.js";

/** How often consumer lag is re-read from the broker (between commits too). */
const LAG_REFRESH_MS = 5_000;

export type PredictorState = ServiceState;

export interface PredictorOptions {
  config: PipelineConfig;
  logger: Logger;
  metrics?: PredictorMetrics;
  /** Distinguishes workers in client ids and logs. @default "<hostname>-<pid>" */
  instanceId?: string;
  /** Batch spans through Kafka headers. @default the no-op tracer (tracing off) */
  tracer?: BatchTracer;
}

export class Predictor implements Service {
  private stateValue: PredictorState = "starting";
  private readonly workers = new Map<number, PartitionWorker>();
  private readonly fencedAt = new Map<number, number>();
  private assigned: number[] = [];
  private inFlight = 0;
  private paused = false;
  private kafka!: Kafka;
  private admin!: Admin;
  private consumer!: Consumer;
  private processor!: RecordProcessor;
  private registry!: ServedModels;
  private control: ControlListener | undefined;
  private featureStore: FeatureStore | undefined;
  private fencedCheck: NodeJS.Timeout | undefined;
  private lagRefresh: NodeJS.Timeout | undefined;
  private rebalanceStartedAt: number | undefined;
  /** Per partition: high watermark of the last fetch, to report lag against commits. */
  private readonly highWatermarks = new Map<number, bigint>();
  private stopping: Promise<number> | undefined;
  readonly metrics: PredictorMetrics;
  private readonly log: Logger;

  constructor(private readonly options: PredictorOptions) {
    this.metrics = options.metrics ?? new PredictorMetrics();
    this.log = options.logger.child({ pipeline: options.config.pipeline.name });
  }

  private resolveFailed!: (err: unknown) => void;
  readonly failed = new Promise<unknown>((r) => (this.resolveFailed = r));

  get state(): PredictorState {
    return this.stateValue;
  }

  get alive(): boolean {
    return this.stateValue !== "failed" && this.stateValue !== "stopped";
  }

  get notReadyReason(): string | undefined {
    if (this.ready) return undefined;
    return this.stateValue !== "running" ? `state ${this.stateValue}` : "no partitions assigned";
  }

  /** Ready: models warm, in the group, at least one partition assigned, not draining. */
  get ready(): boolean {
    return this.stateValue === "running" && this.assigned.length > 0;
  }

  get modelInfo() {
    return this.registry.runtimes().map((r) => r.info);
  }

  /** The config of another version of a served model, from the model repository. */
  private resolveVersion(model: string, version: string): ModelConfig {
    const root = this.options.config.modelRepository;
    const base = this.options.config.models.find((m) => m.name === model);
    if (!root) {
      throw new AimassError(
        "CONFIG_INVALID",
        `model "${model}" is configured inline; live version changes need a modelRepository`,
      );
    }
    return resolveVersion(root, model, version, base);
  }

  private refreshModelInfo(): void {
    this.metrics.modelInfo.reset();
    for (const r of this.registry.runtimes()) {
      const info = r.info;
      this.metrics.modelInfo.set(
        { model: info.name, version: info.version, sha256: info.sha256, provider: info.executionProvider },
        1,
      );
    }
  }

  async start(): Promise<void> {
    const { config } = this.options;
    const instanceId = this.options.instanceId ?? `${(await import("node:os")).hostname()}-${process.pid}`;
    try {
      this.registry = new ServedModels(
        this.log,
        {
          onBatchClosed: (m, i) => {
            this.metrics.batchClosed.inc({ model: m.name, reason: i.reason });
            this.metrics.batchFill.observe({ model: m.name }, i.size / m.batching.maxBatchSize);
            this.metrics.queueWait.observe({ model: m.name }, i.queueWaitMs / 1000);
          },
          onInference: (m, i) => {
            this.metrics.inferenceSeconds.observe(
              { model: m.name, version: m.version, outcome: i.ok ? "ok" : "error" },
              i.ms / 1000,
            );
            if (i.ok) this.metrics.batchSize.observe({ model: m.name, version: m.version }, i.size);
          },
        },
        (model, version) => this.resolveVersion(model, version),
        () => this.refreshModelInfo(),
      );
      // Every model is loaded, validated against its tensor mapping and warmed before the
      // worker joins the group: a model that does not fit stops the worker here.
      await this.registry.init(config.models);
      if (config.features) {
        this.featureStore = FeatureStore.connect(config.endpoints.redisUrl, config.features, this.log);
        try {
          await this.featureStore.waitReady(5_000);
        } catch (err) {
          // Not fatal: chunks fail (and are retried) or fall back, per onUnavailable, until it answers.
          this.log.warn("feature store not reachable yet", { error: errorMessage(err) });
        }
      }
      const enricher =
        this.featureStore && config.features
          ? new Enricher(this.featureStore, config.features, (s) => {
              this.metrics.featureLookupSeconds.observe(s.ms / 1000);
              for (const l of s.lookups) this.metrics.featureLookups.inc({ view: l.view, status: l.status });
              if (s.error) this.metrics.featureStoreErrors.inc();
              if (s.fallback) this.metrics.featureFallback.inc();
            })
          : undefined;
      const registry = createSchemaRegistryClient({ url: config.endpoints.schemaRegistryUrl });
      const codec = (format: Format): ValueCodec =>
        format === "avro" ? avroCodec({ registry }) : jsonCodec();
      this.processor = new RecordProcessor({
        config,
        inputCodec: codec(config.input.format),
        outputCodec: codec(config.output.format),
        snapshot: () => this.registry.snapshot(),
        ...(enricher ? { enricher } : {}),
        tracer: this.options.tracer ?? noopTracer,
      });

      this.kafka = createKafka({
        brokers: config.endpoints.kafkaBrokers,
        clientId: `aimass-${config.pipeline.name}-${instanceId}`,
        logger: this.log,
      });
      this.admin = this.kafka.admin();
      await this.admin.connect();
      this.control = new ControlListener({
        kafka: this.kafka,
        admin: this.admin,
        topic: config.control.topic,
        auditTopic: config.control.auditTopic,
        shadowTopic: config.output.shadowTopic,
        groupId: `${config.pipeline.groupId}.control.${instanceId}`,
        worker: instanceId,
        registry: this.registry,
        logger: this.log,
      });
      // The desired versions apply before the first event is consumed.
      await this.control.start();
      this.consumer = this.kafka.consumer({
        groupId: config.pipeline.groupId,
        sessionTimeout: config.processing.sessionTimeoutMs,
        heartbeatInterval: config.processing.heartbeatIntervalMs,
        rebalanceTimeout: Math.max(60_000, config.processing.shutdownGraceMs),
        readUncommitted: false,
        maxWaitTimeInMs: 100,
        maxBytesPerPartition: Math.max(1_048_576, config.input.maxRecordBytes * 4),
        retry: { retries: 10 },
      });
      this.consumer.on(this.consumer.events.REBALANCING, () => {
        this.rebalanceStartedAt ??= performance.now();
      });
      this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => this.onGroupJoin(e.payload.memberAssignment));
      this.consumer.on(this.consumer.events.CRASH, (e) => {
        const restart = (e.payload as { restart?: boolean }).restart;
        this.log.error("consumer crashed", { error: e.payload.error, restart });
        if (!restart) this.fail(e.payload.error);
      });
      await this.consumer.connect();
      await this.consumer.subscribe({ topics: [config.input.topic], fromBeginning: true });
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: true,
        eachBatch: (p) => this.onBatch(p),
      });
      this.fencedCheck = setInterval(() => this.checkFenced(), config.processing.sessionTimeoutMs).unref();
      // Lag from the broker, not only at commits: a stalled or paused worker must show lag
      // growing, or the lag alert could never see a stall.
      this.lagRefresh = setInterval(() => void this.refreshLag(), LAG_REFRESH_MS).unref();
      this.metrics.sampleReady(() => this.ready);
      this.metrics.samplePools(() =>
        this.registry
          .runtimes()
          .map((r) => ({ model: `${r.config.name}@${r.config.version}`, ...r.utilization })),
      );
      this.stateValue = "running";
      this.log.info("predictor running", {
        group: config.pipeline.groupId,
        input: config.input.topic,
        instanceId,
      });
    } catch (err) {
      this.stateValue = "failed";
      await this.closeResources();
      throw err;
    }
  }

  private async onBatch({ batch }: EachBatchPayload): Promise<void> {
    if (this.stateValue !== "running" || batch.messages.length === 0) return;
    const { partition, topic } = batch;
    const worker =
      this.workers.get(partition) ?? (this.fencedAt.has(partition) ? undefined : this.spawn(partition));
    if (!worker) return; // fenced: kafkajs re-reads from the committed offset after the rejoin
    const max = this.options.config.processing.maxRecordsPerTransaction;
    const records: SourceRecord[] = batch.messages.map((m) => ({
      topic,
      partition,
      offset: m.offset,
      timestamp: m.timestamp,
      key: m.key ?? null,
      value: m.value ?? null,
      headers: m.headers ?? {},
    }));
    this.metrics.eventsConsumed.inc({ topic }, records.length);
    this.highWatermarks.set(partition, BigInt(batch.highWatermark));
    for (let i = 0; i < records.length; i += max) worker.enqueue(records.slice(i, i + max));
  }

  private spawn(partition: number): PartitionWorker {
    const { config } = this.options;
    const topic = config.input.topic;
    const worker = new PartitionWorker({
      kafka: this.kafka,
      topic,
      partition,
      groupId: config.pipeline.groupId,
      transactionalId: `${config.pipeline.transactionalIdPrefix}.${topic}.${partition}`,
      outputTopic: config.output.topic,
      dlqTopic: config.dlq.topic,
      shadowTopic: config.output.shadowTopic,
      transactionTimeoutMs: config.processing.transactionTimeoutMs,
      maxRecordsPerTransaction: config.processing.maxRecordsPerTransaction,
      maxRequestBytes: config.processing.maxRequestBytes,
      retryInitialMs: config.processing.retryInitialMs,
      retryMaxMs: config.processing.retryMaxMs,
      processor: this.processor,
      logger: this.log,
      fetchCommittedOffset: () => this.committedOffset(partition),
      onInFlight: (delta) => this.onInFlight(delta),
      onCommitted: (i) => {
        const now = Date.now();
        for (const ts of i.timestamps) this.metrics.endToEnd.observe(Math.max(0, now - ts) / 1000);
        const hw = this.highWatermarks.get(partition);
        if (hw !== undefined) {
          const lag = hw - i.nextOffset;
          this.metrics.consumerLag.set({ topic, partition: String(partition) }, Number(lag > 0n ? lag : 0n));
        }
        this.metrics.predictions.inc({ topic: config.output.topic }, i.predictions);
        for (const [stage, n] of Object.entries(i.dlq)) this.metrics.dlq.inc({ stage }, n);
        this.metrics.transactionSeconds.observe(i.ms / 1000);
      },
      onAbort: () => this.metrics.transactionAborts.inc(),
      onFenced: () => {
        this.metrics.fenced.inc();
        this.fencedAt.set(partition, Date.now());
        if (this.workers.get(partition) === worker) this.workers.delete(partition);
      },
    });
    this.workers.set(partition, worker);
    return worker;
  }

  private async committedOffset(partition: number): Promise<bigint | undefined> {
    const { groupId } = this.options.config.pipeline;
    const topic = this.options.config.input.topic;
    const [entry] = await this.admin.fetchOffsets({ groupId, topics: [topic] });
    const offset = entry?.partitions.find((p) => p.partition === partition)?.offset;
    return offset === undefined || offset === "-1" ? undefined : BigInt(offset);
  }

  private onGroupJoin(assignment: Record<string, number[]>): void {
    const topic = this.options.config.input.topic;
    this.assigned = [...(assignment[topic] ?? [])].sort((a, b) => a - b);
    this.metrics.rebalances.inc();
    if (this.rebalanceStartedAt !== undefined) {
      this.metrics.rebalancePause.observe((performance.now() - this.rebalanceStartedAt) / 1000);
      this.rebalanceStartedAt = undefined;
    }
    this.metrics.assignedPartitions.set(this.assigned.length);
    for (const p of this.highWatermarks.keys()) {
      if (!this.assigned.includes(p)) {
        this.highWatermarks.delete(p);
        this.metrics.consumerLag.remove({ topic, partition: String(p) });
      }
    }
    this.log.info("partitions assigned", { partitions: this.assigned });
    this.fencedAt.clear();
    for (const [partition, worker] of this.workers) {
      if (!this.assigned.includes(partition)) {
        // Revoked: let a transaction already under way finish, drop the rest.
        this.workers.delete(partition);
        void worker.stop("discard");
      }
    }
    // Fence previous owners now rather than at the first record.
    if (this.stateValue === "running") for (const p of this.assigned) if (!this.workers.has(p)) this.spawn(p);
    if (this.paused) this.setFetching(false);
  }

  /**
   * A fenced partition that is still ours after two session timeouts (no rebalance came)
   * means something else uses our transactional ids — another pipeline with the same
   * transactionalIdPrefix. Re-taking the partition in-process could skip records dropped
   * while it was fenced, so the worker fails loudly instead; a restart resumes from the
   * committed offsets.
   */
  private checkFenced(): void {
    const timeout = this.options.config.processing.sessionTimeoutMs * 2;
    for (const [partition, at] of this.fencedAt) {
      if (Date.now() - at < timeout || !this.assigned.includes(partition) || this.stateValue !== "running")
        continue;
      this.fail(
        new AimassError(
          "KAFKA_FENCED",
          `partition ${partition} stayed fenced for ${timeout} ms without a rebalance: another process uses ` +
            `transactional ids "${this.options.config.pipeline.transactionalIdPrefix}.*" (check transactionalIdPrefix)`,
        ),
      );
      return;
    }
  }

  /** Sets lag per assigned partition to the broker's high watermark minus the group's committed offset. */
  private async refreshLag(): Promise<void> {
    if (this.stateValue !== "running" || this.assigned.length === 0) return;
    const topic = this.options.config.input.topic;
    try {
      const [ends, [committed]] = await Promise.all([
        this.admin.fetchTopicOffsets(topic),
        this.admin.fetchOffsets({ groupId: this.options.config.pipeline.groupId, topics: [topic] }),
      ]);
      for (const partition of this.assigned) {
        const high = ends.find((e) => e.partition === partition)?.high;
        const done = committed?.partitions.find((p) => p.partition === partition)?.offset;
        if (high === undefined) continue;
        const from = done === undefined || done === "-1" ? 0n : BigInt(done);
        const lag = BigInt(high) - from;
        this.highWatermarks.set(partition, BigInt(high));
        this.metrics.consumerLag.set({ topic, partition: String(partition) }, Number(lag > 0n ? lag : 0n));
      }
    } catch (err) {
      this.log.debug("lag refresh failed", { error: errorMessage(err) });
    }
  }

  /** pause/resume throw while kafkajs restarts its consumer group; backpressure must not. */
  private setFetching(on: boolean): void {
    const topics = [{ topic: this.options.config.input.topic }];
    try {
      if (on) this.consumer.resume(topics);
      else this.consumer.pause(topics);
    } catch (err) {
      this.log.warn(`could not ${on ? "resume" : "pause"} fetching`, { error: errorMessage(err) });
    }
  }

  private onInFlight(delta: number): void {
    this.inFlight += delta;
    this.metrics.inFlight.set(this.inFlight);
    const max = this.options.config.processing.maxInFlightRecords;
    if (!this.paused && this.inFlight >= max && this.stateValue === "running") {
      this.paused = true;
      this.metrics.paused.set(1);
      this.setFetching(false);
      this.log.debug("backpressure: paused fetching", { inFlight: this.inFlight });
    } else if (this.paused && this.inFlight <= max / 2 && this.stateValue === "running") {
      this.paused = false;
      this.metrics.paused.set(0);
      this.setFetching(true);
      this.log.debug("backpressure: resumed fetching", { inFlight: this.inFlight });
    }
  }

  private fail(err: unknown): void {
    if (this.stateValue === "failed" || this.stateValue === "stopped") return;
    this.stateValue = "failed";
    this.log.error("predictor failed", { error: err });
    this.resolveFailed(err);
    this.stop().catch((e: unknown) => this.log.error("stop after failure failed", { error: e }));
  }

  /**
   * Drains and stops. Resolves with the exit code: 0 when everything fetched was committed
   * within the grace time, 1 when work had to be aborted (it will be redone by the next owner).
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
    clearInterval(this.fencedCheck);
    clearInterval(this.lagRefresh);
    const graceMs = this.options.config.processing.shutdownGraceMs;
    this.log.info("draining: finishing in-flight batches", { inFlight: this.inFlight, graceMs });
    if (this.consumer) this.setFetching(false);
    this.registry?.flush();
    const workers = [...this.workers.values()];
    const timedOut = await exceedsGrace(Promise.all(workers.map((w) => w.stop("drain"))), graceMs);
    if (timedOut) {
      this.log.error("shutdown grace time exceeded: aborting in-flight transactions", {
        graceMs,
        inFlight: this.inFlight,
        error: new AimassError("SHUTDOWN_TIMEOUT", `work not committed within ${graceMs} ms`),
      });
      await Promise.all(workers.map((w) => w.kill()));
    }
    await this.closeResources();
    this.stateValue = failed ? "failed" : "stopped";
    this.log.info("predictor stopped", { clean: !timedOut && !failed });
    return timedOut || failed ? 1 : 0;
  }

  private async closeResources(): Promise<void> {
    const { consumer, control, admin, registry, featureStore } = this;
    // Leaving the group first hands our partitions over at once instead of after a session timeout.
    await closeAll(this.log, [
      ["consumer", consumer && (() => consumer.disconnect())],
      ["control listener", control && (() => control.stop())],
      ["admin", admin && (() => admin.disconnect())],
      ["models", registry && (() => registry.close())],
      ["feature store", featureStore && (() => featureStore.close())],
    ]);
  }
}
