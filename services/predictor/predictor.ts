// A predictor worker: one member of the pipeline's consumer group. It builds and warms what it
// serves (composition.ts) before joining, then hands each fetched batch to the partition's
// PartitionWorker and returns at once, so kafkajs keeps fetching while earlier chunks are
// inferred and committed. Backpressure is per partition (fetch-gate.ts).
//
// Every group join starts a fresh worker, and so a fresh producer epoch, for every assigned
// partition, once the previous worker of that partition in this process has stopped: after
// a rebalance or a zombie's rejoin nothing stale is reused. A worker fenced while its
// partition is still assigned is replaced after a session timeout (by then a zombie has
// learned that it lost the partition); a partition fenced again and again without a
// rebalance means another process uses our transactional ids, and the worker fails.
//
// Lifecycle (services/common/service.ts): starting → running → draining → stopped | failed.
import { hostname } from "node:os";
import type { Consumer, EachBatchPayload } from "kafkajs";
import { AimassError, errorMessage } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { PipelineConfig } from "../common/config/load.js";
import type { SourceRecord } from "../common/records.js";
import { kafkaTransactionalSink } from "../common/kafka/transactional-sink.js";
import { noopTracer, type BatchTracer } from "../common/tracing.js";
import { closeAll, exceedsGrace } from "../common/lifecycle.js";
import { TUNING } from "../common/tuning.js";
import type { Service, ServiceState } from "../common/service.js";
import { composePredictor, type PredictorParts } from "./composition.js";
import { PartitionWorker } from "./partition-worker.js";
import { PredictorMetrics } from "./metrics.js";
import { FetchGate } from "./fetch-gate.js";
import { LagMonitor } from "./lag-monitor.js";

/** Fences of one partition between two rebalances past which the worker fails. */
const MAX_FENCES_WITHOUT_REBALANCE = 3;

export interface PredictorOptions {
  config: PipelineConfig;
  logger: Logger;
  metrics?: PredictorMetrics;
  /** Distinguishes workers in client ids and logs. @default "<hostname>-<pid>" */
  instanceId?: string;
  /** Batch spans through Kafka headers. @default the no-op tracer (tracing off) */
  tracer?: BatchTracer;
}

interface Running {
  parts: PredictorParts;
  consumer: Consumer;
  gate: FetchGate;
  lag: LagMonitor;
}

export class Predictor implements Service {
  private stateValue: ServiceState = "starting";
  private run: Running | undefined;
  private readonly workers = new Map<number, PartitionWorker>();
  /** Per partition: the last worker's stop, which a new worker of that partition awaits. */
  private readonly retiring = new Map<number, Promise<void>>();
  private readonly fences = new Map<number, number>();
  private readonly retakes = new Set<NodeJS.Timeout>();
  private assigned: number[] = [];
  private rebalanceStartedAt: number | undefined;
  private stopping: Promise<number> | undefined;
  private resolveFailed: (err: unknown) => void = () => undefined;
  readonly failed = new Promise<unknown>((r) => (this.resolveFailed = r));
  readonly metrics: PredictorMetrics;
  private readonly log: Logger;
  private readonly instanceId: string;

  constructor(private readonly options: PredictorOptions) {
    this.metrics = options.metrics ?? new PredictorMetrics();
    this.log = options.logger.child({ pipeline: options.config.pipeline.name });
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}`;
  }

  get state(): ServiceState {
    return this.stateValue;
  }

  /** Ready: models warm, in the group, at least one partition assigned, not draining. */
  get ready(): boolean {
    return this.stateValue === "running" && this.assigned.length > 0;
  }

  get notReadyReason(): string | undefined {
    if (this.ready) return undefined;
    return this.stateValue !== "running" ? `state ${this.stateValue}` : "no partitions assigned";
  }

  /** Alive unless failed, stopped, or a partition has had work without a commit past the bound. */
  get alive(): boolean {
    if (this.stateValue === "failed" || this.stateValue === "stopped") return false;
    return this.maxStallMs() < TUNING.predictor.stallTimeoutMs;
  }

  get modelInfo() {
    return this.run?.parts.served.runtimes().map((r) => r.info) ?? [];
  }

  async start(): Promise<void> {
    const { config } = this.options;
    let parts: PredictorParts | undefined;
    try {
      parts = await composePredictor({
        config,
        logger: this.log,
        metrics: this.metrics,
        tracer: this.options.tracer ?? noopTracer,
        instanceId: this.instanceId,
      });
      const consumer = parts.kafka.consumer({
        groupId: config.pipeline.groupId,
        sessionTimeout: config.processing.sessionTimeoutMs,
        heartbeatInterval: config.processing.heartbeatIntervalMs,
        rebalanceTimeout: Math.max(TUNING.kafka.minRebalanceTimeoutMs, config.processing.shutdownGraceMs),
        readUncommitted: false,
        maxWaitTimeInMs: TUNING.kafka.fetchMaxWaitMs,
        maxBytesPerPartition: Math.max(
          TUNING.kafka.minFetchBytesPerPartition,
          config.input.maxRecordBytes * 4,
        ),
        retry: { retries: TUNING.kafka.consumerRetries },
      });
      const topic = config.input.topic;
      const gate = new FetchGate({
        consumer,
        topic,
        maxInFlightRecords: config.processing.maxInFlightRecords,
        minPerPartition: config.processing.maxRecordsPerTransaction,
        logger: this.log,
        onChange: (paused) => this.metrics.paused.set(paused),
      });
      const lag = new LagMonitor({
        admin: parts.admin,
        groupId: config.pipeline.groupId,
        topic,
        intervalMs: TUNING.predictor.lagRefreshMs,
        logger: this.log,
        setLag: (p, n) => this.metrics.consumerLag.set({ topic, partition: String(p) }, n),
        removeLag: (p) => this.metrics.consumerLag.remove({ topic, partition: String(p) }),
      });
      this.run = { parts, consumer, gate, lag };
      consumer.on(consumer.events.REBALANCING, () => {
        this.rebalanceStartedAt ??= performance.now();
      });
      consumer.on(consumer.events.GROUP_JOIN, (e) => this.onGroupJoin(e.payload.memberAssignment));
      consumer.on(consumer.events.CRASH, (e) => {
        const restart = (e.payload as { restart?: boolean }).restart;
        this.log.error("consumer crashed", { error: e.payload.error, restart });
        if (!restart) this.fail(e.payload.error);
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: true,
        eachBatch: (p) => this.onBatch(p),
      });
      lag.start();
      this.metrics.sampleReady(() => this.ready);
      this.metrics.samplePools(() =>
        parts
          ? parts.served
              .runtimes()
              .map((r) => ({ model: `${r.config.name}@${r.config.version}`, ...r.utilization }))
          : [],
      );
      this.metrics.sampleStalls(() => {
        const now = performance.now();
        return [...this.workers].map(([p, w]) => ({
          labels: { topic, partition: String(p) },
          seconds: w.stalledMs(now) / 1000,
        }));
      });
      this.stateValue = "running";
      this.log.info("predictor running", {
        group: config.pipeline.groupId,
        input: topic,
        instanceId: this.instanceId,
      });
    } catch (err) {
      this.stateValue = "failed";
      await this.closeResources(parts);
      throw err;
    }
  }

  private onBatch({ batch }: EachBatchPayload): Promise<void> {
    const worker = this.workers.get(batch.partition);
    if (!this.accepting || !this.run || !worker || batch.messages.length === 0) return Promise.resolve(); // no worker: fenced, and re-read from the committed offset when replaced
    const { topic, partition } = batch;
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
    this.run.lag.onFetched(partition, batch.highWatermark);
    const max = this.options.config.processing.maxRecordsPerTransaction;
    for (let i = 0; i < records.length; i += max) worker.enqueue(records.slice(i, i + max));
    return Promise.resolve();
  }

  private spawn(partition: number): void {
    const run = this.run;
    if (!run) return;
    const { config } = this.options;
    const topic = config.input.topic;
    const after = this.retiring.get(partition) ?? Promise.resolve();
    const worker: PartitionWorker = new PartitionWorker({
      topic,
      partition,
      groupId: config.pipeline.groupId,
      outputTopic: config.output.topic,
      dlqTopic: config.dlq.topic,
      shadowTopic: config.output.shadowTopic,
      maxRecordsPerTransaction: config.processing.maxRecordsPerTransaction,
      retryInitialMs: config.processing.retryInitialMs,
      retryMaxMs: config.processing.retryMaxMs,
      preparer: run.parts.preparer,
      startAfter: after,
      newSink: () =>
        kafkaTransactionalSink({
          kafka: run.parts.kafka,
          transactionalId: `${config.pipeline.transactionalIdPrefix}.${topic}.${partition}`,
          transactionTimeoutMs: config.processing.transactionTimeoutMs,
          maxRequestBytes: config.processing.maxRequestBytes,
        }),
      fetchCommittedOffset: () => this.committedOffset(partition),
      logger: this.log,
      onQueueChange: () => this.onQueueChange(partition, worker),
      onCommitted: (i) => {
        this.metrics.onCommitted(config.output.topic, i);
        run.lag.onCommitted(partition, i.nextOffset);
      },
      onAbort: () => this.metrics.transactionAborts.inc(),
      onFenced: () => this.onFenced(partition, worker),
    });
    this.workers.set(partition, worker);
  }

  private onQueueChange(partition: number, worker: PartitionWorker): void {
    if (this.workers.get(partition) !== worker) return; // a retired worker releasing its queue
    let total = 0;
    for (const w of this.workers.values()) total += w.queuedRecords;
    this.metrics.inFlight.set(total);
    this.run?.gate.update(partition, worker.queuedRecords);
  }

  private retire(partition: number, worker: PartitionWorker, mode: "drain" | "discard"): Promise<void> {
    if (this.workers.get(partition) === worker) this.workers.delete(partition);
    const stopped = worker.stop(mode);
    this.retiring.set(partition, stopped);
    return stopped;
  }

  private async committedOffset(partition: number): Promise<bigint | undefined> {
    const { groupId } = this.options.config.pipeline;
    const topic = this.options.config.input.topic;
    const admin = this.run?.parts.admin;
    if (!admin) throw new AimassError("KAFKA_TRANSIENT", "predictor is not running");
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
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
    this.log.info("partitions assigned", { partitions: this.assigned });
    this.fences.clear();
    for (const t of this.retakes) clearTimeout(t);
    this.retakes.clear();
    // kafkajs' eager protocol revoked everything: a transaction under way finishes, the rest
    // is re-read from the committed offsets by fresh workers.
    for (const [partition, worker] of [...this.workers]) void this.retire(partition, worker, "discard");
    this.run?.lag.assign(this.assigned);
    this.run?.gate.assign(this.assigned);
    // Fence previous owners now rather than at the first record; the first join comes
    // while start() is still under way.
    if (this.accepting) for (const p of this.assigned) this.spawn(p);
  }

  private onFenced(partition: number, worker: PartitionWorker): void {
    this.metrics.fenced.inc();
    if (this.workers.get(partition) !== worker) return; // an older worker of ours, already replaced
    this.workers.delete(partition);
    this.run?.gate.hold(partition);
    const fences = (this.fences.get(partition) ?? 0) + 1;
    this.fences.set(partition, fences);
    if (fences >= MAX_FENCES_WITHOUT_REBALANCE) {
      const prefix = this.options.config.pipeline.transactionalIdPrefix;
      this.fail(
        new AimassError(
          "KAFKA_FENCED",
          `partition ${partition} was fenced ${fences} times without a rebalance: another process uses ` +
            `transactional ids "${prefix}.*" (check transactionalIdPrefix)`,
        ),
      );
      return;
    }
    const timer = setTimeout(() => {
      this.retakes.delete(timer);
      void this.retake(partition);
    }, this.options.config.processing.sessionTimeoutMs);
    this.retakes.add(timer);
  }

  /** Replaces a fenced worker whose partition is still ours, re-reading from the committed offset. */
  private async retake(partition: number): Promise<void> {
    const run = this.run;
    if (!run || this.stateValue !== "running" || !this.assigned.includes(partition)) return;
    if (this.workers.has(partition)) return;
    try {
      const committed = await this.committedOffset(partition);
      const topic = this.options.config.input.topic;
      const offset =
        committed ??
        BigInt(
          (await run.parts.admin.fetchTopicOffsets(topic)).find((p) => p.partition === partition)?.low ?? "0",
        );
      run.consumer.seek({ topic, partition, offset: offset.toString() });
    } catch (err) {
      this.log.warn("could not re-read a fenced partition; retrying after the next fence check", {
        partition,
        error: errorMessage(err),
      });
    }
    if (this.stateValue !== "running" || !this.assigned.includes(partition) || this.workers.has(partition))
      return;
    this.log.info("taking a fenced partition back", { partition });
    this.spawn(partition);
    run.gate.unhold(partition);
  }

  /** Joined the group and not draining: assignments spawn workers, batches are taken. */
  private get accepting(): boolean {
    return this.run !== undefined && (this.stateValue === "starting" || this.stateValue === "running");
  }

  private maxStallMs(): number {
    const now = performance.now();
    let max = 0;
    for (const w of this.workers.values()) max = Math.max(max, w.stalledMs(now));
    return max;
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
      this.stateValue = "stopped";
      return 1;
    }
    this.stateValue = "draining";
    for (const t of this.retakes) clearTimeout(t);
    this.run?.lag.stop();
    this.run?.gate.close();
    const graceMs = this.options.config.processing.shutdownGraceMs;
    const workers = [...this.workers];
    this.log.info("draining: finishing in-flight batches", { partitions: workers.length, graceMs });
    this.run?.parts.served.flush();
    const stops = [...workers.map(([p, w]) => this.retire(p, w, "drain")), ...this.retiring.values()];
    const timedOut = await exceedsGrace(Promise.all(stops), graceMs);
    if (timedOut) {
      this.log.error("shutdown grace time exceeded: aborting in-flight transactions", {
        graceMs,
        error: new AimassError("SHUTDOWN_TIMEOUT", `work not committed within ${graceMs} ms`),
      });
      await Promise.all(workers.map(([, w]) => w.kill()));
    }
    await this.closeResources(this.run?.parts);
    this.stateValue = failed ? "failed" : "stopped";
    this.log.info("predictor stopped", { clean: !timedOut && !failed });
    return timedOut || failed ? 1 : 0;
  }

  private async closeResources(parts: PredictorParts | undefined): Promise<void> {
    const consumer = this.run?.consumer;
    // Leaving the group first hands our partitions over at once instead of after a session timeout.
    await closeAll(this.log, [
      ["consumer", consumer && (() => consumer.disconnect())],
      ["predictor parts", parts && (() => parts.close())],
    ]);
  }
}
