// The pipeline config: one zod schema holding every option, its default and its limits.
// Defaults live here and nowhere else; units are in the names (…Ms, …Bytes). Each section has
// its own module under sections/; this one composes them and checks what spans sections.
import { z } from "zod";
import { featuresSchema } from "./sections/features.js";
import { modelReferenceSchema, modelSchema } from "./sections/models.js";
import { name } from "./sections/names.js";
import { controlSchema, processingSchema, routingSchema } from "./sections/processing.js";
import { dlqSchema, inputSchema, outputSchema } from "./sections/topics.js";

export { modelSchema, type Transform } from "./sections/models.js";

const pipelineObject = z.strictObject({
  pipeline: z.strictObject({
    name,
    /** Consumer group. @default "aimass-<name>" */
    groupId: name.optional(),
    /** Prefix of the per-partition transactional ids. @default the group id */
    transactionalIdPrefix: name.optional(),
  }),
  input: inputSchema,
  output: outputSchema,
  dlq: dlqSchema,
  routing: routingSchema.prefault({}),
  /**
   * A Triton-like model repository: `<dir>/<name>/<version>/model.onnx`, the tensor mapping
   * in `<dir>/<name>/model.yaml` (a version's own model.yaml overrides it). Entries of
   * `models` may then name only `name` and `version` (the version served until the control
   * topic says otherwise). Relative to the config file.
   */
  modelRepository: z.string().min(1).optional(),
  models: z.array(modelSchema).min(1),
  control: controlSchema.prefault({}),
  processing: processingSchema.prefault({}),
  /** The Redis online feature store: views the models read, and the writer's topics. */
  features: featuresSchema.optional(),
});

/** A config as the loader validates it: repository entries expanded, every model whole. */
export const pipelineSchema = pipelineObject.superRefine((cfg, ctx) => {
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
            message: known ? `view "${view}" has no feature "${feature}"` : `no feature view named "${view}"`,
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
  // Shadow predictions must never be read as the primary output's, or a DLQ record's.
  if (cfg.output.shadowTopic !== undefined && topics.includes(cfg.output.shadowTopic)) {
    ctx.addIssue({
      code: "custom",
      path: ["output", "shadowTopic"],
      message: "must differ from the input, output and dlq topics",
    });
  }
});

/**
 * A config as a file holds it: a models entry may also be a repository reference (name and
 * version). The published JSON Schema (schemas/pipeline-config.schema.json) is made from this;
 * the checks that span sections are the loader's alone.
 */
export const pipelineFileSchema = pipelineObject.extend({
  models: z.array(z.union([modelSchema, modelReferenceSchema])).min(1),
});

export type PipelineConfigInput = z.input<typeof pipelineSchema>;
export type ParsedPipelineConfig = z.output<typeof pipelineSchema>;
export type ModelConfig = ParsedPipelineConfig["models"][number];
export type TensorInputConfig = ModelConfig["inputs"][number];
export type ColumnConfig = TensorInputConfig["columns"][number];
export type TensorOutputConfig = ModelConfig["outputs"][number];
export type FeaturesConfig = NonNullable<ParsedPipelineConfig["features"]>;
export type FeatureViewConfig = FeaturesConfig["views"][number];
