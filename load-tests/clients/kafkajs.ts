// kafkajs passthrough, as load-tests/bench-passthrough.ts and the predictor do it.
// EOS model: pre-KIP-447 "one transactional producer per input partition": transactionalId
// `<group>.<input>.<partition>`; a partition's new owner fences the old owner by initialising
// the same transactionalId. Offsets go in with sendOffsets({consumerGroupId}) (TxnOffsetCommit
// without the group generation: kafkajs cannot send it). Group protocol: classic, eager
// rebalance (kafkajs has no cooperative assignor, no KIP-848).
import type { Producer } from "kafkajs";
import { createKafka } from "../../services/common/kafka/client.js";
import { sendOffsetsRetrying } from "../../services/common/kafka/transactions.js";
import { createLogger } from "../../services/common/logger.js";
import type { ClientVariant, Passthrough, PassthroughOptions } from "./types.js";

export async function startKafkajsPassthrough(o: PassthroughOptions): Promise<Passthrough> {
  const kafka = createKafka({
    brokers: o.brokers,
    clientId: "aimass-passthrough",
    logger: createLogger({ level: "warn" }),
  });
  const producers = new Map<number, Promise<Producer>>();
  const producerFor = (partition: number): Promise<Producer> => {
    let p = producers.get(partition);
    if (p === undefined) {
      p = (async () => {
        const producer = kafka.producer({
          transactionalId: `${o.group}.${o.input}.${partition}`,
          idempotent: true,
          maxInFlightRequests: 1,
          retry: { retries: 12, initialRetryTime: 10, maxRetryTime: 2_000 },
        });
        await producer.connect();
        return producer;
      })();
      producers.set(partition, p);
    }
    return p;
  };
  const consumer = kafka.consumer({
    groupId: o.group,
    readUncommitted: false,
    maxWaitTimeInMs: 100,
    sessionTimeout: o.sessionTimeoutMs,
    heartbeatInterval: o.heartbeatMs,
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) =>
    o.log("group join", { memberId: e.payload.memberId, assignment: e.payload.memberAssignment }),
  );
  await consumer.connect();
  await consumer.subscribe({ topics: [o.input], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 64,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      const producer = await producerFor(batch.partition);
      for (let i = 0; i < batch.messages.length && isRunning() && !isStale(); i += o.maxPerTxn) {
        const chunk = batch.messages.slice(i, i + o.maxPerTxn);
        const last = chunk[chunk.length - 1]?.offset as string;
        const txn = await producer.transaction();
        try {
          await txn.send({
            topic: o.output,
            messages: chunk.map((m) => ({
              key: m.key,
              value: m.value,
              headers: m.headers ?? {},
              partition: batch.partition,
            })),
          });
          await sendOffsetsRetrying(txn, o.group, [
            {
              topic: o.input,
              partitions: [{ partition: batch.partition, offset: (BigInt(last) + 1n).toString() }],
            },
          ]);
          await txn.commit();
        } catch (err) {
          await txn.abort().catch(() => undefined);
          throw err;
        }
        resolveOffset(last);
        await heartbeat();
      }
    },
  });
  return {
    stop: async () => {
      await consumer.disconnect();
      for (const p of producers.values()) await (await p).disconnect();
    },
  };
}

export const kafkajsVariants: ClientVariant[] = [
  {
    name: "kafkajs",
    client: "kafkajs",
    eosModel: "producer per input partition (transactionalId fencing), sendOffsets(groupId)",
    protocol: "classic, eager",
    start: startKafkajsPassthrough,
  },
];
