// kafkajs' sendMessages as installed (patches/kafkajs/send-messages.js), driven against a
// scripted cluster of brokers: a send that spans several leaders, where one leader fails, must
// put each partition's messages into the log once, under one run of sequence numbers, and must
// not resolve while a partition was never written. kafkajs 2.2.4's own sendMessages fails
// every test here but the first.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { join } from "node:path";
import { repoRoot as REPO } from "../../../helpers/pipeline.js";
const require = createRequire(join(REPO, "package.json"));

interface Message {
  key: string | null;
  value: string;
}
interface PartitionData {
  partition: number;
  firstSequence: number;
  messages: Message[];
}
interface TopicData {
  topic: string;
  partitions: PartitionData[];
}
type ProduceFn = (req: { topicData: TopicData[] }) => Promise<unknown>;
type SendMessages = (o: {
  acks: number;
  timeout: number;
  compression: number;
  topicMessages: Array<{ topic: string; messages: Message[] }>;
}) => Promise<Array<{ topicName: string; partition: number }>>;

const createSendMessages = require("kafkajs/src/producer/sendMessages.js") as (o: object) => SendMessages;
const createRetry = require("kafkajs/src/retry/index.js") as (o: object) => unknown;
const { KafkaJSProtocolError } = require("kafkajs/src/errors.js") as {
  KafkaJSProtocolError: new (e: { message: string; type: string; code: number; retriable: boolean }) => Error;
};
const { createErrorFromCode } = require("kafkajs/src/protocol/error.js") as {
  createErrorFromCode: (code: number) => Error;
};
const NOT_LEADER = 6;

/** An appended batch: what a leader's log would hold. */
interface Appended {
  broker: number;
  topic: string;
  partition: number;
  firstSequence: number;
  values: string[];
}

/**
 * A cluster whose leaders follow `leaders` (partition → node id, changed by the test) and whose
 * brokers answer produce requests through `answer` (default: append after `delayMs`).
 */
function cluster(o: {
  partitions: number;
  leaders: Record<number, number>;
  delayMs?: Record<number, number>;
  answer?: (broker: number, req: { topicData: TopicData[] }, attempt: number) => "append" | Error;
}) {
  const log: Appended[] = [];
  const attempts = new Map<number, number>();
  const sequences = new Map<string, number>();
  const brokers = new Map<number, { nodeId: number; produce: ProduceFn }>();
  const broker = (nodeId: number) => {
    let b = brokers.get(nodeId);
    if (!b) {
      b = {
        nodeId,
        produce: async (req) => {
          const attempt = (attempts.get(nodeId) ?? 0) + 1;
          attempts.set(nodeId, attempt);
          await new Promise((r) => setTimeout(r, o.delayMs?.[nodeId] ?? 1));
          const verdict = o.answer?.(nodeId, req, attempt) ?? "append";
          if (verdict !== "append") throw verdict;
          for (const t of req.topicData)
            for (const p of t.partitions) {
              // The leader drops a batch whose sequence it has appended already (idempotence).
              if (
                log.some(
                  (a) =>
                    a.topic === t.topic && a.partition === p.partition && a.firstSequence === p.firstSequence,
                )
              )
                continue;
              log.push({
                broker: nodeId,
                topic: t.topic,
                partition: p.partition,
                firstSequence: p.firstSequence,
                values: p.messages.map((m) => m.value),
              });
            }
          return {
            topics: req.topicData.map((t) => ({
              topicName: t.topic,
              partitions: t.partitions.map((p) => ({
                partition: p.partition,
                errorCode: 0,
                baseOffset: "0",
              })),
            })),
          };
        },
      };
      brokers.set(nodeId, b);
    }
    return b;
  };
  const metadata = () =>
    Array.from({ length: o.partitions }, (_, partitionId) => ({
      partitionId,
      leader: o.leaders[partitionId],
    }));
  const fake = {
    targetTopics: new Set<string>(),
    addMultipleTargetTopics: async () => undefined,
    refreshMetadataIfNecessary: async () => undefined,
    refreshMetadata: async () => undefined,
    isConnected: () => true,
    connect: async () => undefined,
    removeBroker: () => undefined,
    findTopicPartitionMetadata: () => metadata(),
    findLeaderForPartitions: (_topic: string, ids: string[]) => {
      const out: Record<string, number[]> = {};
      for (const id of ids) {
        const m = metadata().find((p) => p.partitionId === Number(id));
        if (!m) continue; // kafkajs' own behaviour: a partition it does not know is skipped
        (out[m.leader!] ??= []).push(m.partitionId);
      }
      return out;
    },
    findBroker: async ({ nodeId }: { nodeId: string }) => broker(Number(nodeId)),
  };
  const eos = {
    isTransactional: () => true,
    addPartitionsToTransaction: async () => undefined,
    acquireBrokerLock: async () => undefined,
    releaseBrokerLock: async () => undefined,
    getTransactionalId: () => "t",
    getProducerId: () => 1,
    getProducerEpoch: () => 0,
    getSequence: (topic: string, partition: number) => sequences.get(`${topic}/${partition}`) ?? 0,
    updateSequence: (topic: string, partition: number, n: number) =>
      sequences.set(`${topic}/${partition}`, (sequences.get(`${topic}/${partition}`) ?? 0) + n),
  };
  const logger = {
    debug: () => undefined,
    error: () => undefined,
    info: () => undefined,
    warn: () => undefined,
  };
  const send = createSendMessages({
    logger,
    cluster: fake,
    eosManager: eos,
    retrier: createRetry({ retries: 5, initialRetryTime: 5, maxRetryTime: 20 }),
    partitioner: ({
      message,
      partitionMetadata,
    }: {
      message: Message & { partition?: number };
      partitionMetadata: unknown[];
    }) => message.partition ?? roundRobin(partitionMetadata.length),
  });
  let next = 0;
  const roundRobin = (n: number) => next++ % n;
  return { log, send, attempts };
}

const notLeader = () => createErrorFromCode(NOT_LEADER);
const messages = (n: number, partitions: number) =>
  Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % partitions }));
const send = (c: { send: SendMessages }, msgs: Message[]) =>
  c.send({ acks: -1, timeout: 1000, compression: 0, topicMessages: [{ topic: "out", messages: msgs }] });

/** Every message is in the log exactly once, and each partition's values keep their order. */
function assertOnceInOrder(log: Appended[], msgs: Array<Message & { partition: number }>) {
  const values = log.flatMap((a) => a.values);
  assert.equal(values.length, new Set(values).size, `duplicated: ${values.join(",")}`);
  assert.deepEqual([...values].sort(), msgs.map((m) => m.value).sort(), "every message appended");
  for (const p of new Set(msgs.map((m) => m.partition))) {
    const inLog = log.filter((a) => a.partition === p).flatMap((a) => a.values);
    assert.deepEqual(
      inLog,
      msgs.filter((m) => m.partition === p).map((m) => m.value),
    );
  }
}

test("all leaders answer: each partition is sent once", async () => {
  const c = cluster({ partitions: 3, leaders: { 0: 1, 1: 2, 2: 3 } });
  const msgs = messages(9, 3);
  const out = await send(c, msgs);
  assertOnceInOrder(c.log, msgs);
  assert.equal(out.length, 3);
});

test("one leader fails while another is still answering: the retry waits, and re-sends only the failed partition", async () => {
  const c = cluster({
    partitions: 2,
    leaders: { 0: 1, 1: 2 },
    delayMs: { 1: 1, 2: 60 },
    answer: (broker, _req, attempt) => (broker === 1 && attempt === 1 ? notLeader() : "append"),
  });
  const msgs = messages(6, 2);
  await send(c, msgs);
  assertOnceInOrder(c.log, msgs);
  assert.equal(c.attempts.get(2), 1, "the answering leader got one request");
});

test("a partition whose leader moves to a broker that already answered is still sent", async () => {
  const leaders: Record<number, number> = { 0: 1, 1: 2 };
  const c = cluster({
    partitions: 2,
    leaders,
    delayMs: { 1: 30, 2: 1 },
    answer: (broker, _req, attempt) => {
      if (broker === 1 && attempt === 1) {
        leaders[0] = 2; // the failover: partition 0 now lives on broker 2
        return notLeader();
      }
      return "append";
    },
  });
  const msgs = messages(6, 2);
  await send(c, msgs);
  assertOnceInOrder(c.log, msgs);
  assert.ok(
    c.log.some((a) => a.partition === 0 && a.broker === 2),
    "partition 0 written on its new leader",
  );
});

test("messages without a partition are grouped once: a retry re-sends the same messages under the same sequence", async () => {
  const c = cluster({
    partitions: 2,
    leaders: { 0: 1, 1: 2 },
    answer: (broker, _req, attempt) => (broker === 2 && attempt === 1 ? notLeader() : "append"),
  });
  // Round-robin placement: grouping again on the retry would put other messages on partition 1.
  const msgs = Array.from({ length: 5 }, (_, i) => ({ key: null, value: `v${i}` }));
  await send(c, msgs);
  const values = c.log.flatMap((a) => a.values);
  assert.deepEqual([...values].sort(), msgs.map((m) => m.value).sort(), "every message appended once");
});

test("a partition the metadata does not list fails the send rather than resolving without it", async () => {
  const c = cluster({ partitions: 2, leaders: { 0: 1, 1: 2 } });
  // Partition 2 exists for the partitioner's caller but not in the metadata the send sees.
  const msgs = [...messages(4, 2), { key: "x", value: "lost?", partition: 2 }];
  await assert.rejects(send(c, msgs), (err: Error) => /metadata/i.test(err.message));
});

test("a non-retriable error fails the send", async () => {
  const c = cluster({
    partitions: 1,
    leaders: { 0: 1 },
    answer: () =>
      new KafkaJSProtocolError({ message: "bad", type: "INVALID_RECORD", code: 87, retriable: false }),
  });
  await assert.rejects(send(c, messages(2, 1)), /bad/);
});
