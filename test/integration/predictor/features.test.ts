// The predictor with the online feature store, end to end: real `aimass predict` processes
// serving shop-propensity version 3 (event fields + the user's and item's online features)
// from the model repository, on temp topics and a unique Redis key prefix.
//
// - featureTs lineage: a prediction names the event time of the feature values it used
//   (written by the feature writer), null on a miss;
// - a Redis outage under onUnavailable "fail" loses and duplicates nothing (chunks are
//   aborted and retried until Redis is back);
// - onUnavailable "defaults" serves defaults, flagged, and recovers when Redis returns;
// - stale values: onStale "dlq" dead-letters the event (stage "features", FEATURE_STALE),
//   onStale "defaults" predicts with the view's defaults.
//
// Tests that stop Redis use their own redis-server (test/helpers/redis-server.ts), started
// with an RDB save point and stopped with SIGTERM, so it saves on the way down and comes back
// with its data: after the outage lookups hit again, and every prediction can be checked to
// carry the preloaded feature times.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import type { Producer } from "kafkajs";
import { loadPipelineConfig } from "../../../services/common/config/load.js";
import { FeatureStore, type FeatureUpdate } from "../../../services/common/features/store.js";
import { FeatureWriter } from "../../../services/feature-writer/writer.js";
import type { ShopEvent } from "../../../load-tests/lib/shop-events.js";
import { produceEvents } from "../../../load-tests/produce-events.js";
import {
  connectedAdmin,
  defer,
  endpoints,
  tempTopic,
  testKafka,
  testLogger,
  testRedis,
  uniqueName,
} from "../../helpers/stack.js";
import { readTopic, type ReadRecord } from "../../helpers/kafka-read.js";
import { startPredictor, writeConfig } from "../../helpers/predictor-process.js";
import { assertRunExactlyOnce } from "../../helpers/exactly-once.js";
import { repoPath } from "../../helpers/pipeline.js";
import { freePort, OwnRedis } from "../../helpers/redis-server.js";

const JOINED = /"msg":"partitions assigned"[^\n]*"partitions":\[\d/;
const FALLBACK_HEADER = "aimass.features.fallback";
const MINUTE = 60_000;

interface Fixture {
  input: string;
  output: string;
  dlq: string;
  updates: string;
  featuresDlq: string;
  group: string;
  prefix: string;
}

interface ViewPolicy {
  maxAgeMs?: number;
  onStale?: "defaults" | "dlq";
}

interface FeatureOptions {
  onUnavailable?: "fail" | "defaults";
  user?: ViewPolicy;
  item?: ViewPolicy;
}

interface Prediction {
  eventId: string;
  model: { name: string; version: string };
  propensity: number;
  featureTs?: Record<string, number | null>;
}

async function fixture(t: TestContext, partitions = 3): Promise<Fixture> {
  const admin = await connectedAdmin(t);
  const [input, output, dlq, updates, featuresDlq] = await Promise.all([
    tempTopic(t, admin, "pf-in", partitions),
    tempTopic(t, admin, "pf-out", partitions),
    tempTopic(t, admin, "pf-dlq", 1),
    tempTopic(t, admin, "pf-feat", 1),
    tempTopic(t, admin, "pf-feat-dlq", 1),
  ]);
  return {
    input,
    output,
    dlq,
    updates,
    featuresDlq,
    group: uniqueName("pf-group"),
    prefix: uniqueName("t-pf"),
  };
}

/**
 * The shop example (examples/shop/pipeline.yaml) on the fixture's topics: shop-propensity
 * version 3 from the repository, the example's `user` and `item` views, test-friendly timeouts.
 */
function featurePipeline(f: Fixture, o: FeatureOptions = {}): object {
  return {
    pipeline: { name: "pf", groupId: f.group },
    input: { topic: f.input, format: "json", idField: "id", timeField: "ts" },
    output: { topic: f.output, format: "json" },
    dlq: { topic: f.dlq },
    routing: {
      field: "type",
      routes: { view: "shop-propensity", cart: "shop-propensity", purchase: "shop-propensity" },
    },
    modelRepository: repoPath("models"),
    models: [{ name: "shop-propensity", version: "3", batching: { maxBatchSize: 128, maxDelayMs: 5 } }],
    features: {
      keyPrefix: f.prefix,
      // Above the example's 100 ms: a 2-core machine running Kafka, a predictor and the test
      // must not turn scheduling hiccups into outages.
      commandTimeoutMs: 500,
      onUnavailable: o.onUnavailable ?? "fail",
      views: [
        {
          name: "user",
          key: "userId",
          maxAgeMs: o.user?.maxAgeMs ?? 7 * 24 * 60 * MINUTE,
          onStale: o.user?.onStale ?? "defaults",
          features: [
            { name: "clicks_7d", default: 0 },
            { name: "carts_7d", default: 0 },
            { name: "purchases_30d", type: "int", default: 0 },
          ],
        },
        {
          name: "item",
          key: "itemId",
          maxAgeMs: o.item?.maxAgeMs ?? 24 * 60 * MINUTE,
          onStale: o.item?.onStale ?? "defaults",
          features: [
            { name: "popularity_7d", default: 0.1 },
            { name: "price_band", type: "int", default: 2 },
          ],
        },
      ],
      updates: { topic: f.updates },
      dlq: { topic: f.featuresDlq },
    },
    processing: {
      maxRecordsPerTransaction: 500,
      transactionTimeoutMs: 30_000,
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 500,
      shutdownGraceMs: 15_000,
      retryInitialMs: 50,
      retryMaxMs: 1_000,
    },
  };
}

/** Deletes the prefix's keys from the shared Redis when the test ends. */
function cleanSharedRedis(t: TestContext, prefix: string) {
  const redis = testRedis((fn) => defer(t, fn));
  defer(t, async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  });
  return redis;
}

/** A FeatureStore on `redisUrl` with the config's features section, closed when the test ends. */
async function storeFor(t: TestContext, configPath: string, redisUrl: string): Promise<FeatureStore> {
  const config = await loadPipelineConfig(configPath, { ...process.env, REDIS_URL: redisUrl });
  assert.ok(config.features);
  const store = FeatureStore.connect(redisUrl, config.features, testLogger);
  defer(t, () => store.close());
  await store.waitReady(5_000);
  return store;
}

async function connectedProducer(t: TestContext): Promise<Producer> {
  const producer = testKafka().producer({ idempotent: true });
  await producer.connect();
  defer(t, () => producer.disconnect());
  return producer;
}

function shopEvent(id: string, userId: string, itemId: string, ts: number): ShopEvent {
  return { id, type: "view", userId, itemId, ts, price: 19.99, quantity: 1 };
}

async function sendEvents(producer: Producer, topic: string, events: ShopEvent[]): Promise<void> {
  await producer.send({
    topic,
    acks: -1,
    messages: events.map((e) => ({ key: e.userId, value: JSON.stringify(e) })),
  });
}

function header(r: ReadRecord, name: string): string | undefined {
  const h = r.headers?.[name];
  const v = Array.isArray(h) ? h[0] : h;
  return v?.toString();
}

function prediction(r: ReadRecord): Prediction {
  return JSON.parse(r.value?.toString() ?? "null") as Prediction;
}

/** Predictions by event id (each id must appear once). */
function byId(records: ReadRecord[]): Map<string, { record: ReadRecord; value: Prediction }> {
  const out = new Map<string, { record: ReadRecord; value: Prediction }>();
  for (const record of records) {
    const value = prediction(record);
    assert.ok(!out.has(value.eventId), `duplicate prediction for ${value.eventId}`);
    out.set(value.eventId, { record, value });
  }
  return out;
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Sum of a metric's samples (all label sets) from a worker's /metrics. */
async function scrape(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

/** Feature values for the users u-0…u-999 and items i-0…i-499 that produce-events uses. */
function shopUpdates(ts: number): FeatureUpdate[] {
  const updates: FeatureUpdate[] = [];
  for (let u = 0; u < 1_000; u++) {
    const values = { clicks_7d: u % 40, carts_7d: u % 7, purchases_30d: u % 3 };
    updates.push({ view: "user", key: `u-${u}`, ts, values });
  }
  for (let i = 0; i < 500; i++) {
    updates.push({
      view: "item",
      key: `i-${i}`,
      ts,
      values: { popularity_7d: (i % 100) / 100, price_band: i % 5 },
    });
  }
  return updates;
}

async function preload(store: FeatureStore, updates: FeatureUpdate[]): Promise<void> {
  for (let k = 0; k < updates.length; k += 500) await store.write(updates.slice(k, k + 500));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  "an update followed by an event for the same user yields a prediction whose featureTs.user equals the update's time",
  { timeout: 120_000 },
  async (t) => {
    const f = await fixture(t);
    const redis = cleanSharedRedis(t, f.prefix);
    const configPath = writeConfig(t, featurePipeline(f));
    const predictor = startPredictor(t, configPath, "features");

    // The feature writer, in process, from the same config file `aimass features` would read.
    const writer = new FeatureWriter({
      config: await loadPipelineConfig(configPath),
      logger: testLogger,
      instanceId: uniqueName("fw"),
    });
    defer(t, () => writer.stop());
    await writer.start();

    const producer = await connectedProducer(t);
    const user = uniqueName("u");
    const item = uniqueName("i");
    const T = Date.now() - 2 * MINUTE;
    const T2 = Date.now() - 3 * MINUTE;
    const update = (view: string, key: string, ts: number, values: Record<string, number>) => ({
      key,
      value: JSON.stringify({ view, key, ts, values }),
    });
    await producer.send({
      topic: f.updates,
      acks: -1,
      messages: [
        update("user", user, T, { clicks_7d: 30, carts_7d: 6, purchases_30d: 4 }),
        update("item", item, T2, { popularity_7d: 0.9, price_band: 4 }),
      ],
    });
    await until("the writer to apply both updates", async () => {
      const [u, i] = await Promise.all([
        redis.hget(`${f.prefix}:user:${user}`, "_ts:user"),
        redis.hget(`${f.prefix}:item:${item}`, "_ts:item"),
      ]);
      return u === String(T) && i === String(T2);
    });

    await predictor.waitFor(JOINED);
    const runId = uniqueName("lineage");
    const ts = Date.now();
    const known = shopEvent(`${runId}-0`, user, item, ts);
    const unknown = shopEvent(`${runId}-1`, uniqueName("nobody"), item, ts);
    await sendEvents(producer, f.input, [known, unknown]);

    const records = await readTopic(t, testKafka(), f.output, {
      until: (r) => r.length >= 2,
      timeoutMs: 60_000,
      lingerMs: 500,
    });
    const out = byId(records);
    assert.equal(out.size, 2, predictor.log.slice(-2000));
    const k = out.get(known.id);
    const u = out.get(unknown.id);
    assert.ok(k && u);
    for (const p of [k, u]) {
      assert.deepEqual(p.value.model.name, "shop-propensity");
      assert.equal(p.value.model.version, "3");
      assert.equal(typeof p.value.propensity, "number");
      assert.equal(header(p.record, FALLBACK_HEADER), undefined);
    }
    assert.deepEqual(k.value.featureTs, { user: T, item: T2 });
    // Unknown user: a miss, served the view's defaults, and still a prediction.
    assert.deepEqual(u.value.featureTs, { user: null, item: T2 });
    // The same event fields with different user features: the features reached the model.
    assert.notEqual(k.value.propensity, u.value.propensity);
    assert.equal(writer.state, "running");
  },
);

test(
  "Redis stopped and restarted during a stream of ≥ 10,000 events: exactly one prediction per input, none lost",
  { timeout: 180_000 },
  async (t) => {
    const f = await fixture(t);
    // SIGTERM with a save point: Redis saves on the way down and reloads on restart.
    const own = await OwnRedis.start(t, { persist: true });
    const configPath = writeConfig(t, featurePipeline(f, { onUnavailable: "fail" }));
    const metricsPort = await freePort();
    const predictor = startPredictor(t, configPath, "outage", {
      args: ["--metrics-port", String(metricsPort)],
      env: { REDIS_URL: own.url },
    });
    const T = Date.now() - 5 * MINUTE;
    const store = await storeFor(t, configPath, own.url);
    await preload(store, shopUpdates(T));
    await store.close();
    await predictor.waitFor(JOINED);

    const runId = uniqueName("outage");
    const count = 10_000;
    const producing = produceEvents([
      ...["--topic", f.input, "--count", String(count), "--rate", "1000"],
      ...["--run-id", runId, "--batch", "100"],
    ]);
    await sleep(3_000);
    await own.stop("SIGTERM");
    await sleep(5_000);
    const lookupsFailed = await scrape(metricsPort, "aimass_feature_store_errors_total");
    await own.restart();
    await producing;

    const records = await assertRunExactlyOnce(t, f.output, runId, count, 90_000);
    // onUnavailable "fail": nothing was served without its features (the data survived the
    // SIGTERM), and nothing was flagged as a fallback.
    const withoutFeatures = records.filter((r) => {
      const p = prediction(r);
      return p.featureTs?.user !== T || p.featureTs.item !== T || header(r, FALLBACK_HEADER) !== undefined;
    });
    assert.equal(withoutFeatures.length, 0, JSON.stringify(withoutFeatures.slice(0, 3).map(prediction)));

    // The outage was seen: lookups failed while Redis was down, and the chunks were aborted
    // and retried.
    assert.ok(lookupsFailed > 0, "feature lookups failed during the outage");
    assert.ok((await scrape(metricsPort, "aimass_transaction_aborts_total")) > 0, "transactions aborted");
    assert.match(
      predictor.log,
      /"msg":"preparing a chunk failed; retrying"[^\n]*feature store lookup failed/,
    );
  },
);

test(
  'onUnavailable "defaults": with Redis stopped predictions still flow, flagged, with null featureTs',
  { timeout: 120_000 },
  async (t) => {
    const f = await fixture(t);
    const own = await OwnRedis.start(t, { persist: true });
    const configPath = writeConfig(t, featurePipeline(f, { onUnavailable: "defaults" }));
    const predictor = startPredictor(t, configPath, "fallback", { env: { REDIS_URL: own.url } });
    const T = Date.now() - MINUTE;
    const store = await storeFor(t, configPath, own.url);
    await store.write([
      { view: "user", key: "u-1", ts: T, values: { clicks_7d: 5, carts_7d: 1, purchases_30d: 1 } },
      { view: "item", key: "i-1", ts: T, values: { popularity_7d: 0.5, price_band: 3 } },
    ]);
    await store.close();
    await predictor.waitFor(JOINED);
    await predictor.waitFor(/"msg":"redis ready"/);
    const producer = await connectedProducer(t);

    await own.stop("SIGTERM");
    const runId = uniqueName("fallback");
    const down = Array.from({ length: 20 }, (_, i) => shopEvent(`${runId}-${i}`, "u-1", "i-1", Date.now()));
    await sendEvents(producer, f.input, down);
    const during = await readTopic(t, testKafka(), f.output, {
      until: (r) => r.length >= down.length,
      timeoutMs: 30_000,
      lingerMs: 500,
    });
    assert.equal(during.length, down.length, predictor.log.slice(-2000));
    for (const r of during) {
      assert.equal(header(r, FALLBACK_HEADER), "1");
      assert.deepEqual(prediction(r).featureTs, { user: null, item: null });
      assert.equal(prediction(r).model.version, "3");
    }

    // Redis back (with its data): the next predictions use the stored features, unflagged.
    await own.restart();
    await until("the predictor to reconnect", () => predictor.log.split('"msg":"redis ready"').length > 2);
    const up = Array.from({ length: 20 }, (_, i) =>
      shopEvent(`${runId}-${down.length + i}`, "u-1", "i-1", Date.now()),
    );
    await sendEvents(producer, f.input, up);
    const all = await readTopic(t, testKafka(), f.output, {
      until: (r) => r.length >= down.length + up.length,
      timeoutMs: 30_000,
      lingerMs: 500,
    });
    const out = byId(all);
    assert.equal(out.size, down.length + up.length);
    for (const e of up) {
      const p = out.get(e.id);
      assert.ok(p, `prediction for ${e.id}`);
      assert.equal(header(p.record, FALLBACK_HEADER), undefined);
      assert.deepEqual(p.value.featureTs, { user: T, item: T });
    }
  },
);

test(
  'stale values: onStale "dlq" sends the event to the DLQ (stage features, FEATURE_STALE); "defaults" predicts',
  { timeout: 120_000 },
  async (t) => {
    const f = await fixture(t);
    cleanSharedRedis(t, f.prefix);
    // user: stale → DLQ; item: stale → defaults. Both stale after a minute.
    const configPath = writeConfig(
      t,
      featurePipeline(f, {
        user: { maxAgeMs: MINUTE, onStale: "dlq" },
        item: { maxAgeMs: MINUTE, onStale: "defaults" },
      }),
    );
    const predictor = startPredictor(t, configPath, "stale");
    const store = await storeFor(t, configPath, endpoints.redisUrl);
    const old = Date.now() - 10 * MINUTE;
    const fresh = Date.now() - 1_000;
    await store.write([
      { view: "user", key: "u-stale", ts: old, values: { clicks_7d: 9, carts_7d: 2, purchases_30d: 1 } },
      { view: "user", key: "u-fresh", ts: fresh, values: { clicks_7d: 9, carts_7d: 2, purchases_30d: 1 } },
      { view: "item", key: "i-stale", ts: old, values: { popularity_7d: 0.95, price_band: 4 } },
      { view: "item", key: "i-fresh", ts: fresh, values: { popularity_7d: 0.95, price_band: 4 } },
    ]);
    await predictor.waitFor(JOINED);

    const producer = await connectedProducer(t);
    const runId = uniqueName("stale");
    const ts = Date.now();
    const staleUser = shopEvent(`${runId}-0`, "u-stale", "i-fresh", ts);
    const staleItem = shopEvent(`${runId}-1`, "u-fresh", "i-stale", ts);
    // Same user, an item with no stored values: the item view's defaults, for comparison.
    const missingItem = shopEvent(`${runId}-2`, "u-fresh", uniqueName("i-none"), ts);
    await sendEvents(producer, f.input, [staleUser, staleItem, missingItem]);

    const [predictions, dead] = await Promise.all([
      readTopic(t, testKafka(), f.output, {
        until: (r) => r.length >= 2,
        timeoutMs: 60_000,
        lingerMs: 1_000,
      }),
      readTopic(t, testKafka(), f.dlq, { until: (r) => r.length >= 1, timeoutMs: 60_000, lingerMs: 1_000 }),
    ]);

    assert.equal(dead.length, 1, predictor.log.slice(-2000));
    const d = dead[0] as ReadRecord;
    assert.equal(header(d, "aimass.dlq.stage"), "features");
    assert.equal(header(d, "aimass.dlq.error.code"), "FEATURE_STALE");
    assert.equal(header(d, "aimass.dlq.model.name"), "shop-propensity");
    assert.equal(header(d, "aimass.dlq.model.version"), "3");
    assert.match(header(d, "aimass.dlq.error.message") ?? "", /view "user" is stale/);
    assert.deepEqual(
      JSON.parse(d.value?.toString() ?? "null"),
      staleUser,
      "the DLQ holds the event as it came",
    );

    const out = byId(predictions);
    assert.deepEqual([...out.keys()].sort(), [staleItem.id, missingItem.id]);
    const s = out.get(staleItem.id);
    const m = out.get(missingItem.id);
    assert.ok(s && m);
    // Stale item, onStale "defaults": predicted from the item's defaults, so its lineage is null
    // (the stale values were not used).
    assert.deepEqual(s.value.featureTs, { user: fresh, item: null });
    assert.deepEqual(m.value.featureTs, { user: fresh, item: null });
    // …and it was served the item's defaults, not the stale values: same score as the miss.
    // (A tolerance, not equality: the two rows may land in different inference batches.)
    assert.ok(
      Math.abs(s.value.propensity - m.value.propensity) < 1e-6,
      `stale item ${s.value.propensity} vs missing item ${m.value.propensity}`,
    );
    assert.equal(header(s.record, FALLBACK_HEADER), undefined);
  },
);
