// A chunk step is retried while its error is retryable and the lease holds, heartbeating
// while it backs off; it is given up (ABANDONED) once the lease is lost, and an error that is
// the record's fault propagates at once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AimassError } from "../../../services/common/errors.js";
import { silentLogger } from "../../../services/common/logger.js";
import { ABANDONED, retrying, type ChunkLease } from "../../../services/feature-writer/retry.js";

const policy = { initialMs: 1, maxMs: 4, heartbeatIntervalMs: 1 };
const down = () => new AimassError("FEATURE_STORE_UNAVAILABLE", "redis down");

function lease(): ChunkLease & { heartbeats: number; lose(): void } {
  const controller = new AbortController();
  return {
    heartbeats: 0,
    lost: () => controller.signal.aborted,
    async heartbeat() {
      this.heartbeats += 1;
    },
    signal: controller.signal,
    lose: () => controller.abort(),
  };
}

test("a retryable failure is retried until it succeeds, heartbeating while backing off", async () => {
  const l = lease();
  let attempts = 0;
  const value = await retrying("write", l, policy, silentLogger, async () => {
    attempts += 1;
    if (attempts < 4) throw down();
    return "landed";
  });
  assert.equal(value, "landed");
  assert.equal(attempts, 4);
  assert.ok(l.heartbeats >= 3, `heartbeats ${l.heartbeats}`);
});

test("an error that is not retryable propagates at the first attempt", async () => {
  let attempts = 0;
  const invalid = new AimassError("FIELD_INVALID", "bad record");
  await assert.rejects(
    retrying("decode", lease(), policy, silentLogger, async () => {
      attempts += 1;
      throw invalid;
    }),
    (err: unknown) => err === invalid,
  );
  assert.equal(attempts, 1);
});

test("a custom retryable predicate retries any error it accepts", async () => {
  let attempts = 0;
  const value = await retrying(
    "dlq send",
    lease(),
    policy,
    silentLogger,
    async () => {
      attempts += 1;
      if (attempts === 1) throw new Error("broker busy");
      return attempts;
    },
    () => true,
  );
  assert.equal(value, 2);
});

test("once the lease is lost the step is abandoned, without another attempt", async () => {
  const l = lease();
  let attempts = 0;
  const result = await retrying("write", l, policy, silentLogger, async () => {
    attempts += 1;
    if (attempts === 3) l.lose();
    throw down();
  });
  assert.equal(result, ABANDONED);
  assert.equal(attempts, 3);
});

test("losing the lease during a long backoff abandons it at once", { timeout: 5_000 }, async () => {
  const l = lease();
  const hour = { initialMs: 3_600_000, maxMs: 3_600_000, heartbeatIntervalMs: 3_600_000 };
  let attempts = 0;
  const result = await retrying("write", l, hour, silentLogger, async () => {
    attempts += 1;
    // Lost after this attempt's failure was handled, while the backoff sleeps.
    setImmediate(() => l.lose());
    throw down();
  });
  assert.equal(result, ABANDONED);
  assert.equal(attempts, 1);
});
