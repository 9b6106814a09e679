// What a predictor does when one of its partitions is fenced while still assigned to it.
// Either this process was a zombie (paused past its session timeout) whose partition moved,
// or it fenced itself out through a race with its own previous epoch. After a session timeout
// a zombie has heard of the rebalance (its next join resets this), so a partition still ours
// then is re-read from its committed offset by a new worker. Fenced again and again with no
// rebalance in between means another process uses the same transactional ids: that is a
// configuration fault, and the predictor fails loudly instead of fencing it back forever.
import { AimassError, errorMessage } from "../common/errors.js";
import type { Logger } from "../common/logger.js";

/** Fences of one partition between two rebalances at which the predictor fails. */
export const MAX_FENCES_WITHOUT_REBALANCE = 3;

export interface FenceRecoveryOptions {
  sessionTimeoutMs: number;
  transactionalIdPrefix: string;
  logger: Logger;
  /** Running, assigned here, and without a current worker. */
  stillOurs: (partition: number) => boolean;
  /** Points the consumer at the committed offset, so nothing dropped while fenced is skipped. */
  rewind: (partition: number) => Promise<void>;
  /** Starts a new worker for the partition and lets it fetch again. */
  respawn: (partition: number) => void;
  fail: (err: AimassError) => void;
}

export class FenceRecovery {
  private readonly fences = new Map<number, number>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly o: FenceRecoveryOptions) {}

  /** A partition's worker was fenced, or failed, while the partition is still assigned here. */
  onLost(partition: number): void {
    const fences = (this.fences.get(partition) ?? 0) + 1;
    this.fences.set(partition, fences);
    if (fences >= MAX_FENCES_WITHOUT_REBALANCE) {
      this.o.fail(
        new AimassError(
          "KAFKA_FENCED",
          `partition ${partition} was fenced ${fences} times without a rebalance: another process uses ` +
            `transactional ids "${this.o.transactionalIdPrefix}.*" (check transactionalIdPrefix)`,
        ),
      );
      return;
    }
    this.later(partition);
  }

  /** A rebalance: counts start again and pending retakes are moot (fresh workers start). */
  reset(): void {
    this.fences.clear();
    this.stop();
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private later(partition: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.retake(partition);
    }, this.o.sessionTimeoutMs);
    this.timers.add(timer);
  }

  private async retake(partition: number): Promise<void> {
    if (!this.o.stillOurs(partition)) return;
    try {
      await this.o.rewind(partition);
    } catch (err) {
      // Without the rewind a new worker could skip what was dropped while fenced: try again later.
      this.o.logger.warn("could not re-read a fenced partition; trying again", {
        partition,
        error: errorMessage(err),
      });
      this.later(partition);
      return;
    }
    if (!this.o.stillOurs(partition)) return;
    this.o.logger.info("taking a fenced partition back", { partition });
    this.o.respawn(partition);
  }
}
