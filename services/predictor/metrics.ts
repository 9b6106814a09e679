// The predictor's Prometheus metrics (prefix aimass_, base units). Labels are bounded:
// model name/version, stage, topic — never ids or keys.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { EnrichStats } from "./enrich.js";
import type { ModelRuntime, ModelRuntimeHooks } from "./model-runtime.js";
import type { CommittedInfo } from "./chunk.js";

// Sub-millisecond (inference of a small batch) to tens of seconds (a rebalance, a backlog).
const SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];
const RATIOS = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1];
const SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export class PredictorMetrics {
  readonly prometheus = new Registry();
  readonly eventsConsumed = new Counter({
    name: "aimass_events_consumed_total",
    help: "Input records handed to the pipeline.",
    labelNames: ["topic"],
    registers: [this.prometheus],
  });
  readonly predictions = new Counter({
    name: "aimass_predictions_produced_total",
    help: "Predictions committed to the output topic.",
    labelNames: ["topic"],
    registers: [this.prometheus],
  });
  readonly dlq = new Counter({
    name: "aimass_dlq_records_total",
    help: "Records committed to the DLQ, by the stage that rejected them.",
    labelNames: ["stage"],
    registers: [this.prometheus],
  });
  readonly batchSize = new Histogram({
    name: "aimass_batch_size",
    help: "Events per inference batch.",
    labelNames: ["model", "version"],
    buckets: SIZES,
    registers: [this.prometheus],
  });
  readonly batchFill = new Histogram({
    name: "aimass_batch_fill_ratio",
    help: "Batch size over maxBatchSize: how full batches are when they run.",
    labelNames: ["model"],
    buckets: RATIOS,
    registers: [this.prometheus],
  });
  readonly queueWait = new Histogram({
    name: "aimass_batch_queue_wait_seconds",
    help: "Time a batch's first event waited before inference started (batching delay + free slot).",
    labelNames: ["model"],
    buckets: SECONDS,
    registers: [this.prometheus],
  });
  readonly endToEnd = new Histogram({
    name: "aimass_end_to_end_latency_seconds",
    help: "Input record timestamp to transaction commit, per committed record.",
    buckets: SECONDS,
    registers: [this.prometheus],
  });
  readonly consumerLag = new Gauge({
    name: "aimass_consumer_lag_records",
    help: "Records in the input partition after this worker's last committed offset.",
    labelNames: ["topic", "partition"],
    registers: [this.prometheus],
  });
  readonly rebalancePause = new Histogram({
    name: "aimass_rebalance_pause_seconds",
    help: "Time from the start of a rebalance to the new assignment (processing paused).",
    buckets: SECONDS,
    registers: [this.prometheus],
  });
  /** Sampled at scrape time, so utilization costs nothing between scrapes. */
  private poolSource: () => Array<{ model: string; busy: number; size: number; queued: number }> = () => [];
  readonly poolBusy = new Gauge({
    name: "aimass_inference_pool_busy_workers",
    help: "Inference worker threads running a batch now (sampled at scrape).",
    labelNames: ["model"],
    registers: [this.prometheus],
    collect: () => {
      for (const p of this.poolSource()) this.poolBusy.set({ model: p.model }, p.busy);
    },
  });
  readonly poolSize = new Gauge({
    name: "aimass_inference_pool_workers",
    help: "Inference worker threads per model.",
    labelNames: ["model"],
    registers: [this.prometheus],
    collect: () => {
      for (const p of this.poolSource()) this.poolSize.set({ model: p.model }, p.size);
    },
  });
  readonly poolQueued = new Gauge({
    name: "aimass_inference_queued_events",
    help: "Events waiting for inference (open and closed batches not yet running).",
    labelNames: ["model"],
    registers: [this.prometheus],
    collect: () => {
      for (const p of this.poolSource()) this.poolQueued.set({ model: p.model }, p.queued);
    },
  });
  private readySource: () => boolean = () => false;
  readonly ready = new Gauge({
    name: "aimass_ready",
    help: "1 when the worker is ready (models warm, partitions assigned), sampled at scrape.",
    registers: [this.prometheus],
    collect: () => {
      this.ready.set(this.readySource() ? 1 : 0);
    },
  });
  readonly featureLookupSeconds = new Histogram({
    name: "aimass_feature_lookup_duration_seconds",
    help: "One pipelined feature-store round trip (all events and views of a chunk).",
    buckets: SECONDS,
    registers: [this.prometheus],
  });
  readonly featureLookups = new Counter({
    name: "aimass_feature_lookups_total",
    help: "Feature view reads by outcome: hit, miss (defaults served) or stale.",
    labelNames: ["view", "status"],
    registers: [this.prometheus],
  });
  readonly featureStoreErrors = new Counter({
    name: "aimass_feature_store_errors_total",
    help: "Feature lookups that failed because the store was unavailable or too slow.",
    registers: [this.prometheus],
  });
  readonly featureFallback = new Counter({
    name: "aimass_feature_fallback_total",
    help: "Chunks served with default features because the store was unavailable (onUnavailable: defaults).",
    registers: [this.prometheus],
  });
  private featureStoreSource: () => number = () => 0;
  readonly featureStorePending = new Gauge({
    name: "aimass_feature_store_pending_commands",
    help: "Feature-store commands sent to Redis and waiting for a reply, timed-out ones included (sampled at scrape).",
    registers: [this.prometheus],
    collect: () => {
      this.featureStorePending.set(this.featureStoreSource());
    },
  });
  readonly batchClosed = new Counter({
    name: "aimass_batches_closed_total",
    help: "Micro-batches closed, by reason (size, delay, flush).",
    labelNames: ["model", "reason"],
    registers: [this.prometheus],
  });
  readonly inferenceSeconds = new Histogram({
    name: "aimass_inference_duration_seconds",
    help: "Inference time per batch, per model version.",
    labelNames: ["model", "version", "outcome"],
    buckets: SECONDS,
    registers: [this.prometheus],
  });
  readonly transactionSeconds = new Histogram({
    name: "aimass_transaction_duration_seconds",
    help: "Time from chunk start to transaction commit.",
    buckets: SECONDS,
    registers: [this.prometheus],
  });
  readonly transactionAborts = new Counter({
    name: "aimass_transaction_aborts_total",
    help: "Transactions aborted and retried.",
    registers: [this.prometheus],
  });
  readonly fenced = new Counter({
    name: "aimass_producer_fenced_total",
    help: "Partition producers fenced by a newer owner (zombie detection).",
    registers: [this.prometheus],
  });
  readonly rebalances = new Counter({
    name: "aimass_rebalances_total",
    help: "Consumer group rebalances this worker joined.",
    registers: [this.prometheus],
  });
  readonly inFlight = new Gauge({
    name: "aimass_inflight_records",
    help: "Records fetched and not yet committed.",
    registers: [this.prometheus],
  });
  readonly paused = new Gauge({
    name: "aimass_fetch_paused",
    help: "Input partitions whose fetching is paused by backpressure (0: none).",
    registers: [this.prometheus],
  });
  readonly assignedPartitions = new Gauge({
    name: "aimass_assigned_partitions",
    help: "Input partitions assigned to this worker.",
    registers: [this.prometheus],
  });
  readonly modelInfo = new Gauge({
    name: "aimass_model_info",
    help: "Loaded model versions (value 1).",
    labelNames: ["model", "version", "sha256", "provider"],
    registers: [this.prometheus],
  });

  readonly partitionStall = new Gauge({
    name: "aimass_partition_stall_seconds",
    help: "Seconds an assigned input partition has had uncommitted work without a commit (0: idle or moving).",
    labelNames: ["topic", "partition"],
    registers: [this.prometheus],
    collect: () => {
      this.partitionStall.reset();
      for (const p of this.stallSource())
        this.partitionStall.set({ topic: p.topic, partition: String(p.partition) }, p.ms / 1000);
    },
  });
  private stallSource: () => Array<{ topic: string; partition: number; ms: number }> = () => [];

  /** Hooks for the served model versions' batchers and inference pools. */
  modelHooks(): ModelRuntimeHooks {
    return {
      onBatchClosed: (m, i) => {
        this.batchClosed.inc({ model: m.name, reason: i.reason });
        this.batchFill.observe({ model: m.name }, i.size / m.batching.maxBatchSize);
        this.queueWait.observe({ model: m.name }, i.queueWaitMs / 1000);
      },
      onInference: (m, i) => {
        this.inferenceSeconds.observe(
          { model: m.name, version: m.version, outcome: i.ok ? "ok" : "error" },
          i.ms / 1000,
        );
        if (i.ok) this.batchSize.observe({ model: m.name, version: m.version }, i.size);
      },
    };
  }

  /** The feature enricher's per-chunk statistics. */
  onEnrich(s: EnrichStats): void {
    this.featureLookupSeconds.observe(s.ms / 1000);
    for (const l of s.lookups) this.featureLookups.inc({ view: l.view, status: l.status });
    if (s.error) this.featureStoreErrors.inc();
    if (s.fallback) this.featureFallback.inc();
  }

  /** One committed transaction of a partition worker. */
  onCommitted(outputTopic: string, i: CommittedInfo): void {
    const now = Date.now();
    for (const ts of i.timestamps) this.endToEnd.observe(Math.max(0, now - ts) / 1000);
    this.predictions.inc({ topic: outputTopic }, i.predictions);
    for (const [stage, n] of Object.entries(i.dlq)) this.dlq.inc({ stage }, n);
    this.transactionSeconds.observe(i.ms / 1000);
  }

  /** The loaded versions, as aimass_model_info series. */
  setModels(runtimes: ModelRuntime[]): void {
    this.modelInfo.reset();
    for (const { info } of runtimes) {
      this.modelInfo.set(
        { model: info.name, version: info.version, sha256: info.sha256, provider: info.executionProvider },
        1,
      );
    }
  }

  sampleStalls(source: () => Array<{ topic: string; partition: number; ms: number }>): void {
    this.stallSource = source;
  }

  sampleFeatureStore(source: () => number): void {
    this.featureStoreSource = source;
  }

  sampleReady(source: () => boolean): void {
    this.readySource = source;
  }

  samplePools(source: () => Array<{ model: string; busy: number; size: number; queued: number }>): void {
    this.poolSource = source;
  }

  constructor() {
    // Process metrics (CPU, RSS, heap, GC, event-loop lag) as aimass_process_*/aimass_nodejs_*.
    collectDefaultMetrics({ register: this.prometheus, prefix: "aimass_", eventLoopMonitoringPrecision: 10 });
  }
}
