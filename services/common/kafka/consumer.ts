// The settings every aimass consumer-group member shares (predictor workers, feature writers):
// one place, so the group semantics (read_committed, rebalance bound, retries) cannot drift.
import type { ConsumerConfig } from "kafkajs";
import type { PipelineConfig } from "../config/load.js";
import { TUNING } from "../tuning.js";

/** A group member's kafkajs config; `extra` adds or overrides per-service settings. */
export function groupConsumerConfig(
  config: PipelineConfig,
  groupId: string,
  extra: Omit<Partial<ConsumerConfig>, "groupId"> = {},
): ConsumerConfig {
  const { sessionTimeoutMs, heartbeatIntervalMs, shutdownGraceMs } = config.processing;
  return {
    groupId,
    sessionTimeout: sessionTimeoutMs,
    heartbeatInterval: heartbeatIntervalMs,
    // A draining member rejoins late or not at all: the group waits for it at least as long
    // as its drain may take, so its chunk under way can still commit.
    rebalanceTimeout: Math.max(TUNING.kafka.minRebalanceTimeoutMs, shutdownGraceMs),
    // Only committed records: the inputs may be written transactionally (exactly-once upstream).
    readUncommitted: false,
    maxWaitTimeInMs: TUNING.kafka.fetchMaxWaitMs,
    retry: { retries: TUNING.kafka.consumerRetries },
    ...extra,
  };
}
