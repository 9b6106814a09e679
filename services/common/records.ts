// The record every stage of the pipeline works on: one consumed Kafka record with its
// coordinates, key, value and headers exactly as the broker returned them.
import type { IHeaders, KafkaMessage } from "kafkajs";

export interface SourceRecord {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

/** kafkajs' fetched messages as SourceRecords: absent key, value and headers become null / {}. */
export function toSourceRecords(topic: string, partition: number, messages: KafkaMessage[]): SourceRecord[] {
  return messages.map((m) => ({
    topic,
    partition,
    offset: m.offset,
    timestamp: m.timestamp,
    key: m.key ?? null,
    value: m.value ?? null,
    headers: m.headers ?? {},
  }));
}
