// The feature writer against real Kafka and Redis: updates (out of order, duplicated, and
// broken) go in; Redis ends up with the newest values, the features DLQ with exactly the broken
// records, and committed offsets never run ahead of what Redis holds. With Redis down nothing
// is committed and nothing is lost: the updates land once it is back.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { Admin, IHeaders, Kafka, Producer } from "kafkajs";
import { Redis } from "ioredis";
import { parsePipelineConfig, type PipelineConfig } from "../../../services/common/config/load.js";
import { avroCodec } from "../../../services/common/serde/codec.js";
import { FeatureWriter } from "../../../services/feature-writer/writer.js";
import { DLQ_HEADER } from "../../../services/common/dlq.js";
import {
  connectedAdmin,
  deferrer,
  endpoints,
  tempTopic,
  testKafka,
  testLogger,
  testRegistry,
  uniqueName,
} from "../../helpers/stack.js";
import { retrying } from "../../helpers/retrying.js";
import { readTopic } from "../../helpers/kafka-read.js";
import { repoPath, testPipelineRaw } from "../../helpers/pipeline.js";
import { OwnRedis } from "../../helpers/redis-server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface Setup {
  kafka: Kafka;
  admin: Admin;
  producer: Producer;
  redis: Redis;
  updates: string;
  dlq: string;
  prefix: string;
  config: PipelineConfig;
  defer: (fn: () => unknown) => void;
}

async function setup(
  t: TestContext,
  options: {
    redisUrl?: string;
    format?: "json" | "avro";
    shutdownGraceMs?: number;
    stallTimeoutMs?: number;
  } = {},
): Promise<Setup> {
  const defer = deferrer(t);
  const cleanup = { after: (fn: () => unknown) => defer(fn) };
  const kafka = testKafka();
  const admin = await connectedAdmin(cleanup, kafka);
  const updates = await tempTopic(cleanup, admin, "feat-updates", 3);
  const dlq = await tempTopic(cleanup, admin, "feat-dlq", 1);
  const producer = kafka.producer();
  await producer.connect();
  defer(() => producer.disconnect());
  const redisUrl = options.redisUrl ?? endpoints.redisUrl;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(n * 50, 500) });
  redis.on("error", () => undefined);
  defer(() => redis.disconnect());
  const prefix = uniqueName("t-fw");
  defer(async () => {
    const keys = await redis.keys(`${prefix}:*`).catch(() => []);
    if (keys.length > 0) await redis.del(...keys).catch(() => undefined);
  });
  const raw = testPipelineRaw({
    input: uniqueName("unused-in"),
    output: uniqueName("unused-out"),
    dlq: uniqueName("unused-dlq"),
    group: uniqueName("fw-group"),
    name: "fw-test",
    shutdownGraceMs: options.shutdownGraceMs ?? 10_000,
    patch: (r) => {
      if (options.stallTimeoutMs) r.processing = { ...r.processing, stallTimeoutMs: options.stallTimeoutMs };
      r.features = {
        keyPrefix: prefix,
        commandTimeoutMs: 200,
        views: [
          {
            name: "user",
            key: "userId",
            features: [{ name: "clicks_7d" }, { name: "carts_7d" }, { name: "purchases_30d", type: "int" }],
          },
          {
            name: "item",
            key: "itemId",
            features: [{ name: "popularity_7d" }, { name: "price_band", type: "int" }],
            ttlSeconds: 86_400,
          },
        ],
        updates: { topic: updates, format: options.format ?? "json" },
        dlq: { topic: dlq },
      };
    },
  });
  const config = parsePipelineConfig(raw, "/tmp/test.yaml", { ...process.env, REDIS_URL: redisUrl });
  return { kafka, admin, producer, redis, updates, dlq, prefix, config, defer };
}

function startWriter(s: Setup): FeatureWriter {
  const writer = new FeatureWriter({ config: s.config, logger: testLogger, instanceId: uniqueName("fw") });
  s.defer(() => writer.stop());
  return writer;
}

interface Sent {
  partition: number;
  offset: string;
  key: string;
  value: Buffer | null;
  update?: { view: string; key: string; ts: number; values: Record<string, number> };
  bad?: { stage: string; code: string };
}

async function send(
  s: Setup,
  key: string,
  value: Buffer | null,
  extra: Pick<Sent, "update" | "bad"> & { headers?: IHeaders } = {},
): Promise<Sent> {
  const [meta] = await s.producer.send({
    topic: s.updates,
    acks: -1,
    messages: [{ key, value, ...(extra.headers ? { headers: extra.headers } : {}) }],
  });
  assert.ok(meta);
  return { partition: meta.partition, offset: meta.baseOffset ?? "", key, value, ...extra };
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

function sendUpdate(s: Setup, view: string, key: string, ts: number, values: Record<string, number>) {
  return send(s, key, json({ view, key, ts, values }), { update: { view, key, ts, values } });
}

async function committed(s: Setup): Promise<Map<number, bigint>> {
  const [entry] = await retrying(() =>
    s.admin.fetchOffsets({ groupId: `${s.config.pipeline.groupId}-features`, topics: [s.updates] }),
  );
  return new Map((entry?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
}

async function ends(s: Setup): Promise<Map<number, bigint>> {
  return new Map((await s.admin.fetchTopicOffsets(s.updates)).map((p) => [p.partition, BigInt(p.high)]));
}

async function coversTopic(s: Setup): Promise<boolean> {
  const [c, e] = await Promise.all([committed(s), ends(s)]);
  return [...e].every(([p, high]) => high === 0n || (c.get(p) ?? -1n) >= high);
}

async function metric(
  writer: FeatureWriter,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = await writer.registry.getSingleMetric(name)?.get();
  return (m?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

/** The newest update per (view, key) among those sent. */
function newest(sent: Sent[]): Map<string, NonNullable<Sent["update"]>> {
  const out = new Map<string, NonNullable<Sent["update"]>>();
  for (const { update } of sent) {
    if (!update) continue;
    const id = `${update.view}/${update.key}`;
    const cur = out.get(id);
    if (!cur || update.ts > cur.ts) out.set(id, update);
  }
  return out;
}

async function assertRedisHolds(s: Setup, expected: Map<string, NonNullable<Sent["update"]>>): Promise<void> {
  for (const u of expected.values()) {
    const hash = await s.redis.hgetall(`${s.prefix}:${u.view}:${u.key}`);
    assert.equal(hash[`_ts:${u.view}`], String(u.ts), `${u.view}/${u.key}`);
    for (const [f, v] of Object.entries(u.values))
      assert.equal(hash[`${u.view}:${f}`], String(v), `${u.key} ${f}`);
  }
}

test(
  "updates land newest-wins, bad ones go to the DLQ, offsets commit only after the writes",
  { timeout: 120_000 },
  async (t) => {
    const s = await setup(t);
    const sent: Sent[] = [];
    const up = async (view: string, key: string, ts: number, values: Record<string, number>) =>
      sent.push(await sendUpdate(s, view, key, ts, values));
    const bad = async (key: string, value: Buffer | null, stage: string, code: string, headers?: IHeaders) =>
      sent.push(await send(s, key, value, { bad: { stage, code }, ...(headers ? { headers } : {}) }));

    await up("user", "u-1", 300, { clicks_7d: 3, carts_7d: 1.5, purchases_30d: 1 });
    await up("user", "u-1", 100, { clicks_7d: 1, carts_7d: 0.5, purchases_30d: 0 }); // out of order
    await bad("u-1", Buffer.from("{not json"), "decode", "DECODE_FAILED", { "x-origin": "batch-7" });
    await up("user", "u-1", 300, { clicks_7d: 99, carts_7d: 9, purchases_30d: 9 }); // same ts: duplicate
    await up("user", "u-1", 200, { clicks_7d: 2, carts_7d: 1, purchases_30d: 0 }); // out of order
    await up("user", "u-2", 100, { clicks_7d: 10, carts_7d: 1, purchases_30d: 0 });
    await bad("u-2", json([1, 2]), "decode", "DECODE_FAILED");
    await up("user", "u-2", 500, { clicks_7d: 50, carts_7d: 5, purchases_30d: 2 });
    await up("user", "u-2", 500, { clicks_7d: 50, carts_7d: 5, purchases_30d: 2 }); // exact duplicate
    await up("item", "i-1", 1_000, { popularity_7d: 0.5, price_band: 3 });
    await bad("i-1", null, "decode", "DECODE_FAILED");
    await up("item", "i-1", 900, { popularity_7d: 0.1, price_band: 1 });
    await bad(
      "s-1",
      json({ view: "shop", key: "s-1", ts: 5, values: { a: 1 } }),
      "validate",
      "FIELD_INVALID",
    );
    await bad(
      "i-2",
      json({ view: "item", key: "i-2", ts: 5, values: { clicks_7d: 1 } }),
      "validate",
      "FIELD_INVALID",
    );
    await bad(
      "i-3",
      json({ view: "item", key: "i-3", ts: -5, values: { price_band: 1 } }),
      "validate",
      "FIELD_INVALID",
    );
    await bad("i-4", json({ view: "item", key: "i-4", ts: 5, values: {} }), "validate", "FIELD_INVALID");
    await bad(
      "i-5",
      json({ view: "item", key: "", ts: 5, values: { price_band: 1 } }),
      "validate",
      "FIELD_INVALID",
    );
    await bad(
      "i-6",
      json({ view: "item", key: "i-6", ts: 5, values: { price_band: 1.5 } }),
      "validate",
      "FIELD_INVALID",
    );
    for (let i = 0; i < 20; i++) await up("user", `u-bulk-${i}`, 1_000 + i, { clicks_7d: i });
    const bads = sent.filter((x) => x.bad);
    const goods = sent.filter((x) => x.update);

    assert.equal((await committed(s)).size === 0 || !(await coversTopic(s)), true);
    const writer = startWriter(s);
    await writer.start();
    assert.equal(writer.state, "running");

    // At every moment: a committed offset implies its updates are in Redis (the write happened first).
    let checks = 0;
    await until(
      "committed offsets to cover the topic",
      async () => {
        const c = await committed(s);
        for (const g of goods) {
          const u = g.update as NonNullable<Sent["update"]>;
          if ((c.get(g.partition) ?? -1n) > BigInt(g.offset)) {
            const ts = Number(await s.redis.hget(`${s.prefix}:${u.view}:${u.key}`, `_ts:${u.view}`));
            assert.ok(
              ts >= u.ts,
              `offset ${g.partition}/${g.offset} committed before ${u.view}/${u.key}@${u.ts}`,
            );
            checks += 1;
          }
        }
        return coversTopic(s);
      },
      60_000,
    );
    assert.ok(checks >= goods.length);
    await assertRedisHolds(s, newest(sent));
    assert.equal(await s.redis.hget(`${s.prefix}:user:u-1`, "user:clicks_7d"), "3");
    assert.equal(await s.redis.hget(`${s.prefix}:user:u-2`, "user:clicks_7d"), "50");
    assert.equal(await s.redis.hget(`${s.prefix}:item:i-1`, "item:popularity_7d"), "0.5");
    const ttl = await s.redis.ttl(`${s.prefix}:item:i-1`);
    assert.ok(ttl > 86_000 && ttl <= 86_400, `item ttl ${ttl}`);
    assert.equal(await s.redis.ttl(`${s.prefix}:user:u-1`), -1);
    for (const k of ["item:i-2", "item:i-3", "item:i-4", "item:i-6", "item:", "shop:s-1"]) {
      assert.equal(await s.redis.exists(`${s.prefix}:${k}`), 0, k);
    }

    // The DLQ holds exactly the bad records, byte for byte, with the aimass.dlq.* headers.
    const dlq = await readTopic(t, s.kafka, s.dlq, {
      until: (r) => r.length >= bads.length,
      timeoutMs: 30_000,
      lingerMs: 1_500,
    });
    assert.equal(dlq.length, bads.length);
    const h = (r: (typeof dlq)[number], name: string) => r.headers?.[name]?.toString();
    for (const b of bads) {
      const matches = dlq.filter(
        (r) =>
          h(r, DLQ_HEADER.sourcePartition) === String(b.partition) &&
          h(r, DLQ_HEADER.sourceOffset) === b.offset,
      );
      assert.equal(matches.length, 1, `DLQ records for ${b.partition}/${b.offset}`);
      const r = matches[0] as (typeof dlq)[number];
      assert.equal(h(r, DLQ_HEADER.sourceTopic), s.updates);
      assert.equal(h(r, DLQ_HEADER.stage), b.bad?.stage);
      assert.equal(h(r, DLQ_HEADER.errorCode), b.bad?.code);
      assert.equal(h(r, DLQ_HEADER.errorClass), `AimassError:${b.bad?.code}`);
      assert.equal(h(r, DLQ_HEADER.pipeline), "fw-test");
      assert.ok((h(r, DLQ_HEADER.errorMessage) ?? "").length > 0);
      assert.equal(r.key, b.key);
      assert.deepEqual(r.value, b.value);
    }
    const withOrigin = dlq.find((r) => h(r, "x-origin") === "batch-7");
    assert.ok(withOrigin, "source headers are kept");
    assert.match(h(withOrigin, DLQ_HEADER.errorMessage) ?? "", /not valid JSON/);
    const unknownView = dlq.find((r) => r.key === "s-1");
    assert.ok(unknownView);
    assert.match(h(unknownView, DLQ_HEADER.errorMessage) ?? "", /unknown view "shop"/);

    assert.equal(await metric(writer, "aimass_features_updates_applied_total"), 4 + 20);
    assert.ok((await metric(writer, "aimass_features_updates_skipped_stale_total")) >= 5);
    assert.ok((await metric(writer, "aimass_features_updates_consumed_total")) >= sent.length);
    assert.equal(await metric(writer, "aimass_features_dlq_records_total", { reason: "DECODE_FAILED" }), 3);
    assert.equal(await metric(writer, "aimass_features_dlq_records_total", { reason: "FIELD_INVALID" }), 6);
    assert.equal(await metric(writer, "aimass_features_redis_errors_total"), 0);
    assert.equal(await metric(writer, "aimass_features_redis_available"), 1);
    assert.match(await writer.registry.metrics(), /aimass_features_write_duration_seconds_count [1-9]/);

    assert.equal(await writer.stop(), 0);
    assert.equal(writer.state, "stopped");
    assert.equal(await writer.stop(), 0, "stop is idempotent");
  },
);

test(
  "a replay of the whole topic (offsets reset) leaves Redis unchanged",
  { timeout: 120_000 },
  async (t) => {
    const s = await setup(t);
    const sent: Sent[] = [];
    for (let i = 0; i < 10; i++) sent.push(await sendUpdate(s, "user", "u-r", 100 + i, { clicks_7d: i }));
    sent.push(await sendUpdate(s, "user", "u-r", 50, { clicks_7d: -1 }));
    const first = startWriter(s);
    await first.start();
    await until("the first pass", () => coversTopic(s));
    assert.equal(await first.stop(), 0);
    await assertRedisHolds(s, newest(sent));

    await s.admin.resetOffsets({
      groupId: `${s.config.pipeline.groupId}-features`,
      topic: s.updates,
      earliest: true,
    });
    assert.equal(await coversTopic(s), false);
    const second = startWriter(s);
    await second.start();
    await until("the replay", () => coversTopic(s));
    assert.equal(await metric(second, "aimass_features_updates_applied_total"), 0);
    assert.equal(await metric(second, "aimass_features_updates_skipped_stale_total"), 11);
    await assertRedisHolds(s, newest(sent));
    assert.equal(await second.stop(), 0);
  },
);

test(
  "Redis down: offsets do not advance, nothing is lost, everything lands after it restarts",
  { timeout: 120_000 },
  async (t) => {
    const own = await OwnRedis.start(t);
    const s = await setup(t, { redisUrl: own.url, stallTimeoutMs: 10_000 });
    const writer = startWriter(s);
    await writer.start();
    const before: Sent[] = [];
    for (let i = 0; i < 3; i++) before.push(await sendUpdate(s, "user", `u-${i}`, 100, { clicks_7d: i }));
    await until("the first updates", () => coversTopic(s));
    await assertRedisHolds(s, newest(before));

    await own.kill();
    const committedBefore = await committed(s);
    const during: Sent[] = [];
    for (let i = 0; i < 12; i++) {
      during.push(await sendUpdate(s, "user", `u-${i % 6}`, 200 + i, { clicks_7d: 100 + i }));
    }
    during.push(await sendUpdate(s, "item", "i-9", 300, { popularity_7d: 0.25 }));
    during.push(
      await send(s, "bad", Buffer.from("nope"), { bad: { stage: "decode", code: "DECODE_FAILED" } }),
    );
    await until(
      "redis errors to show",
      async () => (await metric(writer, "aimass_features_redis_errors_total")) >= 2,
    );
    await sleep(3_000);
    assert.deepEqual(await committed(s), committedBefore, "no offset advances while Redis is down");
    assert.equal(writer.state, "running");
    assert.equal(await metric(writer, "aimass_features_redis_available"), 0);
    // Past processing.stallTimeoutMs without a commit, /healthz says so.
    await until("the stall to fail liveness", () => !writer.alive, 60_000);
    const errors = await metric(writer, "aimass_features_redis_errors_total");
    t.diagnostic(`write attempts failed during the outage: ${errors}`);

    await own.restart();
    const restarted = performance.now();
    await until("the updates to land after the restart", () => coversTopic(s), 60_000);
    assert.equal(writer.alive, true, "alive again once the chunk committed");
    t.diagnostic(`caught up ${(performance.now() - restarted).toFixed(0)} ms after Redis restarted`);
    // The restarted server is empty (no persistence): what was written before is gone, but
    // every update from the outage is there, newest-wins.
    await assertRedisHolds(s, newest(during));
    assert.equal(await metric(writer, "aimass_features_updates_applied_total"), 3 + 12 + 1);
    assert.equal(await metric(writer, "aimass_features_dlq_records_total", { reason: "DECODE_FAILED" }), 1);
    assert.equal(await writer.stop(), 0);
  },
);

test(
  "stop during a Redis outage gives up within the grace time without committing",
  { timeout: 60_000 },
  async (t) => {
    const own = await OwnRedis.start(t);
    const s = await setup(t, { redisUrl: own.url, shutdownGraceMs: 3_000 });
    const writer = startWriter(s);
    await writer.start();
    await own.kill();
    for (let i = 0; i < 5; i++) await sendUpdate(s, "user", `u-${i}`, 100, { clicks_7d: i });
    await until(
      "redis errors to show",
      async () => (await metric(writer, "aimass_features_redis_errors_total")) >= 1,
    );
    const started = performance.now();
    const code = await writer.stop();
    const ms = performance.now() - started;
    assert.equal(code, 1, "an abandoned chunk is not a clean stop");
    assert.ok(ms < 3_500, `stopped after ${ms} ms`);
    assert.equal(writer.state, "stopped");
    assert.equal(await coversTopic(s), false, "nothing was committed");
    const c = await committed(s);
    assert.ok(
      [...c.values()].every((o) => o === -1n),
      "no offsets at all",
    );
  },
);

test(
  "Avro updates (schemas/feature-update.avsc) are decoded and applied",
  { timeout: 120_000 },
  async (t) => {
    const s = await setup(t, { format: "avro" });
    const registry = testRegistry();
    await registry.register(`${s.updates}-value`, {
      schemaType: "AVRO",
      schema: readFileSync(repoPath("schemas/feature-update.avsc"), "utf8"),
    });
    const codec = avroCodec({ registry });
    const sent: Sent[] = [];
    const avro = async (view: string, key: string, ts: number, values: Record<string, number>) => {
      const value = await codec.encode(s.updates, { view, key, ts, values });
      sent.push(await send(s, key, value, { update: { view, key, ts, values } }));
    };
    await avro("user", "u-a", 2_000, { clicks_7d: 7, purchases_30d: 2 });
    await avro("user", "u-a", 1_000, { clicks_7d: 1, purchases_30d: 1 });
    await avro("item", "i-a", 2_000, { popularity_7d: 0.75 });
    const value = await codec.encode(s.updates, { view: "item", key: "i-b", ts: 2_000, values: { nope: 1 } });
    sent.push(await send(s, "i-b", value, { bad: { stage: "validate", code: "FIELD_INVALID" } }));
    sent.push(
      await send(s, "j", json({ view: "user" }), { bad: { stage: "decode", code: "DECODE_FAILED" } }),
    );
    const writer = startWriter(s);
    await writer.start();
    await until("the avro updates", () => coversTopic(s), 60_000);
    await assertRedisHolds(s, newest(sent));
    assert.equal(await metric(writer, "aimass_features_dlq_records_total", { reason: "DECODE_FAILED" }), 1);
    assert.equal(await metric(writer, "aimass_features_dlq_records_total", { reason: "FIELD_INVALID" }), 1);
    assert.equal(await writer.stop(), 0);
  },
);

test(
  "an update near the broker's size limit is dead-lettered cut down to features.dlq.maxRecordBytes",
  { timeout: 120_000 },
  async (t) => {
    const s = await setup(t);
    const writer = startWriter(s);
    await writer.start();
    // Fits the updates topic (1 MB max.message.bytes by default), but its DLQ copy with the
    // aimass.dlq.* headers on top would not: the broker would refuse it on every retry.
    const big = Buffer.alloc(1_048_000, "x");
    const bad = await send(s, "big", big, { headers: { "x-origin": "near-limit" } });
    const after = await sendUpdate(s, "user", "u-after", 100, { clicks_7d: 1 });
    await until("the updates to commit", () => coversTopic(s), 60_000);
    await assertRedisHolds(s, newest([after]));
    const [dlq] = await readTopic(t, s.kafka, s.dlq, { until: (r) => r.length >= 1, timeoutMs: 30_000 });
    assert.ok(dlq);
    const h = (name: string) => dlq.headers?.[name]?.toString();
    assert.equal(h(DLQ_HEADER.sourceOffset), bad.offset);
    assert.equal(h(DLQ_HEADER.errorCode), "DECODE_FAILED");
    assert.equal(h("aimass.dlq.truncated"), "headers,value");
    assert.equal(h("aimass.dlq.original.bytes"), String(big.length + "big".length + "x-origin".length + 10));
    assert.ok((dlq.value?.length ?? 0) < 900_000 && (dlq.value?.length ?? 0) > 800_000);
    assert.equal(await writer.stop(), 0);
  },
);
