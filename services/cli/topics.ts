// `aimass topics create --config <file>`: creates the input, output and DLQ topics a
// pipeline config names (idempotently) and registers the output Avro schema if configured.
import { readFile } from "node:fs/promises";
import { loadPipelineConfig } from "../common/config/load.js";
import { ensureTopics, type TopicSpec } from "../common/kafka/topics.js";
import { createLogger } from "../common/logger.js";
import { createSchemaRegistryClient } from "../common/serde/schema-registry.js";
import { connectKafka } from "./kafka.js";

export async function runTopicsCreate(options: { config: string }): Promise<number> {
  const config = await loadPipelineConfig(options.config);
  const logger = createLogger({ base: { service: "control" } });
  const { admin } = await connectKafka({
    brokers: config.endpoints.kafkaBrokers,
    clientId: "aimass-control",
    logger,
  });
  try {
    const specs: TopicSpec[] = [config.input, config.output, config.dlq].map((t) => ({
      name: t.topic,
      partitions: t.partitions,
      replicationFactor: t.replicationFactor,
      config: t.config,
    }));
    const rf = config.output.replicationFactor;
    specs.push(
      // Shadow predictions: shaped like the output topic.
      {
        name: config.output.shadowTopic,
        partitions: config.output.partitions,
        replicationFactor: rf,
        config: config.output.config,
      },
      // Desired model state: one record per model, the latest kept forever.
      {
        name: config.control.topic,
        partitions: 1,
        replicationFactor: rf,
        config: { "cleanup.policy": "compact" },
      },
      // Every change and every worker's apply result, in order.
      {
        name: config.control.auditTopic,
        partitions: 1,
        replicationFactor: rf,
        config: { "retention.ms": String(90 * 24 * 3600 * 1000) },
      },
    );
    if (config.features?.updates) {
      const u = config.features.updates;
      specs.push({
        name: u.topic,
        partitions: u.partitions,
        replicationFactor: u.replicationFactor,
        config: u.config,
      });
    }
    if (config.features?.dlq) {
      const d = config.features.dlq;
      specs.push({
        name: d.topic,
        partitions: d.partitions,
        replicationFactor: d.replicationFactor,
        config: d.config,
      });
    }
    const results = await ensureTopics(admin, specs, logger);
    for (const r of results)
      process.stdout.write(`${r.name.padEnd(32)} ${r.status} (${r.partitions} partitions)\n`);
    if (config.output.format === "avro" && config.output.schemaFile) {
      const registry = createSchemaRegistryClient({ url: config.endpoints.schemaRegistryUrl });
      const schema = await readFile(config.output.schemaFile, "utf8");
      const id = await registry.register(`${config.output.topic}-value`, { schemaType: "AVRO", schema });
      process.stdout.write(`${config.output.topic}-value`.padEnd(32) + ` schema registered (id ${id})\n`);
    }
    return results.some((r) => r.status === "exists-with-different-partitions") ? 1 : 0;
  } finally {
    await admin.disconnect();
  }
}
