// Runs one Service from a command, the same way for every aimass process: the HTTP endpoints,
// SIGTERM/SIGINT, the failed watch, the drain and the exit code. Signals are registered here
// and nowhere else, with `on` (never `once`): a second signal must not kill a process that is
// draining; a supervisor that wants it faster sends SIGKILL.
import type { Server } from "node:http";
import type { Registry } from "prom-client";
import { listeningPort, startHttp } from "./http.js";
import { closeAll } from "./lifecycle.js";
import type { Logger } from "./logger.js";
import type { Service } from "./service.js";

const SIGNALS: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"];

type SignalListener = (signal: NodeJS.Signals) => void;

/** Where signals come from: `process`, or any emitter (tests). */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: SignalListener): unknown;
  off(signal: NodeJS.Signals, listener: SignalListener): unknown;
}

export interface RunServiceOptions {
  /** Serves /metrics, /healthz and /readyz on this port (0: any free one); none when undefined. */
  metricsPort?: number | undefined;
  /** What /metrics serves. */
  prometheus: Registry;
  /** @default "0.0.0.0" */
  host?: string;
  /** Run in order after the service stopped or failed to start (e.g. flushing spans). */
  onStopped?: Array<[name: string, run: () => Promise<unknown>]>;
  /** @default process */
  signals?: SignalSource;
  /** Told the bound port once the endpoints listen. */
  onListening?: (port: number) => void;
}

/**
 * Starts `service` and runs it until the first SIGTERM/SIGINT or until it fails on its own,
 * then stops it and resolves with its exit code. A start failure closes the endpoints, runs
 * the `onStopped` hooks and rejects with the start error.
 */
export async function runService(
  service: Service,
  logger: Logger,
  options: RunServiceOptions,
): Promise<number> {
  const signals = watchSignals(options.signals ?? process, logger);
  let server: Server | undefined;
  const closeRest = () => {
    const http = server;
    return closeAll(logger, [["http", http && (() => closeServer(http))], ...(options.onStopped ?? [])]);
  };
  try {
    try {
      const port = options.metricsPort;
      server = port === undefined ? undefined : await serve(service, logger, port, options);
      await service.start();
    } catch (err) {
      await closeRest();
      throw err;
    }
    await Promise.race([signals.received, service.failed]);
    const code = await service.stop();
    await closeRest();
    logger.info("exiting", { code });
    return code;
  } finally {
    signals.dispose();
  }
}

async function serve(
  service: Service,
  logger: Logger,
  port: number,
  options: RunServiceOptions,
): Promise<Server> {
  const server = await startHttp(
    port,
    options.prometheus,
    {
      alive: () => service.alive,
      ready: () =>
        service.ready ? { ready: true } : { ready: false, reason: service.notReadyReason ?? "not ready" },
    },
    options.host,
  );
  const bound = listeningPort(server);
  logger.info("http listening", { port: bound, paths: ["/metrics", "/healthz", "/readyz"] });
  options.onListening?.(bound);
  return server;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
}

/** Resolves `received` at the first signal; later ones are logged and change nothing. */
function watchSignals(source: SignalSource, logger: Logger): { received: Promise<unknown>; dispose(): void } {
  let resolve: (signal: NodeJS.Signals) => void = () => undefined;
  const received = new Promise<NodeJS.Signals>((r) => (resolve = r));
  let count = 0;
  const onSignal: SignalListener = (signal) => {
    if (count++ === 0) {
      logger.info("signal received; draining", { signal });
      resolve(signal);
    } else {
      logger.warn("already draining; send SIGKILL to stop at once", { signal });
    }
  };
  for (const s of SIGNALS) source.on(s, onSignal);
  return {
    received,
    dispose: () => {
      for (const s of SIGNALS) source.off(s, onSignal);
    },
  };
}
