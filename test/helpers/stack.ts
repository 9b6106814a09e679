// Test helpers for the real local stack: unique names, and clients whose cleanup is
// registered next to their creation (`t.after`), so a failing test leaves nothing behind.
import { randomUUID } from "node:crypto";
import type { TestContext } from "node:test";
import type { Admin, Kafka } from "kafkajs";
import { Redis } from "ioredis";
import type { SchemaRegistryClient } from "@confluentinc/schemaregistry";
import { createRegistryClient } from "../../services/common/serde/registry.js";
import { endpointsFromEnv } from "../../services/common/env.js";
import { createKafka } from "../../services/common/kafka/client.js";
import { createLogger, parseLogLevel } from "../../services/common/logger.js";

export const endpoints = endpointsFromEnv();
export const testLogger = createLogger({ level: parseLogLevel(process.env.AIMASS_TEST_LOG_LEVEL, "warn") });

type Cleanup = Pick<TestContext, "after">;

/**
 * Cleanup that runs last-in first-out, like `defer`: a resource created after another is
 * released before it (node:test runs `t.after` hooks in registration order).
 */
export function deferrer(t: Cleanup): (fn: () => unknown) => void {
  const stack: Array<() => unknown> = [];
  t.after(async () => {
    for (const fn of stack.reverse()) await fn();
  });
  return (fn) => {
    stack.push(fn);
  };
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export function testKafka(clientId = uniqueName("test")): Kafka {
  return createKafka({ brokers: endpoints.kafkaBrokers, clientId, logger: testLogger });
}

export async function connectedAdmin(t: Cleanup, kafka: Kafka = testKafka()): Promise<Admin> {
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  return admin;
}

/** Creates a topic deleted again when the test ends. */
export async function tempTopic(t: Cleanup, admin: Admin, prefix: string, partitions = 1): Promise<string> {
  const topic = uniqueName(prefix);
  await admin.createTopics({
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  t.after(() => admin.deleteTopics({ topics: [topic] }).catch(() => undefined));
  return topic;
}

export function testRedis(defer: (fn: () => unknown) => void): Redis {
  const redis = new Redis(endpoints.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
  defer(() => redis.quit().catch(() => undefined));
  return redis;
}

export function testRegistry(): SchemaRegistryClient {
  return createRegistryClient({ url: endpoints.schemaRegistryUrl });
}
