// A record the broker refuses (over the topic's max.message.bytes, an invalid record…) is
// refused again on every retry: left in its transaction it would stall the partition for good.
// After a commit fails that way, the worker commits the head chunk alone with each message in
// a request of its own (TransactionalSink `isolate`), which names every refused message; this
// module then takes them out of the chunk, puts their input records in the DLQ (stage
// "produce") instead, and the chunk is committed again: one isolated attempt per chunk.
import type { Message } from "kafkajs";
import { AimassError, errorMessage, isAimassError } from "../common/errors.js";
import { DLQ_HEADER, dlqMessage, type DlqContext } from "../common/dlq.js";
import { isRecordRejection, type Refusal } from "../common/kafka/transactions.js";
import type { Logger } from "../common/logger.js";
import type { SourceRecord } from "../common/records.js";
import type { ProcessedChunk } from "./chunk.js";

/** The smallest DLQ copy: the aimass headers alone, no key, value or input headers. */
const BARE_BYTES = 0;

export interface DivertOptions {
  outputTopic: string;
  dlqTopic: string;
  shadowTopic: string;
  dlq: DlqContext;
}

/**
 * What a failed commit of `group` means for the next attempt:
 * - "diverted": the refused records named by an isolated commit (the head chunk alone) are in
 *   the DLQ now; retry at once, that was progress;
 * - "isolate": a record rejection; the next attempts commit the head alone, one message per
 *   request, until one commits (also when a refusal cannot be handled: logged, retried);
 * - "none": not the records' fault.
 */
export function handleRefusal(
  error: unknown,
  group: { prepared: ProcessedChunk[]; records: SourceRecord[][] },
  o: DivertOptions,
  log: Logger,
): "diverted" | "isolate" | "none" {
  if (!isAimassError(error, "KAFKA_RECORD_REJECTED")) return isRecordRejection(error) ? "isolate" : "none";
  const refused = error.details.refused as Refusal[] | undefined;
  const [chunk] = group.prepared;
  const [records] = group.records;
  try {
    if (!refused?.length || !chunk || !records || group.prepared.length !== 1)
      throw new AimassError(
        "KAFKA_RECORD_REJECTED",
        `a refusal that names no record of one chunk: ${error.message}`,
      );
    const offsets = divertRefused(chunk, records, refused, error, o);
    log.error("the broker refused records: their inputs go to the DLQ", { offsets, error: error.message });
    return "diverted";
  } catch (err) {
    // Retried with backoff like any other failure an operator must fix; the stall bound and
    // the logs say so. Nothing is committed past it.
    log.error("the broker refused records that cannot be dead-lettered; retrying", {
      error: errorMessage(err),
    });
    return "isolate";
  }
}

/**
 * Takes the refused messages out of `chunk` (the head chunk, committed alone, of `records`) and
 * queues the DLQ records that replace them; returns the input records' offsets. Throws, leaving
 * the chunk as it was, when a refused message is already a bare DLQ record or cannot be traced
 * to its input record.
 */
export function divertRefused(
  chunk: ProcessedChunk,
  records: readonly SourceRecord[],
  refused: readonly Refusal[],
  error: unknown,
  o: DivertOptions,
): string[] {
  const reason = (what: string) =>
    new AimassError("KAFKA_RECORD_REJECTED", `the broker refused the ${what}: ${errorMessage(error)}`);
  const predictionsOf = new Set<SourceRecord>();
  const dlqAt = new Map<number, SourceRecord>();
  const shadowAt = new Set<number>();
  // Checked in full first, so that a refusal that cannot be handled changes nothing.
  for (const r of refused) {
    if (r.topic === o.outputTopic) {
      const source = records[chunk.predictionSources[r.index] ?? -1];
      if (!source) throw untraceable(r);
      predictionsOf.add(source);
    } else if (r.topic === o.dlqTopic) {
      const message = chunk.dlq[r.index];
      const source = message && sourceOf(message, records);
      if (!message || !source) throw untraceable(r);
      if (!message.value?.length && !message.key?.length)
        throw new AimassError(
          "KAFKA_RECORD_REJECTED",
          `the broker refuses even a DLQ record without key and value (${errorMessage(error)}): check the DLQ topic's max.message.bytes`,
        );
      dlqAt.set(r.index, source);
    } else if (r.topic === o.shadowTopic && r.index < chunk.shadow.length) shadowAt.add(r.index);
    else throw untraceable(r);
  }
  for (const [index, source] of dlqAt)
    chunk.dlq[index] = dlqMessage(source, "produce", reason("DLQ record"), {
      ...o.dlq,
      maxRecordBytes: BARE_BYTES,
    });
  // Every prediction of a refused record goes: its DLQ record stands for all of it.
  const keep = chunk.predictionSources.map((s) => !predictionsOf.has(records[s] as SourceRecord));
  chunk.predictions = chunk.predictions.filter((_, i) => keep[i]);
  chunk.predictionSources = chunk.predictionSources.filter((_, i) => keep[i]);
  for (const source of records.filter((r) => predictionsOf.has(r))) {
    chunk.dlq.push(dlqMessage(source, "produce", reason("prediction"), o.dlq));
    chunk.dlqByStage.produce = (chunk.dlqByStage.produce ?? 0) + 1;
  }
  // A shadow version never holds up the primary output: its refused records are dropped.
  chunk.shadow = chunk.shadow.filter((_, i) => !shadowAt.has(i));
  chunk.shadowFailures += shadowAt.size;
  return [...new Set([...predictionsOf, ...dlqAt.values()])].map((r) => r.offset);
}

function sourceOf(message: Message, records: readonly SourceRecord[]): SourceRecord | undefined {
  const offset = message.headers?.[DLQ_HEADER.sourceOffset];
  const text = Buffer.isBuffer(offset) ? offset.toString() : offset;
  return records.find((r) => r.offset === text);
}

function untraceable(refusal: Refusal): AimassError {
  return new AimassError(
    "KAFKA_RECORD_REJECTED",
    `the broker refused message ${refusal.index} for ${refusal.topic}, which cannot be traced to its input record`,
  );
}
