// The full pipeline's throughput and end-to-end latency for the shop example, on this machine,
// over a sweep of maxBatchSize × maxDelayMs × worker processes × variants:
//   node dist/load-tests/bench-pipeline.js --batch-sizes 1,16,128 --events 20000 --rate 2000
//   node dist/load-tests/bench-pipeline.js --batch-sizes 16,128,512 --delays 1,5,20 --rate half
//   node dist/load-tests/bench-pipeline.js --batch-sizes 128 --workers 1,2
// For each combination: (1) throughput: N events are produced up front, then the predictor
// process(es) start and drain them; events/s is N over the time between the first and last
// prediction a read_committed reader sees. When --workers names a count above 1, every run
// of the sweep has its workers join the group first (on the empty topic) and the N events
// produced after, flat out, so no rebalance falls inside the window and the counts compare
// (the producer then shares the machine with the drain); (2) latency: with the workers caught up, events arrive at a
// fixed rate (--rate N[,M…], or `half`: half the throughput just measured) for a few seconds;
// latency is event time → visible to the read_committed reader (HdrHistogram).
// Results: a table on stdout and JSON in load-tests/results/.
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parseOptions, usageText, wantsHelp, type OptionSpecs } from "./lib/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { createKafka } from "../services/common/kafka/client.js";
import { createLogger } from "../services/common/logger.js";
import { PredictorProcess, REPO } from "./lib/predictor-process.js";
import { shopPipeline } from "./lib/shop-pipeline.js";
import { color, svgChart, type Series } from "./lib/svg.js";
import { produceEvents } from "./produce-events.js";
import { readPredictions } from "./read-predictions.js";

const specs = {
  "batch-sizes": {
    type: "string",
    description: "comma list of maxBatchSize values (default 1,16,128)",
  },
  delays: { type: "string", description: "comma list of maxDelayMs values (default 5)" },
  "max-delay-ms": { type: "number", description: "same as --delays with one value" },
  workers: { type: "string", description: "comma list of worker process counts (default 1)" },
  events: { type: "number", description: "events for the throughput phase (default 20000)" },
  rate: {
    type: "string",
    description:
      "comma list of latency phase rates: events/s, or `half` (of the drain throughput) (default 1000)",
  },
  "latency-seconds": { type: "number", description: "length of the latency phase (default 8)" },
  variants: {
    type: "string",
    description:
      "comma list of: plain (no HTTP), scraped (/metrics scraped every second), traced (OTLP export on), nolineage (output.lineageHeaders off) (default plain)",
  },
} satisfies OptionSpecs;

export const VARIANTS = ["plain", "scraped", "traced", "nolineage"] as const;
export type Variant = (typeof VARIANTS)[number];

export interface PipelineRow {
  variant: Variant;
  maxBatchSize: number;
  maxDelayMs: number;
  workers: number;
  eventsPerSecond: number;
  /** The latency phase's rate as asked: events/s, or "half" (then latencyRate is the result). */
  rateSpec: string;
  latencyRate: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  duplicates: number;
  missing: number;
}

export interface PipelineRunOptions {
  maxBatchSize: number;
  maxDelayMs: number;
  workers: number;
  events: number;
  /** Latency phase rates in events/s, or "half" of the drain throughput just measured; one row each. */
  rates: Array<number | "half">;
  seconds: number;
  variant: Variant;
  /**
   * Workers join (on the empty topic) before the drain's events are produced, flat out. Always
   * so with more than one worker; a sweep over worker counts uses it for all, so they compare.
   */
  joinFirst?: boolean;
}

const ASSIGNED = /"msg":"partitions assigned"[^\n]*"partitions":\[([\d,]*)\]/g;

/** The partitions a worker's last "partitions assigned" log line names. */
function lastAssignment(log: string): number[] {
  const all = [...log.matchAll(ASSIGNED)];
  const last = all[all.length - 1]?.[1];
  return last ? last.split(",").map(Number) : [];
}

/** Waits until the workers' latest assignments cover all partitions, each worker holding some. */
async function groupSettled(workers: PredictorProcess[], partitions: number, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sets = workers.map((w) => lastAssignment(w.log));
    const covered = new Set(sets.flat());
    if (sets.every((s) => s.length > 0) && covered.size === partitions) return;
    for (const w of workers) {
      if (w.child.exitCode !== null) throw new Error(`${w.name} exited early:\n${w.log.slice(-2000)}`);
    }
    if (Date.now() > deadline) throw new Error(`group did not settle in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
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

/** One pipeline run: drain throughput, then latency at a fixed rate; topics made and deleted here. */
export async function runPipeline(o: PipelineRunOptions): Promise<PipelineRow[]> {
  const logger = createLogger({ level: "warn" });
  const kafka = createKafka({ brokers: endpointsFromEnv().kafkaBrokers, clientId: "aimass-bench", logger });
  const admin = kafka.admin();
  await admin.connect();
  const b = o.maxBatchSize;
  const id = `bench-${b}-${o.maxDelayMs}-${o.workers}-${Date.now().toString(36)}`;
  const f = { input: `${id}.in`, output: `${id}.out`, dlq: `${id}.dlq`, group: `${id}.group` };
  await admin.createTopics({
    topics: [f.input, f.output, f.dlq].map((topic) => ({ topic, numPartitions: 6, replicationFactor: 1 })),
    waitForLeaders: true,
  });
  const dir = join(REPO, ".stack", "bench");
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, `${id}.json`);
  writeFileSync(
    configPath,
    JSON.stringify(
      shopPipeline(f, {
        maxBatchSize: b,
        maxDelayMs: o.maxDelayMs,
        ...(o.variant === "nolineage" ? { lineageHeaders: false } : {}),
        // The product's default (the shared test config uses 500, to exercise chunking).
        maxRecordsPerTransaction: 1_000,
      }),
    ),
  );
  const workers: PredictorProcess[] = [];
  let scraper: NodeJS.Timeout | undefined;
  let collector: { url: string; close: () => void } | undefined;
  /** Starts a read_committed reader; `ready` resolves once it has joined, before anything is produced. */
  const read = (runId: string, count: number, timeoutMs: number, fromEnd = false) => {
    let ready!: () => void;
    const joined = new Promise<void>((r) => (ready = r));
    const done = readPredictions(
      [
        "--topic",
        f.output,
        "--dlq-topic",
        f.dlq,
        "--run-id",
        runId,
        "--count",
        String(count),
        "--timeout-ms",
        String(timeoutMs),
        ...(fromEnd ? ["--from-end"] : []),
      ],
      { onReady: ready },
    );
    return { done, ready: Promise.race([joined, done.then(() => undefined)]) };
  };
  // Traced runs give every event a traceparent, as an instrumented producer would.
  const produce = (runId: string, count: number, extra: string[] = []) =>
    produceEvents([
      "--topic",
      f.input,
      "--count",
      String(count),
      "--run-id",
      runId,
      ...(o.variant === "traced" ? ["--traceparent"] : []),
      ...extra,
    ]);
  try {
    const args: string[] = [];
    const env: Record<string, string> = {};
    const ports: number[] = [];
    if (o.variant === "scraped") {
      for (let i = 0; i < o.workers; i++) ports.push(await freePort());
      scraper = setInterval(() => {
        for (const port of ports)
          void fetch(`http://127.0.0.1:${port}/metrics`).then(
            (r) => r.text(),
            () => "",
          );
      }, 1000);
    } else if (o.variant === "traced") {
      collector = await nullCollector();
      Object.assign(env, {
        OTEL_TRACES_EXPORTER: "otlp",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: collector.url,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf",
      });
    }
    const start = (i: number) =>
      new PredictorProcess(
        configPath,
        `bench-${b}-${o.variant}-w${i}`,
        ports[i] === undefined ? args : [...args, "--metrics-port", String(ports[i])],
        env,
      );
    const runId = `${id}-t`;
    let t: Awaited<ReturnType<typeof readPredictions>>;
    if (o.workers === 1 && o.joinFirst !== true) {
      // Pre-produced backlog, then the worker starts: the drain measures the worker alone.
      await produce(runId, o.events);
      const reading = read(runId, o.events, 300_000);
      await reading.ready;
      workers.push(start(0));
      t = await reading.done;
    } else {
      for (let i = 0; i < o.workers; i++) workers.push(start(i));
      await groupSettled(workers, 6);
      const reading = read(runId, o.events, 300_000);
      await reading.ready;
      await produce(runId, o.events);
      t = await reading.done;
    }
    const eventsPerSecond = o.events / Math.max(0.001, (t.lastAt - t.firstAt) / 1000);

    const rows: PipelineRow[] = [];
    for (const [i, r] of o.rates.entries()) {
      const rate = r === "half" ? Math.max(1, Math.round(eventsPerSecond / 2)) : r;
      const n = Math.round(rate * o.seconds);
      const latencyRun = `${id}-l${i}`;
      const latencyReading = read(latencyRun, n, 120_000, true);
      await latencyReading.ready;
      // Small produce requests (5 ms of events each), so arrivals are smooth, not bursts.
      await produce(latencyRun, n, [
        "--rate",
        String(rate),
        "--batch",
        String(Math.max(1, Math.ceil(rate / 200))),
      ]);
      const l = await latencyReading.done;
      rows.push({
        variant: o.variant,
        maxBatchSize: b,
        maxDelayMs: o.maxDelayMs,
        workers: o.workers,
        eventsPerSecond: Math.round(eventsPerSecond),
        rateSpec: String(r),
        latencyRate: rate,
        p50Ms: round1(l.latencyMs.p50),
        p99Ms: round1(l.latencyMs.p99),
        p999Ms: round1(l.latencyMs.p999),
        maxMs: round1(l.latencyMs.max),
        duplicates: (i === 0 ? t.duplicates : 0) + l.duplicates,
        missing: (i === 0 ? t.missing : 0) + l.missing,
      });
    }
    return rows;
  } finally {
    clearInterval(scraper);
    for (const w of workers) w.signal("SIGTERM");
    await Promise.all(workers.map((w) => w.exited));
    collector?.close();
    await admin.deleteTopics({ topics: [f.input, f.output, f.dlq] }).catch(() => undefined);
    await admin.disconnect();
  }
}

const round1 = (v: number) => Math.round(v * 10) / 10;
const list = (v: string | undefined, d: string) =>
  (v ?? d)
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "");

export function pipelineTable(rows: PipelineRow[]): string {
  const header =
    "| variant | maxBatchSize | maxDelayMs | workers | events/s (drain) | vs plain | latency at rate | p50 ms | p99 ms | p99.9 ms | dup | missing |";
  const plainOf = (r: PipelineRow) =>
    rows.find(
      (x) =>
        x.variant === "plain" &&
        x.maxBatchSize === r.maxBatchSize &&
        x.maxDelayMs === r.maxDelayMs &&
        x.workers === r.workers,
    )?.eventsPerSecond;
  const lines = rows.map((r) => {
    const plain = plainOf(r);
    const ratio = plain ? (r.eventsPerSecond / plain).toFixed(2) : "–";
    return `| ${r.variant} | ${r.maxBatchSize} | ${r.maxDelayMs} | ${r.workers} | ${r.eventsPerSecond} | ${ratio} | ${r.latencyRate}/s | ${r.p50Ms} | ${r.p99Ms} | ${r.p999Ms} | ${r.duplicates} | ${r.missing} |`;
  });
  return [header, "|---|---|---|---|---|---|---|---|---|---|---|---|", ...lines, ""].join("\n");
}

/** Throughput and latency against maxBatchSize: a line per (variant, workers, maxDelayMs[, rate]). */
export function pipelineChart(rows: PipelineRow[]): string {
  const group = (key: (r: PipelineRow) => string, y: (r: PipelineRow) => number, dedupe: boolean) => {
    const m = new Map<string, Array<[number, number]>>();
    for (const r of rows) {
      const pts = m.get(key(r)) ?? [];
      if (!(dedupe && pts.some(([x]) => x === r.maxBatchSize))) pts.push([r.maxBatchSize, y(r)]);
      m.set(key(r), pts);
    }
    return [...m].map(([label, points], i): Series => ({ label, points, color: color(i) }));
  };
  const base = (r: PipelineRow) =>
    `${r.variant === "plain" ? "" : `${r.variant}, `}${r.workers > 1 ? `${r.workers} workers, ` : ""}maxDelayMs ${r.maxDelayMs}`;
  return svgChart([
    {
      title: "Drain throughput",
      xLabel: "maxBatchSize (log)",
      yLabel: "events/s",
      logX: true,
      series: group(base, (r) => r.eventsPerSecond, true),
    },
    {
      title: "p99 end-to-end latency (read_committed)",
      xLabel: "maxBatchSize (log)",
      yLabel: "ms (log)",
      logX: true,
      logY: true,
      series: group(
        (r) => `${base(r)} @ ${r.rateSpec === "half" ? "half the drain rate" : `${r.rateSpec}/s`}`,
        (r) => r.p99Ms,
        false,
      ),
    },
  ]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (wantsHelp(process.argv)) {
    process.stdout.write(usageText("bench-pipeline", specs));
  } else {
    const options = parseOptions(process.argv.slice(2), specs);
    const sizes = list(options.string("batch-sizes"), "1,16,128").map(Number);
    const delays = list(options.string("delays"), String(options.number("max-delay-ms") ?? 5)).map(Number);
    const workerCounts = list(options.string("workers"), "1").map(Number);
    const rates = list(options.string("rate"), "1000").map((r) => (r === "half" ? "half" : Number(r)));
    for (const r of rates) {
      if (r !== "half" && !(r > 0)) throw new Error(`--rate: a positive number or "half", got ${r}`);
    }
    const events = options.number("events") ?? 20_000;
    const seconds = options.number("latency-seconds") ?? 8;
    const variants = list(options.string("variants"), "plain").map((v): Variant => {
      const known = VARIANTS.find((x) => x === v);
      if (known === undefined) throw new Error(`unknown variant "${v}" (one of ${VARIANTS.join(", ")})`);
      return known;
    });
    for (const n of [...sizes, ...delays, ...workerCounts]) {
      if (!Number.isInteger(n) || n < 0) throw new Error(`not a count: ${n}`);
    }
    const combos = sizes.length * delays.length * workerCounts.length * variants.length;
    const rows: PipelineRow[] = [];
    let done = 0;
    for (const b of sizes) {
      for (const delay of delays) {
        for (const workers of workerCounts) {
          // Variants of one combination run back to back, so their ratio shares the machine's state.
          for (const variant of variants) {
            process.stderr.write(
              `[${++done}/${combos}] maxBatchSize ${b} maxDelayMs ${delay} workers ${workers} ${variant}…\n`,
            );
            const got = await runPipeline({
              maxBatchSize: b,
              maxDelayMs: delay,
              workers,
              events,
              rates,
              seconds,
              variant,
              joinFirst: workerCounts.some((n) => n > 1),
            });
            rows.push(...got);
            for (const row of got)
              process.stderr.write(
                `  ${row.eventsPerSecond} events/s; p50 ${row.p50Ms} ms p99 ${row.p99Ms} ms at ${row.latencyRate}/s; dup ${row.duplicates} missing ${row.missing}\n`,
              );
          }
        }
      }
    }
    process.stdout.write(pipelineTable(rows));
    const out = join(REPO, "load-tests", "results");
    mkdirSync(out, { recursive: true });
    const ts = Date.now();
    writeFileSync(join(out, `pipeline-${ts}.svg`), pipelineChart(rows));
    writeFileSync(
      join(out, `pipeline-${ts}.json`),
      JSON.stringify(
        { options: { sizes, delays, workerCounts, events, rates, seconds }, rows, node: process.version },
        null,
        2,
      ),
    );
    process.exitCode = rows.every((r) => r.duplicates === 0 && r.missing === 0) ? 0 : 1;
  }
}
