// The seam between a partition's exactly-once loop and Kafka: one transactional producer
// with a stable transactional id, able to fence older producers with that id, to write
// messages together with a consumer offset in one transaction, and to be thrown away.
//
// A sink is used for one epoch only. kafkajs 2.2.4 leaves a producer whose EndTxn failed in
// COMMITTING/ABORTING for good, and rolls sequence numbers back after a failed produce, so
// a resend on the same producer can be taken by the leader as a duplicate of an aborted
// batch. After any failed transaction the caller therefore discards the sink and fences
// with a new one (new producer id and epoch, fresh sequence numbers) before it retries.
import type { Kafka, Producer, TopicMessages, Transaction } from "kafkajs";
import { AimassError, errorMessage, isAimassError } from "../errors.js";
import { TUNING } from "../tuning.js";
import { sliceByBytes } from "./slices.js";
import {
  isFenced,
  isRecordRejection,
  kafkaErrorType,
  sendOffsetsRetrying,
  type Refusal,
} from "./transactions.js";

export interface SinkWrite {
  topicMessages: TopicMessages[];
  /** The consumer offset to commit with the messages: the next record to read. */
  offset: { groupId: string; topic: string; partition: number; offset: bigint };
  /**
   * Each message in a produce request of its own, so that the records the broker refuses are
   * named: the commit then rejects KAFKA_RECORD_REJECTED with `details.refused`, a Refusal
   * (topic, index among that topic's messages) per refused record. Slow; for finding the
   * records after a commit failed with a record rejection.
   */
  isolate?: boolean;
}

export interface TransactionalSink {
  /**
   * Initialises the producer id: bumps the epoch (fencing every older producer with this
   * transactional id) and lets the coordinator settle an open transaction of theirs.
   * Rejects KAFKA_FENCED when a newer producer already owns the id.
   */
  fence(): Promise<void>;
  /**
   * Writes the messages and the offset in one transaction. Rejects KAFKA_FENCED when a newer
   * producer owns the id, otherwise KAFKA_TRANSIENT (stage "commit"): the outcome may be
   * unknown (EndTxn sent, no answer), and the sink must not be used again. With `isolate`,
   * KAFKA_RECORD_REJECTED names the refused record; the sink must not be used again either.
   */
  commit(write: SinkWrite): Promise<void>;
  /** Disconnects. An open transaction stays open until a newer producer's fence settles it. */
  close(): Promise<void>;
}

export interface KafkaSinkOptions {
  kafka: Kafka;
  transactionalId: string;
  transactionTimeoutMs: number;
  /** Bytes of records per produce request (below the topics' max.message.bytes). */
  maxRequestBytes: number;
}

export function kafkaTransactionalSink(o: KafkaSinkOptions): TransactionalSink {
  let producer: Producer | undefined;
  let closed = false;
  const open = (): Producer => {
    if (closed) throw new AimassError("KAFKA_TRANSIENT", "transactional sink is closed");
    producer ??= o.kafka.producer({
      transactionalId: o.transactionalId,
      transactionTimeout: o.transactionTimeoutMs,
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { ...TUNING.transactions.producerRetry },
    });
    return producer;
  };
  const classify = (err: unknown, what: string): AimassError =>
    isFenced(err)
      ? new AimassError("KAFKA_FENCED", errorMessage(err), { cause: err })
      : new AimassError("KAFKA_TRANSIENT", `${what} failed: ${errorMessage(err)}`, {
          cause: err,
          details: { stage: "commit" },
        });

  return {
    async fence() {
      const p = open();
      try {
        await p.connect();
        // An empty transaction makes kafkajs send InitProducerId now rather than at the
        // first send.
        const txn = await p.transaction();
        await txn.abort();
      } catch (err) {
        throw classify(err, "fencing");
      }
    },

    async commit(write) {
      const p = open();
      let txn;
      try {
        txn = await p.transaction();
      } catch (err) {
        throw classify(err, "beginning a transaction");
      }
      try {
        // One request for all topics (fewer round trips inside the transaction), unless that
        // would make a record batch bigger than the broker takes: then several, same transaction.
        if (write.isolate) await sendOneByOne(txn, write.topicMessages);
        else
          for (const slice of sliceByBytes(write.topicMessages, o.maxRequestBytes))
            await txn.sendBatch({ topicMessages: slice });
        const { groupId, topic, partition, offset } = write.offset;
        await sendOffsetsRetrying(txn, groupId, [
          { topic, partitions: [{ partition, offset: offset.toString() }] },
        ]);
        await txn.commit();
      } catch (err) {
        if (isAimassError(err, "KAFKA_RECORD_REJECTED")) throw err;
        // No abort: against a broker that is down it would wait out the request timeout, and
        // the caller's next producer fences at once, which aborts whatever this one left open.
        throw classify(err, "transaction");
      }
    },

    async close() {
      closed = true;
      await producer?.disconnect().catch(() => undefined);
    },
  };
}

/**
 * Sends every message in a request of its own and names each one the broker refuses. A refused
 * request appends nothing (the patched kafkajs rolls its sequence numbers back), so the sends
 * after it go on in the same transaction; it is never committed.
 */
async function sendOneByOne(txn: Transaction, topicMessages: TopicMessages[]): Promise<void> {
  const refused: Refusal[] = [];
  const types = new Set<string>();
  let cause: unknown;
  for (const { topic, messages } of topicMessages) {
    for (const [index, message] of messages.entries()) {
      try {
        await txn.send({ topic, messages: [message] });
      } catch (err) {
        if (!isRecordRejection(err)) throw err;
        refused.push({ topic, index });
        types.add(kafkaErrorType(err) ?? "");
        cause ??= err;
      }
    }
  }
  if (refused.length > 0)
    throw new AimassError(
      "KAFKA_RECORD_REJECTED",
      `the broker refused ${refused.length} record(s) for ${[...new Set(refused.map((r) => r.topic))].join(", ")}: ${[...types].join(", ")}`,
      { cause, details: { refused } },
    );
}
