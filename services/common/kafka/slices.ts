// Splits one transaction's messages into produce requests of bounded size. kafkajs writes all
// of a request's records for one partition as one record batch, and the broker refuses a batch
// over the topic's max.message.bytes (1 MB by default): a large commit group of large
// predictions would fail, abort and be retried forever. Several requests in the same
// transaction keep it atomic; order is kept because the producer has one request in flight.
import type { IHeaders, Message, TopicMessages } from "kafkajs";

/** Per-record framing in a v2 record batch (length, attributes, deltas, varints), rounded up. */
const RECORD_OVERHEAD = 24;

function bytesOf(v: Buffer | string | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === "string" ? Buffer.byteLength(v) : v.length;
}

function headerBytes(headers: IHeaders | undefined): number {
  let n = 0;
  for (const [k, v] of Object.entries(headers ?? {})) {
    for (const one of Array.isArray(v) ? v : [v]) n += Buffer.byteLength(k) + bytesOf(one) + 4;
  }
  return n;
}

/** Approximate bytes a message takes in a record batch (never less than the real size by much). */
export function messageBytes(m: Message): number {
  return RECORD_OVERHEAD + bytesOf(m.key) + bytesOf(m.value) + headerBytes(m.headers);
}

/**
 * Slices of `topicMessages`, each at most `maxBytes` of records (a single larger message gets
 * a slice of its own: the broker judges it, and output.maxRecordBytes keeps predictions
 * below the limit). Messages keep their order within each topic.
 */
export function sliceByBytes(topicMessages: TopicMessages[], maxBytes: number): TopicMessages[][] {
  const slices: TopicMessages[][] = [];
  let current: TopicMessages[] = [];
  let size = 0;
  for (const { topic, messages } of topicMessages) {
    let run: Message[] = [];
    for (const m of messages) {
      const b = messageBytes(m);
      if (size + b > maxBytes && size > 0) {
        if (run.length > 0) current.push({ topic, messages: run });
        slices.push(current);
        current = [];
        run = [];
        size = 0;
      }
      run.push(m);
      size += b;
    }
    if (run.length > 0) current.push({ topic, messages: run });
  }
  if (current.length > 0) slices.push(current);
  return slices;
}
