// Reading a (compacted) topic from its beginning: to the end offsets it has now, and then,
// for a follower, on as records arrive. The CLI reads the control topic to its end once; a
// predictor reads it to its end before it consumes events, then keeps following it.
import type { Admin, Consumer, Kafka, KafkaMessage } from "kafkajs";

export interface FollowOptions {
  kafka: Kafka;
  admin: Admin;
  topic: string;
  /** A group of the reader's own (no offsets are committed). */
  groupId: string;
  fetchMaxWaitMs: number;
  onRecord: (message: KafkaMessage) => Promise<void> | void;
}

export interface Follower {
  /** Resolves once every record below the end offsets seen at start was handed to onRecord. */
  caughtUp: Promise<void>;
  stop(): Promise<void>;
}

/** Starts reading; resolves once the consumer runs. A missing topic reads as empty. */
export async function followTopic(o: FollowOptions): Promise<Follower> {
  const ends = new Map((await o.admin.fetchTopicOffsets(o.topic)).map((p) => [p.partition, BigInt(p.high)]));
  const remaining = new Set([...ends].filter(([, high]) => high > 0n).map(([p]) => p));
  let caughtUp = (): void => undefined;
  const done = new Promise<void>((r) => (caughtUp = r));
  if (remaining.size === 0) caughtUp();
  const consumer: Consumer = o.kafka.consumer({ groupId: o.groupId, maxWaitTimeInMs: o.fetchMaxWaitMs });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [o.topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        await o.onRecord(message);
        if (remaining.size > 0 && BigInt(message.offset) + 1n >= (ends.get(partition) ?? 0n)) {
          remaining.delete(partition);
          if (remaining.size === 0) caughtUp();
        }
      },
    });
  } catch (err) {
    await consumer.disconnect().catch(() => undefined);
    throw err;
  }
  return {
    caughtUp: done,
    stop: async () => {
      await consumer.disconnect().catch(() => undefined);
      // The group was the reader's own; remove it on the way out.
      await o.admin.deleteGroups([o.groupId]).catch(() => undefined);
    },
  };
}

/** Reads the topic to its end and stops; rejects when that takes longer than `timeoutMs`. */
export async function readTopicToEnd(o: FollowOptions & { timeoutMs: number }): Promise<void> {
  if (!(await o.admin.listTopics()).includes(o.topic)) return;
  const follower = await followTopic(o);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      follower.caughtUp,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`could not read ${o.topic} to its end within ${o.timeoutMs} ms`)),
          o.timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await follower.stop();
  }
}
