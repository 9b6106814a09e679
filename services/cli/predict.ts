// `aimass predict --config <file>`: runs one predictor worker until SIGTERM/SIGINT, then
// drains within the configured grace time. Exit 0 after a clean drain, 1 otherwise.
import { loadPipelineConfig } from "../common/config/load.js";
import { createLogger } from "../common/logger.js";
import { runService } from "../common/run-service.js";
import { startTracing } from "../common/tracing.js";
import { Predictor } from "../predictor/predictor.js";

export async function runPredict(options: { config: string; metricsPort?: number }): Promise<number> {
  const config = await loadPipelineConfig(options.config);
  const logger = createLogger({ base: { service: "predictor" } });
  const tracing = await startTracing("aimass-predictor", logger);
  const predictor = new Predictor({ config, logger, tracer: tracing.tracer });
  return runService(predictor, logger, {
    metricsPort: options.metricsPort,
    prometheus: predictor.metrics.prometheus,
    // After the stop: flushes the spans still buffered for export.
    onStopped: [["tracing", () => tracing.shutdown()]],
  });
}
