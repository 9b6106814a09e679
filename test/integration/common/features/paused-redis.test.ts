// The feature store against a paused Redis (SIGSTOP: the TCP connection stays open and nothing
// answers), the failure that would otherwise grow the client's command queue, and the
// predictor's memory, at the lookup rate: commands that hit their timeout stay queued until a
// reply or a disconnect. The bounds (services/common/features/client.ts): a socket silent for
// socketTimeoutMs with commands outstanding is dropped, and past maxPendingCommands a lookup is
// refused before anything is queued. Every lookup settles within its command timeout, and
// lookups work again once Redis resumes.
//
// Each test pauses a redis-server of its own, never the shared one.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { parsePipelineConfig } from "../../../../services/common/config/load.js";
import type { FeaturesConfig } from "../../../../services/common/config/schema.js";
import { isAimassError } from "../../../../services/common/errors.js";
import { redisTimeouts } from "../../../../services/common/features/client.js";
import { FeatureStore, type LookupRequest } from "../../../../services/common/features/store.js";
import { TUNING } from "../../../../services/common/tuning.js";
import { deferrer, testLogger } from "../../../helpers/stack.js";
import { testPipelineRaw } from "../../../helpers/pipeline.js";
import { OwnRedis } from "../../../helpers/redis-server.js";

/** Lookups per second while Redis is paused, for LOAD_MS. */
const RATE = 200;
const LOAD_MS = 5_000;
/** Distinct entities per lookup: one HGETALL each, so one lookup queues this many commands. */
const KEYS = 20;
/** Lateness allowed to timers on a busy machine, on top of the bound under test. */
const SLACK_MS = 1_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function featuresConfig(commandTimeoutMs: number): FeaturesConfig {
  const raw = testPipelineRaw({
    input: "in",
    output: "out",
    dlq: "dlq",
    group: "g",
    patch: (r) => {
      r.features = {
        keyPrefix: "paused",
        commandTimeoutMs,
        views: [{ name: "user", key: "userId", features: [{ name: "clicks_7d", default: -1 }] }],
      };
    },
  });
  const features = parsePipelineConfig(raw, "/tmp/test.yaml", {}).features;
  assert.ok(features);
  return features;
}

/** The redis-server's own process id, as it reports it. */
async function serverPid(url: string): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true });
  try {
    await redis.connect();
    const m = /^process_id:(\d+)/m.exec(await redis.info("server"));
    assert.ok(m?.[1], "INFO server names the process id");
    return Number(m[1]);
  } finally {
    redis.disconnect();
  }
}

/** A store on a redis-server of the test's own, holding u-1, and a way to pause and resume it. */
async function storeOnOwnRedis(t: TestContext, commandTimeoutMs: number) {
  const own = await OwnRedis.start(t);
  const defer = deferrer(t);
  const config = featuresConfig(commandTimeoutMs);
  const store = FeatureStore.connect(own.url, config, testLogger);
  defer(() => store.close());
  await store.waitReady(5_000);
  assert.deepEqual(await store.write([{ view: "user", key: "u-1", ts: 10, values: { clicks_7d: 7 } }]), [1]);
  const pid = await serverPid(own.url);
  let paused = false;
  const resume = () => {
    if (paused) process.kill(pid, "SIGCONT");
    paused = false;
  };
  // Runs before the store closes and the server is killed (cleanup is last-in first-out).
  defer(resume);
  const pause = () => {
    process.kill(pid, "SIGSTOP");
    paused = true;
  };
  return { store, config, pause, resume };
}

/** Resolves once a lookup of u-1 succeeds; the ms it took. */
async function untilLookupsWork(store: FeatureStore, timeoutMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    try {
      const [r] = await store.lookup([{ user: "u-1" }]);
      assert.equal(r?.user?.values.clicks_7d, 7);
      return performance.now() - started;
    } catch (err) {
      if (!isAimassError(err, "FEATURE_STORE_UNAVAILABLE")) throw err;
      if (performance.now() - started > timeoutMs) {
        throw new Error(`lookups still failing ${timeoutMs} ms after Redis resumed`, { cause: err });
      }
      await sleep(50);
    }
  }
}

test(
  "a paused Redis: pending commands stay bounded, every lookup settles within its timeout, lookups work again after SIGCONT",
  { timeout: 60_000 },
  async (t) => {
    const { store, config, pause, resume } = await storeOnOwnRedis(t, 100);
    const { socketTimeoutMs } = redisTimeouts(config);
    const requests = (n: number): LookupRequest[] =>
      Array.from({ length: KEYS }, (_, i) => ({ user: `u-${n}-${i}` }));

    pause();
    const pausedAt = performance.now();
    const lookups: Array<Promise<{ ms: number; error: unknown }>> = [];
    let maxPending = 0;
    let droppedAtMs: number | undefined;
    // A steady rate: each tick issues the lookups due by now.
    for (;;) {
      const elapsed = performance.now() - pausedAt;
      if (elapsed >= LOAD_MS) break;
      while (lookups.length < Math.floor((elapsed * RATE) / 1000)) {
        const started = performance.now();
        const settled = (error: unknown) => ({ ms: performance.now() - started, error });
        lookups.push(store.lookup(requests(lookups.length)).then(() => settled(undefined), settled));
        maxPending = Math.max(maxPending, store.pendingCommands);
      }
      if (droppedAtMs === undefined && !store.available) droppedAtMs = elapsed;
      await sleep(5);
    }
    const pendingAfterLoad = store.pendingCommands;
    const outcomes = await Promise.all(lookups);
    const slowest = Math.max(...outcomes.map((o) => o.ms));
    t.diagnostic(
      `${lookups.length} lookups of ${KEYS} keys in ${LOAD_MS} ms against a paused Redis: at most ` +
        `${maxPending} commands pending (socket timeout ${socketTimeoutMs} ms, connection dropped after ` +
        `${droppedAtMs?.toFixed(0)} ms), ${pendingAfterLoad} pending at the end, slowest lookup ${slowest.toFixed(0)} ms`,
    );

    assert.ok(lookups.length >= (0.9 * RATE * LOAD_MS) / 1000, `${lookups.length} lookups issued`);
    // The connection is dropped once it has been silent for the socket timeout...
    assert.ok(
      droppedAtMs !== undefined && droppedAtMs <= socketTimeoutMs + SLACK_MS,
      `the store still reported Redis available after ${droppedAtMs ?? LOAD_MS} ms`,
    );
    // ...so at most about a socket timeout's worth of lookups was ever queued (twice that,
    // for ticks that ran late), never the whole pause's worth.
    const bound = Math.min(
      TUNING.features.maxPendingCommands + KEYS,
      (2 * KEYS * RATE * socketTimeoutMs) / 1000,
    );
    assert.ok(maxPending <= bound, `${maxPending} commands pending at once (bound ${bound})`);
    // While disconnected, at most the reconnect's handshake commands wait.
    assert.ok(pendingAfterLoad < KEYS, `${pendingAfterLoad} commands pending after the load`);
    for (const o of outcomes) {
      assert.ok(isAimassError(o.error, "FEATURE_STORE_UNAVAILABLE"), String(o.error));
      assert.ok(o.ms <= config.commandTimeoutMs + SLACK_MS, `a lookup settled after ${o.ms} ms`);
    }

    resume();
    const recoveredMs = await untilLookupsWork(
      store,
      TUNING.features.reconnectMaxMs + socketTimeoutMs + SLACK_MS,
    );
    t.diagnostic(`lookups work again ${recoveredMs.toFixed(0)} ms after SIGCONT`);
  },
);

test(
  "past maxPendingCommands a lookup or write is refused at once, and admitted again once Redis answers",
  { timeout: 60_000 },
  async (t) => {
    // A long command timeout (and so socket timeout): nothing is dropped while the test looks.
    const { store, config, pause, resume } = await storeOnOwnRedis(t, 2_000);
    const limit = TUNING.features.maxPendingCommands;
    assert.ok(redisTimeouts(config).socketTimeoutMs >= 10_000);
    pause();
    const flood = store.lookup(Array.from({ length: limit }, (_, i) => ({ user: `u-${i}` })));
    assert.ok(store.pendingCommands >= limit, `${store.pendingCommands} commands pending`);
    const pending = store.pendingCommands;
    const roundTrips = store.roundTrips;

    const refused = (e: unknown) => {
      assert.ok(isAimassError(e, "FEATURE_STORE_UNAVAILABLE"), String(e));
      assert.match(e.message, /commands already wait for Redis/);
      assert.equal(e.details.limit, limit);
      return true;
    };
    await assert.rejects(store.lookup([{ user: "u-1" }]), refused);
    await assert.rejects(
      store.write([{ view: "user", key: "u-2", ts: 1, values: { clicks_7d: 1 } }]),
      refused,
    );
    // Refused before anything was sent: no round trip, nothing more queued.
    assert.equal(store.roundTrips, roundTrips);
    assert.equal(store.pendingCommands, pending);
    await assert.rejects(flood, (e: unknown) => isAimassError(e, "FEATURE_STORE_UNAVAILABLE"));

    resume();
    const recoveredMs = await untilLookupsWork(store, 10_000);
    t.diagnostic(
      `${limit} queued commands answered and lookups admitted ${recoveredMs.toFixed(0)} ms after SIGCONT`,
    );
    assert.equal(store.pendingCommands, 0);
  },
);
