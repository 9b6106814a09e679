// Reading and writing the control topic from the command line: the latest desired state per
// model, and new states written with the next revision.
import { hostname, userInfo } from "node:os";
import type { Admin, Kafka } from "kafkajs";
import { parseDesiredState, type AuditRecord, type DesiredState } from "./desired-state.js";
import { readTopicToEnd } from "../kafka/follow-topic.js";
import { TUNING } from "../tuning.js";

/** Reads the (compacted) control topic to its end: the latest state per model. */
export async function readControlState(
  kafka: Kafka,
  admin: Admin,
  topic: string,
): Promise<Map<string, DesiredState>> {
  const states = new Map<string, DesiredState>();
  await readTopicToEnd({
    kafka,
    admin,
    topic,
    groupId: `aimass-cli-${process.pid}-${Date.now()}`,
    fetchMaxWaitMs: TUNING.kafka.fetchMaxWaitMs,
    timeoutMs: TUNING.control.catchUpTimeoutMs,
    onRecord: (message) => {
      if (!message.value) return;
      try {
        const s = parseDesiredState(message.value);
        if ((states.get(s.model)?.revision ?? 0) < s.revision) states.set(s.model, s);
      } catch {
        // an invalid record is skipped here as it is by the workers
      }
    },
  });
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
