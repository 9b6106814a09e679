// The pipeline config: one zod schema holding every option, its default and its limits.
// Defaults live here and nowhere else; units are in the names (…Ms, …Bytes).
import { z } from "zod";

const name = z.string().regex(/^[A-Za-z0-9._-]+$/, "use letters, digits, '.', '_' or '-'");
const topicName = name.max(249);
const format = z.enum(["json", "avro"]);

const topicSchema = z.strictObject({
  topic: topicName,
  /** Partitions for `aimass topics create`. @default 6 */
  partitions: z.int().min(1).max(10_000).default(6),
  /** @default 1 */
  replicationFactor: z.int().min(1).max(16).default(1),
  /** Extra topic configs for `aimass topics create` (e.g. retention.ms). */
  config: z.record(z.string(), z.string()).default({}),
});

const inputSchema = topicSchema.extend({
  format: format.default("json"),
  /** Records larger than this go to the DLQ unparsed. @default 1048576 */
  maxRecordBytes: z.int().min(16).default(1_048_576),
  /** Event field holding the event's id, copied to predictions as `eventId`. @default "id" */
  idField: z.string().min(1).default("id"),
  /** Event field holding the event time in epoch ms (for end-to-end latency). @default "ts" */
  timeField: z.string().min(1).default("ts"),
});

const outputSchema = topicSchema.extend({
  format: format.default("json"),
  /**
   * A prediction larger than this goes to the DLQ (stage "encode") instead of failing its
   * transaction forever; keep it below the topic's max.message.bytes. @default 1000000
   */
  maxRecordBytes: z.int().min(64).default(1_000_000),
  /** Where shadow versions write their predictions. @default "<topic>.shadow" */
  shadowTopic: topicName.optional(),
  /** Avro schema file (.avsc) for predictions; registered under `<topic>-value` by `topics create`. */
  schemaFile: z.string().optional(),
  /**
   * Lineage headers on every prediction: `aimass.model.name`, `aimass.model.version`,
   * `aimass.source.topic`, `aimass.source.partition`, `aimass.source.offset`. The value names
   * the model either way; input headers and the trace context pass through either way. Off
   * saves about a third of the bytes written per prediction and the CPU to encode them
   * (BENCHMARKS.md, "lineage headers"). @default true
   */
  lineageHeaders: z.boolean().default(true),
});

const transformSchema = z.enum(["identity", "log1p", "hourSin", "hourCos", "bool"]);
export type Transform = z.infer<typeof transformSchema>;

/** One column of an input tensor: a number from an event field, a one-hot of a string field, a fixed-length vector, or a constant. */
const columnSchema = z.union([
  z.strictObject({ field: z.string().min(1), transform: transformSchema.default("identity") }),
  /** A feature from the online store: "<view>.<feature>" (see `features.views`). */
  z.strictObject({
    feature: z.string().regex(/^[^.]+\.[^.]+$/, 'use "<view>.<feature>"'),
    transform: transformSchema.default("identity"),
  }),
  z.strictObject({ field: z.string().min(1), oneHot: z.array(z.string()).min(1) }),
  z.strictObject({ field: z.string().min(1), length: z.int().min(1).max(65_536) }),
  z.strictObject({ constant: z.number() }),
]);

const tensorInputSchema = z.strictObject({
  name: z.string().min(1),
  type: z.enum(["float32", "int64"]).default("float32"),
  columns: z.array(columnSchema).min(1),
});

const tensorOutputSchema = z.strictObject({
  name: z.string().min(1),
  /** Width of the output's last dimension. @default 1 */
  width: z.int().min(1).default(1),
  /** Prediction field to write. Width 1 → a number; wider → an array. */
  field: z.string().min(1),
});

const batchingSchema = z.strictObject({
  /** A batch closes at this many events… @default 64 */
  maxBatchSize: z.int().min(1).max(65_536).default(64),
  /** …or this long after its first event, whichever comes first. @default 5 */
  maxDelayMs: z.number().min(0).max(60_000).default(5),
});

export const modelSchema = z.strictObject({
  name,
  version: name,
  /** Path to model.onnx, relative to the config file. */
  path: z.string().min(1),
  /** In order of preference; an unavailable provider falls back to the next. @default ["cpu"] */
  executionProviders: z
    .array(z.enum(["cpu", "cuda", "tensorrt", "dml", "coreml", "webgpu"]))
    .min(1)
    .default(["cpu"]),
  /** Inference worker threads, each with its own session. @default 1 */
  poolSize: z.int().min(1).max(64).default(1),
  /** onnxruntime intra-op threads per session. @default 1 */
  intraOpThreads: z.int().min(1).max(64).default(1),
  batching: batchingSchema.prefault({}),
  inputs: z.array(tensorInputSchema).min(1),
  outputs: z.array(tensorOutputSchema).min(1),
});

const featureSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_]+$/, "use letters, digits or '_'"),
  /** Only numeric features are served to models; bools are stored as 0/1. @default "float" */
  type: z.enum(["float", "int", "bool"]).default("float"),
  /** Served when the entity or the feature is missing (and, by policy, when stale). @default 0 */
  default: z.number().default(0),
});

const featureViewSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_]+$/, "use letters, digits or '_'"),
  /** Entity type: the Redis hash namespace. Views of one entity share its hash. @default the view name */
  entity: z
    .string()
    .regex(/^[A-Za-z0-9_]+$/)
    .optional(),
  /** Event field holding the entity key (e.g. userId). */
  key: z.string().min(1),
  features: z.array(featureSchema).min(1),
  /** Older than this (event time of the stored values vs now) is stale. 0 = never stale. @default 0 */
  maxAgeMs: z.int().min(0).default(0),
  /** What a stale read does: serve the view's defaults, or send the event to the DLQ. @default "defaults" */
  onStale: z.enum(["defaults", "dlq"]).default("defaults"),
  /** Writer side: expire an entity's hash this long after its last write. 0 = never. @default 0 */
  ttlSeconds: z.int().min(0).default(0),
});

const featuresSchema = z.strictObject({
  /** Prefix of every Redis key. Keys are `<prefix>:<entity>:<entity key>`. @default "aimass" */
  keyPrefix: z.string().min(1).default("aimass"),
  /** Per-command Redis timeout for lookups and writes. @default 100 */
  commandTimeoutMs: z.int().min(1).max(60_000).default(100),
  /**
   * Redis unreachable or too slow: "fail" aborts the batch's transaction and retries it with
   * backoff (nothing lost, nothing served without features); "defaults" serves the views'
   * defaults, flagged with the header aimass.features.fallback=1 and a metric. @default "fail"
   */
  onUnavailable: z.enum(["fail", "defaults"]).default("fail"),
  views: z.array(featureViewSchema).min(1),
  /** The feature-writer's input: feature updates (see docs/feature-store.md). */
  updates: topicSchema.extend({ format: format.default("json") }).optional(),
  /** Where the feature-writer sends updates it cannot apply. */
  dlq: topicSchema.optional(),
});

const routingSchema = z.strictObject({
  /** Event field whose value selects the model. Unset → every event goes to `default`. */
  field: z.string().min(1).optional(),
  /** Or a Kafka header whose value selects the model (checked before `field`). */
  header: z.string().min(1).optional(),
  /** Field value → model name. */
  routes: z.record(z.string(), name).default({}),
  /** Model for values not in `routes`; unset → such events go to the DLQ. */
  default: name.optional(),
});

const processingSchema = z.strictObject({
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
});

export const pipelineSchema = z
  .strictObject({
    pipeline: z.strictObject({
      name,
      /** Consumer group. @default "aimass-<name>" */
      groupId: name.optional(),
      /** Prefix of the per-partition transactional ids. @default the group id */
      transactionalIdPrefix: name.optional(),
    }),
    input: inputSchema,
    output: outputSchema,
    dlq: topicSchema,
    routing: routingSchema.prefault({}),
    /**
     * A Triton-like model repository: `<dir>/<name>/<version>/model.onnx`, the tensor mapping
     * in `<dir>/<name>/model.yaml` (a version's own model.yaml overrides it). Entries of
     * `models` may then name only `name` and `version` (the version served until the control
     * topic says otherwise). Relative to the config file.
     */
    modelRepository: z.string().min(1).optional(),
    models: z.array(modelSchema).min(1),
    /** Live model control: desired versions per model on a compacted topic (see docs/models.md). */
    control: z
      .strictObject({
        /** @default "<pipeline.name>.control" */
        topic: topicName.optional(),
        /** Append-only record of every change and every worker's apply result. @default "<topic>.audit" */
        auditTopic: topicName.optional(),
      })
      .prefault({}),
    processing: processingSchema.prefault({}),
    /** The Redis online feature store: views the models read, and the writer's topics. */
    features: featuresSchema.optional(),
  })
  .superRefine((cfg, ctx) => {
    const names = new Set<string>();
    cfg.models.forEach((m, i) => {
      if (names.has(m.name))
        ctx.addIssue({ code: "custom", path: ["models", i, "name"], message: `duplicate model "${m.name}"` });
      names.add(m.name);
    });
    for (const [value, model] of Object.entries(cfg.routing.routes)) {
      if (!names.has(model)) {
        ctx.addIssue({
          code: "custom",
          path: ["routing", "routes", value],
          message: `no model named "${model}"`,
        });
      }
    }
    if (cfg.routing.default !== undefined && !names.has(cfg.routing.default)) {
      ctx.addIssue({
        code: "custom",
        path: ["routing", "default"],
        message: `no model named "${cfg.routing.default}"`,
      });
    }
    if (cfg.routing.field === undefined && cfg.routing.default === undefined && cfg.models.length > 1) {
      ctx.addIssue({
        code: "custom",
        path: ["routing"],
        message: "several models need routing.field or routing.default",
      });
    }
    const views = new Map(
      (cfg.features?.views ?? []).map((v) => [v.name, new Set(v.features.map((f) => f.name))]),
    );
    if (cfg.features && views.size !== cfg.features.views.length) {
      ctx.addIssue({ code: "custom", path: ["features", "views"], message: "view names must be unique" });
    }
    cfg.models.forEach((m, mi) =>
      m.inputs.forEach((input, ii) =>
        input.columns.forEach((c, ci) => {
          if (!("feature" in c)) return;
          const [view = "", feature = ""] = c.feature.split(".");
          const known = views.get(view);
          if (!known || !known.has(feature)) {
            ctx.addIssue({
              code: "custom",
              path: ["models", mi, "inputs", ii, "columns", ci, "feature"],
              message: known
                ? `view "${view}" has no feature "${feature}"`
                : `no feature view named "${view}"`,
            });
          }
        }),
      ),
    );
    if (cfg.processing.transactionTimeoutMs <= cfg.processing.sessionTimeoutMs) {
      ctx.addIssue({
        code: "custom",
        path: ["processing", "transactionTimeoutMs"],
        message:
          "must exceed sessionTimeoutMs, so a slow but live worker's transaction is not expired by the broker",
      });
    }
    if (cfg.processing.retryMaxMs < cfg.processing.retryInitialMs) {
      ctx.addIssue({
        code: "custom",
        path: ["processing", "retryMaxMs"],
        message: "must be at least retryInitialMs",
      });
    }
    if (cfg.processing.heartbeatIntervalMs * 3 > cfg.processing.sessionTimeoutMs) {
      ctx.addIssue({
        code: "custom",
        path: ["processing", "heartbeatIntervalMs"],
        message: "must be at most a third of sessionTimeoutMs",
      });
    }
    const topics = [cfg.input.topic, cfg.output.topic, cfg.dlq.topic];
    if (new Set(topics).size !== topics.length) {
      ctx.addIssue({
        code: "custom",
        path: ["output", "topic"],
        message: "input, output and dlq topics must differ",
      });
    }
  });

export type PipelineConfigInput = z.input<typeof pipelineSchema>;
export type ParsedPipelineConfig = z.output<typeof pipelineSchema>;
export type ModelConfig = ParsedPipelineConfig["models"][number];
export type TensorInputConfig = ModelConfig["inputs"][number];
export type ColumnConfig = TensorInputConfig["columns"][number];
export type TensorOutputConfig = ModelConfig["outputs"][number];
export type FeaturesConfig = NonNullable<ParsedPipelineConfig["features"]>;
export type FeatureViewConfig = FeaturesConfig["views"][number];
