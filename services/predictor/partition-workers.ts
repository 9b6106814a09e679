// The partition workers of one predictor: at most one current worker per input partition,
// each started only once the previous worker of that partition in this process has stopped,
// so two epochs of one partition never overlap here. It wires each worker to the fetch gate,
// the lag monitor and the metrics, and answers how long the slowest partition has stalled.
import type { Admin, Kafka } from "kafkajs";
import type { Logger } from "../common/logger.js";
import { isAimassError } from "../common/errors.js";
import type { PipelineConfig } from "../common/config/load.js";
import { kafkaTransactionalSink } from "../common/kafka/transactional-sink.js";
import type { ChunkPreparer } from "./chunk.js";
import type { FetchGate } from "./fetch-gate.js";
import type { LagMonitor } from "./lag-monitor.js";
import type { PredictorMetrics } from "./metrics.js";
import { PartitionWorker } from "./partition-worker.js";

export interface PartitionWorkersOptions {
  config: PipelineConfig;
  kafka: Kafka;
  admin: Pick<Admin, "fetchOffsets" | "fetchTopicOffsets">;
  preparer: ChunkPreparer;
  gate: FetchGate;
  lag: LagMonitor;
  metrics: PredictorMetrics;
  logger: Logger;
  /** The current worker of a partition was fenced or failed (it has stopped). */
  onLost: (partition: number) => void;
  /** Points the consumer at an offset of a partition. */
  seek: (partition: number, offset: bigint) => void;
}

export class PartitionWorkers {
  private readonly current = new Map<number, PartitionWorker>();
  /** Per partition: the last worker's stop, which the next worker of that partition awaits. */
  private readonly retiring = new Map<number, Promise<void>>();

  constructor(private readonly o: PartitionWorkersOptions) {}

  get(partition: number): PartitionWorker | undefined {
    return this.current.get(partition);
  }

  get partitions(): number[] {
    return [...this.current.keys()];
  }

  spawn(partition: number): void {
    const { config, lag, metrics } = this.o;
    const topic = config.input.topic;
    const worker: PartitionWorker = new PartitionWorker({
      topic,
      partition,
      groupId: config.pipeline.groupId,
      outputTopic: config.output.topic,
      dlqTopic: config.dlq.topic,
      shadowTopic: config.output.shadowTopic,
      dlq: { pipeline: config.pipeline.name, maxRecordBytes: config.dlq.maxRecordBytes },
      maxRecordsPerTransaction: config.processing.maxRecordsPerTransaction,
      retryInitialMs: config.processing.retryInitialMs,
      retryMaxMs: config.processing.retryMaxMs,
      preparer: this.o.preparer,
      startAfter: this.retiring.get(partition) ?? Promise.resolve(),
      newSink: () =>
        kafkaTransactionalSink({
          kafka: this.o.kafka,
          transactionalId: `${config.pipeline.transactionalIdPrefix}.${topic}.${partition}`,
          transactionTimeoutMs: config.processing.transactionTimeoutMs,
          maxRequestBytes: config.processing.maxRequestBytes,
        }),
      startOffset: () => this.startOffset(partition),
      rewind: async (offset) => this.o.seek(partition, offset),
      logger: this.o.logger,
      onQueueChange: () => this.onQueueChange(partition, worker),
      onCommitted: (i) => {
        metrics.onCommitted(config.output.topic, i);
        lag.onCommitted(partition, i.nextOffset);
      },
      onAbort: () => metrics.transactionAborts.inc(),
      onLost: (err) => {
        if (isAimassError(err, "KAFKA_FENCED")) metrics.fenced.inc();
        if (this.current.get(partition) !== worker) return; // an older worker, already replaced
        this.current.delete(partition);
        this.refreshInFlight();
        this.o.onLost(partition);
      },
    });
    this.current.set(partition, worker);
  }

  /** Stops the partition's current worker; resolves when it has. */
  retire(partition: number, mode: "drain" | "discard"): Promise<void> {
    const worker = this.current.get(partition);
    if (!worker) return this.retiring.get(partition) ?? Promise.resolve();
    this.current.delete(partition);
    this.refreshInFlight();
    const stopped = worker.stop(mode);
    this.retiring.set(partition, stopped);
    return stopped;
  }

  /** Stops every current worker; resolves when they, and every earlier one, have stopped. */
  async retireAll(mode: "drain" | "discard"): Promise<void> {
    for (const p of this.partitions) void this.retire(p, mode);
    await Promise.all(this.retiring.values());
  }

  /** The current workers, to kill after a retire that ran past the grace time. */
  snapshot(): PartitionWorker[] {
    return [...this.current.values()];
  }

  /**
   * Where the partition's processing starts: the group's committed offset, or before the
   * first commit the log start (the consumer reads from the beginning).
   */
  async startOffset(partition: number): Promise<bigint> {
    const { groupId } = this.o.config.pipeline;
    const topic = this.o.config.input.topic;
    const [entry] = await this.o.admin.fetchOffsets({ groupId, topics: [topic] });
    const offset = entry?.partitions.find((p) => p.partition === partition)?.offset;
    if (offset !== undefined && offset !== "-1") return BigInt(offset);
    const low = (await this.o.admin.fetchTopicOffsets(topic)).find((p) => p.partition === partition)?.low;
    return BigInt(low ?? "0");
  }

  stalls(now = performance.now()): Array<{ partition: number; ms: number }> {
    return [...this.current].map(([partition, w]) => ({ partition, ms: w.stalledMs(now) }));
  }

  maxStallMs(): number {
    return this.stalls().reduce((max, s) => Math.max(max, s.ms), 0);
  }

  private onQueueChange(partition: number, worker: PartitionWorker): void {
    if (this.current.get(partition) !== worker) return; // a retired worker releasing its queue
    this.refreshInFlight();
    this.o.gate.update(partition, worker.queuedRecords);
  }

  private refreshInFlight(): void {
    let total = 0;
    for (const w of this.current.values()) total += w.queuedRecords;
    this.o.metrics.inFlight.set(total);
  }
}
