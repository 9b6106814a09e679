// A record the broker refuses (over the topic's max.message.bytes, an invalid timestamp…) is
// refused again on every retry: left in its transaction it would stall the partition for good.
// After a commit fails that way, the worker commits the head chunk alone with each message in
// a request of its own (TransactionalSink `isolate`), which names the refused message; this
// module then takes it out of the chunk and puts the input record in the DLQ (stage
// "produce") instead, and the chunk is committed again. One refused record per retry, so the
// retries are bounded by the chunk's size.
import type { Message } from "kafkajs";
import { AimassError, errorMessage, isAimassError } from "../common/errors.js";
import { isRecordRejection } from "../common/kafka/transactions.js";
import type { Logger } from "../common/logger.js";
import { DLQ_HEADER, dlqMessage, type DlqContext } from "../common/dlq.js";
import type { SourceRecord } from "../common/records.js";
import type { ProcessedChunk } from "./chunk.js";

/** The smallest DLQ copy: the aimass headers alone, no key, value or input headers. */
const BARE_BYTES = 0;

export interface Refusal {
  topic: string;
  /** The refused message's index among the messages for `topic` in the chunk's transaction. */
  index: number;
}

export interface DivertOptions {
  outputTopic: string;
  dlqTopic: string;
  dlq: DlqContext;
}

/**
 * What a failed commit of `group` means for the next attempt: true after a record rejection,
 * when the next attempts must isolate records until one commits. A rejection that names its
 * record (an isolated commit: the head chunk alone) has moved that record to the DLQ already.
 */
export function handleRefusal(
  error: unknown,
  group: { prepared: ProcessedChunk[]; records: SourceRecord[][] },
  o: DivertOptions,
  log: Logger,
): boolean {
  if (!isAimassError(error, "KAFKA_RECORD_REJECTED")) return isRecordRejection(error);
  const { topic, index } = error.details;
  const [chunk] = group.prepared;
  const [records] = group.records;
  if (
    typeof topic !== "string" ||
    typeof index !== "number" ||
    !chunk ||
    !records ||
    group.prepared.length !== 1
  )
    throw new AimassError(
      "KAFKA_RECORD_REJECTED",
      `a refusal that names no record of one chunk: ${error.message}`,
    );
  const offset = divertRefused(chunk, records, { topic, index }, error, o);
  log.error("the broker refused a record: its input goes to the DLQ", { offset, error: error.message });
  return true;
}

/**
 * Takes the refused message out of `chunk` (the head chunk, committed alone, of `records`) and
 * queues the DLQ record that replaces it; returns the input record's offset. Throws when the
 * refused message is already a bare DLQ record, or cannot be traced to its input record.
 */
export function divertRefused(
  chunk: ProcessedChunk,
  records: readonly SourceRecord[],
  refusal: Refusal,
  error: unknown,
  o: DivertOptions,
): string {
  const reason = new AimassError(
    "KAFKA_RECORD_REJECTED",
    `the broker refused the ${refusal.topic === o.dlqTopic ? "DLQ record" : "prediction"}: ${errorMessage(error)}`,
  );
  if (refusal.topic === o.outputTopic) {
    const source = records[chunk.predictionSources[refusal.index] ?? -1];
    if (!source) throw unknown(refusal);
    // Every prediction of that record goes: the DLQ record stands for all of it.
    const at = chunk.predictionSources.flatMap((s, i) => (records[s] === source ? [i] : []));
    for (const i of at.reverse()) {
      chunk.predictions.splice(i, 1);
      chunk.predictionSources.splice(i, 1);
    }
    chunk.dlq.push(dlqMessage(source, "produce", reason, o.dlq));
    chunk.dlqByStage.produce = (chunk.dlqByStage.produce ?? 0) + 1;
    return source.offset;
  }
  if (refusal.topic === o.dlqTopic) {
    const refused = chunk.dlq[refusal.index];
    const source = refused && sourceOf(refused, records);
    if (!refused || !source) throw unknown(refusal);
    if (!refused.value?.length && !refused.key?.length)
      throw new AimassError(
        "KAFKA_RECORD_REJECTED",
        `the broker refuses even a DLQ record without key and value (${errorMessage(error)}): check the DLQ topic's max.message.bytes and message.timestamp settings`,
        { cause: error },
      );
    chunk.dlq[refusal.index] = dlqMessage(source, "produce", reason, {
      ...o.dlq,
      maxRecordBytes: BARE_BYTES,
    });
    return source.offset;
  }
  throw unknown(refusal);
}

function sourceOf(message: Message, records: readonly SourceRecord[]): SourceRecord | undefined {
  const offset = message.headers?.[DLQ_HEADER.sourceOffset];
  const text = Buffer.isBuffer(offset) ? offset.toString() : offset;
  return records.find((r) => r.offset === text);
}

function unknown(refusal: Refusal): AimassError {
  return new AimassError(
    "KAFKA_RECORD_REJECTED",
    `the broker refused message ${refusal.index} for ${refusal.topic}, which cannot be traced to its input record`,
  );
}
