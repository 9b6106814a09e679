// The Redis online feature store against real Redis: the compare-and-write (newest event time
// wins, so replays and out-of-order updates are harmless), the shared per-entity hash, TTLs,
// lookups (one pipelined round trip per batch, one HGETALL per distinct entity — counted by
// Redis itself), miss/stale/invalid handling, and Redis outages (fail fast, recover).
//
// Tests that count commands or kill Redis use their own redis-server on a free port, never
// the shared one.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { parsePipelineConfig } from "../../../../services/common/config/load.js";
import type { FeaturesConfig, PipelineConfigInput } from "../../../../services/common/config/schema.js";
import { isAimassError } from "../../../../services/common/errors.js";
import { FeatureStore, type FeatureUpdate } from "../../../../services/common/features/store.js";
import { deferrer, endpoints, testLogger, testRedis, uniqueName } from "../../../helpers/stack.js";
import { testPipelineRaw } from "../../../helpers/pipeline.js";
import { OwnRedis } from "../../../helpers/redis-server.js";

type RawFeatures = NonNullable<PipelineConfigInput["features"]>;

function featuresConfig(keyPrefix: string, patch: Partial<RawFeatures> = {}): FeaturesConfig {
  const raw = testPipelineRaw({
    input: "in",
    output: "out",
    dlq: "dlq",
    group: "g",
    patch: (r) => {
      r.features = {
        keyPrefix,
        commandTimeoutMs: 100,
        views: [
          {
            name: "user",
            key: "userId",
            features: [
              { name: "clicks_7d", default: -1 },
              { name: "carts_7d" },
              { name: "purchases_30d", type: "int" },
            ],
          },
          {
            name: "user_risk",
            entity: "user",
            key: "userId",
            features: [{ name: "risk_score", default: 0.5 }],
            maxAgeMs: 60_000,
            ttlSeconds: 3_600,
          },
          {
            name: "item",
            key: "itemId",
            features: [{ name: "popularity_7d" }, { name: "price_band", type: "int", default: 2 }],
          },
        ],
        ...patch,
      };
    },
  });
  const features = parsePipelineConfig(raw, "/tmp/test.yaml", {}).features;
  assert.ok(features);
  return features;
}

/** A FeatureStore with its own key prefix on the shared Redis; its keys are deleted afterwards. */
function sharedStore(t: TestContext, patch: Partial<RawFeatures> = {}) {
  const defer = deferrer(t);
  const prefix = uniqueName("t-features");
  const redis = testRedis(defer);
  defer(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  });
  const config = featuresConfig(prefix, patch);
  const store = FeatureStore.connect(endpoints.redisUrl, config, testLogger);
  defer(() => store.close());
  return { store, redis, prefix, config };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function commandCalls(info: string, command: string): number {
  const m = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(info);
  return m ? Number(m[1]) : 0;
}

const user = (key: string, ts: number, clicks: number): FeatureUpdate => ({
  view: "user",
  key,
  ts,
  values: { clicks_7d: clicks, carts_7d: clicks / 2, purchases_30d: 1 },
});

test("out-of-order and duplicate writes leave the newest value", async (t) => {
  const { store, redis, prefix } = sharedStore(t);
  await store.waitReady(5_000);
  // One pipeline: ts 200, then an older ts 100, then ts 200 again with another value.
  assert.deepEqual(
    await store.write([user("u-1", 200, 20), user("u-1", 100, 10), user("u-1", 200, 99)]),
    [1, 0, 0],
  );
  assert.deepEqual(await redis.hgetall(`${prefix}:user:u-1`), {
    "user:clicks_7d": "20",
    "user:carts_7d": "10",
    "user:purchases_30d": "1",
    "_ts:user": "200",
  });
  // Separate calls (a replay after a crash) change nothing either; a newer one wins.
  assert.deepEqual(await store.write([user("u-1", 150, 15)]), [0]);
  assert.deepEqual(await store.write([user("u-1", 200, 21)]), [0]);
  assert.deepEqual(await store.write([user("u-1", 201, 21)]), [1]);
  const [r] = await store.lookup([{ user: "u-1" }]);
  assert.deepEqual(r?.user, {
    values: { clicks_7d: 21, carts_7d: 10.5, purchases_30d: 1 },
    ts: 201,
    status: "hit",
    invalid: 0,
  });
  // Booleans are stored as 0/1; the write is a single round trip per call.
  const before = store.roundTrips;
  assert.deepEqual(
    await store.write([{ view: "user", key: "u-2", ts: 5, values: { purchases_30d: true } }]),
    [1],
  );
  assert.equal(store.roundTrips, before + 1);
  assert.equal(await redis.hget(`${prefix}:user:u-2`, "user:purchases_30d"), "1");
});

test("two views of one entity share one hash; each keeps its own event time", async (t) => {
  const { store, redis, prefix } = sharedStore(t);
  await store.waitReady(5_000);
  const now = Date.now();
  assert.deepEqual(
    await store.write([
      user("u-7", now - 1_000, 3),
      { view: "user_risk", key: "u-7", ts: now - 500, values: { risk_score: 0.9 } },
      // Older for user_risk, but user_risk's own time decides: skipped. user is untouched.
      { view: "user_risk", key: "u-7", ts: now - 600, values: { risk_score: 0.1 } },
    ]),
    [1, 1, 0],
  );
  const keys = await redis.keys(`${prefix}:*`);
  assert.deepEqual(keys, [`${prefix}:user:u-7`]);
  const hash = await redis.hgetall(`${prefix}:user:u-7`);
  assert.equal(hash["_ts:user"], String(now - 1_000));
  assert.equal(hash["_ts:user_risk"], String(now - 500));
  assert.equal(hash["user_risk:risk_score"], "0.9");
  assert.equal(hash["user:clicks_7d"], "3");

  const [r] = await store.lookup([{ user: "u-7", user_risk: "u-7" }], now);
  assert.equal(r?.user?.ts, now - 1_000);
  assert.deepEqual(r?.user_risk, { values: { risk_score: 0.9 }, ts: now - 500, status: "hit", invalid: 0 });
});

test("ttlSeconds sets an expiry on the hash; views without it leave none", async (t) => {
  const { store, redis, prefix } = sharedStore(t);
  await store.waitReady(5_000);
  await store.write([
    user("u-1", 10, 1),
    { view: "item", key: "i-1", ts: 10, values: { popularity_7d: 0.3 } },
    { view: "user_risk", key: "u-2", ts: 10, values: { risk_score: 0.2 } },
  ]);
  assert.equal(await redis.ttl(`${prefix}:user:u-1`), -1);
  assert.equal(await redis.ttl(`${prefix}:item:i-1`), -1);
  const ttl = await redis.ttl(`${prefix}:user:u-2`);
  assert.ok(ttl > 3_590 && ttl <= 3_600, `ttl ${ttl}`);
  // A write to a view with a TTL sets it on the shared hash; a skipped write does not.
  await store.write([{ view: "user_risk", key: "u-1", ts: 5, values: { risk_score: 0.2 } }]);
  assert.ok((await redis.ttl(`${prefix}:user:u-1`)) > 3_590);
  await redis.persist(`${prefix}:user:u-1`);
  assert.deepEqual(
    await store.write([{ view: "user_risk", key: "u-1", ts: 5, values: { risk_score: 0.3 } }]),
    [0],
  );
  assert.equal(await redis.ttl(`${prefix}:user:u-1`), -1);
});

test(
  "a lookup of 100 events over 7 users and 5 items is ONE round trip of 12 HGETALLs",
  { timeout: 60_000 },
  async (t) => {
    const own = await OwnRedis.start(t);
    const defer = deferrer(t);
    const config = featuresConfig("shop");
    const store = FeatureStore.connect(own.url, config, testLogger);
    defer(() => store.close());
    const admin = new Redis(own.url);
    defer(() => admin.quit());
    await store.waitReady(5_000);

    const now = Date.now();
    const users = Array.from({ length: 7 }, (_, i) => `u-${i}`);
    const items = Array.from({ length: 5 }, (_, i) => `i-${i}`);
    await store.write([
      ...users.map((u, i) => user(u, now - 1_000, i)),
      ...items.map((it, i) => ({
        view: "item",
        key: it,
        ts: now - 1_000,
        values: { popularity_7d: i / 10 },
      })),
    ]);
    const events = Array.from({ length: 100 }, (_, i) => ({
      userId: users[i % users.length],
      itemId: items[(i * 3) % items.length],
    }));
    const requests = events.map((e) => store.entityKeys(e, ["user", "user_risk", "item"]));

    // Warm up (first-use costs), then measure from a clean slate.
    await store.lookup(requests, now);
    await admin.config("RESETSTAT");
    const trips = store.roundTrips;
    const started = performance.now();
    const results = await store.lookup(requests, now);
    const ms = performance.now() - started;
    const info = await admin.info("commandstats");

    assert.equal(store.roundTrips - trips, 1, "one pipeline per batch");
    // user and user_risk share the user hash: 7 + 5 distinct hashes, not 100 × 3 reads.
    assert.equal(commandCalls(info, "hgetall"), 12, info);
    assert.equal(commandCalls(info, "hget"), 0);
    assert.equal(results.length, 100);
    results.forEach((r, i) => {
      assert.equal(r.user?.status, "hit");
      assert.equal(r.user?.values.clicks_7d, i % users.length);
      assert.equal(r.item?.values.popularity_7d, ((i * 3) % items.length) / 10);
      assert.equal(r.user_risk?.status, "miss");
    });
    // Timings for the record (a shared 2-core box: not asserted tightly).
    const timings: number[] = [];
    for (let i = 0; i < 20; i++) {
      const s = performance.now();
      await store.lookup(requests, now);
      timings.push(performance.now() - s);
    }
    timings.sort((a, b) => a - b);
    t.diagnostic(
      `lookup of 100 events / 12 hashes: first ${ms.toFixed(2)} ms, p50 ${timings[10]?.toFixed(2)} ms, ` +
        `max ${timings[19]?.toFixed(2)} ms`,
    );

    // Events without keys cost nothing: no round trip at all.
    const none = store.roundTrips;
    const empty = await store.lookup([{ user: undefined, item: "" }, {}], now);
    assert.equal(store.roundTrips, none);
    assert.equal(empty[0]?.user?.status, "miss");
    assert.deepEqual(empty[1], {});
  },
);

test("miss: defaults and ts null — no key, no hash, or no event time for the view", async (t) => {
  const { store, redis, prefix } = sharedStore(t);
  await store.waitReady(5_000);
  await store.write([{ view: "user_risk", key: "u-1", ts: 10, values: { risk_score: 0.7 } }]);
  // A hash field without `_ts:user` (e.g. written by hand) is not a hit either.
  await redis.hset(`${prefix}:user:u-3`, "user:clicks_7d", "5");
  const miss = {
    values: { clicks_7d: -1, carts_7d: 0, purchases_30d: 0 },
    ts: null,
    status: "miss",
    invalid: 0,
  };
  const requests = [
    store.entityKeys({ userId: "nobody" }, ["user"]),
    store.entityKeys({ userId: "u-1" }, ["user"]), // the hash exists, for user_risk only
    store.entityKeys({ userId: "u-3" }, ["user"]),
    store.entityKeys({}, ["user"]),
    store.entityKeys({ userId: null }, ["user"]),
    store.entityKeys({ userId: "" }, ["user"]),
  ];
  assert.deepEqual(requests.slice(3), [{ user: undefined }, { user: undefined }, { user: undefined }]);
  const results = await store.lookup(requests);
  for (const r of results) assert.deepEqual(r.user, miss);
  assert.deepEqual(store.defaultsFor("item"), { popularity_7d: 0, price_band: 2 });
  // Numeric entity keys are looked up by their decimal string.
  assert.deepEqual(store.entityKeys({ userId: 42, itemId: 7n }), { user: "42", user_risk: "42", item: "7" });
  await assert.rejects(store.lookup([{ nope: "x" }]), (e: unknown) => isAimassError(e, "FIELD_INVALID"));
});

test("stale: older than maxAgeMs comes back as stored with status stale; the caller decides", async (t) => {
  const { store } = sharedStore(t);
  await store.waitReady(5_000);
  const now = Date.now();
  await store.write([
    { view: "user_risk", key: "old", ts: now - 120_000, values: { risk_score: 0.8 } },
    { view: "user_risk", key: "fresh", ts: now - 1_000, values: { risk_score: 0.2 } },
    user("old", now - 10 * 86_400_000, 4), // the user view has maxAgeMs 0: never stale
  ]);
  const [old, fresh] = await store.lookup([{ user_risk: "old", user: "old" }, { user_risk: "fresh" }], now);
  assert.deepEqual(old?.user_risk, {
    values: { risk_score: 0.8 },
    ts: now - 120_000,
    status: "stale",
    invalid: 0,
  });
  assert.equal(old?.user?.status, "hit");
  assert.equal(fresh?.user_risk?.status, "hit");
  // Exactly at maxAgeMs is still fresh.
  const [edge] = await store.lookup([{ user_risk: "old" }], now - 120_000 + 60_000);
  assert.equal(edge?.user_risk?.status, "hit");
});

test("unparsable stored values are served as defaults and counted; a non-hash key is a miss", async (t) => {
  const { store, redis, prefix } = sharedStore(t);
  await store.waitReady(5_000);
  await store.write([user("u-1", 10, 4)]);
  await redis.hset(`${prefix}:user:u-1`, { "user:clicks_7d": "abc", "user:carts_7d": "" });
  const [r] = await store.lookup([{ user: "u-1" }]);
  assert.deepEqual(r?.user, {
    values: { clicks_7d: -1, carts_7d: 0, purchases_30d: 1 },
    ts: 10,
    status: "hit",
    invalid: 2,
  });

  // Someone else's string under our key: reads serve defaults, writes fail for that update only.
  await redis.set(`${prefix}:item:i-bad`, "not a hash");
  const [bad] = await store.lookup([{ item: "i-bad", user: "u-1" }]);
  assert.deepEqual(bad?.item, {
    values: { popularity_7d: 0, price_band: 2 },
    ts: null,
    status: "miss",
    invalid: 2,
  });
  assert.equal(bad?.user?.ts, 10);
  const settled = await store.writeSettled([
    { view: "item", key: "i-bad", ts: 5, values: { price_band: 1 } },
    { view: "item", key: "i-good", ts: 5, values: { price_band: 1 } },
  ]);
  assert.ok(
    isAimassError(settled[0], "FIELD_INVALID") && /WRONGTYPE/.test(settled[0].message),
    String(settled[0]),
  );
  assert.equal(settled[1], 1);
  await assert.rejects(
    store.write([{ view: "item", key: "i-bad", ts: 6, values: { price_band: 1 } }]),
    (e: unknown) => isAimassError(e, "FIELD_INVALID"),
  );
  // Updates that do not fit the config are refused before anything is sent.
  const misfits: FeatureUpdate[] = [
    { view: "nope", key: "k", ts: 1, values: { a: 1 } },
    { view: "item", key: "", ts: 1, values: { price_band: 1 } },
    { view: "item", key: "k", ts: 0, values: { price_band: 1 } },
    { view: "item", key: "k", ts: 1, values: {} },
    { view: "item", key: "k", ts: 1, values: { clicks_7d: 1 } },
    { view: "item", key: "k", ts: 1, values: { price_band: NaN } },
  ];
  for (const u of misfits) {
    await assert.rejects(
      store.write([u]),
      (e: unknown) => isAimassError(e, "FIELD_INVALID"),
      JSON.stringify(u),
    );
  }
});

test(
  "Redis down: lookups and writes fail fast with FEATURE_STORE_UNAVAILABLE, and work again after a restart",
  { timeout: 60_000 },
  async (t) => {
    const own = await OwnRedis.start(t);
    const defer = deferrer(t);
    const store = FeatureStore.connect(own.url, featuresConfig("outage"), testLogger);
    defer(() => store.close());
    await store.waitReady(5_000);
    assert.deepEqual(await store.write([user("u-1", 10, 1)]), [1]);
    assert.equal((await store.lookup([{ user: "u-1" }]))[0]?.user?.status, "hit");

    // Slow, not down: a server blocked past commandTimeoutMs (100) times the lookup out.
    const blocker = new Redis(own.url);
    defer(() => blocker.disconnect());
    const blocked = blocker.call("DEBUG", "SLEEP", "0.6");
    await sleep(50);
    let started = performance.now();
    await assert.rejects(store.lookup([{ user: "u-1" }]), (e: unknown) =>
      isAimassError(e, "FEATURE_STORE_UNAVAILABLE"),
    );
    const slowMs = performance.now() - started;
    assert.ok(slowMs < 400, `timed out after ${slowMs} ms`);
    t.diagnostic(
      `lookup against a blocked server (commandTimeoutMs 100) failed after ${slowMs.toFixed(1)} ms`,
    );
    await blocked;
    // The late reply is not mistaken for a later command's.
    const [again] = await store.lookup([{ user: "u-1" }]);
    assert.equal(again?.user?.values.clicks_7d, 1);
    blocker.disconnect();

    await own.kill();
    for (const op of ["lookup", "write"] as const) {
      started = performance.now();
      await assert.rejects(
        op === "lookup" ? store.lookup([{ user: "u-1" }]) : store.write([user("u-1", 20, 2)]),
        (e: unknown) => {
          assert.ok(isAimassError(e, "FEATURE_STORE_UNAVAILABLE"), String(e));
          assert.ok(e.canRetry);
          return true;
        },
      );
      const ms = performance.now() - started;
      assert.ok(ms < 500, `${op} failed after ${ms} ms`);
      t.diagnostic(`${op} with Redis down failed after ${ms.toFixed(1)} ms`);
    }
    await until("the store to notice", () => !store.available, 2_000);
    // Still failing fast a while later (reconnect attempts in the background do not queue commands).
    await sleep(500);
    started = performance.now();
    await assert.rejects(store.lookup([{ user: "u-1" }]), (e: unknown) =>
      isAimassError(e, "FEATURE_STORE_UNAVAILABLE"),
    );
    assert.ok(performance.now() - started < 500);

    await own.restart();
    started = performance.now();
    await until("the store to reconnect", () => store.available, 10_000);
    t.diagnostic(`reconnected ${(performance.now() - started).toFixed(0)} ms after the restart`);
    // A fresh server (nothing persisted): the script is loaded again on first use.
    assert.deepEqual(await store.write([user("u-1", 20, 2)]), [1]);
    const [r] = await store.lookup([{ user: "u-1" }]);
    assert.equal(r?.user?.values.clicks_7d, 2);

    await store.close();
    await store.close(); // idempotent
    await assert.rejects(store.lookup([{ user: "u-1" }]), (e: unknown) =>
      isAimassError(e, "FEATURE_STORE_UNAVAILABLE"),
    );
  },
);
