// The topic sections of a pipeline config: the input, output and DLQ topics (and the shape the
// feature writer's topics share), with what `aimass topics create` makes of them.
import { z } from "zod";
import { format, topicName } from "./names.js";

export const topicSchema = z.strictObject({
  topic: topicName,
  /** Partitions for `aimass topics create`. @default 6 */
  partitions: z.int().min(1).max(10_000).default(6),
  /** @default 1 */
  replicationFactor: z.int().min(1).max(16).default(1),
  /** Extra topic configs for `aimass topics create` (e.g. retention.ms). */
  config: z.record(z.string(), z.string()).default({}),
});

export const inputSchema = topicSchema.extend({
  format: format.default("json"),
  /**
   * Records larger than this go to the DLQ unparsed (stage "size"). Counts the value, the key
   * and every header's name and value. @default 1048576
   */
  maxRecordBytes: z.int().min(16).default(1_048_576),
  /** Records with more headers than this go to the DLQ unparsed (stage "size"). @default 64 */
  maxHeaders: z.int().min(0).max(100_000).default(64),
  /** A record with one header (name and value) larger than this goes to the DLQ unparsed. @default 16384 */
  maxHeaderBytes: z.int().min(1).default(16_384),
  /** Event field holding the event's id, copied to predictions as `eventId`. @default "id" */
  idField: z.string().min(1).default("id"),
  /** Event field holding the event time in epoch ms (for end-to-end latency). @default "ts" */
  timeField: z.string().min(1).default("ts"),
});

export const outputSchema = topicSchema.extend({
  format: format.default("json"),
  /**
   * A prediction larger than this (value, key and headers, the input's included) goes to the
   * DLQ (stage "encode") instead of failing its transaction forever; keep it below the topic's
   * max.message.bytes. @default 1000000
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

export const dlqSchema = topicSchema.extend({
  /**
   * Bytes one DLQ record may take (key, value, headers and record framing, as a produce request
   * counts them). A larger one drops the input's own headers, then cuts its value (then key),
   * and says so in aimass.dlq.truncated, so it never fails its transaction on the broker's
   * limit. Keep it below the DLQ topic's max.message.bytes (1 MB by default); the minimum
   * leaves room for the aimass.dlq.* headers. @default 900000
   */
  maxRecordBytes: z.int().min(8_192).default(900_000),
});
