// Dead-letter records. A record the pipeline cannot turn into a prediction is written to
// the DLQ topic inside the same transaction as the batch's predictions and offsets, with
// its key, value and headers untouched and `aimass.dlq.*` headers saying where it came
// from and why it failed (docs/dlq.md documents the scheme). A DLQ record over its byte
// budget is cut down (the input's headers first, then its value, then its key) and says so:
// the broker refusing it would abort and retry its transaction forever.
import type { IHeaders, Message } from "kafkajs";
import { errorClass, errorMessage, isAimassError } from "./errors.js";
import { messageBytes } from "./kafka/slices.js";
import type { SourceRecord } from "./records.js";

export type DlqStage =
  "size" | "decode" | "route" | "features" | "validate" | "inference" | "encode" | "produce" | "apply";

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

/** Set only on a DLQ record that was cut down to `dlq.maxRecordBytes`. */
export const DLQ_FIT_HEADER = {
  /** What was cut, in order: "headers", "value", "key" (comma-separated). */
  truncated: "aimass.dlq.truncated",
  /** The input record's key + value + header names and values, in bytes, before any cut. */
  originalBytes: "aimass.dlq.original.bytes",
} as const;

/** Header values are capped so a huge error message cannot push the record over max size. */
const MAX_MESSAGE_CHARS = 1_000;

export interface DlqContext {
  pipeline: string;
  model?: { name: string; version: string };
  /** The budget of one DLQ record as `messageBytes` counts it (`dlq.maxRecordBytes`); unset: none. */
  maxRecordBytes?: number;
}

export function dlqMessage(record: SourceRecord, stage: DlqStage, error: unknown, ctx: DlqContext): Message {
  const message = errorMessage(error);
  const meta: IHeaders = {
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
    meta[DLQ_HEADER.modelName] = ctx.model.name;
    meta[DLQ_HEADER.modelVersion] = ctx.model.version;
  }
  // The input's own aimass.dlq.* headers (a replayed record) give way to the fresh ones.
  const full: Message = { key: record.key, value: record.value, headers: { ...record.headers, ...meta } };
  if (ctx.maxRecordBytes === undefined || messageBytes(full) <= ctx.maxRecordBytes) return full;
  return fitted(record, meta, ctx.maxRecordBytes);
}

/** The bytes the input-size check counts: key, value, and every header's name and value. */
export function recordBytes(record: Pick<SourceRecord, "key" | "value" | "headers">): number {
  let n = (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const [name, one] of headerEntries(record.headers)) n += Buffer.byteLength(name) + bytesOf(one);
  return n;
}

/** Every header value with its name; a repeated header (an array) yields one entry per value. */
export function headerEntries(headers: IHeaders): Array<[string, Buffer | string | undefined]> {
  return Object.entries(headers).flatMap(([name, v]) =>
    Array.isArray(v) ? v.map((one): [string, Buffer | string] => [name, one]) : [[name, v]],
  );
}

export function bytesOf(v: Buffer | string | undefined): number {
  return v === undefined ? 0 : typeof v === "string" ? Buffer.byteLength(v) : v.length;
}

/** A DLQ record within `budget`: the aimass headers (and source coordinates) are always kept. */
function fitted(record: SourceRecord, meta: IHeaders, budget: number): Message {
  const extra = {
    ...meta,
    [DLQ_FIT_HEADER.truncated]: "headers,value,key", // the longest value, so the room is never short
    [DLQ_FIT_HEADER.originalBytes]: String(recordBytes(record)),
  };
  let room = Math.max(0, budget - messageBytes({ key: null, value: null, headers: extra }));
  const cut: string[] = [];
  if (Object.keys(record.headers).length > 0) cut.push("headers");
  let value = record.value;
  let key = record.key;
  const keyBytes = key?.length ?? 0;
  if (value !== null && keyBytes + value.length > room) {
    value = value.subarray(0, Math.max(0, room - keyBytes));
    cut.push("value");
  }
  room -= value?.length ?? 0;
  if (key !== null && key.length > room) {
    key = key.subarray(0, room);
    cut.push("key");
  }
  return { key, value, headers: { ...extra, [DLQ_FIT_HEADER.truncated]: cut.join(",") } };
}
