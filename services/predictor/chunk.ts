// What a partition worker commits: a chunk of input records turned into the messages of its
// transaction. The worker depends on this seam only, not on how chunks are prepared, so its
// ordering, retry and fencing logic is tested with a fake preparer and a fake sink.
import type { Message, TopicMessages } from "kafkajs";
import type { DlqStage } from "../common/dlq.js";
import type { SourceRecord } from "../common/records.js";

export interface ProcessedChunk {
  predictions: Message[];
  /** For each prediction, the index of its input record in the chunk: a refused one is diverted. */
  predictionSources: number[];
  dlq: Message[];
  /** Predictions of shadow versions, for the shadow topic only. */
  shadow: Message[];
  /** Per-stage DLQ counts, for metrics and logs. */
  dlqByStage: Partial<Record<DlqStage, number>>;
  /** Shadow records that failed (never affects the primary output). */
  shadowFailures: number;
}

/** What one committed transaction of a partition worker carried, for metrics and lag. */
export interface CommittedInfo {
  /** Kafka timestamps (ms) of the committed input records, for end-to-end latency. */
  timestamps: number[];
  /** The committed offset: the next record to read. */
  nextOffset: bigint;
  records: number;
  predictions: number;
  dlq: ProcessedChunk["dlqByStage"];
  ms: number;
}

export interface ChunkPreparer {
  /**
   * The messages for these records, in input order. Pure with respect to Kafka: it may run
   * ahead of earlier chunks' commits and its result may be committed by a later attempt.
   * Rejects only for causes that are not the records' fault (they are retried).
   */
  prepare(records: SourceRecord[]): Promise<ProcessedChunk>;
}

export function mergeDlqCounts(counts: ProcessedChunk["dlqByStage"][]): ProcessedChunk["dlqByStage"] {
  const out: ProcessedChunk["dlqByStage"] = {};
  for (const c of counts) {
    for (const [stage, n] of Object.entries(c) as Array<[DlqStage, number]>)
      out[stage] = (out[stage] ?? 0) + n;
  }
  return out;
}

/** One transaction's messages per topic: predictions, DLQ records and shadow predictions. */
export function transactionMessages(
  prepared: ProcessedChunk[],
  topics: { outputTopic: string; dlqTopic: string; shadowTopic: string },
): TopicMessages[] {
  return [
    { topic: topics.outputTopic, messages: prepared.flatMap((p) => p.predictions) },
    { topic: topics.dlqTopic, messages: prepared.flatMap((p) => p.dlq) },
    { topic: topics.shadowTopic, messages: prepared.flatMap((p) => p.shadow) },
  ].filter((t) => t.messages.length > 0);
}

export function committedInfo(
  group: { records: SourceRecord[][]; prepared: ProcessedChunk[]; nextOffset: bigint },
  ms: number,
): CommittedInfo {
  const records = group.records.flat();
  return {
    timestamps: records.map((r) => Number(r.timestamp)),
    nextOffset: group.nextOffset,
    records: records.length,
    predictions: group.prepared.reduce((n, p) => n + p.predictions.length, 0),
    dlq: mergeDlqCounts(group.prepared.map((p) => p.dlqByStage)),
    ms,
  };
}
