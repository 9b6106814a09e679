// `aimass smoke`: proves the three services answer the way aimass needs them to — a
// transactional write read back under read_committed, a schema registered and read back
// through the Confluent API, and a Redis round trip — then removes what it created.
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { SchemaRegistryClient } from "@confluentinc/schemaregistry";
import { endpointsFromEnv } from "../common/env.js";
import { createLogger } from "../common/logger.js";
import { AimassError } from "../common/errors.js";
import { connectKafka } from "./kafka.js";

export async function runSmoke(options: { timeoutMs: number }): Promise<number> {
  const endpoints = endpointsFromEnv();
  const logger = createLogger();
  const id = randomUUID().slice(0, 8);
  const deadline = Date.now() + options.timeoutMs;
  const out = (line: string) => process.stdout.write(line + "\n");

  // Kafka: transactional produce, read_committed consume.
  const { kafka, admin } = await connectKafka({
    brokers: endpoints.kafkaBrokers,
    clientId: `aimass-smoke-${id}`,
    logger,
  });
  const topic = `aimass.smoke.${id}`;
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    const producer = kafka.producer({
      transactionalId: `aimass-smoke-${id}`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    const txn = await producer.transaction();
    await txn.send({ topic, messages: [{ key: id, value: "hello" }] });
    await txn.commit();
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: `aimass-smoke-${id}`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const got = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new AimassError("KAFKA_TRANSIENT", "no committed record read back in time")),
        Math.max(1_000, deadline - Date.now()),
      );
      void consumer.run({
        eachMessage: async ({ message }) => {
          clearTimeout(timer);
          resolve(message.value?.toString() ?? "");
        },
      });
    });
    await consumer.disconnect();
    if (got !== "hello") throw new AimassError("KAFKA_TRANSIENT", `read back "${got}", expected "hello"`);
    out(
      `kafka            ok  ${endpoints.kafkaBrokers.join(",")}  (transactional write read back read_committed)`,
    );
    await admin.deleteGroups([`aimass-smoke-${id}`]).catch(() => undefined);
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }

  // Schema registry: register and fetch back by id through the Confluent API.
  const registry = new SchemaRegistryClient({ baseURLs: [endpoints.schemaRegistryUrl] });
  const subject = `aimass-smoke-${id}-value`;
  const schema = JSON.stringify({ type: "record", name: "Smoke", fields: [{ name: "id", type: "string" }] });
  const schemaId = await registry.register(subject, { schemaType: "AVRO", schema });
  const fetched = await registry.getBySubjectAndId(subject, schemaId);
  if (!fetched.schema.includes("Smoke"))
    throw new AimassError("SCHEMA_UNKNOWN", "registry returned another schema");
  await registry.deleteSubject(subject, false).catch(() => undefined);
  await registry.deleteSubject(subject, true).catch(() => undefined);
  out(`schema registry  ok  ${endpoints.schemaRegistryUrl}  (schema id ${schemaId})`);

  // Redis.
  const redis = new Redis(endpoints.redisUrl, { maxRetriesPerRequest: 1, commandTimeout: 2_000 });
  try {
    const key = `aimass:smoke:${id}`;
    await redis.set(key, "1", "PX", 10_000);
    const info = await redis.info("server");
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? "?";
    await redis.del(key);
    out(`redis            ok  ${endpoints.redisUrl}  (redis ${version})`);
  } finally {
    redis.disconnect();
  }
  return 0;
}
