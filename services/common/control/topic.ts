// Reading and writing the control topic from the command line: the latest desired state per
// model, and new states written with the next revision.
import { hostname, userInfo } from "node:os";
import type { Admin, Kafka } from "kafkajs";
import { parseDesiredState, type AuditRecord, type DesiredState } from "./desired-state.js";

/** Reads the (compacted) control topic to its end: the latest state per model. */
export async function readControlState(
  kafka: Kafka,
  admin: Admin,
  topic: string,
): Promise<Map<string, DesiredState>> {
  const states = new Map<string, DesiredState>();
  if (!(await admin.listTopics()).includes(topic)) return states;
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  const remaining = new Set([...ends].filter(([, high]) => high > 0n).map(([p]) => p));
  if (remaining.size === 0) return states;
  const groupId = `aimass-cli-${process.pid}-${Date.now()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`could not read ${topic} to its end within 30 s`)),
        30_000,
      );
      void consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          if (message.value) {
            try {
              const s = parseDesiredState(message.value);
              if ((states.get(s.model)?.revision ?? 0) < s.revision) states.set(s.model, s);
            } catch {
              // an invalid record is skipped here as it is by the workers
            }
          }
          if (BigInt(message.offset) + 1n >= (ends.get(partition) ?? 0n)) remaining.delete(partition);
          if (remaining.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
  return states;
}

export function whoAmI(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `unknown@${hostname()}`;
  }
}

/** Writes a new desired state and its audit record. */
export async function writeControlState(
  kafka: Kafka,
  topics: { topic: string; auditTopic: string },
  state: DesiredState,
): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const audit: AuditRecord = { type: "change", state };
    await producer.sendBatch({
      topicMessages: [
        { topic: topics.topic, messages: [{ key: state.model, value: JSON.stringify(state) }] },
        { topic: topics.auditTopic, messages: [{ key: state.model, value: JSON.stringify(audit) }] },
      ],
    });
  } finally {
    await producer.disconnect();
  }
}
