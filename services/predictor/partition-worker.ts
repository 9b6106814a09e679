// Exactly-once processing of one input partition. Chunks of records are prepared as soon as
// they arrive and committed strictly in offset order; each commit writes the predictions,
// DLQ and shadow records of one or more chunks together with the input offset in one
// transaction, through a TransactionalSink whose transactional id is stable per input
// partition (kafkajs has no KIP-447, so that id is what fences a zombie).
//
// Every epoch starts the same way: a new sink fences older producers with our id (which
// settles their open transaction, committed or aborted), and only then is the committed
// offset read. Records below it are dropped: the previous owner, or our own previous epoch
// whose commit outcome was unknown, already committed them. A failed commit that is not a
// fence discards the sink and starts a new epoch before the retry, so an ambiguous commit
// never duplicates and a resend never reuses rolled-back sequence numbers.
import { AimassError, errorMessage, isAimassError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { kafkaErrorType } from "../common/kafka/transactions.js";
import type { TransactionalSink } from "../common/kafka/transactional-sink.js";
import type { SourceRecord } from "../common/records.js";
import { ABORTED, exceedsGrace, sleep, untilAborted } from "../common/lifecycle.js";
import { TUNING } from "../common/tuning.js";
import { committedInfo, transactionMessages, type ChunkPreparer, type CommittedInfo } from "./chunk.js";
import { ChunkQueue } from "./chunk-queue.js";
import { StreamGuard } from "./stream-guard.js";
import { handleRefusal } from "./refused.js";
import type { DlqContext } from "../common/dlq.js";

export type PartitionState = "starting" | "running" | "stopping" | "stopped" | "fenced";

export interface PartitionWorkerOptions {
  topic: string;
  partition: number;
  groupId: string;
  outputTopic: string;
  dlqTopic: string;
  shadowTopic: string;
  /** For the DLQ record of an input whose prediction the broker refuses. */
  dlq: DlqContext;
  /** Ready chunks queued behind the head are committed with it, up to this many records. */
  maxRecordsPerTransaction: number;
  retryInitialMs: number;
  retryMaxMs: number;
  preparer: ChunkPreparer;
  /** The worker fences only once this settles: the previous worker of this partition stopped. */
  startAfter: Promise<void>;
  /** A sink for a new epoch: a new transactional producer with this partition's id. */
  newSink: () => TransactionalSink;
  /**
   * Where processing of this partition starts: the group's committed offset, or the log
   * start before the first commit. Read after each fence.
   */
  startOffset: () => Promise<bigint>;
  /** Points the consumer at `offset`: the stream this worker was handed skipped records. */
  rewind: (offset: bigint) => Promise<void>;
  logger: Logger;
  /** The number of queued (uncommitted) records changed: read `queuedRecords`. */
  onQueueChange: () => void;
  onCommitted: (info: CommittedInfo) => void;
  onAbort: (error: unknown) => void;
  /** The worker ended on its own (fenced, or an unexpected error): the partition needs a new one. */
  onLost: (error: unknown) => void;
}

type Attempt =
  | { ok: true; chunks: number }
  /** `diverted`: refused records went to the DLQ, which is progress: retry at once. */
  | { ok: false; stage: "prepare" | "commit"; error: unknown; diverted?: boolean };

export class PartitionWorker {
  private stateValue: PartitionState = "starting";
  private readonly queue: ChunkQueue;
  private sink: TransactionalSink | undefined;
  private wake: (() => void) | undefined;
  private readonly stopController = new AbortController();
  private progressAt = performance.now();
  private readonly guard: StreamGuard;
  /** Set when the worker gave its partition up on its own (a failed rewind). */
  private lost: AimassError | undefined;
  private readonly done: Promise<void>;
  private readonly log: Logger;
  /** A commit failed with a record rejection: commit the head alone, one message per request. */
  private isolate = false;

  constructor(private readonly o: PartitionWorkerOptions) {
    this.log = o.logger.child({ topic: o.topic, partition: o.partition });
    this.queue = new ChunkQueue(o.preparer, o.onQueueChange);
    this.guard = new StreamGuard({
      logger: this.log,
      rewind: o.rewind,
      restartAt: (offset) => this.queue.restartAt(offset),
      onRewindFailed: (err) => {
        this.lost = new AimassError("KAFKA_TRANSIENT", `rewind failed: ${errorMessage(err)}`);
        this.stopController.abort();
      },
      onSettled: () => this.wake?.(),
    });
    this.done = this.loop().catch((err: unknown) => {
      this.log.error("partition worker failed", { error: err });
    });
  }

  get state(): PartitionState {
    return this.stateValue;
  }

  get queuedRecords(): number {
    return this.queue.records;
  }

  /** Milliseconds the worker has had work without committing any: 0 when idle. */
  stalledMs(now = performance.now()): number {
    return this.queue.length === 0 ? 0 : Math.max(0, now - this.progressAt);
  }

  /**
   * Accepts a fetched batch (`fetchedOffset`: the offset it was fetched from), dropping records
   * already accepted (kafkajs re-delivers after a rebalance).
   */
  enqueue(records: SourceRecord[], fetchedOffset: bigint): void {
    if (this.stateValue !== "starting" && this.stateValue !== "running") return;
    if (!this.guard.admit(fetchedOffset)) return;
    const wasEmpty = this.queue.length === 0;
    if (!this.queue.push(records, this.stateValue === "running")) return;
    if (wasEmpty) this.progressAt = performance.now();
    this.wake?.();
  }

  /**
   * Stops the worker. "drain" commits everything queued first (shutdown); "discard" lets a
   * transaction already under way finish and drops the rest (revocation: the next owner
   * re-reads those records from the committed offset), and never fences again.
   */
  async stop(mode: "drain" | "discard"): Promise<void> {
    if (this.stateValue === "stopped" || this.stateValue === "fenced") return this.done;
    this.stateValue = "stopping";
    if (mode === "discard") this.stopController.abort();
    this.wake?.();
    return this.done;
  }

  /**
   * Abandons work now. Closing the producer sends no EndTxn: an open transaction stays open
   * until the next owner's fence aborts it, or the transaction timeout does.
   */
  async kill(): Promise<void> {
    this.stateValue = "stopping";
    this.stopController.abort();
    this.wake?.();
    // Bounded: a producer's disconnect waits for its pending requests (the request timeout).
    await exceedsGrace(Promise.all([this.sink?.close(), this.done]), TUNING.predictor.killWaitMs);
  }

  private async loop(): Promise<void> {
    try {
      if ((await untilAborted(this.o.startAfter, this.stopController.signal)) === ABORTED) return;
      if (!(await this.newEpoch())) return;
      if (this.stateValue === "starting") this.stateValue = "running";
      this.queue.prepareAll();
      let backoff = this.o.retryInitialMs;
      for (let attempt = 1; ;) {
        if (this.stopController.signal.aborted) {
          if (this.lost) throw this.lost;
          return;
        }
        if (this.queue.length === 0 || this.guard.rewinding) {
          if (this.stateValue === "stopping" && !this.guard.rewinding) return;
          await new Promise<void>((r) => (this.wake = r));
          this.wake = undefined;
          continue;
        }
        const outcome = await this.commitHead();
        if (!outcome.ok && this.stopController.signal.aborted) continue; // stopped: not a failure
        if (outcome.ok) {
          this.isolate = false;
          this.queue.shift(outcome.chunks);
          this.progressAt = performance.now();
          backoff = this.o.retryInitialMs;
          attempt = 1;
          continue;
        }
        if (isAimassError(outcome.error, "KAFKA_FENCED")) throw outcome.error;
        this.o.onAbort(outcome.error);
        if (outcome.diverted) {
          this.progressAt = performance.now();
          [backoff, attempt] = [this.o.retryInitialMs, 1];
          if (!(await this.newEpoch())) return;
          continue;
        }
        this.onFailure(outcome, attempt++, backoff);
        await sleep(backoff, this.stopController.signal);
        backoff = Math.min(backoff * 2, this.o.retryMaxMs);
        if (outcome.stage === "commit" && !(await this.newEpoch())) return;
      }
    } catch (err) {
      if (isAimassError(err, "KAFKA_FENCED")) {
        this.stateValue = "fenced";
        this.log.warn("fenced: another producer owns this partition's transactional id now", {
          error: errorMessage(err),
        });
      } else {
        this.log.error("partition worker failed", { error: err });
      }
      this.o.onLost(err);
    } finally {
      this.queue.clear();
      await this.sink?.close();
      if (this.stateValue !== "fenced") this.stateValue = "stopped";
    }
  }

  /**
   * Replaces the sink, fences, and reads the committed offset, retrying with backoff until
   * that works. False when the worker was told to stop first: a revoked worker must never
   * fence again, or it would fence the partition's new owner.
   */
  private async newEpoch(): Promise<boolean> {
    let backoff = this.o.retryInitialMs;
    for (;;) {
      if (this.stopController.signal.aborted) return false;
      await this.sink?.close();
      // Checked again: the close may have waited out a request timeout, and a revoked worker
      // that fenced now would fence the partition's new owner.
      if (this.stopController.signal.aborted) return false;
      const sink = this.o.newSink();
      this.sink = sink;
      try {
        await sink.fence();
        if (this.stopController.signal.aborted) return false;
        const floor = await this.o.startOffset();
        this.guard.setFloor(floor);
        const skipped = this.queue.applyFloor(floor, this.stateValue !== "starting");
        const floorText = String(floor);
        if (skipped > 0) this.log.info("skipping records already committed", { skipped, floor: floorText });
        return true;
      } catch (err) {
        if (isAimassError(err, "KAFKA_FENCED")) throw err;
        this.log.warn("could not start a transactional producer; retrying", {
          kafkaError: kafkaErrorType(err),
          error: errorMessage(err),
          backoffMs: backoff,
        });
        await sleep(backoff, this.stopController.signal);
        backoff = Math.min(backoff * 2, this.o.retryMaxMs);
      }
    }
  }

  /**
   * One attempt at committing the head chunk, together with the chunks behind it that are
   * already prepared (up to maxRecordsPerTransaction records): under load, transactions grow
   * with the backlog instead of the backlog growing behind one small transaction per fetch.
   */
  private async commitHead(): Promise<Attempt> {
    const started = performance.now();
    let group;
    try {
      const maxRecords = this.isolate ? 0 : this.o.maxRecordsPerTransaction;
      group = await untilAborted(this.queue.group(maxRecords), this.stopController.signal);
    } catch (error) {
      return { ok: false, stage: "prepare", error };
    }
    // Stopped (discarded) while the chunk was prepared: no new transaction starts.
    if (group === ABORTED)
      return { ok: false, stage: "prepare", error: new AimassError("SHUTDOWN_TIMEOUT", "stopped") };
    const { prepared, nextOffset } = group;
    const topicMessages = transactionMessages(prepared, this.o);
    try {
      const sink = this.sink;
      if (!sink) throw new AimassError("KAFKA_TRANSIENT", "no transactional producer");
      const { groupId, topic, partition } = this.o;
      const offset = { groupId, topic, partition, offset: nextOffset };
      await sink.commit({ topicMessages, offset, isolate: this.isolate });
    } catch (error) {
      const refusal = handleRefusal(error, group, this.o, this.log);
      if (refusal !== "none") this.isolate = true;
      return { ok: false, stage: "commit", error, diverted: refusal === "diverted" };
    }
    this.o.onCommitted(committedInfo(group, performance.now() - started));
    return { ok: true, chunks: prepared.length };
  }

  private onFailure(outcome: Extract<Attempt, { ok: false }>, attempt: number, backoffMs: number): void {
    if (outcome.stage === "prepare") {
      // Redone from scratch (e.g. the feature store was down), and every chunk behind it too.
      this.queue.prepareAll();
    } else {
      // A shadow version never holds up the primary output: retry without shadow records.
      const dropped = this.queue.dropShadow();
      if (dropped > 0) this.log.warn("dropped shadow predictions from a failed transaction", { dropped });
    }
    // After a few attempts say so loudly, with the Kafka error type: some causes need an operator.
    const log = attempt >= 5 ? this.log.error.bind(this.log) : this.log.warn.bind(this.log);
    log(outcome.stage === "prepare" ? "preparing a chunk failed; retrying" : "transaction failed; retrying", {
      kafkaError: kafkaErrorType(outcome.error),
      attempt,
      backoffMs,
      error: errorMessage(outcome.error),
      firstOffset: this.queue.firstOffset,
    });
  }
}
