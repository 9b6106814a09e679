// Consumer lag per assigned input partition: the partition's end offset minus the group's
// committed offset. Updated at every commit from the last fetch's high watermark, and
// re-read from the broker on an interval: a stalled or paused worker commits nothing, and
// its lag must still be seen growing, or the lag alert could never fire on a stall.
import type { Admin } from "kafkajs";
import { errorMessage } from "../common/errors.js";
import type { Logger } from "../common/logger.js";

export interface LagMonitorOptions {
  admin: Pick<Admin, "fetchTopicOffsets" | "fetchOffsets">;
  groupId: string;
  topic: string;
  intervalMs: number;
  logger: Logger;
  setLag: (partition: number, lag: number) => void;
  removeLag: (partition: number) => void;
}

export class LagMonitor {
  private readonly high = new Map<number, bigint>();
  private assigned: readonly number[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: LagMonitorOptions) {}

  start(): void {
    this.timer ??= setInterval(() => void this.refresh(), this.o.intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A new assignment: series of partitions no longer ours are removed. */
  assign(partitions: readonly number[]): void {
    for (const p of this.high.keys()) {
      if (partitions.includes(p)) continue;
      this.high.delete(p);
      this.o.removeLag(p);
    }
    this.assigned = partitions;
  }

  onFetched(partition: number, highWatermark: string): void {
    this.high.set(partition, BigInt(highWatermark));
  }

  onCommitted(partition: number, nextOffset: bigint): void {
    const high = this.high.get(partition);
    if (high !== undefined) this.o.setLag(partition, positive(high - nextOffset));
  }

  /** Reads end offsets and committed offsets from the broker; failures only log at debug. */
  async refresh(): Promise<void> {
    if (this.assigned.length === 0) return;
    const { admin, topic, groupId } = this.o;
    try {
      const [ends, [committed]] = await Promise.all([
        admin.fetchTopicOffsets(topic),
        admin.fetchOffsets({ groupId, topics: [topic] }),
      ]);
      for (const partition of this.assigned) {
        const high = ends.find((e) => e.partition === partition)?.high;
        if (high === undefined) continue;
        const done = committed?.partitions.find((p) => p.partition === partition)?.offset;
        const from = done === undefined || done === "-1" ? 0n : BigInt(done);
        this.high.set(partition, BigInt(high));
        this.o.setLag(partition, positive(BigInt(high) - from));
      }
    } catch (err) {
      this.o.logger.debug("lag refresh failed", { error: errorMessage(err) });
    }
  }
}

const positive = (n: bigint): number => Number(n > 0n ? n : 0n);
