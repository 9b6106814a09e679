// The Redis connection of the feature store, tuned for a latency-critical reader: a
// per-command timeout, no offline queue (a command issued while disconnected fails at once
// instead of waiting), bounded reconnect backoff. Every connection-level failure surfaces as
// AimassError FEATURE_STORE_UNAVAILABLE (retryable); data errors stay with their command.
//
// Commands waiting for a reply are bounded. A command that hits commandTimeout rejects its
// caller but stays queued in the client until a reply or a disconnect, so a server that keeps
// the TCP connection open and answers nothing (SIGSTOP, a hung host) would make the queue grow
// at the lookup rate. Two bounds: a socket that has read nothing for socketTimeoutMs while
// commands are outstanding is dropped (every queued command rejected at once) and reconnected
// with the backoff; and past maxPendingCommands a new pipeline is refused before it is queued.
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

/** The connection's timeouts, derived from the configured per-command timeout. */
export function redisTimeouts(config: FeaturesConfig): { connectTimeoutMs: number; socketTimeoutMs: number } {
  const t = TUNING.features;
  return {
    connectTimeoutMs: Math.max(t.minConnectTimeoutMs, config.commandTimeoutMs * t.connectTimeoutFactor),
    socketTimeoutMs: Math.max(t.minSocketTimeoutMs, config.commandTimeoutMs * t.socketTimeoutFactor),
  };
}

/** A client that starts connecting at once; logs connection transitions, not every error. */
export function connectRedis(url: string, config: FeaturesConfig, logger: Logger): Redis {
  const t = TUNING.features;
  const timeouts = redisTimeouts(config);
  const redis = new Redis(url, {
    commandTimeout: config.commandTimeoutMs,
    maxRetriesPerRequest: t.maxRetriesPerRequest,
    enableOfflineQueue: false,
    connectTimeout: timeouts.connectTimeoutMs,
    socketTimeout: timeouts.socketTimeoutMs,
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
 * Commands written and waiting for a reply. The offline queue is not counted: it is disabled,
 * so it stays empty (and ioredis keeps it private).
 */
export function pendingCommands(redis: Redis): number {
  return redis.commandQueue.length;
}

/** FEATURE_STORE_UNAVAILABLE, before anything is queued, while maxPendingCommands wait for replies. */
export function admit(redis: Redis, what: "lookup" | "write"): void {
  const pending = pendingCommands(redis);
  const limit = TUNING.features.maxPendingCommands;
  if (pending < limit) return;
  throw new AimassError(
    "FEATURE_STORE_UNAVAILABLE",
    `feature store ${what} refused: ${pending} commands already wait for Redis (limit ${limit})`,
    { details: { status: redis.status, pending, limit } },
  );
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
