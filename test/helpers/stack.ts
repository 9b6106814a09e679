// Test helpers for the real local stack: unique names, and clients whose cleanup is
// registered next to their creation (`t.after`), so a failing test leaves nothing behind.
import { randomUUID } from "node:crypto";
import type { TestContext } from "node:test";
import type { Admin, Kafka } from "kafkajs";
import { Redis } from "ioredis";
import type { SchemaRegistryClient } from "@confluentinc/schemaregistry";
import { createSchemaRegistryClient } from "../../services/common/serde/schema-registry.js";
import { endpointsFromEnv } from "../../services/common/env.js";
import { createKafka } from "../../services/common/kafka/client.js";
import { createLogger, parseLogLevel } from "../../services/common/logger.js";

export const endpoints = endpointsFromEnv();
export const testLogger = createLogger({ level: parseLogLevel(process.env.AIMASS_TEST_LOG_LEVEL, "warn") });

type Cleanup = Pick<TestContext, "after">;

const stacks = new WeakMap<Cleanup, Array<() => unknown>>();

/**
 * Registers cleanup that runs last-in first-out, like `defer` (node:test runs `t.after`
 * hooks in registration order): a topic created with an admin is deleted before that admin
 * disconnects. Every helper here registers through it.
 */
export function defer(t: Cleanup, fn: () => unknown): void {
  let stack = stacks.get(t);
  if (!stack) {
    const fns: Array<() => unknown> = [];
    stacks.set(t, fns);
    stack = fns;
    t.after(async () => {
      for (const f of fns.reverse()) await f();
    });
  }
  stack.push(fn);
}

/** `defer` bound to one test context. */
export function deferrer(t: Cleanup): (fn: () => unknown) => void {
  return (fn) => defer(t, fn);
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
  defer(t, () => admin.disconnect());
  return admin;
}

/** Creates a topic deleted again when the test ends. */
export async function tempTopic(t: Cleanup, admin: Admin, prefix: string, partitions = 1): Promise<string> {
  const topic = uniqueName(prefix);
  await admin.createTopics({
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  defer(t, () => admin.deleteTopics({ topics: [topic] }).catch(() => undefined));
  return topic;
}

export function testRedis(defer: (fn: () => unknown) => void): Redis {
  const redis = new Redis(endpoints.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
  defer(() => redis.quit().catch(() => undefined));
  return redis;
}

export function testRegistry(): SchemaRegistryClient {
  return createSchemaRegistryClient({ url: endpoints.schemaRegistryUrl });
}
