// Exactly-once processing of one input partition. It owns the partition's transactional
// producer, whose id is stable per input partition (`<prefix>.<topic>.<partition>`): kafkajs
// has no KIP-447, so that id is what fences a zombie. Chunks of records are processed in
// offset order; each chunk's predictions, DLQ records and input offset commit in one
// transaction. A failed transaction is aborted and the same chunk is retried.
//
// On start it fences any previous owner (InitProducerId with our id aborts or waits out
// the old owner's open transaction), and only then reads the committed offset: records
// below it were committed by the previous owner after our consumer fetched its position,
// and are skipped. That closes the window KIP-447 closes in the Java client.
import type { Kafka, Producer } from "kafkajs";
import { AimassError, errorMessage, isAimassError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { sliceByBytes } from "../common/kafka/slices.js";
import { isFenced, kafkaErrorType, sendOffsetsRetrying } from "../common/kafka/transactions.js";
import type { SourceRecord } from "../common/records.js";
import { sleep } from "../common/lifecycle.js";
import type { ProcessedChunk, RecordProcessor } from "./record-processor.js";

export type PartitionState = "starting" | "running" | "stopping" | "stopped" | "fenced";

export interface PartitionWorkerOptions {
  kafka: Kafka;
  topic: string;
  partition: number;
  groupId: string;
  transactionalId: string;
  outputTopic: string;
  dlqTopic: string;
  /** Shadow versions' predictions (never on the output topic). @default `${outputTopic}.shadow` */
  shadowTopic?: string;
  transactionTimeoutMs: number;
  /** Ready chunks queued behind the head are committed with it, up to this many records. */
  maxRecordsPerTransaction: number;
  /** Bytes of records per produce request in a transaction (below the topics' max.message.bytes). */
  maxRequestBytes: number;
  retryInitialMs: number;
  retryMaxMs: number;
  processor: RecordProcessor;
  logger: Logger;
  /** Committed offset of this partition for the group, read after fencing. */
  fetchCommittedOffset: () => Promise<bigint | undefined>;
  /** Records accepted (+) or released (−): the worker-wide in-flight count drives pause/resume. */
  onInFlight: (delta: number) => void;
  onCommitted?: (info: {
    /** Kafka timestamps (ms) of the committed input records, for end-to-end latency. */
    timestamps: number[];
    /** The committed offset: the next record to read. */
    nextOffset: bigint;
    records: number;
    predictions: number;
    dlq: ProcessedChunk["dlqByStage"];
    ms: number;
  }) => void;
  onAbort?: (error: unknown) => void;
  onFenced: (error: unknown) => void;
}

interface Chunk {
  records: SourceRecord[];
  prepared?: Promise<ProcessedChunk> | undefined;
  /** Set once `prepared` has resolved, so a commit can take ready chunks without waiting. */
  result?: ProcessedChunk | undefined;
}

export class PartitionWorker {
  private stateValue: PartitionState = "starting";
  private readonly queue: Chunk[] = [];
  private producer: Producer | undefined;
  private nextOffset: bigint | undefined;
  private floor: bigint | undefined;
  private wake: (() => void) | undefined;
  private readonly stopController = new AbortController();
  private mode: "drain" | "discard" = "discard";
  private readonly done: Promise<void>;
  private readonly log: Logger;

  constructor(private readonly o: PartitionWorkerOptions) {
    this.log = o.logger.child({ topic: o.topic, partition: o.partition });
    this.done = this.loop().catch((err) => {
      this.log.error("partition worker failed", { error: err });
    });
  }

  get state(): PartitionState {
    return this.stateValue;
  }

  get queuedRecords(): number {
    return this.queue.reduce((n, c) => n + c.records.length, 0);
  }

  /** Accepts fetched records, dropping any already accepted (kafkajs re-delivers after a rebalance). */
  enqueue(records: SourceRecord[]): void {
    if (this.stateValue !== "starting" && this.stateValue !== "running") return;
    const fresh = records.filter((r) => this.nextOffset === undefined || BigInt(r.offset) >= this.nextOffset);
    if (fresh.length === 0) return;
    this.nextOffset = BigInt((fresh[fresh.length - 1] as SourceRecord).offset) + 1n;
    const chunk: Chunk = { records: fresh };
    this.queue.push(chunk);
    this.o.onInFlight(fresh.length);
    if (this.stateValue === "running") this.startPrepare(chunk);
    this.wake?.();
  }

  /**
   * Stops the worker. "drain" commits everything queued first (shutdown); "discard" lets a
   * transaction already under way finish and drops the rest (revocation: the next owner
   * re-reads those records from the committed offset). Resolves when the producer is closed.
   */
  async stop(mode: "drain" | "discard"): Promise<void> {
    if (this.stateValue === "stopped" || this.stateValue === "fenced") return this.done;
    this.mode = mode;
    if (this.stateValue !== "stopping") this.stateValue = "stopping";
    if (mode === "discard") this.stopController.abort();
    this.wake?.();
    return this.done;
  }

  /**
   * Abandons work now. Closing the producer sends no EndTxn: an open transaction stays open
   * until the next owner's InitProducerId aborts it, or the transaction timeout does.
   */
  async kill(): Promise<void> {
    this.mode = "discard";
    this.stateValue = "stopping";
    this.stopController.abort();
    this.wake?.();
    await this.producer?.disconnect().catch(() => undefined);
    return this.done;
  }

  private async loop(): Promise<void> {
    try {
      await this.fenceAndReadFloor();
      if (this.stopController.signal.aborted) return;
      this.stateValue = this.stateValue === "starting" ? "running" : this.stateValue;
      for (const c of this.queue) this.startPrepare(c);
      for (;;) {
        const chunk = this.queue[0];
        if (!chunk) {
          if (this.stateValue === "stopping") return;
          await new Promise<void>((r) => (this.wake = r));
          this.wake = undefined;
          continue;
        }
        if (this.stopController.signal.aborted) return;
        const group = await this.commitWithRetry();
        if (group === 0) return;
        const done = this.queue.splice(0, group);
        this.o.onInFlight(-done.reduce((n, c) => n + c.records.length, 0));
      }
    } catch (err) {
      if (isAimassError(err, "KAFKA_FENCED") || isFenced(err)) {
        this.stateValue = "fenced";
        this.log.warn("fenced: another worker owns this partition's transactional id now", { error: err });
        this.o.onFenced(err);
      } else {
        throw err;
      }
    } finally {
      this.release();
      await this.producer?.disconnect().catch(() => undefined);
      if (this.stateValue !== "fenced") this.stateValue = "stopped";
    }
  }

  private release(): void {
    const pending = this.queuedRecords;
    this.queue.length = 0;
    if (pending > 0) this.o.onInFlight(-pending);
  }

  private async fenceAndReadFloor(): Promise<void> {
    let backoff = this.o.retryInitialMs;
    for (;;) {
      try {
        this.producer = this.o.kafka.producer({
          transactionalId: this.o.transactionalId,
          transactionTimeout: this.o.transactionTimeoutMs,
          idempotent: true,
          maxInFlightRequests: 1,
          // Short first retry: CONCURRENT_TRANSACTIONS right after the previous commit clears
          // within milliseconds, and every transaction's first send can hit it.
          retry: { retries: 12, initialRetryTime: 10, maxRetryTime: 2_000 },
        });
        await this.producer.connect();
        // An empty transaction makes kafkajs call InitProducerId now: that bumps the epoch
        // (fencing any older producer with this id) and settles its open transaction.
        const txn = await this.producer.transaction();
        await txn.abort();
        this.floor = await this.o.fetchCommittedOffset();
        // Records delivered from now on must start at the floor too, not only those queued.
        if (this.floor !== undefined && (this.nextOffset === undefined || this.nextOffset < this.floor)) {
          this.nextOffset = this.floor;
        }
        break;
      } catch (err) {
        await this.producer?.disconnect().catch(() => undefined);
        if (this.stopController.signal.aborted) return;
        this.log.warn("could not initialise the transactional producer; retrying", {
          error: err,
          backoffMs: backoff,
        });
        await sleep(backoff, this.stopController.signal);
        backoff = Math.min(backoff * 2, this.o.retryMaxMs);
      }
    }
    if (this.floor !== undefined) {
      const floor = this.floor;
      for (const chunk of this.queue) {
        const before = chunk.records.length;
        chunk.records = chunk.records.filter((r) => BigInt(r.offset) >= floor);
        if (before !== chunk.records.length) {
          this.log.info("skipping records the previous owner already committed", {
            skipped: before - chunk.records.length,
          });
          this.o.onInFlight(chunk.records.length - before);
        }
      }
      for (let i = this.queue.length - 1; i >= 0; i--)
        if (this.queue[i]?.records.length === 0) this.queue.splice(i, 1);
    }
  }

  private startPrepare(chunk: Chunk): void {
    chunk.result = undefined;
    chunk.prepared = this.o.processor.process(chunk.records);
    chunk.prepared.then(
      (r) => (chunk.result = r),
      () => undefined, // observed in commitWithRetry
    );
  }

  /**
   * Commits the head chunk, together with the chunks behind it that are already prepared
   * (up to maxRecordsPerTransaction records): under load, transactions grow with the
   * backlog instead of the backlog growing behind one small transaction per fetch.
   * Returns how many chunks committed; 0 when stopped (discard) first.
   */
  private async commitWithRetry(): Promise<number> {
    let backoff = this.o.retryInitialMs;
    for (let attempt = 1; ; attempt++) {
      if (this.stopController.signal.aborted) return 0;
      const head = this.queue[0] as Chunk;
      const started = performance.now();
      try {
        if (!head.prepared) this.startPrepare(head);
        const prepared = [await (head.prepared as Promise<ProcessedChunk>)];
        let records = head.records.length;
        for (let i = 1; i < this.queue.length; i++) {
          const next = this.queue[i] as Chunk;
          if (!next.result || records + next.records.length > this.o.maxRecordsPerTransaction) break;
          prepared.push(next.result);
          records += next.records.length;
        }
        const group = this.queue.slice(0, prepared.length);
        await this.commit(group, prepared);
        const lastChunk = group[group.length - 1] as Chunk;
        this.o.onCommitted?.({
          timestamps: group.flatMap((c) => c.records.map((r) => Number(r.timestamp))),
          nextOffset: BigInt((lastChunk.records[lastChunk.records.length - 1] as SourceRecord).offset) + 1n,
          records,
          predictions: prepared.reduce((n, p) => n + p.predictions.length, 0),
          dlq: mergeCounts(prepared.map((p) => p.dlqByStage)),
          ms: performance.now() - started,
        });
        return group.length;
      } catch (err) {
        if (isAimassError(err, "KAFKA_FENCED") || isFenced(err)) throw err;
        this.o.onAbort?.(err);
        // A failed preparation (e.g. the feature store is down) is redone from scratch; a
        // failed commit re-sends the same prepared messages in a new transaction.
        if (!(isAimassError(err) && err.code === "KAFKA_TRANSIENT" && err.details.stage === "commit")) {
          head.prepared = undefined;
        } else {
          // A shadow version must never hold up the primary output: if a transaction that
          // carried shadow records failed (missing shadow topic, no ACL…), retry without them.
          const dropped = this.dropShadow();
          if (dropped > 0) this.log.warn("dropped shadow predictions from a failed transaction", { dropped });
        }
        // Retrying is the only lossless option; after a few attempts say so loudly, with the
        // Kafka error type, because some causes (a record over max.message.bytes, ACLs) need
        // an operator.
        const log = attempt >= 5 ? this.log.error.bind(this.log) : this.log.warn.bind(this.log);
        log("transaction failed; aborted, retrying", {
          kafkaError: kafkaErrorType(err),
          attempt,
          backoffMs: backoff,
          error: errorMessage(err),
          firstOffset: head.records[0]?.offset,
        });
        await sleep(backoff, this.stopController.signal);
        backoff = Math.min(backoff * 2, this.o.retryMaxMs);
      }
    }
  }

  /** Removes shadow records from every prepared chunk; returns how many. */
  private dropShadow(): number {
    let dropped = 0;
    for (const chunk of this.queue) {
      if (chunk.result && chunk.result.shadow.length > 0) {
        dropped += chunk.result.shadow.length;
        chunk.result.shadowFailures += chunk.result.shadow.length;
        chunk.result.shadow = [];
      }
    }
    return dropped;
  }

  private async commit(group: Chunk[], prepared: ProcessedChunk[]): Promise<void> {
    const producer = this.producer as Producer;
    const lastChunk = group[group.length - 1] as Chunk;
    const last = lastChunk.records[lastChunk.records.length - 1] as SourceRecord;
    const predictions = prepared.flatMap((p) => p.predictions);
    const dlq = prepared.flatMap((p) => p.dlq);
    const shadow = prepared.flatMap((p) => p.shadow);
    const txn = await producer.transaction();
    try {
      // One request for all topics (fewer round trips inside the transaction), unless that
      // would make a record batch bigger than the broker takes: then several, same transaction.
      const topicMessages = [
        ...(predictions.length > 0 ? [{ topic: this.o.outputTopic, messages: predictions }] : []),
        ...(dlq.length > 0 ? [{ topic: this.o.dlqTopic, messages: dlq }] : []),
        ...(shadow.length > 0
          ? [{ topic: this.o.shadowTopic ?? `${this.o.outputTopic}.shadow`, messages: shadow }]
          : []),
      ];
      for (const slice of sliceByBytes(topicMessages, this.o.maxRequestBytes))
        await txn.sendBatch({ topicMessages: slice });
      await sendOffsetsRetrying(txn, this.o.groupId, [
        {
          topic: this.o.topic,
          partitions: [{ partition: this.o.partition, offset: (BigInt(last.offset) + 1n).toString() }],
        },
      ]);
      await txn.commit();
    } catch (err) {
      if (isFenced(err)) throw new AimassError("KAFKA_FENCED", errorMessage(err), { cause: err });
      await txn.abort().catch(() => undefined);
      throw new AimassError("KAFKA_TRANSIENT", `transaction failed: ${errorMessage(err)}`, {
        cause: err,
        details: { stage: "commit" },
      });
    }
  }
}

function mergeCounts(counts: ProcessedChunk["dlqByStage"][]): ProcessedChunk["dlqByStage"] {
  const out: ProcessedChunk["dlqByStage"] = {};
  for (const c of counts) {
    for (const [stage, n] of Object.entries(c) as Array<[keyof typeof out, number]>)
      out[stage] = (out[stage] ?? 0) + n;
  }
  return out;
}
