// `npm run bench`: every pipeline figure next to the limit it is measured against, all in one
// run on the same machine, back to back (the machine is shared, so only ratios are compared):
//   (a) inference limit: raw InferencePool rows/s per batch size (shop-propensity, bench-mlp)
//   (b) transport limit: Kafka exactly-once passthrough, no inference
//   (c) shop pipeline at maxBatchSize 128, latency at --rate and at half its drain throughput,
//       the same without lineage headers, and (d) at maxBatchSize 1 (bench-pipeline.ts)
//   (e) bench-mlp pipeline at the same batch size as its inference limit
// Prints one table of figure / limit / ratio / target, writes JSON and an SVG chart to
// load-tests/results/.
//   node dist/load-tests/bench.js [--pipeline-events 300000] [--passthrough-events 400000] ...
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseOptions, usageText, wantsHelp, type OptionSpecs } from "./lib/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { createKafka } from "../services/common/kafka/client.js";
import { createLogger } from "../services/common/logger.js";
import { resolveVersion } from "../services/common/models/repository.js";
import { benchInference, inferenceTable, type InferenceRow } from "./bench-inference.js";
import { benchPassthrough, type PassthroughResult } from "./bench-passthrough.js";
import { pipelineTable, runPipeline, type PipelineRow as ShopRow } from "./bench-pipeline.js";
import { PredictorProcess, REPO } from "./lib/predictor-process.js";
import { color, svgChart } from "./lib/svg.js";
import { produceEvents } from "./produce-events.js";
import { readPredictions } from "./read-predictions.js";

const specs = {
  "pipeline-events": { type: "number", description: "shop pipeline drain events (default 300000)" },
  "passthrough-events": { type: "number", description: "passthrough drain events (default 400000)" },
  "mlp-events": { type: "number", description: "bench-mlp pipeline drain events (default 150000)" },
  "mlp-batch": { type: "number", description: "bench-mlp maxBatchSize (default 128)" },
  rate: { type: "number", description: "shop pipeline latency phase events/s (default 1000)" },
  "latency-seconds": { type: "number", description: "shop pipeline latency phase seconds (default 8)" },
  "inference-seconds": { type: "number", description: "measured time per batch size (default 1.5)" },
} satisfies OptionSpecs;

const RESULTS = join(REPO, "load-tests", "results");

type PipelineRow = Pick<
  ShopRow,
  "maxBatchSize" | "eventsPerSecond" | "p50Ms" | "p99Ms" | "duplicates" | "missing"
>;

/** The bench-mlp model behind a pipeline: drain N pre-produced `{id, ts, x[64]}` events. */
async function mlpPipelineRun(batch: number, events: number): Promise<PipelineRow> {
  const kafka = createKafka({
    brokers: endpointsFromEnv().kafkaBrokers,
    clientId: "aimass-bench",
    logger: createLogger({ level: "warn" }),
  });
  const admin = kafka.admin();
  await admin.connect();
  const id = `bench-mlp-${batch}-${Date.now().toString(36)}`;
  const f = { input: `${id}.in`, output: `${id}.out`, dlq: `${id}.dlq`, group: `${id}.group` };
  await admin.createTopics({
    topics: [f.input, f.output, f.dlq].map((topic) => ({ topic, numPartitions: 6, replicationFactor: 1 })),
    waitForLeaders: true,
  });
  const model = resolveVersion(join(REPO, "models"), "bench-mlp", "1");
  const config = {
    pipeline: { name: "bench-mlp", groupId: f.group },
    input: { topic: f.input, partitions: 6 },
    output: { topic: f.output, partitions: 6 },
    dlq: { topic: f.dlq, partitions: 6 },
    models: [{ ...model, poolSize: 1, batching: { ...model.batching, maxBatchSize: batch, maxDelayMs: 5 } }],
    processing: {
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 500,
      shutdownGraceMs: 15_000,
      transactionTimeoutMs: 30_000,
      maxRecordsPerTransaction: 1_000, // the product default
    },
  };
  const dir = join(REPO, ".stack", "bench");
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, `${id}.json`);
  writeFileSync(configPath, JSON.stringify(config));
  let worker: PredictorProcess | undefined;
  try {
    const p = await produceEvents([
      "--payload",
      "bench-mlp",
      "--topic",
      f.input,
      "--count",
      String(events),
      "--run-id",
      `${id}-t`,
    ]);
    const reading = readPredictions([
      "--topic",
      f.output,
      "--dlq-topic",
      f.dlq,
      "--run-id",
      p.runId,
      "--count",
      String(events),
      "--score-field",
      "score",
      "--timeout-ms",
      "300000",
    ]);
    worker = new PredictorProcess(configPath, `bench-mlp-${batch}`);
    const t = await reading;
    return {
      maxBatchSize: batch,
      eventsPerSecond: Math.round(events / Math.max(0.001, (t.lastAt - t.firstAt) / 1000)),
      p50Ms: Number.NaN,
      p99Ms: Number.NaN,
      duplicates: t.duplicates,
      missing: t.missing + t.dlq,
    };
  } finally {
    worker?.signal("SIGTERM");
    await worker?.exited;
    await admin.deleteTopics({ topics: [f.input, f.output, f.dlq] }).catch(() => undefined);
    await admin.disconnect();
  }
}

interface Comparison {
  figure: string;
  value: number;
  limit: string;
  limitValue: number;
  ratio: number;
  target: number;
}

/** Two panels, log-scaled batch size on x: throughput (log y) and the shop pipeline's latency. */
export function benchChart(
  inference: InferenceRow[],
  passthrough: PassthroughResult,
  shop: PipelineRow[],
  mlp: PipelineRow,
): string {
  const byModel = (model: string) =>
    inference.filter((r) => r.model === model).map((r): [number, number] => [r.batchSize, r.rowsPerSecond]);
  const sizes = inference.map((r) => r.batchSize);
  const shopBy = (y: (r: PipelineRow) => number) => shop.map((r): [number, number] => [r.maxBatchSize, y(r)]);
  return svgChart(
    [
      {
        title: "Throughput (events or rows per second)",
        xLabel: "maxBatchSize / batch size (log)",
        yLabel: "per second (log)",
        logX: true,
        logY: true,
        series: [
          {
            label: "shop-propensity raw inference (rows/s)",
            color: color(0),
            points: byModel("shop-propensity"),
          },
          { label: "bench-mlp raw inference (rows/s)", color: color(1), points: byModel("bench-mlp") },
          {
            label: "Kafka EOS passthrough (events/s)",
            color: color(6),
            dashed: true,
            points: [
              [Math.min(...sizes), passthrough.eventsPerSecond],
              [Math.max(...sizes), passthrough.eventsPerSecond],
            ],
          },
          { label: "shop pipeline (events/s)", color: color(2), points: shopBy((r) => r.eventsPerSecond) },
          {
            label: "bench-mlp pipeline (events/s)",
            color: color(3),
            points: [[mlp.maxBatchSize, mlp.eventsPerSecond]],
          },
        ],
      },
      {
        title: "Shop pipeline end-to-end latency",
        xLabel: "maxBatchSize (log)",
        yLabel: "ms",
        logX: true,
        series: [
          { label: "p99", color: color(3), points: shopBy((r) => r.p99Ms) },
          { label: "p50", color: color(4), points: shopBy((r) => r.p50Ms) },
        ],
      },
    ],
    { panelWidth: 540 },
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (wantsHelp(process.argv)) {
    process.stdout.write(usageText("bench", specs));
  } else {
    const options = parseOptions(process.argv.slice(2), specs);
    const num = (k: Parameters<typeof options.number>[0], d: number) => options.number(k) ?? d;
    const o = {
      pipelineEvents: num("pipeline-events", 300_000),
      passthroughEvents: num("passthrough-events", 400_000),
      mlpEvents: num("mlp-events", 150_000),
      mlpBatch: num("mlp-batch", 128),
      rate: num("rate", 1_000),
      latencySeconds: num("latency-seconds", 8),
      inferenceSeconds: num("inference-seconds", 1.5),
    };
    const t0 = performance.now();
    const step = (s: string) =>
      process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0)} s] ${s}\n`);
    const sizes = [...new Set([1, 8, 32, 128, 512, o.mlpBatch])].sort((a, b) => a - b);
    step("(a) inference limit: shop-propensity, bench-mlp");
    const inference = [
      ...(await benchInference("shop-propensity", { batchSizes: sizes, seconds: o.inferenceSeconds })),
      ...(await benchInference("bench-mlp", { batchSizes: sizes, seconds: o.inferenceSeconds })),
    ];
    step("(b) transport limit: exactly-once passthrough");
    const passthrough = await benchPassthrough({ events: o.passthroughEvents });
    step("(c, d) shop pipeline at maxBatchSize 128 (with and without lineage headers), then 1");
    const shopRun = (maxBatchSize: number, rates: Array<number | "half">, variant: "plain" | "nolineage") =>
      runPipeline({
        maxBatchSize,
        maxDelayMs: 5,
        workers: 1,
        events: o.pipelineEvents,
        rates,
        seconds: o.latencySeconds,
        variant,
      });
    const shopRows = [
      ...(await shopRun(128, [o.rate, "half"], "plain")),
      ...(await shopRun(128, ["half"], "nolineage")),
      ...(await shopRun(1, [o.rate], "plain")),
    ];
    // The chart and the batching ratio compare the plain runs at the same latency rate.
    const shop: PipelineRow[] = shopRows.filter((r) => r.variant === "plain" && r.latencyRate === o.rate);
    step(`(e) bench-mlp pipeline at maxBatchSize ${o.mlpBatch}`);
    const mlp = await mlpPipelineRun(o.mlpBatch, o.mlpEvents);
    const seconds = (performance.now() - t0) / 1000;

    const p128 = shop.find((r) => r.maxBatchSize === 128) as PipelineRow;
    const half = shopRows.find(
      (r) => r.variant === "plain" && r.maxBatchSize === 128 && r.latencyRate !== o.rate,
    ) as ShopRow;
    const noLineage = shopRows.find((r) => r.variant === "nolineage") as ShopRow;
    const p1 = shop.find((r) => r.maxBatchSize === 1) as PipelineRow;
    const mlpRaw = inference.find(
      (r) => r.model === "bench-mlp" && r.batchSize === o.mlpBatch,
    ) as InferenceRow;
    const comparisons: Comparison[] = [
      {
        figure: "shop pipeline, maxBatchSize 128 (events/s)",
        value: p128.eventsPerSecond,
        limit: "EOS passthrough, no inference (events/s)",
        limitValue: passthrough.eventsPerSecond,
        ratio: p128.eventsPerSecond / passthrough.eventsPerSecond,
        target: 0.8,
      },
      {
        figure: "shop pipeline without lineage headers, maxBatchSize 128 (events/s)",
        value: noLineage.eventsPerSecond,
        limit: "EOS passthrough, no inference (events/s)",
        limitValue: passthrough.eventsPerSecond,
        ratio: noLineage.eventsPerSecond / passthrough.eventsPerSecond,
        target: 0.8,
      },
      {
        figure: `bench-mlp pipeline, maxBatchSize ${o.mlpBatch} (events/s)`,
        value: mlp.eventsPerSecond,
        limit: `bench-mlp raw inference, batch ${o.mlpBatch} (rows/s)`,
        limitValue: mlpRaw.rowsPerSecond,
        ratio: mlp.eventsPerSecond / mlpRaw.rowsPerSecond,
        target: 0.8,
      },
      {
        figure: "batching gain: shop pipeline 128 (events/s)",
        value: p128.eventsPerSecond,
        limit: "shop pipeline, maxBatchSize 1 (events/s)",
        limitValue: p1.eventsPerSecond,
        ratio: p128.eventsPerSecond / p1.eventsPerSecond,
        target: 10,
      },
    ];
    const table = [
      "| figure | value | limit | limit value | ratio | target | met |",
      "|---|---|---|---|---|---|---|",
      ...comparisons.map(
        (c) =>
          `| ${c.figure} | ${c.value} | ${c.limit} | ${c.limitValue} | ${c.ratio.toFixed(2)} | ≥ ${c.target} | ${c.ratio >= c.target ? "yes" : "no"} |`,
      ),
      `| shop pipeline p99 end-to-end (ms) at ${half.latencyRate} events/s | ${half.p99Ms} | half its drain throughput (events/s) | ${half.eventsPerSecond} | – | ≤ 25 ms | ${half.p99Ms <= 25 ? "yes" : "no"} |`,
      "",
    ].join("\n");
    const otherTable = [
      "| pipeline | maxBatchSize | events/s (drain) | dup | missing |",
      "|---|---|---|---|---|",
      `| bench-mlp | ${mlp.maxBatchSize} | ${mlp.eventsPerSecond} | ${mlp.duplicates} | ${mlp.missing} |`,
      `| passthrough (no model) | – | ${passthrough.eventsPerSecond} | ${passthrough.duplicates} | ${passthrough.missing} |`,
      "",
    ].join("\n");
    process.stdout.write(
      [
        table,
        pipelineTable(shopRows),
        otherTable,
        inferenceTable(inference),
        `bench finished in ${seconds.toFixed(0)} s\n`,
      ].join("\n"),
    );
    mkdirSync(RESULTS, { recursive: true });
    const ts = Date.now();
    writeFileSync(
      join(RESULTS, `bench-${ts}.json`),
      JSON.stringify(
        {
          options: o,
          comparisons,
          inference,
          passthrough,
          shop: shopRows,
          mlp,
          seconds,
          node: process.version,
        },
        null,
        2,
      ),
    );
    writeFileSync(join(RESULTS, `bench-${ts}.svg`), benchChart(inference, passthrough, shop, mlp));
    process.stderr.write(`wrote load-tests/results/bench-${ts}.json and .svg\n`);
    const clean = [passthrough, ...shopRows, mlp].every((r) => r.duplicates === 0 && r.missing === 0);
    process.exitCode = clean ? 0 : 1;
  }
}
