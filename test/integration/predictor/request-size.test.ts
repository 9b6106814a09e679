// A commit group whose records exceed the output topic's max.message.bytes is sent as several
// produce requests in one transaction (processing.maxRequestBytes), instead of being refused
// by the broker. The control case shows the refusal is real: the same group in one request is
// refused, and only isolating the records (one request each) gets it committed. A record the
// broker refuses on its own (larger than max.message.bytes) goes to the DLQ, and the rest of
// its chunk commits.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { connectedAdmin, tempTopic, testKafka, testLogger, uniqueName } from "../../helpers/stack.js";
import { readTopic } from "../../helpers/kafka-read.js";
import { PartitionWorker } from "../../../services/predictor/partition-worker.js";
import type { ChunkPreparer, ProcessedChunk } from "../../../services/predictor/chunk.js";
import { kafkaTransactionalSink } from "../../../services/common/kafka/transactional-sink.js";
import type { SourceRecord } from "../../../services/common/records.js";
import { kafkaErrorType } from "../../../services/common/kafka/transactions.js";

const RECORDS = 60;
const VALUE_BYTES = 1_000;

/**
 * Each record becomes a ~1 KB prediction: 60 KB in all, over the output's 20 KB batch limit.
 * Offsets in `huge` become 30 KB predictions, which the broker refuses on their own.
 */
const bigEcho = (huge: ReadonlySet<string> = new Set()): ChunkPreparer => ({
  prepare: async (records: SourceRecord[]): Promise<ProcessedChunk> => ({
    predictions: records.map((r) => ({
      key: r.key,
      value: Buffer.from(`${r.offset}:`.padEnd(huge.has(r.offset) ? 30_000 : VALUE_BYTES, "x")),
    })),
    predictionSources: records.map((_, i) => i),
    dlq: [],
    shadow: [],
    dlqByStage: {},
    shadowFailures: 0,
  }),
});

function records(topic: string, n: number): SourceRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    topic,
    partition: 0,
    offset: String(i),
    timestamp: String(Date.now()),
    key: Buffer.from(`k${i}`),
    value: Buffer.from(`v${i}`),
    headers: {},
  }));
}

async function worker(
  t: TestContext,
  maxRequestBytes: number,
  onAbort: (e: unknown) => void,
  huge?: ReadonlySet<string>,
) {
  const kafka = testKafka();
  const admin = await connectedAdmin(t, kafka);
  const input = await tempTopic(t, admin, "reqsize-in");
  const output = uniqueName("reqsize-out");
  const dlqTopic = await tempTopic(t, admin, "reqsize-dlq");
  await admin.createTopics({
    topics: [
      { topic: output, numPartitions: 1, configEntries: [{ name: "max.message.bytes", value: "20000" }] },
    ],
    waitForLeaders: true,
  });
  t.after(() => admin.deleteTopics({ topics: [output] }).catch(() => undefined));
  const groupId = uniqueName("reqsize-group");
  const transactionalId = uniqueName("reqsize-txn");
  const w = new PartitionWorker({
    topic: input,
    partition: 0,
    groupId,
    outputTopic: output,
    dlqTopic,
    shadowTopic: output,
    dlq: { pipeline: "test" },
    maxRecordsPerTransaction: 1_000,
    retryInitialMs: 50,
    retryMaxMs: 500,
    logger: testLogger,
    preparer: bigEcho(huge),
    startAfter: Promise.resolve(),
    newSink: () =>
      kafkaTransactionalSink({ kafka, transactionalId, transactionTimeoutMs: 30_000, maxRequestBytes }),
    startOffset: async () => 0n,
    rewind: async () => undefined,
    onQueueChange: () => undefined,
    onCommitted: () => undefined,
    onAbort,
    onLost: () => assert.fail("fenced"),
  });
  t.after(() => w.kill());
  w.enqueue(records(input, RECORDS), 0n);
  return { kafka, admin, input, output, dlqTopic, groupId, w };
}

test(
  "a commit group over max.message.bytes goes out in several requests, one transaction",
  { timeout: 60_000 },
  async (t) => {
    const aborts: unknown[] = [];
    const { kafka, admin, input, output, groupId, w } = await worker(t, 15_000, (e) => aborts.push(e));
    const out = await readTopic(t, kafka, output, { until: (r) => r.length >= RECORDS, timeoutMs: 30_000 });
    assert.deepEqual(
      out.map((r) => r.value?.toString().split(":")[0]),
      Array.from({ length: RECORDS }, (_, i) => String(i)),
      "every prediction once, in order",
    );
    assert.equal(aborts.length, 0);
    await w.stop("drain");
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [input] });
    assert.equal(offsets?.partitions[0]?.offset, String(RECORDS));
  },
);

test(
  "control: the same group in one request is refused, and committed once its records are isolated",
  { timeout: 60_000 },
  async (t) => {
    const aborts: unknown[] = [];
    const { kafka, admin, input, output, groupId } = await worker(t, 10_000_000, (e) => aborts.push(e));
    const out = await readTopic(t, kafka, output, { until: (r) => r.length >= RECORDS, timeoutMs: 30_000 });
    assert.ok(aborts.length > 0, "the oversized transaction should have failed");
    assert.match(String(kafkaErrorType(aborts[0]) ?? aborts[0]), /TOO_LARGE/);
    assert.deepEqual(
      out.map((r) => r.value?.toString().split(":")[0]),
      Array.from({ length: RECORDS }, (_, i) => String(i)),
      "every prediction once, in order",
    );
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [input] });
    assert.equal(offsets?.partitions[0]?.offset, String(RECORDS));
  },
);

test(
  "a prediction over the topic's max.message.bytes goes to the DLQ; the rest commits once",
  { timeout: 60_000 },
  async (t) => {
    const huge = new Set(["7", "27", "47"]);
    const aborts: unknown[] = [];
    const { kafka, admin, input, output, dlqTopic, groupId, w } = await worker(
      t,
      15_000,
      (e) => aborts.push(e),
      huge,
    );
    const dlq = await readTopic(t, kafka, dlqTopic, {
      until: (r) => r.length >= huge.size,
      timeoutMs: 30_000,
    });
    await w.stop("drain");
    const out = await readTopic(t, kafka, output, {
      until: (r) => r.length >= RECORDS - huge.size,
      timeoutMs: 30_000,
    });
    assert.deepEqual(
      out.map((r) => r.value?.toString().split(":")[0]),
      Array.from({ length: RECORDS }, (_, i) => String(i)).filter((o) => !huge.has(o)),
      "every other prediction once, in order",
    );
    assert.deepEqual(
      dlq.map((r) => r.headers?.["aimass.dlq.source.offset"]?.toString()),
      [...huge],
      "the refused records' inputs, once each",
    );
    for (const r of dlq) {
      assert.equal(r.headers?.["aimass.dlq.stage"]?.toString(), "produce");
      assert.equal(r.headers?.["aimass.dlq.error.code"]?.toString(), "KAFKA_RECORD_REJECTED");
      assert.match(String(r.headers?.["aimass.dlq.error.message"]), /MESSAGE_TOO_LARGE/);
    }
    assert.ok(aborts.length <= 2 * huge.size + 2, `bounded retries (${aborts.length} aborts)`);
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [input] });
    assert.equal(offsets?.partitions[0]?.offset, String(RECORDS));
  },
);
