// The record every stage of the pipeline works on: one consumed Kafka record with its
// coordinates, key, value and headers exactly as the broker returned them.
import type { IHeaders } from "kafkajs";

export interface SourceRecord {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}
