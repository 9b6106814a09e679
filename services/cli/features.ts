// `aimass features --config <file> [--metrics-port <n>]`: runs one feature writer (updates
// topic → Redis online store) until SIGTERM/SIGINT, then drains within the configured grace
// time. Exit 0 after a clean drain, 1 otherwise. Start several to share the updates topic's
// partitions (consumer group `<pipeline groupId>-features`).
import { loadPipelineConfig } from "../common/config/load.js";
import { createLogger } from "../common/logger.js";
import { runService } from "../common/run-service.js";
import { FeatureWriter } from "../feature-writer/writer.js";

export async function runFeatures(options: { config: string; metricsPort?: number }): Promise<number> {
  const config = await loadPipelineConfig(options.config);
  const logger = createLogger({ base: { service: "feature-writer" } });
  const writer = new FeatureWriter({ config, logger });
  return runService(writer, logger, {
    metricsPort: options.metricsPort,
    prometheus: writer.metrics.prometheus,
  });
}
