// The models section of a pipeline config: a model's file, execution providers, batching and
// the mapping of event fields to its input tensors and of its outputs to prediction fields.
import { z } from "zod";
import { name, versionName } from "./names.js";

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
  version: versionName,
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

/**
 * A models entry as a file may write it with a `modelRepository`: a name and a version, and
 * optionally keys that override the repository's model.yaml (never a path: the repository has
 * it). The loader expands it into a whole model before validation.
 */
export const modelReferenceSchema = modelSchema
  .omit({ path: true })
  .partial()
  .required({ name: true, version: true });
