// The sections of a pipeline config that steer records rather than describe them: routing to
// models, live model control, and the processing limits (transactions, backpressure, retries).
import { z } from "zod";
import { name, topicName } from "./names.js";

export const routingSchema = z.strictObject({
  /** Event field whose value selects the model. Unset → every event goes to `default`. */
  field: z.string().min(1).optional(),
  /** Or a Kafka header whose value selects the model (checked before `field`). */
  header: z.string().min(1).optional(),
  /** Field value → model name. */
  routes: z.record(z.string(), name).default({}),
  /** Model for values not in `routes`; unset → such events go to the DLQ. */
  default: name.optional(),
});

/** Live model control: desired versions per model on a compacted topic (see docs/models.md). */
export const controlSchema = z.strictObject({
  /** @default "<pipeline.name>.control" */
  topic: topicName.optional(),
  /** Append-only record of every change and every worker's apply result. @default "<topic>.audit" */
  auditTopic: topicName.optional(),
});

export const processingSchema = z.strictObject({
  /** Records fetched but not yet committed, per worker; above it partitions pause. @default 10000 */
  maxInFlightRecords: z.int().min(1).default(10_000),
  /** Records per transaction (one transaction per input partition chunk). @default 1000 */
  maxRecordsPerTransaction: z.int().min(1).max(100_000).default(1_000),
  /**
   * Bytes of records per produce request inside a transaction: a commit group larger than this
   * is sent as several requests in the same transaction. Keep it below the output, DLQ and
   * shadow topics' max.message.bytes (1 MB by default), which bounds one partition's record
   * batch. @default 900000
   */
  maxRequestBytes: z.int().min(1024).default(900_000),
  /** Kafka transaction timeout; must exceed the longest batch plus a restart. @default 60000 */
  transactionTimeoutMs: z.int().min(1_000).max(900_000).default(60_000),
  /** Consumer session timeout: how long a silent worker keeps its partitions. @default 10000 */
  sessionTimeoutMs: z.int().min(3_000).default(10_000),
  /** @default 1000 */
  heartbeatIntervalMs: z.int().min(100).default(1_000),
  /** SIGTERM: finish and commit in-flight work within this, else abort and exit non-zero. @default 30000 */
  shutdownGraceMs: z.int().min(0).default(30_000),
  /** Backoff between retries of a failed transaction. @default 100 */
  retryInitialMs: z.int().min(1).default(100),
  /** @default 5000 */
  retryMaxMs: z.int().min(1).default(5_000),
  /**
   * A partition with work and no commit for this long makes /healthz fail so the orchestrator
   * restarts the worker; generous because a broker or feature-store outage retries for minutes.
   * @default 300000
   */
  stallTimeoutMs: z.int().min(10_000).default(300_000),
});
