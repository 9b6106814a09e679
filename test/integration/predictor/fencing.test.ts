// Zombie fencing, deterministically: a partition worker holding a prepared chunk is
// replaced by a new owner with the same transactional id; when the old one finally tries
// to commit, the broker refuses it, and the output holds exactly one copy of each record.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { connectedAdmin, tempTopic, testKafka, testLogger, uniqueName } from "../../helpers/stack.js";
import { readTopic } from "../../helpers/kafka-read.js";
import {
  PartitionWorker,
  type PartitionWorkerOptions,
} from "../../../services/predictor/partition-worker.js";
import type { ChunkPreparer, ProcessedChunk } from "../../../services/predictor/chunk.js";
import { kafkaTransactionalSink } from "../../../services/common/kafka/transactional-sink.js";
import type { SourceRecord } from "../../../services/common/records.js";

/** A processor that echoes each record as a prediction, optionally waiting on a gate. */
function echoProcessor(gate?: Promise<void>): ChunkPreparer {
  return {
    prepare: async (records: SourceRecord[]): Promise<ProcessedChunk> => {
      await gate;
      return {
        predictions: records.map((r) => ({ key: r.key, value: Buffer.from(`pred:${r.offset}`) })),
        predictionSources: records.map((_, i) => i),
        dlq: [],
        shadow: [],
        dlqByStage: {},
        shadowFailures: 0,
      };
    },
  };
}

function records(topic: string, from: number, n: number): SourceRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    topic,
    partition: 0,
    offset: String(from + i),
    timestamp: String(Date.now()),
    key: Buffer.from(`k${from + i}`),
    value: Buffer.from(`v${from + i}`),
    headers: {},
  }));
}

/** One input and one output topic, a group and a transactional id, and the worker options on them. */
async function fixture(t: TestContext, prefix: string) {
  const kafka = testKafka();
  const admin = await connectedAdmin(t, kafka);
  const input = await tempTopic(t, admin, `${prefix}-in`);
  const output = await tempTopic(t, admin, `${prefix}-out`);
  const groupId = uniqueName(`${prefix}-group`);
  const transactionalId = uniqueName(`${prefix}-txn`);
  const base = {
    topic: input,
    partition: 0,
    groupId,
    outputTopic: output,
    dlqTopic: output,
    shadowTopic: output,
    dlq: { pipeline: "test" },
    maxRecordsPerTransaction: 1_000,
    retryInitialMs: 50,
    retryMaxMs: 500,
    logger: testLogger,
    startAfter: Promise.resolve(),
    newSink: () =>
      kafkaTransactionalSink({
        kafka,
        transactionalId,
        transactionTimeoutMs: 30_000,
        maxRequestBytes: 900_000,
      }),
    startOffset: async () => {
      const [entry] = await admin.fetchOffsets({ groupId, topics: [input] });
      const o = entry?.partitions[0]?.offset;
      return o === undefined || o === "-1" ? 0n : BigInt(o);
    },
    rewind: async () => undefined,
    onQueueChange: () => undefined,
    onCommitted: () => undefined,
    onAbort: () => undefined,
  } satisfies Partial<PartitionWorkerOptions>;
  return { kafka, admin, input, output, groupId, base };
}

test(
  "a zombie's late commit is refused after a new owner takes its transactional id",
  { timeout: 120_000 },
  async (t) => {
    const { kafka, admin, input, output, groupId, base } = await fixture(t, "fence");

    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let zombieFenced = 0;
    const zombie = new PartitionWorker({
      ...base,
      preparer: echoProcessor(gate),
      onLost: () => zombieFenced++,
    });
    t.after(() => zombie.kill());
    zombie.enqueue(records(input, 0, 10), 0n);
    // Let the zombie initialise its producer and block in preparation, holding the chunk.
    while (zombie.state !== "running") await new Promise((r) => setTimeout(r, 20));

    const owner = new PartitionWorker({
      ...base,
      preparer: echoProcessor(),
      onLost: () => assert.fail("owner fenced"),
    });
    t.after(() => owner.kill());
    while (owner.state !== "running") await new Promise((r) => setTimeout(r, 20));
    owner.enqueue(records(input, 0, 10), 0n);

    // The owner commits; then the zombie wakes up and tries to commit the same chunk.
    const committed = await readTopic(t, kafka, output, { until: (r) => r.length >= 10, timeoutMs: 30_000 });
    assert.equal(committed.length, 10);
    release();
    const settled = (): string => zombie.state; // re-read: the state changes under our feet
    while (settled() !== "fenced" && settled() !== "stopped") await new Promise((r) => setTimeout(r, 20));
    assert.equal(settled(), "fenced");
    assert.equal(zombieFenced, 1);

    const all = await readTopic(t, kafka, output, {
      until: (r) => r.length >= 10,
      timeoutMs: 30_000,
      lingerMs: 2_000,
    });
    assert.deepEqual(
      all.map((r) => r.value?.toString()),
      Array.from({ length: 10 }, (_, i) => `pred:${i}`),
    );
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [input] });
    assert.equal(offsets?.partitions[0]?.offset, "10");
    await owner.stop("drain");
  },
);

test(
  "a new owner skips records its predecessor committed after the fetch position was read",
  { timeout: 120_000 },
  async (t) => {
    const { kafka, input, output, base } = await fixture(t, "floor");
    const common = {
      ...base,
      preparer: echoProcessor(),
      onLost: () => undefined,
    } satisfies PartitionWorkerOptions;

    // The predecessor commits offsets 0..5.
    const first = new PartitionWorker(common);
    first.enqueue(records(input, 0, 6), 0n);
    await first.stop("drain");

    // The successor's consumer had read position 0 before that commit landed, so it is handed
    // 0..9 again; after fencing it re-reads the committed offset (6) and skips 0..5.
    const second = new PartitionWorker(common);
    t.after(() => second.kill());
    second.enqueue(records(input, 0, 10), 0n);
    const out = await readTopic(t, kafka, output, {
      until: (r) => r.length >= 10,
      timeoutMs: 30_000,
      lingerMs: 2_000,
    });
    assert.deepEqual(
      out.map((r) => r.value?.toString()),
      Array.from({ length: 10 }, (_, i) => `pred:${i}`),
    );
    await second.stop("drain");
  },
);
