// `aimass predict --config <file>`: runs one predictor worker until SIGTERM/SIGINT, then
// drains within the configured grace time. Exit 0 after a clean drain, 1 otherwise.
import type { Server } from "node:http";
import { loadPipelineConfig } from "../common/config/load.js";
import { createLogger } from "../common/logger.js";
import { startHttp } from "../common/http.js";
import { Predictor } from "../predictor/predictor.js";
import { startTracing } from "../common/tracing.js";

export async function runPredict(options: { config: string; metricsPort?: number }): Promise<number> {
  const config = await loadPipelineConfig(options.config);
  const logger = createLogger({ base: { service: "predictor" } });
  const tracing = await startTracing("aimass-predictor", logger);
  const predictor = new Predictor({ config, logger, tracer: tracing.tracer });

  let server: Server | undefined;
  if (options.metricsPort !== undefined) {
    server = await startHttp(options.metricsPort, predictor.metrics.registry, {
      alive: () => predictor.state !== "failed" && predictor.state !== "stopped",
      ready: () =>
        predictor.ready
          ? { ready: true }
          : {
              ready: false,
              reason: predictor.state !== "running" ? `state ${predictor.state}` : "no partitions assigned",
            },
    });
    logger.info("http listening", { port: options.metricsPort, paths: ["/metrics", "/healthz", "/readyz"] });
  }

  // Signals are registered in one place; a second signal does not cut the drain short —
  // a supervisor that wants it faster sends SIGKILL.
  let resolveSignal!: (signal: string) => void;
  const signalled = new Promise<string>((r) => (resolveSignal = r));
  let received = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received++ === 0) logger.info("signal received; draining", { signal });
    else logger.warn("already draining; send SIGKILL to stop at once", { signal });
    resolveSignal(signal);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  try {
    await predictor.start();
  } catch (err) {
    server?.close();
    await tracing.shutdown();
    throw err;
  }
  const failedWatch = new Promise<string>((resolve) => {
    const timer = setInterval(() => {
      if (predictor.state === "failed") {
        clearInterval(timer);
        resolve("failed");
      }
    }, 500);
    timer.unref();
  });
  await Promise.race([signalled, failedWatch]);
  const code = await predictor.stop();
  server?.close();
  await tracing.shutdown(); // flushes spans still buffered for export
  return code;
}
