// Idempotent topic creation: creates what is missing, leaves existing topics alone, and
// reports a partition-count mismatch instead of silently accepting it.
import type { Admin, ITopicConfig } from "kafkajs";
import type { Logger } from "../logger.js";

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  config?: Record<string, string>;
}

export interface TopicResult {
  name: string;
  status: "created" | "exists" | "exists-with-different-partitions";
  partitions: number;
}

export async function ensureTopics(admin: Admin, specs: TopicSpec[], logger: Logger): Promise<TopicResult[]> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.name));
  if (missing.length > 0) {
    const topics: ITopicConfig[] = missing.map((s) => ({
      topic: s.name,
      numPartitions: s.partitions,
      replicationFactor: s.replicationFactor,
      configEntries: Object.entries(s.config ?? {}).map(([name, value]) => ({ name, value })),
    }));
    try {
      await admin.createTopics({ topics, waitForLeaders: true });
    } catch (err) {
      // Another worker may have created it between list and create: that is success.
      if (!(err instanceof Error && /already exists/i.test(err.message))) throw err;
    }
  }
  const meta = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.name) });
  const partitionsOf = new Map(meta.topics.map((t) => [t.name, t.partitions.length]));
  return specs.map((s) => {
    const partitions = partitionsOf.get(s.name) ?? 0;
    const created = missing.some((m) => m.name === s.name);
    const status = created
      ? "created"
      : partitions === s.partitions
        ? "exists"
        : "exists-with-different-partitions";
    if (status === "exists-with-different-partitions") {
      logger.warn("topic exists with a different partition count", {
        topic: s.name,
        want: s.partitions,
        have: partitions,
      });
    }
    return { name: s.name, status, partitions };
  });
}
