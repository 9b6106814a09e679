// `aimass features --config <file> [--metrics-port <n>]`: runs one feature writer (updates
// topic → Redis online store) until SIGTERM/SIGINT, then drains within the configured grace
// time. Exit 0 after a clean drain, 1 otherwise. Start several to share the updates topic's
// partitions (consumer group `<pipeline groupId>-features`).
import type { Server } from "node:http";
import { loadPipelineConfig } from "../common/config/load.js";
import { createLogger } from "../common/logger.js";
import { startHttp } from "../common/http.js";
import { FeatureWriter } from "../feature-writer/writer.js";

export async function runFeatures(options: { config: string; metricsPort?: number }): Promise<number> {
  const config = await loadPipelineConfig(options.config);
  const logger = createLogger({ base: { service: "feature-writer" } });
  const writer = new FeatureWriter({ config, logger });

  let server: Server | undefined;
  if (options.metricsPort !== undefined) {
    server = await startHttp(options.metricsPort, writer.registry, {
      alive: () => writer.state !== "failed" && writer.state !== "stopped",
      ready: () =>
        writer.ready
          ? { ready: true }
          : {
              ready: false,
              reason: writer.state !== "running" ? `state ${writer.state}` : "no partitions assigned",
            },
    });
    logger.info("http listening", { port: options.metricsPort, paths: ["/metrics", "/healthz", "/readyz"] });
  }

  // A second signal does not cut the drain short; a supervisor that wants it faster sends SIGKILL.
  let resolveSignal!: (signal: string) => void;
  const signalled = new Promise<string>((r) => (resolveSignal = r));
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info("signal received; draining", { signal });
    resolveSignal(signal);
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);

  try {
    await writer.start();
  } catch (err) {
    server?.close();
    throw err;
  }
  const failedWatch = new Promise<string>((resolve) => {
    const timer = setInterval(() => {
      if (writer.state === "failed") {
        clearInterval(timer);
        resolve("failed");
      }
    }, 500);
    timer.unref();
  });
  await Promise.race([signalled, failedWatch]);
  const code = await writer.stop();
  server?.close();
  return code;
}
