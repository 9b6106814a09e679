// Poison records of every kind against the real stack and an in-process Predictor: each one
// lands in the DLQ exactly once, byte-identical (or, over the DLQ's byte budget, cut down and
// saying so), with headers naming the stage, the error and its origin; every good record gets
// exactly one prediction; the worker never restarts, never hangs and keeps processing.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import kafkajs, { type Admin, type IHeaders, type Kafka, type Producer } from "kafkajs";
import { AvroSerializer, SerdeType, SubjectNameStrategyType } from "@confluentinc/schemaregistry";
import type { PipelineConfig } from "../../../services/common/config/load.js";
import { Predictor } from "../../../services/predictor/predictor.js";
import {
  connectedAdmin,
  deferrer,
  tempTopic,
  testKafka,
  testLogger,
  testRegistry,
  uniqueName,
} from "../../helpers/stack.js";
import { readTopic, type ReadRecord } from "../../helpers/kafka-read.js";
import { testPipelineConfig, type TestPipelineOverrides } from "../../helpers/pipeline.js";

// kafkajs is CommonJS; Node's ESM loader does not find this export by name.
const { ConfigResourceTypes } = kafkajs;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Topics {
  input: string;
  output: string;
  dlq: string;
  group: string;
}

/** What was sent, where it landed, and (for poison) what the DLQ must say about it. */
interface Sent {
  key: string;
  value: Buffer | null;
  headers: Record<string, Buffer>;
  partition: number;
  offset: string;
  expect?: {
    stage: string;
    code: string;
    model?: { name: string; version: string };
    message?: RegExp;
    /** The DLQ copy was over dlq.maxRecordBytes: what aimass.dlq.truncated must say. */
    truncated?: string;
  };
}

/** A t.after look-alike whose hooks run last-in first-out (see deferrer). */
interface Cleanup {
  after(fn: () => unknown): void;
}

interface Scenario {
  cleanup: Cleanup;
  kafka: Kafka;
  admin: Admin;
  producer: Producer;
  topics: Topics;
  config: PipelineConfig;
}

async function scenario(
  t: TestContext,
  prefix: string,
  overrides: Omit<TestPipelineOverrides, keyof Topics>,
): Promise<Scenario> {
  // Cleanup runs last-in first-out: the predictor and readers stop before the topics are
  // deleted, and the topics are deleted before the admin disconnects.
  const defer = deferrer(t);
  const cleanup: Cleanup = { after: (fn) => defer(() => fn()) };
  const kafka = testKafka();
  const admin = await connectedAdmin(cleanup, kafka);
  const topics: Topics = {
    input: await tempTopic(cleanup, admin, `${prefix}-in`, 3),
    output: await tempTopic(cleanup, admin, `${prefix}-out`, 3),
    dlq: await tempTopic(cleanup, admin, `${prefix}-dlq`, 3),
    group: uniqueName(`${prefix}-group`),
  };
  const producer = kafka.producer();
  await producer.connect();
  defer(() => producer.disconnect());
  const config = testPipelineConfig({ ...topics, name: prefix, ...overrides });
  return { kafka, admin, producer, topics, config, cleanup };
}

/** Sends one record to a given partition and returns where it landed. */
async function send(
  s: Scenario,
  partition: number,
  key: string,
  value: Buffer | string | null,
  headers: Record<string, Buffer> = {},
  expect?: Sent["expect"],
): Promise<Sent> {
  const bytes = value === null ? null : Buffer.isBuffer(value) ? value : Buffer.from(value, "utf8");
  const [meta] = await s.producer.send({
    topic: s.topics.input,
    messages: [{ key, value: bytes, headers, partition }],
  });
  assert.ok(meta && meta.baseOffset !== undefined);
  return {
    key,
    value: bytes,
    headers,
    partition: meta.partition,
    offset: meta.baseOffset,
    ...(expect ? { expect } : {}),
  };
}

/** Starts a Predictor and watches its state: any non-running state before stop is recorded. */
async function startPredictor(s: Scenario) {
  const predictor = new Predictor({ config: s.config, logger: testLogger, instanceId: uniqueName("poison") });
  s.cleanup.after(() => predictor.stop());
  await predictor.start();
  assert.equal(predictor.state, "running");
  const offStates: string[] = [];
  let watching = true;
  const watcher = setInterval(() => {
    if (watching && predictor.state !== "running") offStates.push(predictor.state);
  }, 10);
  s.cleanup.after(() => clearInterval(watcher));
  return {
    predictor,
    /** Stops watching, checks the worker never left "running", joined once, never aborted. */
    async assertHealthyAndStop(): Promise<void> {
      assert.equal(predictor.state, "running");
      watching = false;
      clearInterval(watcher);
      assert.deepEqual(offStates, [], "the predictor left the running state");
      assert.equal(await counter(predictor.metrics.rebalances), 1, "one group join: no consumer restart");
      assert.equal(await counter(predictor.metrics.transactionAborts), 0, "no transaction was aborted");
      assert.equal(await counter(predictor.metrics.fenced), 0);
      assert.equal(await predictor.stop(), 0, "a clean drain");
      assert.equal(predictor.state, "stopped");
    },
  };
}

async function counter(metric: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await metric.get()).values.reduce((n, v) => n + v.value, 0);
}

/** Waits until the group has committed every input record (and so every output of them). */
async function waitCommitted(s: Scenario, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const ends = await s.admin.fetchTopicOffsets(s.topics.input);
    const [committed] = await s.admin.fetchOffsets({ groupId: s.topics.group, topics: [s.topics.input] });
    const at = (p: number) => committed?.partitions.find((c) => c.partition === p)?.offset ?? "-1";
    if (ends.every((e) => e.high === "0" || at(e.partition) === e.high)) return;
    last = JSON.stringify(ends.map((e) => ({ p: e.partition, high: e.high, committed: at(e.partition) })));
    if (Date.now() > deadline) assert.fail(`input not fully committed after ${timeoutMs} ms: ${last}`);
    await sleep(100);
  }
}

async function readExactly(s: Scenario, topic: string, count: number): Promise<ReadRecord[]> {
  const records = await readTopic(s.cleanup, s.kafka, topic, {
    until: (r) => r.length >= count,
    // Everything is committed already (waitCommitted): this only bounds a failing run.
    timeoutMs: 15_000,
    lingerMs: 750,
  });
  assert.equal(records.length, count, `${topic}: ${records.length} records, expected ${count}`);
  return records;
}

function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  if (v === undefined) return undefined;
  return Buffer.isBuffer(v) ? v.toString("utf8") : String(v);
}

/** Headers as text, for assertion messages. */
function describeHeaders(headers: IHeaders | undefined): string {
  return JSON.stringify(
    Object.fromEntries(Object.keys(headers ?? {}).map((k) => [k, headerText(headers, k)])),
  );
}

function byKey(records: ReadRecord[]): Map<string, ReadRecord> {
  const map = new Map<string, ReadRecord>();
  for (const r of records) {
    assert.ok(r.key !== null, "every record keeps its key");
    assert.ok(!map.has(r.key), `key ${r.key} appears twice`);
    map.set(r.key, r);
  }
  return map;
}

/** One DLQ record per poison record, byte-identical, with the right aimass.dlq.* headers. */
function assertDlq(s: Scenario, dlq: ReadRecord[], poison: Sent[]): void {
  const got = byKey(dlq);
  assert.deepEqual([...got.keys()].sort(), poison.map((p) => p.key).sort());
  for (const sent of poison) {
    const rec = got.get(sent.key) as ReadRecord;
    const expect = sent.expect;
    assert.ok(expect);
    const what = `${sent.key}: ${describeHeaders(rec.headers)}`;
    const h = (name: string) => headerText(rec.headers, `aimass.dlq.${name}`);
    const cut = expect.truncated?.split(",") ?? [];
    assert.equal(h("truncated"), expect.truncated, what);
    if (sent.value === null) assert.equal(rec.value, null, what);
    else if (cut.includes("value")) {
      const prefix = rec.value ?? Buffer.alloc(0);
      assert.ok(
        prefix.length < sent.value.length && sent.value.subarray(0, prefix.length).equals(prefix),
        what,
      );
    } else assert.ok(rec.value !== null && rec.value.equals(sent.value), `${sent.key}: value differs`);
    for (const [name, bytes] of Object.entries(sent.headers)) {
      const got = rec.headers?.[name];
      if (cut.includes("headers")) assert.equal(got, undefined, `${sent.key}: header ${name} kept`);
      else assert.ok(Buffer.isBuffer(got) && got.equals(bytes), `${sent.key}: header ${name} differs`);
    }
    if (expect.truncated !== undefined) {
      assert.equal(h("original.bytes"), String(inputBytes(sent)), what);
    } else assert.equal(h("original.bytes"), undefined, what);
    assert.equal(h("stage"), expect.stage, what);
    assert.equal(h("error.code"), expect.code, what);
    assert.equal(h("error.class"), `AimassError:${expect.code}`, what);
    assert.equal(h("source.topic"), s.topics.input, what);
    assert.equal(h("source.partition"), String(sent.partition), what);
    assert.equal(h("source.offset"), sent.offset, what);
    assert.match(h("source.timestamp") ?? "", /^\d{13}$/, what);
    assert.equal(h("pipeline"), s.config.pipeline.name, what);
    assert.equal(h("model.name"), expect.model?.name, what);
    assert.equal(h("model.version"), expect.model?.version, what);
    if (expect.message) assert.match(h("error.message") ?? "", expect.message, what);
  }
}

/** What input.maxRecordBytes counts: key, value, and every header's name and value. */
function inputBytes(sent: Sent): number {
  const headers = Object.entries(sent.headers).reduce((n, [k, v]) => n + Buffer.byteLength(k) + v.length, 0);
  return Buffer.byteLength(sent.key) + (sent.value?.length ?? 0) + headers;
}

/** One prediction per good record, keyed like it, with the event id and model lineage. */
function assertPredictions(
  s: Scenario,
  records: ReadRecord[],
  good: Sent[],
  check: (sent: Sent, prediction: Record<string, unknown>) => void,
): void {
  const got = byKey(records);
  assert.deepEqual([...got.keys()].sort(), good.map((g) => g.key).sort());
  for (const sent of good) {
    const rec = got.get(sent.key) as ReadRecord;
    const prediction = JSON.parse(rec.value?.toString() ?? "null") as Record<string, unknown>;
    assert.equal(prediction.eventId, `id-${sent.key}`);
    assert.equal(headerText(rec.headers, "aimass.source.topic"), s.topics.input);
    assert.equal(headerText(rec.headers, "aimass.source.partition"), String(sent.partition));
    assert.equal(headerText(rec.headers, "aimass.source.offset"), sent.offset);
    for (const [name, bytes] of Object.entries(sent.headers)) {
      const h = rec.headers?.[name];
      assert.ok(Buffer.isBuffer(h) && h.equals(bytes), `${sent.key}: header ${name} not passed through`);
    }
    check(sent, prediction);
  }
}

const TS = Date.UTC(2025, 10, 30, 12);

function shopEvent(key: string, overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({ id: `id-${key}`, type: "view", price: 19.99, quantity: 1, ts: TS, ...overrides });
}

function poisonHeaders(kind: string, i: number): Record<string, Buffer> {
  return { "x-case": Buffer.from(kind), "x-bin": Buffer.from([0, 0xff, 0x80, i]) };
}

function assertPropensity(modelName: string) {
  return (_sent: Sent, p: Record<string, unknown>) => {
    assert.equal((p.model as { name?: string }).name, modelName);
    assert.equal((p.model as { version?: string }).version, "1");
    assert.match(String((p.model as { sha256?: string }).sha256), /^[0-9a-f]{64}$/);
    assert.ok(typeof p.propensity === "number" && p.propensity > 0 && p.propensity < 1, String(p.propensity));
    assert.equal(p.eventTs, TS);
  };
}

test(
  "JSON poison of every kind goes to the DLQ byte-identical; good records are all scored; the worker keeps running",
  { timeout: 60_000 },
  async (t) => {
    const s = await scenario(t, "poison-json", {
      maxRecordBytes: 2048,
      maxBatchSize: 32,
      maxDelayMs: 20,
      // A second model on the same ONNX file whose 8 columns come from one vector field.
      patch: (raw) => {
        const shop = raw.models[0];
        assert.ok(shop);
        raw.models.push({
          ...shop,
          name: "shop-vec",
          inputs: [{ name: "features", type: "float32", columns: [{ field: "vec", length: 8 }] }],
        });
        raw.routing = { ...raw.routing, routes: { ...raw.routing?.routes, vec: "shop-vec" } };
      },
    });
    const shopModel = { name: "shop-propensity", version: "1" };
    const vecModel = { name: "shop-vec", version: "1" };

    const big = (() => {
      const head = `{"id":"id-p-size","type":"view","price":1,"quantity":1,"ts":${TS},"pad":"`;
      return head + "a".repeat(4096 - head.length - 2) + '"}';
    })();
    assert.equal(Buffer.byteLength(big), 4096);
    JSON.parse(big); // valid JSON: only its size is wrong

    const poisonSpecs: Array<[string, Buffer | string | null, NonNullable<Sent["expect"]>]> = [
      [
        "p-notjson",
        Buffer.from([0x7b, 0xff, 0x00, 0x6e, 0x6f, 0x74]),
        { stage: "decode", code: "DECODE_FAILED" },
      ],
      ["p-array", "[1,2,3]", { stage: "decode", code: "DECODE_FAILED", message: /not an object/ }],
      ["p-tombstone", null, { stage: "decode", code: "DECODE_FAILED", message: /tombstone/ }],
      [
        "p-size",
        big,
        {
          stage: "size",
          code: "PAYLOAD_TOO_LARGE",
          message: /\(value 4096, key 6, headers \d+\), limit 2048 \(input.maxRecordBytes\)/,
        },
      ],
      [
        "p-missing",
        JSON.stringify({ id: "id-p-missing", type: "cart", quantity: 1, ts: TS }),
        { stage: "validate", code: "FIELD_INVALID", model: shopModel, message: /"price" is missing/ },
      ],
      [
        "p-nan",
        shopEvent("p-nan", { price: "NaN" }),
        {
          stage: "validate",
          code: "FIELD_INVALID",
          model: shopModel,
          message: /"price" is not a finite number/,
        },
      ],
      [
        "p-inf",
        `{"id":"id-p-inf","type":"purchase","price":1e999,"quantity":1,"ts":${TS}}`,
        {
          stage: "validate",
          code: "FIELD_INVALID",
          model: shopModel,
          message: /"price" is not a finite number/,
        },
      ],
      [
        "p-refund",
        shopEvent("p-refund", { type: "refund" }),
        { stage: "route", code: "ROUTE_UNKNOWN", message: /refund/ },
      ],
      [
        "p-shape",
        shopEvent("p-shape", { type: "vec", vec: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7] }),
        {
          stage: "validate",
          code: "TENSOR_SHAPE",
          model: vecModel,
          message: /"vec".*length 8, got length 7/,
        },
      ],
    ];

    // Good and poison records interleaved on all three partitions, sent before the worker
    // starts so they are fetched, batched and committed together.
    const good: Sent[] = [];
    const poison: Sent[] = [];
    const types = ["view", "cart", "purchase"];
    for (let i = 0; i < poisonSpecs.length; i++) {
      const key = `g-${i}`;
      const trace = {
        traceparent: Buffer.from(`00-${i.toString(16).padStart(32, "0")}-00f067aa0ba902b7-01`),
      };
      good.push(await send(s, i % 3, key, shopEvent(key, { type: types[i % 3], price: i + 0.5 }), trace));
      const [pkey, value, expect] = poisonSpecs[i] as (typeof poisonSpecs)[number];
      poison.push(await send(s, (i + 1) % 3, pkey, value, poisonHeaders(pkey, i), expect));
    }
    for (let i = 0; i < 3; i++) {
      const key = `v-${i}`;
      good.push(
        await send(s, i, key, shopEvent(key, { type: "vec", vec: [i, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7] })),
      );
    }

    const { predictor, assertHealthyAndStop } = await startPredictor(s);
    await waitCommitted(s);
    const [predictions, dlq] = await Promise.all([
      readExactly(s, s.topics.output, good.length),
      readExactly(s, s.topics.dlq, poison.length),
    ]);
    assertDlq(s, dlq, poison);
    const scored = (sent: Sent, p: Record<string, unknown>) =>
      assertPropensity(sent.key.startsWith("v-") ? "shop-vec" : "shop-propensity")(sent, p);
    assertPredictions(s, predictions, good, scored);
    assert.equal(await counter(predictor.metrics.predictions), good.length);
    assert.equal(await counter(predictor.metrics.dlq), poison.length);

    // Still running, still processing: one more good record after all that poison.
    assert.equal(predictor.state, "running");
    const after = await send(s, 1, "g-after", shopEvent("g-after", { type: "purchase" }));
    await waitCommitted(s);
    const all = await readExactly(s, s.topics.output, good.length + 1);
    assertPredictions(s, all, [...good, after], scored);
    await readExactly(s, s.topics.dlq, poison.length);
    await assertHealthyAndStop();
  },
);

async function histogramCount(
  metric: { get(): Promise<{ values: Array<{ value: number; metricName?: string; labels: object }> }> },
  labels: Record<string, string>,
): Promise<number> {
  return (await metric.get()).values
    .filter((v) => v.metricName?.endsWith("_count"))
    .filter((v) =>
      Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want),
    )
    .reduce((n, v) => n + v.value, 0);
}

test(
  "a record that makes the model fail goes to the DLQ (stage inference); its batch-mates are scored",
  { timeout: 60_000 },
  async (t) => {
    const s = await scenario(t, "poison-gather", { model: "gather", maxBatchSize: 16, maxDelayMs: 50 });
    const gatherModel = { name: "test-gather", version: "1" };
    // All on partition 0, sent before the worker starts: one fetch, one chunk, one batch.
    const idxs = [0, 1, 2, 3, 99, 3, 2, 0];
    const good: Sent[] = [];
    const poison: Sent[] = [];
    for (const [i, idx] of idxs.entries()) {
      const key = idx === 99 ? "p-idx-99" : `g-${i}`;
      const value = JSON.stringify({ id: `id-${key}`, idx, ts: TS });
      if (idx === 99) {
        poison.push(
          await send(s, 0, key, value, poisonHeaders(key, i), {
            stage: "inference",
            code: "INFERENCE_FAILED",
            model: gatherModel,
          }),
        );
      } else good.push(await send(s, 0, key, value));
    }

    const { predictor, assertHealthyAndStop } = await startPredictor(s);
    await waitCommitted(s);
    const [predictions, dlq] = await Promise.all([
      readExactly(s, s.topics.output, good.length),
      readExactly(s, s.topics.dlq, poison.length),
    ]);
    assertDlq(s, dlq, poison);
    assertPredictions(s, predictions, good, (sent, p) => {
      const idx = (JSON.parse(sent.value?.toString() ?? "{}") as { idx: number }).idx;
      assert.equal((p.model as { name?: string }).name, "test-gather");
      assert.ok(
        typeof p.score === "number" && Math.abs(p.score - 0.1 * (idx + 1)) < 1e-6,
        `idx ${idx}: ${p.score}`,
      );
    });
    // The bad row shared a batch with the good ones: the first run failed as a whole and was
    // bisected (more than one failed run), and the good rows' runs succeeded.
    const failedRuns = await histogramCount(predictor.metrics.inferenceSeconds, { outcome: "error" });
    assert.ok(failedRuns > 1, `${failedRuns} failed inference runs: the bad row was alone in its batch`);
    assert.ok((await histogramCount(predictor.metrics.inferenceSeconds, { outcome: "ok" })) >= 1);

    const after = await send(s, 2, "g-after", JSON.stringify({ id: "id-g-after", idx: 1, ts: TS }));
    await waitCommitted(s);
    const all = await readExactly(s, s.topics.output, good.length + 1);
    assert.ok(all.some((r) => r.key === after.key));
    await assertHealthyAndStop();
  },
);

test(
  "Avro input: an unknown schema id is SCHEMA_UNKNOWN, a non-wire-format record DECODE_FAILED; a valid record is scored",
  { timeout: 60_000 },
  async (t) => {
    const s = await scenario(t, "poison-avro", { inputFormat: "avro", maxDelayMs: 20 });
    const registry = testRegistry();
    const schema = {
      type: "record",
      name: "ShopEvent",
      namespace: "dev.aimass.test",
      fields: [
        { name: "id", type: "string" },
        { name: "type", type: "string" },
        { name: "price", type: "double" },
        { name: "quantity", type: "int" },
        { name: "ts", type: "long" },
      ],
    };
    const schemaId = await registry.register(`${s.topics.input}-value`, {
      schemaType: "AVRO",
      schema: JSON.stringify(schema),
    });
    const serializer = new AvroSerializer(registry, SerdeType.VALUE, {
      subjectNameStrategyType: SubjectNameStrategyType.TOPIC,
      useLatestVersion: true,
      autoRegisterSchemas: false,
    });
    const avro = (key: string, type: string) =>
      serializer.serialize(s.topics.input, { id: `id-${key}`, type, price: 5.5, quantity: 2, ts: TS });

    const good: Sent[] = [];
    const poison: Sent[] = [];
    const valid = await avro("g-0", "cart");
    assert.equal(valid.readInt32BE(1), schemaId);
    good.push(await send(s, 0, "g-0", valid));
    const unknownId = Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 0x02, 0x41, 0x42]);
    poison.push(
      await send(s, 0, "p-unknown-schema", unknownId, poisonHeaders("unknown-schema", 1), {
        stage: "decode",
        code: "SCHEMA_UNKNOWN",
        message: /2147483632/,
      }),
    );
    poison.push(
      await send(s, 1, "p-json-in-avro", shopEvent("p-json-in-avro"), poisonHeaders("json-in-avro", 2), {
        stage: "decode",
        code: "DECODE_FAILED",
        message: /wire format/,
      }),
    );
    poison.push(
      await send(s, 2, "p-avro-refund", await avro("p-avro-refund", "refund"), poisonHeaders("refund", 3), {
        stage: "route",
        code: "ROUTE_UNKNOWN",
      }),
    );
    good.push(await send(s, 2, "g-1", await avro("g-1", "view")));

    const { assertHealthyAndStop } = await startPredictor(s);
    await waitCommitted(s);
    const [predictions, dlq] = await Promise.all([
      readExactly(s, s.topics.output, good.length),
      readExactly(s, s.topics.dlq, poison.length),
    ]);
    assertDlq(s, dlq, poison);
    assertPredictions(s, predictions, good, assertPropensity("shop-propensity"));
    await assertHealthyAndStop();
  },
);

test(
  "Avro bomb, near-limit values, large headers and 1e39 among good records: input = predictions ∪ DLQ, each once, no hang",
  { timeout: 90_000 },
  async (t) => {
    // Scaled-down limits with the real broker enforcing the DLQ topic's: a DLQ copy over
    // max.message.bytes would be refused and its transaction retried forever.
    const dlqBudget = 16_384;
    const s = await scenario(t, "poison-limits", {
      inputFormat: "avro",
      maxRecordBytes: 60_000,
      maxDelayMs: 20,
      patch: (raw) => {
        const shop = raw.models[0];
        assert.ok(shop);
        raw.models.push({
          ...shop,
          name: "shop-vec",
          inputs: [{ name: "features", type: "float32", columns: [{ field: "vec", length: 8 }] }],
        });
        raw.routing = { ...raw.routing, routes: { ...raw.routing?.routes, vec: "shop-vec" } };
        raw.dlq = { ...raw.dlq, maxRecordBytes: dlqBudget };
        // Requests (and so record batches) below the DLQ topic's limit too.
        raw.processing = { ...raw.processing, maxRequestBytes: 18_000 };
      },
    });
    await s.admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: s.topics.dlq,
          configEntries: [{ name: "max.message.bytes", value: "20000" }],
        },
      ],
    });
    const described = await s.admin.describeConfigs({
      includeSynonyms: false,
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: s.topics.dlq, configNames: ["max.message.bytes"] },
      ],
    });
    assert.equal(described.resources[0]?.configEntries[0]?.configValue, "20000");

    const registry = testRegistry();
    const schema = {
      type: "record",
      name: "ShopEventLimits",
      namespace: "dev.aimass.test",
      fields: [
        { name: "id", type: "string" },
        { name: "type", type: "string" },
        { name: "price", type: "double" },
        { name: "quantity", type: "int" },
        { name: "ts", type: "long" },
        { name: "vec", type: { type: "array", items: "double" } },
        { name: "tags", type: { type: "map", values: "string" } },
      ],
    };
    await registry.register(`${s.topics.input}-value`, {
      schemaType: "AVRO",
      schema: JSON.stringify(schema),
    });
    const serializer = new AvroSerializer(registry, SerdeType.VALUE, {
      subjectNameStrategyType: SubjectNameStrategyType.TOPIC,
      useLatestVersion: true,
      autoRegisterSchemas: false,
    });
    const avro = (key: string, o: { type?: string; vec?: number[]; tags?: Record<string, string> } = {}) =>
      serializer.serialize(s.topics.input, {
        id: `id-${key}`,
        type: o.type ?? "view",
        price: 5.5,
        quantity: 2,
        ts: TS,
        vec: o.vec ?? [],
        tags: o.tags ?? {},
      });
    const vec = (first: number) => [first, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
    const shopModel = { name: "shop-propensity", version: "1" };
    const vecModel = { name: "shop-vec", version: "1" };
    const blob = (n: number, i = 0) => Buffer.alloc(n, 0x41 + i);

    // A valid record ends with the empty tags map's terminator; in its place, a block that
    // declares 2^52 entries (zig-zag varint 80 80 80 80 80 80 80 10), one entry following.
    const valid = await avro("p-bomb");
    assert.equal(valid[valid.length - 1], 0);
    const bomb = Buffer.concat([
      valid.subarray(0, -1),
      Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 2, 0x6b, 2, 0x76]),
    ]);
    const manyHeaders = Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`h${i}`, Buffer.from([i])]));
    const bigHeaders = { "x-a": blob(15_000, 0), "x-b": blob(15_000, 1), "x-c": blob(15_000, 2) };
    const nearLimit = { pad: "n".repeat(59_000) };

    const poisonSpecs: Array<[string, Buffer, Record<string, Buffer>, NonNullable<Sent["expect"]>]> = [
      [
        "p-bomb",
        bomb,
        poisonHeaders("bomb", 0),
        { stage: "decode", code: "DECODE_FAILED", message: /corrupt Avro block: 4503599627370496 items/ },
      ],
      [
        "p-near-limit",
        await avro("p-near-limit", { type: "refund", tags: nearLimit }),
        poisonHeaders("near-limit", 1),
        { stage: "route", code: "ROUTE_UNKNOWN", truncated: "headers,value" },
      ],
      [
        "p-over-limit",
        await avro("p-over-limit", { tags: { pad: "o".repeat(70_000) } }),
        poisonHeaders("over-limit", 2),
        {
          stage: "size",
          code: "PAYLOAD_TOO_LARGE",
          message: /limit 60000 \(input.maxRecordBytes\)/,
          truncated: "headers,value",
        },
      ],
      [
        "p-header-big",
        await avro("p-header-big"),
        { "x-blob": blob(20_000) },
        {
          stage: "size",
          code: "PAYLOAD_TOO_LARGE",
          message: /header "x-blob" is 20006 bytes, limit 16384/,
          truncated: "headers",
        },
      ],
      [
        "p-many-headers",
        await avro("p-many-headers"),
        manyHeaders,
        { stage: "size", code: "PAYLOAD_TOO_LARGE", message: /70 headers, limit 64/ },
      ],
      [
        "p-big-headers",
        await avro("p-big-headers", { type: "refund" }),
        bigHeaders,
        { stage: "route", code: "ROUTE_UNKNOWN", truncated: "headers" },
      ],
      [
        "p-1e39",
        await avro("p-1e39", { type: "vec", vec: vec(1e39) }),
        poisonHeaders("1e39", 6),
        {
          stage: "validate",
          code: "FIELD_INVALID",
          model: vecModel,
          message: /"vec" is 1e\+39, beyond float32/,
        },
      ],
    ];
    const goodSpecs: Array<[string, Buffer, Record<string, Buffer>]> = [
      ["g-near-limit", await avro("g-near-limit", { type: "cart", tags: nearLimit }), {}],
      ["g-big-headers", await avro("g-big-headers", { type: "purchase" }), bigHeaders],
      ["g-vec", await avro("g-vec", { type: "vec", vec: vec(0.9) }), {}],
    ];

    const good: Sent[] = [];
    const poison: Sent[] = [];
    const types = ["view", "cart", "purchase"];
    for (let i = 0; i < poisonSpecs.length; i++) {
      good.push(await send(s, i % 3, `g-${i}`, await avro(`g-${i}`, { type: types[i % 3] ?? "view" })));
      const [key, value, headers, expect] = poisonSpecs[i] as (typeof poisonSpecs)[number];
      poison.push(await send(s, (i + 1) % 3, key, value, headers, expect));
      const g = goodSpecs[i];
      if (g) good.push(await send(s, (i + 2) % 3, g[0], g[1], g[2]));
    }

    const { predictor, assertHealthyAndStop } = await startPredictor(s);
    await waitCommitted(s);
    const [predictions, dlq] = await Promise.all([
      readExactly(s, s.topics.output, good.length),
      readExactly(s, s.topics.dlq, poison.length),
    ]);
    // Every input exactly once: as a prediction or as a DLQ record, never both.
    const landed = [...predictions, ...dlq].map((r) => r.key ?? "").sort();
    assert.deepEqual(landed, [...good, ...poison].map((r) => r.key).sort());
    assertDlq(s, dlq, poison);
    assertPredictions(s, predictions, good, (sent, p) =>
      assertPropensity(sent.key === "g-vec" ? vecModel.name : shopModel.name)(sent, p),
    );
    assert.equal(await counter(predictor.metrics.dlq), poison.length);
    await assertHealthyAndStop();
  },
);
