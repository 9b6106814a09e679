// The full pipeline's throughput and end-to-end latency for the shop example, per batch
// size, on this machine:
//   node dist/load-tests/bench-pipeline.js --batch-sizes 1,16,128 --events 20000 --rate 2000
// For each maxBatchSize: (1) throughput — N events are produced up front, then one
// predictor process starts and drains them; events/s is N over the time between the first
// and last prediction a read_committed reader sees; (2) latency — with the worker caught
// up, events arrive at a fixed rate for a few seconds; latency is event time → visible to
// the read_committed reader. Results: a table on stdout and JSON in load-tests/results/.
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { formatOptions, parseArgs, type OptionSpec } from "../services/control/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { createKafka } from "../services/common/kafka/client.js";
import { createLogger } from "../services/common/logger.js";
import { PredictorProcess, REPO } from "./lib/predictor-process.js";
import { shopPipeline } from "./lib/shop-pipeline.js";
import { produceEvents } from "./produce-events.js";
import { readPredictions } from "./read-predictions.js";

const specs: OptionSpec[] = [
  {
    name: "batch-sizes",
    type: "string",
    description: "comma list of maxBatchSize values (default 1,16,128)",
  },
  { name: "max-delay-ms", type: "number", description: "maxDelayMs for every run (default 5)" },
  { name: "events", type: "number", description: "events for the throughput phase (default 20000)" },
  { name: "rate", type: "number", description: "events/s for the latency phase (default 1000)" },
  { name: "latency-seconds", type: "number", description: "length of the latency phase (default 8)" },
  {
    name: "variants",
    type: "string",
    description:
      "comma list of: plain (no HTTP), scraped (/metrics scraped every second), traced (OTLP export on) (default plain)",
  },
];

type Variant = "plain" | "scraped" | "traced";

interface Row {
  variant: Variant;
  maxBatchSize: number;
  eventsPerSecond: number;
  latencyRate: number;
  p50Ms: number;
  p99Ms: number;
  duplicates: number;
  missing: number;
}

/** An OTLP/HTTP endpoint that accepts and drops spans: the exporter's full cost, no collector's. */
async function nullCollector(): Promise<{ url: string; close: () => void }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    close: () => server.close(),
  };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function runOne(
  b: number,
  o: { events: number; rate: number; seconds: number; delay: number },
  variant: Variant = "plain",
): Promise<Row> {
  const logger = createLogger({ level: "warn" });
  const kafka = createKafka({ brokers: endpointsFromEnv().kafkaBrokers, clientId: "aimass-bench", logger });
  const admin = kafka.admin();
  await admin.connect();
  const id = `bench-${b}-${Date.now().toString(36)}`;
  const f = { input: `${id}.in`, output: `${id}.out`, dlq: `${id}.dlq`, group: `${id}.group` };
  await admin.createTopics({
    topics: [f.input, f.output, f.dlq].map((topic) => ({ topic, numPartitions: 6, replicationFactor: 1 })),
    waitForLeaders: true,
  });
  const dir = join(REPO, ".stack", "bench");
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, `${id}.json`);
  writeFileSync(configPath, JSON.stringify(shopPipeline(f, { maxBatchSize: b, maxDelayMs: o.delay })));
  let worker: PredictorProcess | undefined;
  let scraper: NodeJS.Timeout | undefined;
  let collector: { url: string; close: () => void } | undefined;
  try {
    // Traced runs give every event a traceparent, as an instrumented producer would.
    const tp = await produceEvents([
      "--topic",
      f.input,
      "--count",
      String(o.events),
      "--run-id",
      `${id}-t`,
      ...(variant === "traced" ? ["--traceparent"] : []),
    ]);
    const reading = readPredictions([
      "--topic",
      f.output,
      "--dlq-topic",
      f.dlq,
      "--run-id",
      tp.runId,
      "--count",
      String(o.events),
      "--timeout-ms",
      "300000",
    ]);
    const args: string[] = [];
    const env: Record<string, string> = {};
    if (variant === "scraped") {
      const port = await freePort();
      args.push("--metrics-port", String(port));
      scraper = setInterval(
        () =>
          void fetch(`http://127.0.0.1:${port}/metrics`).then(
            (r) => r.text(),
            () => "",
          ),
        1000,
      );
    } else if (variant === "traced") {
      collector = await nullCollector();
      Object.assign(env, {
        OTEL_TRACES_EXPORTER: "otlp",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: collector.url,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf",
      });
    }
    worker = new PredictorProcess(configPath, `bench-${b}-${variant}`, args, env);
    const t = await reading;
    const eventsPerSecond = o.events / Math.max(0.001, (t.lastAt - t.firstAt) / 1000);

    const n = Math.round(o.rate * o.seconds);
    const runId = `${id}-l`;
    const latencyReading = readPredictions([
      "--topic",
      f.output,
      "--dlq-topic",
      f.dlq,
      "--run-id",
      runId,
      "--count",
      String(n),
      "--timeout-ms",
      "120000",
    ]);
    await produceEvents([
      "--topic",
      f.input,
      "--count",
      String(n),
      "--rate",
      String(o.rate),
      "--run-id",
      runId,
      "--batch",
      "20",
    ]);
    const l = await latencyReading;
    return {
      variant,
      maxBatchSize: b,
      eventsPerSecond: Math.round(eventsPerSecond),
      latencyRate: o.rate,
      p50Ms: l.latencyMs.p50,
      p99Ms: l.latencyMs.p99,
      duplicates: t.duplicates + l.duplicates,
      missing: t.missing + l.missing,
    };
  } finally {
    clearInterval(scraper);
    worker?.signal("SIGTERM");
    await worker?.exited;
    collector?.close();
    await admin.deleteTopics({ topics: [f.input, f.output, f.dlq] }).catch(() => undefined);
    await admin.disconnect();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.includes("--help")) {
    process.stdout.write(`Usage: bench-pipeline [options]\n\n${formatOptions(specs)}\n`);
  } else {
    const { options } = parseArgs(process.argv.slice(2), specs);
    const sizes = String(options["batch-sizes"] ?? "1,16,128")
      .split(",")
      .map(Number);
    const o = {
      events: (options.events as number | undefined) ?? 20_000,
      rate: (options.rate as number | undefined) ?? 1_000,
      seconds: (options["latency-seconds"] as number | undefined) ?? 8,
      delay: (options["max-delay-ms"] as number | undefined) ?? 5,
    };
    const variants = String(options.variants ?? "plain").split(",") as Variant[];
    for (const v of variants) {
      if (!["plain", "scraped", "traced"].includes(v)) throw new Error(`unknown variant "${v}"`);
    }
    const rows: Row[] = [];
    for (const b of sizes) {
      // Variants of one batch size run back to back, so their ratio shares the machine's state.
      for (const v of variants) {
        const row = await runOne(b, o, v);
        rows.push(row);
        process.stderr.write(
          `maxBatchSize ${b} ${v}: ${row.eventsPerSecond} events/s; p50 ${row.p50Ms} ms p99 ${row.p99Ms} ms at ${row.latencyRate}/s\n`,
        );
      }
    }
    const header =
      "| variant | maxBatchSize | events/s (drain) | vs plain | latency at rate | p50 ms | p99 ms | dup | missing |";
    const plainOf = (b: number) =>
      rows.find((r) => r.maxBatchSize === b && r.variant === "plain")?.eventsPerSecond;
    const lines = rows.map((r) => {
      const plain = plainOf(r.maxBatchSize);
      const ratio = plain ? (r.eventsPerSecond / plain).toFixed(2) : "–";
      return `| ${r.variant} | ${r.maxBatchSize} | ${r.eventsPerSecond} | ${ratio} | ${r.latencyRate}/s | ${r.p50Ms} | ${r.p99Ms} | ${r.duplicates} | ${r.missing} |`;
    });
    process.stdout.write([header, "|---|---|---|---|---|---|---|---|---|", ...lines, ""].join("\n"));
    const out = join(REPO, "load-tests", "results");
    mkdirSync(out, { recursive: true });
    writeFileSync(
      join(out, `pipeline-${Date.now()}.json`),
      JSON.stringify({ options: o, rows, node: process.version }, null, 2),
    );
  }
}
