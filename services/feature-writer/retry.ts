// Retrying one step of a chunk (decode, write, DLQ send) until it lands: bounded exponential
// backoff, slept in heartbeat-sized slices so a long outage does not cost the partition, and
// given up as soon as the writer stops or the partition moves (the chunk's offsets were not
// committed, so its next owner redoes it).
import { errorMessage, isAimassError } from "../common/errors.js";
import { sleep } from "../common/lifecycle.js";
import type { Logger } from "../common/logger.js";
import { TUNING } from "../common/tuning.js";

export const ABANDONED = Symbol("abandoned");

/** The batch a chunk belongs to, as a retry loop sees it. */
export interface ChunkLease {
  /** True once retrying is pointless: the writer gives up (stopping) or the partition moved. */
  lost(): boolean;
  /** Keeps the group membership (and so the partition) while waiting. */
  heartbeat(): Promise<void>;
  /** Aborts a backoff sleep early (the writer gives up). */
  signal: AbortSignal;
}

export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  heartbeatIntervalMs: number;
}

/** AimassError.canRetry: the one place that decides retryable vs the record's fault. */
const canRetry = (err: unknown) => isAimassError(err) && err.canRetry;

/**
 * Runs `fn` until it succeeds. Only errors `retryable` accepts are retried; others propagate.
 * Resolves ABANDONED once the lease is lost.
 */
export async function retrying<T>(
  what: string,
  lease: ChunkLease,
  policy: RetryPolicy,
  log: Logger,
  fn: () => Promise<T>,
  retryable: (err: unknown) => boolean = canRetry,
): Promise<T | typeof ABANDONED> {
  let backoff = policy.initialMs;
  for (let attempt = 1; ; attempt++) {
    try {
      const value = await fn();
      if (attempt > 1) log.info(`${what} succeeded after retries`, { attempts: attempt });
      return value;
    } catch (err) {
      if (!retryable(err)) throw err;
      const give = lease.lost();
      const msg = give
        ? `${what} failed; giving up on this chunk (stopping, or the partition moved)`
        : `${what} failed; retrying`;
      const fields = { attempt, backoffMs: backoff, error: errorMessage(err) };
      if (attempt === 1 || attempt % TUNING.features.retryWarnEveryAttempts === 0 || give)
        log.warn(msg, fields);
      else log.debug(msg, fields);
      if (give) return ABANDONED;
    }
    for (let left = backoff; left > 0; left -= policy.heartbeatIntervalMs) {
      await sleep(Math.min(left, policy.heartbeatIntervalMs), lease.signal);
      if (lease.lost()) return ABANDONED;
      await lease.heartbeat();
    }
    backoff = Math.min(backoff * 2, policy.maxMs);
  }
}
