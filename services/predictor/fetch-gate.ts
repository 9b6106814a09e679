// Backpressure per input partition. Each assigned partition may hold a share of
// `maxInFlightRecords` uncommitted records (at least one transaction's worth); above its
// share that partition alone is paused, and resumed below half of it. So one stuck
// partition (a failing transaction, a slow model) fills its own share and stops fetching,
// while the others keep flowing, and the worker's total stays bounded.
import { errorMessage } from "../common/errors.js";
import type { Logger } from "../common/logger.js";

/** The part of a kafkajs consumer the gate drives. */
export interface PausableConsumer {
  pause(topics: Array<{ topic: string; partitions: number[] }>): void;
  resume(topics: Array<{ topic: string; partitions: number[] }>): void;
}

export interface FetchGateOptions {
  consumer: PausableConsumer;
  topic: string;
  maxInFlightRecords: number;
  /** A partition's share is never below this (one full transaction). */
  minPerPartition: number;
  logger: Logger;
  /** The set of paused partitions changed. */
  onChange?: (paused: number) => void;
}

export class FetchGate {
  private readonly paused = new Set<number>();
  private readonly held = new Set<number>();
  private assigned: readonly number[] = [];
  private closed = false;

  constructor(private readonly o: FetchGateOptions) {}

  get pausedCount(): number {
    return this.paused.size;
  }

  /** Records a partition may hold before it is paused. */
  get share(): number {
    const n = Math.max(1, this.assigned.length);
    return Math.max(this.o.minPerPartition, Math.ceil(this.o.maxInFlightRecords / n));
  }

  /**
   * A new assignment: nothing is queued for it yet, so every partition fetches (kafkajs
   * keeps pauses across a rejoin, so they are lifted explicitly).
   */
  assign(partitions: readonly number[]): void {
    this.assigned = partitions;
    this.paused.clear();
    this.held.clear();
    // Every assigned partition, not only those paused here now: kafkajs keeps a partition's
    // pause through assignments that do not include it, and would never fetch it again.
    if (!this.closed && partitions.length > 0) this.set([...partitions], true);
    this.o.onChange?.(this.paused.size);
  }

  /** A partition's queued record count changed. */
  update(partition: number, queued: number): void {
    if (this.closed || this.held.has(partition) || !this.assigned.includes(partition)) return;
    const share = this.share;
    if (!this.paused.has(partition) && queued >= share) {
      this.paused.add(partition);
      this.set([partition], false);
      this.o.logger.debug("backpressure: paused a partition", { partition, queued, share });
    } else if (this.paused.has(partition) && queued <= share / 2) {
      this.paused.delete(partition);
      this.set([partition], true);
      this.o.logger.debug("backpressure: resumed a partition", { partition, queued });
    } else {
      return;
    }
    this.o.onChange?.(this.paused.size);
  }

  /** Stops fetching a partition until `unhold` (no worker can take its records now). */
  hold(partition: number): void {
    if (this.held.has(partition)) return;
    this.held.add(partition);
    if (!this.paused.has(partition)) this.set([partition], false);
    this.paused.add(partition);
    this.o.onChange?.(this.paused.size);
  }

  unhold(partition: number): void {
    if (!this.held.delete(partition) || this.closed) return;
    this.paused.delete(partition);
    this.set([partition], true);
    this.o.onChange?.(this.paused.size);
  }

  /** Draining: no partition fetches again. */
  close(): void {
    this.closed = true;
    if (this.assigned.length > 0) this.set([...this.assigned], false);
  }

  /** pause/resume throw while kafkajs restarts its consumer group; backpressure must not. */
  private set(partitions: number[], on: boolean): void {
    const topics = [{ topic: this.o.topic, partitions }];
    try {
      if (on) this.o.consumer.resume(topics);
      else this.o.consumer.pause(topics);
    } catch (err) {
      this.o.logger.warn(`could not ${on ? "resume" : "pause"} fetching`, {
        partitions,
        error: errorMessage(err),
      });
    }
  }
}
