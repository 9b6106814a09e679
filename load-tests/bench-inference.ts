// The inference limit: raw onnxruntime-node throughput (rows/s) of a repository model per
// batch size, through the same InferencePool the predictor uses (one worker thread, no Kafka,
// no JSON, no batcher). Two batches are kept in flight, as the predictor's ModelRuntime does,
// so the worker never waits for the main thread.
//   node dist/load-tests/bench-inference.js --model bench-mlp [--batch-sizes 1,8,32,128,512]
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseOptions, usageText, wantsHelp, type OptionSpecs } from "./lib/args.js";
import { createLogger } from "../services/common/logger.js";
import { resolveVersion } from "../services/common/models/repository.js";
import { TUNING } from "../services/common/tuning.js";
import { INFERENCE_WORKER_URL, InferencePool } from "../services/predictor/inference/pool.js";
import type { ModelSpec, NamedTensors } from "../services/predictor/inference/types.js";
import { modelSpec } from "../services/predictor/model-runtime.js";
import { REPO } from "./lib/predictor-process.js";
import { prng } from "./lib/shop-events.js";

const specs = {
  model: { type: "string", description: "shop-propensity | bench-mlp (default shop-propensity)" },
  version: { type: "string", description: "model version in models/ (default 1)" },
  "batch-sizes": { type: "string", description: "comma list (default 1,8,32,128,512)" },
  seconds: { type: "number", description: "measured time per batch size (default 1.5)" },
} satisfies OptionSpecs;

export const INFERENCE_MODELS = ["shop-propensity", "bench-mlp"] as const;
export type InferenceModel = (typeof INFERENCE_MODELS)[number];

export interface InferenceRow {
  model: string;
  batchSize: number;
  rowsPerSecond: number;
  /** rowsPerSecond / rowsPerSecond at batch size 1 (or the smallest size measured). */
  vsBatch1: number;
  batches: number;
}

/** Random inputs for one batch: a fresh buffer per call, since run() transfers it away. */
function batchOf(spec: ModelSpec, rows: number, rand: () => number): NamedTensors {
  const out: NamedTensors = {};
  for (const input of spec.inputs) {
    const n = rows * input.width;
    if (input.type === "int64") {
      const data = new BigInt64Array(n);
      for (let i = 0; i < n; i++) data[i] = BigInt(Math.floor(rand() * 4));
      out[input.name] = { type: "int64", data, dims: [rows, input.width] };
    } else {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = rand() * 2 - 1;
      out[input.name] = { type: "float32", data, dims: [rows, input.width] };
    }
  }
  return out;
}

function copyOf(t: NamedTensors): NamedTensors {
  const out: NamedTensors = {};
  for (const [k, v] of Object.entries(t)) out[k] = { type: v.type, data: v.data.slice(), dims: [...v.dims] };
  return out;
}

/** Rows/s of `pool` at one batch size over about `seconds`, two batches in flight. */
async function measure(pool: InferencePool, spec: ModelSpec, batchSize: number, seconds: number) {
  const template = batchOf(spec, batchSize, prng(7));
  // Warm-up: lets ORT settle its allocations for this shape.
  for (let i = 0; i < 5; i++) await pool.run(copyOf(template));
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  let batches = 0;
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await pool.run(copyOf(template));
      batches++;
    }
  };
  await Promise.all([lane(), lane()]);
  const elapsed = (performance.now() - started) / 1000;
  return { rowsPerSecond: (batches * batchSize) / elapsed, batches };
}

export async function benchInference(
  model: string,
  o: { version?: string | undefined; batchSizes?: number[]; seconds?: number | undefined } = {},
): Promise<InferenceRow[]> {
  const config = resolveVersion(join(REPO, "models"), model, o.version ?? "1");
  const spec = modelSpec({ ...config, poolSize: 1 });
  const pool = await InferencePool.create(spec, {
    ...TUNING.inference,
    workerUrl: INFERENCE_WORKER_URL,
    size: 1,
    logger: createLogger({ level: "warn" }),
  });
  const rows: InferenceRow[] = [];
  try {
    for (const b of o.batchSizes ?? [1, 8, 32, 128, 512]) {
      const m = await measure(pool, spec, b, o.seconds ?? 1.5);
      const base = rows[0]?.rowsPerSecond ?? m.rowsPerSecond;
      rows.push({
        model,
        batchSize: b,
        rowsPerSecond: Math.round(m.rowsPerSecond),
        vsBatch1: m.rowsPerSecond / base,
        batches: m.batches,
      });
    }
  } finally {
    await pool.close();
  }
  return rows;
}

export function inferenceTable(rows: InferenceRow[]): string {
  return [
    "| model | batch | rows/s | vs batch 1 |",
    "|---|---|---|---|",
    ...rows.map((r) => `| ${r.model} | ${r.batchSize} | ${r.rowsPerSecond} | ${r.vsBatch1.toFixed(1)}× |`),
    "",
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (wantsHelp(process.argv)) {
    process.stdout.write(usageText("bench-inference", specs));
  } else {
    const options = parseOptions(process.argv.slice(2), specs);
    const model = options.string("model") ?? "shop-propensity";
    if (!(INFERENCE_MODELS as readonly string[]).includes(model)) {
      throw new Error(`--model must be one of ${INFERENCE_MODELS.join(", ")}`);
    }
    const rows = await benchInference(model, {
      version: options.string("version"),
      batchSizes: (options.string("batch-sizes") ?? "1,8,32,128,512").split(",").map(Number),
      seconds: options.number("seconds"),
    });
    process.stdout.write(inferenceTable(rows));
    const out = join(REPO, "load-tests", "results");
    mkdirSync(out, { recursive: true });
    writeFileSync(
      join(out, `inference-${model}-${Date.now()}.json`),
      JSON.stringify({ rows, node: process.version }, null, 2),
    );
  }
}
