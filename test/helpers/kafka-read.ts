// Reads a topic with a fresh read_committed consumer until a predicate holds or time runs out.
import type { Kafka, KafkaMessage } from "kafkajs";
import type { TestContext } from "node:test";
import { defer, uniqueName } from "./stack.js";

export interface ReadRecord {
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: KafkaMessage["headers"];
}

export async function readTopic(
  t: Pick<TestContext, "after">,
  kafka: Kafka,
  topic: string,
  options: {
    until: (records: ReadRecord[]) => boolean;
    timeoutMs: number;
    readUncommitted?: boolean;
    /** Keep reading this long after `until` holds, so late duplicates would be seen too. */
    lingerMs?: number;
  },
): Promise<ReadRecord[]> {
  const consumer = kafka.consumer({
    groupId: uniqueName("reader"),
    readUncommitted: options.readUncommitted ?? false,
    maxWaitTimeInMs: 100,
  });
  let disconnected = false;
  defer(t, () => (disconnected ? undefined : consumer.disconnect().catch(() => undefined)));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const records: ReadRecord[] = [];
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      records.push({
        partition,
        offset: message.offset,
        key: message.key?.toString() ?? null,
        value: message.value,
        headers: message.headers,
      });
      if (options.until(records)) {
        if (options.lingerMs) setTimeout(resolveDone, options.lingerMs);
        else resolveDone();
      }
    },
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, options.timeoutMs)))]);
  clearTimeout(timer);
  await consumer.disconnect();
  disconnected = true;
  return records;
}
