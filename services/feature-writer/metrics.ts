// The feature writer's Prometheus metrics (aimass_features_*), in their own registry so a
// process serves exactly these on /metrics.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class FeatureWriterMetrics {
  readonly prometheus = new Registry();
  readonly consumed = new Counter({
    name: "aimass_features_updates_consumed_total",
    help: "Feature update records read from the updates topic (replays included).",
    registers: [this.prometheus],
  });
  readonly applied = new Counter({
    name: "aimass_features_updates_applied_total",
    help: "Updates written to Redis (newer than what was stored).",
    registers: [this.prometheus],
  });
  readonly skippedStale = new Counter({
    name: "aimass_features_updates_skipped_stale_total",
    help: "Updates not written: Redis already held the same or a newer event time (duplicates, replays, out of order).",
    registers: [this.prometheus],
  });
  readonly dlq = new Counter({
    name: "aimass_features_dlq_records_total",
    help: "Updates sent to the features DLQ, by reason (error code).",
    labelNames: ["reason"],
    registers: [this.prometheus],
  });
  readonly writeSeconds = new Histogram({
    name: "aimass_features_write_duration_seconds",
    help: "Time of one successful pipelined write of a chunk's updates.",
    buckets: SECONDS,
    registers: [this.prometheus],
  });
  readonly redisErrors = new Counter({
    name: "aimass_features_redis_errors_total",
    help: "Failed write attempts (Redis unreachable, timed out or busy); each is retried.",
    registers: [this.prometheus],
  });
  readonly commits = new Counter({
    name: "aimass_features_offset_commits_total",
    help: "Offset commits (one per chunk, after its writes and DLQ records landed).",
    registers: [this.prometheus],
  });

  constructor(redisAvailable: () => boolean) {
    new Gauge({
      name: "aimass_features_redis_available",
      help: "1 while the Redis connection is ready.",
      registers: [this.prometheus],
      collect() {
        this.set(redisAvailable() ? 1 : 0);
      },
    });
    collectDefaultMetrics({ register: this.prometheus, prefix: "aimass_features_process_" });
  }
}
