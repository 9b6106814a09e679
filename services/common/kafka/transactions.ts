// Helpers around kafkajs transactions: retrying what kafkajs does not, and classifying
// errors once (fenced → this worker lost the partition; anything else → abort and retry).
import type { Transaction, TopicOffsets } from "kafkajs";
import { AimassError, errorMessage } from "../errors.js";
import { sleep } from "../lifecycle.js";
import { TUNING } from "../tuning.js";

/** Errors that mean another producer with our transactional id took over: we are a zombie. */
const FENCED = new Set([
  "INVALID_PRODUCER_EPOCH",
  "PRODUCER_FENCED",
  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
  "INVALID_TXN_STATE",
]);

export function kafkaErrorType(err: unknown): string | undefined {
  if (err && typeof err === "object") {
    const type = (err as { type?: unknown }).type;
    if (typeof type === "string") return type;
    const cause = (err as { cause?: unknown }).cause;
    if (cause) return kafkaErrorType(cause);
  }
  return undefined;
}

/**
 * Errors a broker gives for the records of a produce request rather than for the request's
 * circumstances: the same records are refused again however often they are retried.
 * (INVALID_TIMESTAMP is not one: the producer stamps records with this host's clock, so it
 * means clock skew, not a bad record.)
 */
const RECORD_REJECTIONS: ReadonlySet<string> = new Set([
  "MESSAGE_TOO_LARGE",
  "RECORD_LIST_TOO_LARGE",
  "INVALID_RECORD",
  "CORRUPT_MESSAGE",
]);

/** A message a broker refused: its index among the messages for `topic` in one send. */
export interface Refusal {
  topic: string;
  index: number;
}

export function isRecordRejection(err: unknown): boolean {
  const type = kafkaErrorType(err);
  return type !== undefined && RECORD_REJECTIONS.has(type);
}

export function isFenced(err: unknown): boolean {
  const type = kafkaErrorType(err);
  return (type !== undefined && FENCED.has(type)) || /fenced|INVALID_PRODUCER_EPOCH/i.test(errorMessage(err));
}

/**
 * `Transaction.sendOffsets` that survives CONCURRENT_TRANSACTIONS: kafkajs does not retry
 * AddOffsetsToTxn when the coordinator is still completing this producer's previous
 * transaction (kafkajs issue #430), which happens right after a commit or abort.
 */
export async function sendOffsetsRetrying(
  txn: Transaction,
  consumerGroupId: string,
  topics: TopicOffsets[],
  options: { attempts: number; backoffMs: number } = {
    attempts: TUNING.transactions.sendOffsetsAttempts,
    backoffMs: TUNING.transactions.sendOffsetsInitialBackoffMs,
  },
): Promise<void> {
  const { attempts } = options;
  let backoff = options.backoffMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await txn.sendOffsets({ consumerGroupId, topics });
      return;
    } catch (err) {
      if (kafkaErrorType(err) !== "CONCURRENT_TRANSACTIONS" || attempt >= attempts) {
        if (isFenced(err)) throw new AimassError("KAFKA_FENCED", errorMessage(err), { cause: err });
        throw err;
      }
      await sleep(backoff);
      backoff = Math.min(backoff * 2, TUNING.transactions.sendOffsetsMaxBackoffMs);
    }
  }
}
