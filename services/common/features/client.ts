// The Redis connection of the feature store, tuned for a latency-critical reader: a
// per-command timeout, no offline queue (a command issued while disconnected fails at once
// instead of waiting), bounded reconnect backoff. Every connection-level failure surfaces as
// AimassError FEATURE_STORE_UNAVAILABLE (retryable); data errors stay with their command.
import { Redis, type ChainableCommander } from "ioredis";
import { AimassError, errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import type { FeaturesConfig } from "../config/schema.js";
import { TUNING } from "../tuning.js";

/** Server replies that mean "not now" rather than "this data is wrong". */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|OOM|NOSCRIPT|NOREPLICAS)\b/;

/** A reply error about the data (e.g. WRONGTYPE: the key is not a hash), not about Redis being down. */
function isDataError(err: unknown): boolean {
  return err instanceof Error && err.name === "ReplyError" && !TRANSIENT_REPLY.test(err.message);
}

/** A client that starts connecting at once; logs connection transitions, not every error. */
export function connectRedis(url: string, config: FeaturesConfig, logger: Logger): Redis {
  const t = TUNING.features;
  const redis = new Redis(url, {
    commandTimeout: config.commandTimeoutMs,
    maxRetriesPerRequest: t.maxRetriesPerRequest,
    enableOfflineQueue: false,
    connectTimeout: Math.max(t.minConnectTimeoutMs, config.commandTimeoutMs * t.connectTimeoutFactor),
    retryStrategy: (attempt) => Math.min(attempt * t.reconnectStepMs, t.reconnectMaxMs),
    // A command that was written before a disconnect is not re-sent after the reconnect:
    // its caller has already seen a timeout and retries the whole batch.
    autoResendUnfulfilledCommands: false,
    lazyConnect: false,
  });
  let wasReady = false;
  // Without a listener ioredis prints every connection error.
  redis.on("error", (err: unknown) => {
    if (wasReady) logger.warn("redis connection error", { error: errorMessage(err) });
    wasReady = false;
  });
  redis.on("ready", () => {
    wasReady = true;
    logger.info("redis ready");
  });
  return redis;
}

/** Resolves once `redis` is ready; rejects with FEATURE_STORE_UNAVAILABLE after `timeoutMs`. */
export async function waitReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      redis.off("ready", onReady);
      reject(
        new AimassError(
          "FEATURE_STORE_UNAVAILABLE",
          `redis not ready within ${timeoutMs} ms (status ${redis.status})`,
        ),
      );
    }, timeoutMs);
    redis.once("ready", onReady);
  });
}

/** QUIT (waiting for replies in flight) within the quit timeout, else drop the socket. */
export async function quit(redis: Redis): Promise<void> {
  if (redis.status === "end") return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.quit(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("quit timed out")), TUNING.features.quitTimeoutMs);
      }),
    ]);
  } catch {
    redis.disconnect();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a pipeline: one round trip. Any connection-level failure (refused, closed, not
 * writable, timed out, a transient server state like LOADING) rejects the whole call with
 * FEATURE_STORE_UNAVAILABLE; data errors stay in their slot for the caller.
 */
export async function execPipeline(
  redis: Redis,
  pipeline: ChainableCommander,
  what: "lookup" | "write",
): Promise<Array<[Error | null, unknown]>> {
  const unavailable = (err: unknown) =>
    new AimassError("FEATURE_STORE_UNAVAILABLE", `feature store ${what} failed: ${errorMessage(err)}`, {
      cause: err,
      details: { status: redis.status },
    });
  let replies: Array<[Error | null, unknown]> | null;
  try {
    replies = await pipeline.exec();
  } catch (err) {
    throw unavailable(err);
  }
  if (!replies) throw unavailable(new Error("pipeline returned no replies"));
  const down = replies.find(([err]) => err && !isDataError(err));
  if (down) throw unavailable(down[0]);
  return replies;
}
