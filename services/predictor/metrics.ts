// The predictor's Prometheus metrics (prefix aimass_, base units). Labels are bounded:
// model name/version, stage, topic — never ids or keys.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export class PredictorMetrics {
  readonly registry = new Registry();
  readonly eventsConsumed = new Counter({
    name: "aimass_events_consumed_total",
    help: "Input records handed to the pipeline.",
    labelNames: ["topic"],
    registers: [this.registry],
  });
  readonly predictions = new Counter({
    name: "aimass_predictions_produced_total",
    help: "Predictions committed to the output topic.",
    labelNames: ["topic"],
    registers: [this.registry],
  });
  readonly dlq = new Counter({
    name: "aimass_dlq_records_total",
    help: "Records committed to the DLQ, by the stage that rejected them.",
    labelNames: ["stage"],
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: "aimass_batch_size",
    help: "Events per inference batch.",
    labelNames: ["model", "version"],
    buckets: SIZES,
    registers: [this.registry],
  });
  readonly batchClosed = new Counter({
    name: "aimass_batches_closed_total",
    help: "Micro-batches closed, by reason (size, delay, flush).",
    labelNames: ["model", "reason"],
    registers: [this.registry],
  });
  readonly inferenceSeconds = new Histogram({
    name: "aimass_inference_duration_seconds",
    help: "Inference time per batch, per model version.",
    labelNames: ["model", "version", "outcome"],
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly transactionSeconds = new Histogram({
    name: "aimass_transaction_duration_seconds",
    help: "Time from chunk start to transaction commit.",
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly transactionAborts = new Counter({
    name: "aimass_transaction_aborts_total",
    help: "Transactions aborted and retried.",
    registers: [this.registry],
  });
  readonly fenced = new Counter({
    name: "aimass_producer_fenced_total",
    help: "Partition producers fenced by a newer owner (zombie detection).",
    registers: [this.registry],
  });
  readonly rebalances = new Counter({
    name: "aimass_rebalances_total",
    help: "Consumer group rebalances this worker joined.",
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: "aimass_inflight_records",
    help: "Records fetched and not yet committed.",
    registers: [this.registry],
  });
  readonly paused = new Gauge({
    name: "aimass_fetch_paused",
    help: "1 while fetching is paused by backpressure.",
    registers: [this.registry],
  });
  readonly assignedPartitions = new Gauge({
    name: "aimass_assigned_partitions",
    help: "Input partitions assigned to this worker.",
    registers: [this.registry],
  });
  readonly modelInfo = new Gauge({
    name: "aimass_model_info",
    help: "Loaded model versions (value 1).",
    labelNames: ["model", "version", "sha256", "provider"],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "aimass_process_" });
  }
}
