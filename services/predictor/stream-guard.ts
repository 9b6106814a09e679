// Whether the records a partition worker is handed start at or below its committed offset.
// kafkajs resolves positions from the committed offsets at every join, but a fetch sent
// before a rejoin and answered after it hands the new worker a batch from the old, later
// position, and the records in between would never be seen. The guard spots a first batch
// fetched from above the committed offset and has the consumer read again from there.
import { errorMessage } from "../common/errors.js";
import type { Logger } from "../common/logger.js";

export interface StreamGuardOptions {
  logger: Logger;
  /** Points the consumer at `offset`. */
  rewind: (offset: bigint) => Promise<void>;
  /** The worker must drop what it queued and expect the stream again from `offset`. */
  restartAt: (offset: bigint) => void;
  /** The rewind failed: the worker must give its partition up. */
  onRewindFailed: (err: unknown) => void;
  /** The rewind settled (the worker's loop may go on). */
  onSettled: () => void;
}

export class StreamGuard {
  private floor: bigint | undefined;
  /** The fetch offset of the first batch, while the floor is not known yet. */
  private from: bigint | undefined;
  private verified = false;
  private rewindingValue = false;

  constructor(private readonly o: StreamGuardOptions) {}

  /** A rewind is under way: batches fetched before it are dropped (kafkajs delivers them again). */
  get rewinding(): boolean {
    return this.rewindingValue;
  }

  /** Whether a batch fetched from `fetchedOffset` may be queued. */
  admit(fetchedOffset: bigint): boolean {
    if (this.rewindingValue) return false;
    if (this.verified) return true;
    if (this.floor === undefined) {
      this.from ??= fetchedOffset;
      return true;
    }
    return this.check(fetchedOffset);
  }

  /** The committed offset, read by the worker's first epoch; checks what was queued before it. */
  setFloor(floor: bigint): void {
    if (this.floor !== undefined) return;
    this.floor = floor;
    if (this.from !== undefined) this.check(this.from);
  }

  private check(from: bigint): boolean {
    const floor = this.floor;
    if (floor === undefined || from <= floor) {
      this.verified = floor !== undefined;
      return true;
    }
    this.o.logger.warn(
      "the consumer skipped records of this partition; re-reading from the committed offset",
      {
        fetchedFrom: from.toString(),
        committed: floor.toString(),
      },
    );
    this.o.restartAt(floor);
    this.from = undefined;
    this.rewindingValue = true;
    this.o
      .rewind(floor)
      .catch((err: unknown) => {
        this.o.logger.error("could not re-read the partition; giving it up", { error: errorMessage(err) });
        this.o.onRewindFailed(err);
      })
      .finally(() => {
        this.rewindingValue = false;
        this.o.onSettled();
      });
    return false;
  }
}
