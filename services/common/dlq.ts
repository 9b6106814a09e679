// Dead-letter records. A record the pipeline cannot turn into a prediction is written to
// the DLQ topic inside the same transaction as the batch's predictions and offsets, with
// its key, value and headers untouched and `aimass.dlq.*` headers saying where it came
// from and why it failed (docs/dlq.md documents the scheme).
import type { IHeaders, Message } from "kafkajs";
import { errorClass, errorMessage, isAimassError } from "./errors.js";
import type { SourceRecord } from "./records.js";

export type DlqStage =
  "size" | "decode" | "route" | "features" | "validate" | "inference" | "encode" | "apply";

export const DLQ_HEADER = {
  sourceTopic: "aimass.dlq.source.topic",
  sourcePartition: "aimass.dlq.source.partition",
  sourceOffset: "aimass.dlq.source.offset",
  sourceTimestamp: "aimass.dlq.source.timestamp",
  stage: "aimass.dlq.stage",
  errorCode: "aimass.dlq.error.code",
  errorClass: "aimass.dlq.error.class",
  errorMessage: "aimass.dlq.error.message",
  pipeline: "aimass.dlq.pipeline",
  modelName: "aimass.dlq.model.name",
  modelVersion: "aimass.dlq.model.version",
  failedAt: "aimass.dlq.failed.at",
} as const;

/** Header values are capped so a huge error message cannot push the record over max size. */
const MAX_MESSAGE_CHARS = 1_000;

export interface DlqContext {
  pipeline: string;
  model?: { name: string; version: string };
}

export function dlqMessage(record: SourceRecord, stage: DlqStage, error: unknown, ctx: DlqContext): Message {
  const message = errorMessage(error);
  const headers: IHeaders = {
    ...record.headers,
    [DLQ_HEADER.sourceTopic]: record.topic,
    [DLQ_HEADER.sourcePartition]: String(record.partition),
    [DLQ_HEADER.sourceOffset]: record.offset,
    [DLQ_HEADER.sourceTimestamp]: record.timestamp,
    [DLQ_HEADER.stage]: stage,
    [DLQ_HEADER.errorCode]: isAimassError(error) ? error.code : "UNKNOWN",
    [DLQ_HEADER.errorClass]: errorClass(error),
    [DLQ_HEADER.errorMessage]:
      message.length > MAX_MESSAGE_CHARS ? message.slice(0, MAX_MESSAGE_CHARS) + "…" : message,
    [DLQ_HEADER.pipeline]: ctx.pipeline,
    [DLQ_HEADER.failedAt]: String(Date.now()),
  };
  if (ctx.model) {
    headers[DLQ_HEADER.modelName] = ctx.model.name;
    headers[DLQ_HEADER.modelVersion] = ctx.model.version;
  }
  return { key: record.key, value: record.value, headers };
}
