// Kafka 4.x transactions on the local single-node stack, through kafkajs' protocol versions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connectedAdmin, defer, tempTopic, testKafka, uniqueName } from "../../helpers/stack.js";
import { readTopic } from "../../helpers/kafka-read.js";
import { sendOffsetsRetrying } from "../../../services/common/kafka/transactions.js";

test("a committed transaction is visible to a read_committed consumer", async (t) => {
  const kafka = testKafka();
  const admin = await connectedAdmin(t, kafka);
  const topic = await tempTopic(t, admin, "txn-commit");
  const producer = kafka.producer({
    transactionalId: uniqueName("txn"),
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  defer(t, () => producer.disconnect());

  const txn = await producer.transaction();
  await txn.send({ topic, messages: [1, 2, 3].map((i) => ({ key: `k${i}`, value: `v${i}` })) });
  await txn.commit();

  const records = await readTopic(t, kafka, topic, { until: (r) => r.length >= 3, timeoutMs: 20_000 });
  assert.deepEqual(
    records.map((r) => r.value?.toString()),
    ["v1", "v2", "v3"],
  );
});

test("an aborted transaction stays invisible to read_committed and visible to read_uncommitted", async (t) => {
  const kafka = testKafka();
  const admin = await connectedAdmin(t, kafka);
  const topic = await tempTopic(t, admin, "txn-abort");
  const producer = kafka.producer({
    transactionalId: uniqueName("txn"),
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  defer(t, () => producer.disconnect());

  const aborted = await producer.transaction();
  await aborted.send({ topic, messages: [{ key: "a", value: "aborted" }] });
  await aborted.abort();
  const committed = await producer.transaction();
  await committed.send({ topic, messages: [{ key: "c", value: "committed" }] });
  await committed.commit();

  // read_committed: reaching "committed" proves the consumer read past the aborted record.
  const rc = await readTopic(t, kafka, topic, {
    until: (r) => r.some((x) => x.value?.toString() === "committed"),
    timeoutMs: 20_000,
  });
  assert.deepEqual(
    rc.map((r) => r.value?.toString()),
    ["committed"],
  );

  // read_uncommitted sees the aborted bytes: the test above could not pass by accident.
  const ru = await readTopic(t, kafka, topic, {
    until: (r) => r.some((x) => x.value?.toString() === "committed"),
    timeoutMs: 20_000,
    readUncommitted: true,
  });
  assert.deepEqual(
    ru.map((r) => r.value?.toString()),
    ["aborted", "committed"],
  );
});

test("offsets sent inside a transaction are committed only when it commits", async (t) => {
  const kafka = testKafka();
  const admin = await connectedAdmin(t, kafka);
  const topic = await tempTopic(t, admin, "txn-offsets");
  const groupId = uniqueName("group");
  const producer = kafka.producer({
    transactionalId: uniqueName("txn"),
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  defer(t, () => producer.disconnect());

  const first = await producer.transaction();
  await sendOffsetsRetrying(first, groupId, [{ topic, partitions: [{ partition: 0, offset: "5" }] }]);
  await first.abort();
  const afterAbort = await admin.fetchOffsets({ groupId, topics: [topic] });
  assert.equal(afterAbort[0]?.partitions[0]?.offset, "-1");

  const second = await producer.transaction();
  // Right after an abort the coordinator may answer CONCURRENT_TRANSACTIONS: the helper retries.
  await sendOffsetsRetrying(second, groupId, [{ topic, partitions: [{ partition: 0, offset: "7" }] }]);
  await second.commit();
  const afterCommit = await admin.fetchOffsets({ groupId, topics: [topic] });
  assert.equal(afterCommit[0]?.partitions[0]?.offset, "7");
});
