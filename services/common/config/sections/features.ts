// The features section of a pipeline config: the Redis online feature store's views, as the
// predictor reads them, and the feature writer's topics.
import { z } from "zod";
import { format } from "./names.js";
import { dlqSchema, topicSchema } from "./topics.js";

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

export const featuresSchema = z.strictObject({
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
  /** Where the feature-writer sends updates it cannot apply (with the DLQ's byte budget). */
  dlq: dlqSchema.optional(),
});
