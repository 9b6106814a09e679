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
import { formatOptions, parseArgs, type OptionSpec } from "../services/control/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { createKafka } from "../services/common/kafka/client.js";
import { createLogger } from "../services/common/logger.js";
import { resolveVersion } from "../services/common/models/repository.js";
import { benchInference, inferenceTable, type InferenceRow } from "./bench-inference.js";
import { benchPassthrough, type PassthroughResult } from "./bench-passthrough.js";
import { pipelineTable, runPipeline, type PipelineRow as ShopRow } from "./bench-pipeline.js";
import { PredictorProcess, REPO } from "./lib/predictor-process.js";
import { produceEvents } from "./produce-events.js";
import { readPredictions } from "./read-predictions.js";

const specs: OptionSpec[] = [
  { name: "pipeline-events", type: "number", description: "shop pipeline drain events (default 300000)" },
  { name: "passthrough-events", type: "number", description: "passthrough drain events (default 400000)" },
  { name: "mlp-events", type: "number", description: "bench-mlp pipeline drain events (default 150000)" },
  { name: "mlp-batch", type: "number", description: "bench-mlp maxBatchSize (default 128)" },
  { name: "rate", type: "number", description: "shop pipeline latency phase events/s (default 1000)" },
  { name: "latency-seconds", type: "number", description: "shop pipeline latency phase seconds (default 8)" },
  { name: "inference-seconds", type: "number", description: "measured time per batch size (default 1.5)" },
];

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

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** Two panels, log-scaled batch size on x: throughput (log y) and pipeline p99 latency. */
function chart(
  inference: InferenceRow[],
  passthrough: PassthroughResult,
  shop: PipelineRow[],
  mlp: PipelineRow,
): string {
  const W = 900;
  const H = 380;
  const m = { l: 70, r: 20, t: 30, b: 45 };
  const xs = [1, 8, 16, 32, 128, 512];
  const x = (b: number, left: number, width: number) =>
    left + m.l + (Math.log2(b) / Math.log2(512)) * (width - m.l - m.r);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  const panel = (left: number, width: number, title: string, yLabel: string) => {
    out.push(
      `<text x="${left + width / 2}" y="16" text-anchor="middle" font-size="13">${esc(title)}</text>`,
      `<line x1="${left + m.l}" y1="${H - m.b}" x2="${left + width - m.r}" y2="${H - m.b}" stroke="black"/>`,
      `<line x1="${left + m.l}" y1="${m.t}" x2="${left + m.l}" y2="${H - m.b}" stroke="black"/>`,
      `<text x="${left + width / 2}" y="${H - 8}" text-anchor="middle">maxBatchSize / batch size (log)</text>`,
      `<text transform="translate(${left + 14},${H / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
    );
    for (const b of xs) {
      out.push(
        `<line x1="${x(b, left, width)}" y1="${H - m.b}" x2="${x(b, left, width)}" y2="${H - m.b + 4}" stroke="black"/>`,
        `<text x="${x(b, left, width)}" y="${H - m.b + 16}" text-anchor="middle">${b}</text>`,
      );
    }
  };
  // Left: throughput, log10 y.
  const lw = 540;
  panel(0, lw, "Throughput (events or rows per second)", "per second (log)");
  const all = [
    ...inference.map((r) => r.rowsPerSecond),
    passthrough.eventsPerSecond,
    ...shop.map((r) => r.eventsPerSecond),
  ];
  const lo = Math.floor(Math.log10(Math.max(1, Math.min(...all))));
  const hi = Math.ceil(Math.log10(Math.max(...all)));
  const y = (v: number) =>
    H - m.b - ((Math.log10(Math.max(v, 1)) - lo) / Math.max(1, hi - lo)) * (H - m.b - m.t);
  for (let e = lo; e <= hi; e++) {
    out.push(
      `<line x1="${m.l}" y1="${y(10 ** e)}" x2="${lw - m.r}" y2="${y(10 ** e)}" stroke="#ddd"/>`,
      `<text x="${m.l - 6}" y="${y(10 ** e) + 4}" text-anchor="end">1e${e}</text>`,
    );
  }
  const series = (pts: Array<[number, number]>, color: string, label: string, row: number, dash = "") => {
    const d = pts.map(([b, v]) => `${x(b, 0, lw).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    out.push(`<polyline points="${d}" fill="none" stroke="${color}" stroke-width="2" ${dash}/>`);
    for (const [b, v] of pts) out.push(`<circle cx="${x(b, 0, lw)}" cy="${y(v)}" r="3" fill="${color}"/>`);
    out.push(
      `<line x1="${m.l + 10}" y1="${m.t + 8 + row * 14}" x2="${m.l + 30}" y2="${m.t + 8 + row * 14}" stroke="${color}" stroke-width="2" ${dash}/>`,
      `<text x="${m.l + 35}" y="${m.t + 12 + row * 14}">${esc(label)}</text>`,
    );
  };
  const by = (model: string) =>
    inference.filter((r) => r.model === model).map((r): [number, number] => [r.batchSize, r.rowsPerSecond]);
  series(by("shop-propensity"), "#1f77b4", "shop-propensity raw inference (rows/s)", 0);
  series(by("bench-mlp"), "#ff7f0e", "bench-mlp raw inference (rows/s)", 1);
  series(
    [
      [1, passthrough.eventsPerSecond],
      [512, passthrough.eventsPerSecond],
    ],
    "#7f7f7f",
    "Kafka EOS passthrough (events/s)",
    2,
    'stroke-dasharray="6 4"',
  );
  const shopPts = [...shop]
    .sort((a, b) => a.maxBatchSize - b.maxBatchSize)
    .map((r): [number, number] => [r.maxBatchSize, r.eventsPerSecond]);
  series(shopPts, "#2ca02c", "shop pipeline (events/s)", 3);
  series([[mlp.maxBatchSize, mlp.eventsPerSecond]], "#d62728", "bench-mlp pipeline (events/s)", 4);
  // Right: p99 latency of the shop pipeline (linear y).
  const left = lw;
  const rw = W - lw;
  panel(left, rw, "Shop pipeline end-to-end latency", "ms");
  const lat = [...shop].sort((a, b) => a.maxBatchSize - b.maxBatchSize);
  const maxMs = Math.max(10, ...lat.map((r) => r.p99Ms).filter(Number.isFinite)) * 1.1;
  const ly = (v: number) => H - m.b - (v / maxMs) * (H - m.b - m.t);
  for (let i = 0; i <= 4; i++) {
    const v = (maxMs / 4) * i;
    out.push(
      `<line x1="${left + m.l}" y1="${ly(v)}" x2="${W - m.r}" y2="${ly(v)}" stroke="#ddd"/>`,
      `<text x="${left + m.l - 6}" y="${ly(v) + 4}" text-anchor="end">${Math.round(v)}</text>`,
    );
  }
  for (const [key, color, label, row] of [
    ["p99Ms", "#d62728", "p99", 0],
    ["p50Ms", "#9467bd", "p50", 1],
  ] as const) {
    const d = lat.map((r) => `${x(r.maxBatchSize, left, rw).toFixed(1)},${ly(r[key]).toFixed(1)}`).join(" ");
    out.push(`<polyline points="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const r of lat) {
      out.push(`<circle cx="${x(r.maxBatchSize, left, rw)}" cy="${ly(r[key])}" r="3" fill="${color}"/>`);
    }
    out.push(
      `<line x1="${left + m.l + 10}" y1="${m.t + 8 + row * 14}" x2="${left + m.l + 30}" y2="${m.t + 8 + row * 14}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${left + m.l + 35}" y="${m.t + 12 + row * 14}">${label}</text>`,
    );
  }
  out.push("</svg>", "");
  return out.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.includes("--help")) {
    process.stdout.write(`Usage: bench [options]\n\n${formatOptions(specs)}\n`);
  } else {
    const { options } = parseArgs(process.argv.slice(2), specs);
    const num = (k: string, d: number) => (options[k] as number | undefined) ?? d;
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
    writeFileSync(join(RESULTS, `bench-${ts}.svg`), chart(inference, passthrough, shop, mlp));
    process.stderr.write(`wrote load-tests/results/bench-${ts}.json and .svg\n`);
    const clean = [passthrough, ...shopRows, mlp].every((r) => r.duplicates === 0 && r.missing === 0);
    process.exitCode = clean ? 0 : 1;
  }
}
