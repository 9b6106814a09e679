// Pipeline configs for tests: a raw config object (the shape a pipeline.yaml holds) built
// from a few overrides, the PipelineConfig parsed from it through the real loader, and a
// writer that puts a raw config in a temp file for tests that spawn the CLI.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestContext } from "node:test";
import { stringify as stringifyYaml } from "yaml";
import { parsePipelineConfig, type PipelineConfig } from "../../services/common/config/load.js";
import type { PipelineConfigInput } from "../../services/common/config/schema.js";

type Cleanup = Pick<TestContext, "after">;
type RawModel = PipelineConfigInput["models"][number];
type RawColumn = RawModel["inputs"][number]["columns"][number];

/** The repository root (this file runs as dist/test/helpers/pipeline.js). */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** Absolute path of a file under the repository root. */
export function repoPath(relative: string): string {
  return resolve(repoRoot, relative);
}

/** The shop-propensity columns of examples/shop/pipeline.yaml (8 floats). */
export const SHOP_COLUMNS: RawColumn[] = [
  { field: "price", transform: "log1p" },
  { field: "quantity", transform: "log1p" },
  { field: "type", oneHot: ["view", "cart", "purchase"] },
  { field: "ts", transform: "hourSin" },
  { field: "ts", transform: "hourCos" },
  { constant: 1 },
];

export interface TestPipelineOverrides {
  input: string;
  output: string;
  dlq: string;
  /** Consumer group; also the transactional id prefix. */
  group: string;
  /** pipeline.name (the DLQ's aimass.dlq.pipeline header). @default "test" */
  name?: string;
  /**
   * "shop": models/shop-propensity/<version>/model.onnx, routed by `type` (view|cart|purchase);
   * other types go to the DLQ (stage route). "gather": models/test-gather/1/model.onnx
   * (int64 `idx` → `score` = 0.1·(idx+1), idx 0..3 valid), every event routed to it.
   * @default "shop"
   */
  model?: "shop" | "gather";
  /** shop-propensity version directory. @default "1" */
  modelVersion?: "1" | "2";
  /** Replaces the shop model's input columns (they must still add up to width 8). */
  columns?: RawColumn[];
  maxBatchSize?: number;
  maxDelayMs?: number;
  maxRecordBytes?: number;
  inputFormat?: "json" | "avro";
  outputFormat?: "json" | "avro";
  /** Avro schema file for predictions (absolute, or relative to the repository root). */
  outputSchemaFile?: string;
  /** Partitions for the three topics as `aimass topics create` would make them. @default 3 */
  partitions?: number;
  poolSize?: number;
  maxInFlightRecords?: number;
  maxRecordsPerTransaction?: number;
  transactionTimeoutMs?: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  shutdownGraceMs?: number;
  /** Last word: edits the raw config before it is parsed (extra models, routes...). */
  patch?: (raw: PipelineConfigInput) => void;
}

function shopModel(o: TestPipelineOverrides): RawModel {
  const version = o.modelVersion ?? "1";
  return {
    name: "shop-propensity",
    version,
    path: repoPath(`models/shop-propensity/${version}/model.onnx`),
    executionProviders: ["cpu"],
    poolSize: o.poolSize ?? 1,
    batching: { maxBatchSize: o.maxBatchSize ?? 64, maxDelayMs: o.maxDelayMs ?? 5 },
    inputs: [{ name: "features", type: "float32", columns: o.columns ?? SHOP_COLUMNS }],
    outputs: [{ name: "propensity", field: "propensity" }],
  };
}

function gatherModel(o: TestPipelineOverrides): RawModel {
  return {
    name: "test-gather",
    version: "1",
    path: repoPath("models/test-gather/1/model.onnx"),
    executionProviders: ["cpu"],
    poolSize: o.poolSize ?? 1,
    batching: { maxBatchSize: o.maxBatchSize ?? 64, maxDelayMs: o.maxDelayMs ?? 5 },
    inputs: [{ name: "idx", type: "int64", columns: [{ field: "idx" }] }],
    outputs: [{ name: "score", field: "score" }],
  };
}

/**
 * The raw config object (what a pipeline.yaml holds). Model paths are absolute, so the
 * object can be written anywhere (writeTempConfig) and still load.
 */
export function testPipelineRaw(o: TestPipelineOverrides): PipelineConfigInput {
  const gather = o.model === "gather";
  const partitions = o.partitions ?? 3;
  const raw: PipelineConfigInput = {
    pipeline: { name: o.name ?? "test", groupId: o.group },
    input: {
      topic: o.input,
      partitions,
      format: o.inputFormat ?? "json",
      ...(o.maxRecordBytes !== undefined ? { maxRecordBytes: o.maxRecordBytes } : {}),
    },
    output: {
      topic: o.output,
      partitions,
      format: o.outputFormat ?? "json",
      ...(o.outputSchemaFile !== undefined ? { schemaFile: repoPath(o.outputSchemaFile) } : {}),
    },
    dlq: { topic: o.dlq, partitions },
    routing: gather
      ? { default: "test-gather" }
      : {
          field: "type",
          routes: { view: "shop-propensity", cart: "shop-propensity", purchase: "shop-propensity" },
        },
    models: [gather ? gatherModel(o) : shopModel(o)],
    processing: {
      maxInFlightRecords: o.maxInFlightRecords ?? 10_000,
      maxRecordsPerTransaction: o.maxRecordsPerTransaction ?? 1_000,
      transactionTimeoutMs: o.transactionTimeoutMs ?? 60_000,
      sessionTimeoutMs: o.sessionTimeoutMs ?? 6_000,
      heartbeatIntervalMs: o.heartbeatIntervalMs ?? 500,
      shutdownGraceMs: o.shutdownGraceMs ?? 15_000,
      retryInitialMs: 50,
      retryMaxMs: 1_000,
    },
  };
  o.patch?.(raw);
  return raw;
}

/** A validated PipelineConfig, parsed by the real loader (defaults, derived fields, checks). */
export function testPipelineConfig(
  overrides: TestPipelineOverrides,
  env: NodeJS.ProcessEnv = process.env,
): PipelineConfig {
  return parsePipelineConfig(testPipelineRaw(overrides), join(repoRoot, "test-pipeline.yaml"), env);
}

/**
 * Writes a config to a fresh temp folder, removed when the test ends, and returns the file's
 * path. An object is written as YAML (or JSON when `fileName` ends in .json); a string is
 * written as it is (for malformed-config tests). Relative paths inside it resolve against
 * that temp folder, so prefer absolute ones (repoPath).
 */
export function writeTempConfig(t: Cleanup, config: unknown, options: { fileName?: string } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "aimass-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fileName = options.fileName ?? "pipeline.yaml";
  const path = join(dir, fileName);
  const text =
    typeof config === "string"
      ? config
      : /\.json$/i.test(fileName)
        ? JSON.stringify(config, null, 2) + "\n"
        : stringifyYaml(config);
  writeFileSync(path, text, "utf8");
  return path;
}
