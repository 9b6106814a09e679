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
import { AimassError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { PipelineConfig } from "../common/config/load.js";
import { toSourceRecords } from "../common/records.js";
import { noopTracer, type BatchTracer } from "../common/tracing.js";
import { closeAll, exceedsGrace } from "../common/lifecycle.js";
import { TUNING } from "../common/tuning.js";
import { groupConsumerConfig } from "../common/kafka/consumer.js";
import type { Service, ServiceState } from "../common/service.js";
import { composePredictor, type PredictorParts } from "./composition.js";
import { PartitionWorkers } from "./partition-workers.js";
import { FenceRecovery } from "./fence-recovery.js";
import { PredictorMetrics } from "./metrics.js";
import { FetchGate } from "./fetch-gate.js";
import { LagMonitor } from "./lag-monitor.js";

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
  workers: PartitionWorkers;
  recovery: FenceRecovery;
}

export class Predictor implements Service {
  private stateValue: ServiceState = "starting";
  private run: Running | undefined;
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
    return (this.run?.workers.maxStallMs() ?? 0) < this.options.config.processing.stallTimeoutMs;
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
      const consumer = parts.kafka.consumer(
        groupConsumerConfig(config, config.pipeline.groupId, {
          maxBytesPerPartition: Math.max(
            TUNING.kafka.minFetchBytesPerPartition,
            config.input.maxRecordBytes * 4,
          ),
        }),
      );
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
      const recovery = new FenceRecovery({
        sessionTimeoutMs: config.processing.sessionTimeoutMs,
        transactionalIdPrefix: config.pipeline.transactionalIdPrefix,
        logger: this.log,
        stillOurs: (p) => this.stateValue === "running" && this.assigned.includes(p) && !workers.get(p),
        rewind: async (p) => this.seek(consumer, p, await workers.startOffset(p)),
        respawn: (p) => {
          workers.spawn(p);
          gate.unhold(p);
        },
        fail: (err) => this.fail(err),
      });
      const workers = new PartitionWorkers({
        config,
        kafka: parts.kafka,
        admin: parts.admin,
        preparer: parts.preparer,
        gate,
        lag,
        metrics: this.metrics,
        logger: this.log,
        seek: (p, offset) => this.seek(consumer, p, offset),
        onLost: (p) => {
          gate.hold(p);
          recovery.onLost(p);
        },
      });
      this.run = { parts, consumer, gate, lag, workers, recovery };
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
      this.metrics.samplePools(() => parts?.served.runtimes().map((r) => r.poolSample) ?? []);
      this.metrics.sampleStalls(() => workers.stalls().map((st) => ({ topic, ...st })));
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
    const worker = this.run?.workers.get(batch.partition);
    // No worker: fenced, and re-read from the committed offset when replaced.
    if (!this.accepting || !this.run || !worker || batch.messages.length === 0) return Promise.resolve();
    const { topic, partition } = batch;
    const records = toSourceRecords(topic, partition, batch.messages);
    this.metrics.eventsConsumed.inc({ topic }, records.length);
    this.run.lag.onFetched(partition, batch.highWatermark);
    // The offset the batch was fetched from (kafkajs sets it; its typings omit it): the worker
    // checks that its stream starts at or below the committed offset.
    const fetched = BigInt((batch as { fetchedOffset?: string }).fetchedOffset ?? records[0]?.offset ?? "0");
    const max = this.options.config.processing.maxRecordsPerTransaction;
    for (let i = 0; i < records.length; i += max) {
      const slice = records.slice(i, i + max);
      worker.enqueue(slice, i === 0 ? fetched : BigInt(slice[0]?.offset ?? "0"));
    }
    return Promise.resolve();
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
    // kafkajs' eager protocol revoked everything: a transaction under way finishes, the rest
    // is re-read from the committed offsets by fresh workers.
    const run = this.run;
    if (!run) return;
    run.recovery.reset();
    void run.workers.retireAll("discard");
    run.lag.assign(this.assigned);
    run.gate.assign(this.assigned);
    // Fence previous owners now rather than at the first record; the first join comes
    // while start() is still under way.
    if (this.accepting) for (const p of this.assigned) run.workers.spawn(p);
  }

  private seek(consumer: Consumer, partition: number, offset: bigint): void {
    consumer.seek({ topic: this.options.config.input.topic, partition, offset: offset.toString() });
  }

  /** Joined the group and not draining: assignments spawn workers, batches are taken. */
  private get accepting(): boolean {
    return this.run !== undefined && (this.stateValue === "starting" || this.stateValue === "running");
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
    const run = this.run;
    run?.recovery.stop();
    run?.lag.stop();
    run?.gate.close();
    const graceMs = this.options.config.processing.shutdownGraceMs;
    const workers = run?.workers.snapshot() ?? [];
    this.log.info("draining: finishing in-flight batches", { partitions: workers.length, graceMs });
    run?.parts.served.flush();
    const timedOut = await exceedsGrace(run?.workers.retireAll("drain") ?? Promise.resolve(), graceMs);
    if (timedOut) {
      const error = new AimassError("SHUTDOWN_TIMEOUT", `work not committed within ${graceMs} ms`);
      this.log.error("shutdown grace time exceeded: aborting in-flight transactions", { graceMs, error });
      await Promise.all(workers.map((w) => w.kill()));
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
