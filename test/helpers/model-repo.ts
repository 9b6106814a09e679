// Model repositories and live-control pipelines for tests: a temp copy of the
// shop-propensity repository (versions 1 and 2, optionally a version whose model.onnx is
// corrupt), and a pipeline config that serves it from `modelRepository` on temp topics,
// with temp control (compacted) and audit topics and a temp shadow topic.
import { createHash, randomBytes } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import type { Admin } from "kafkajs";
import { repoPath } from "./pipeline.js";
import { writeConfig } from "./predictor-process.js";
import { defer, tempTopic, uniqueName } from "./stack.js";

type Cleanup = Pick<TestContext, "after">;

export const SHOP_MODEL = "shop-propensity";

export interface TempModelRepo {
  /** The repository root (holds `shop-propensity/`). */
  root: string;
  /** Version directories present, in the order they were added. */
  versions: string[];
  /** sha256 (hex) of a version's model.onnx: its identity in predictions. */
  sha256(version: string): string;
}

export interface TempModelRepoOptions {
  /** Versions copied from models/shop-propensity (only event-field versions: 1, 2). @default ["1", "2"] */
  versions?: Array<"1" | "2">;
  /** Versions added whose model.onnx is random bytes (they fail to load). */
  corrupt?: string[];
}

/** A temp model repository, removed when the test ends. */
export function tempModelRepo(t: Cleanup, options: TempModelRepoOptions = {}): TempModelRepo {
  const root = mkdtempSync(join(tmpdir(), "aimass-models-"));
  defer(t, () => rmSync(root, { recursive: true, force: true }));
  const modelDir = join(root, SHOP_MODEL);
  mkdirSync(modelDir);
  copyFileSync(repoPath(`models/${SHOP_MODEL}/model.yaml`), join(modelDir, "model.yaml"));
  const versions: string[] = [];
  for (const v of options.versions ?? ["1", "2"]) {
    const src = repoPath(`models/${SHOP_MODEL}/${v}`);
    mkdirSync(join(modelDir, v));
    copyFileSync(join(src, "model.onnx"), join(modelDir, v, "model.onnx"));
    if (existsSync(join(src, "model.yaml")))
      copyFileSync(join(src, "model.yaml"), join(modelDir, v, "model.yaml"));
    versions.push(v);
  }
  for (const v of options.corrupt ?? []) {
    mkdirSync(join(modelDir, v));
    writeFileSync(join(modelDir, v, "model.onnx"), randomBytes(4096));
    versions.push(v);
  }
  const shas = new Map<string, string>();
  return {
    root,
    versions,
    sha256(version) {
      let sha = shas.get(version);
      if (sha === undefined) {
        sha = createHash("sha256")
          .update(readFileSync(join(modelDir, version, "model.onnx")))
          .digest("hex");
        shas.set(version, sha);
      }
      return sha;
    },
  };
}

export interface LiveControlPipeline {
  /** The pipeline config file (JSON), for `aimass predict` and `aimass models`. */
  configPath: string;
  /** The raw config object written there. */
  raw: object;
  repo: TempModelRepo;
  input: string;
  output: string;
  dlq: string;
  shadow: string;
  control: string;
  audit: string;
  group: string;
  name: string;
}

export interface LiveControlPipelineOptions {
  /** The repository to serve from. @default tempModelRepo(t) */
  repo?: TempModelRepo;
  /** Partitions of the input, output, DLQ and shadow topics. @default 6 */
  partitions?: number;
  /** The version the config serves until the control topic says otherwise. @default "1" */
  version?: string;
  /** Topic name prefix. @default "lc" */
  prefix?: string;
  maxRecordsPerTransaction?: number;
}

/**
 * Creates the pipeline's topics (deleted when the test ends) and writes its config:
 * `modelRepository` + `models: [{ name: "shop-propensity", version }]`, control and audit
 * topics of its own, `output.shadowTopic`, and test-friendly processing timeouts.
 */
export async function liveControlPipeline(
  t: Cleanup,
  admin: Admin,
  options: LiveControlPipelineOptions = {},
): Promise<LiveControlPipeline> {
  const repo = options.repo ?? tempModelRepo(t);
  const partitions = options.partitions ?? 6;
  const prefix = options.prefix ?? "lc";
  const input = await tempTopic(t, admin, `${prefix}-in`, partitions);
  const output = await tempTopic(t, admin, `${prefix}-out`, partitions);
  const dlq = await tempTopic(t, admin, `${prefix}-dlq`, partitions);
  const shadow = await tempTopic(t, admin, `${prefix}-shadow`, partitions);
  const control = uniqueName(`${prefix}-control`);
  await admin.createTopics({
    topics: [
      {
        topic: control,
        numPartitions: 1,
        replicationFactor: 1,
        configEntries: [{ name: "cleanup.policy", value: "compact" }],
      },
    ],
    waitForLeaders: true,
  });
  defer(t, () => admin.deleteTopics({ topics: [control] }).catch(() => undefined));
  const audit = await tempTopic(t, admin, `${prefix}-audit`, 1);
  const group = uniqueName(`${prefix}-group`);
  const name = uniqueName(prefix);
  const raw = {
    pipeline: { name, groupId: group },
    input: { topic: input, partitions },
    output: { topic: output, partitions, shadowTopic: shadow },
    dlq: { topic: dlq, partitions },
    routing: {
      field: "type",
      routes: { view: SHOP_MODEL, cart: SHOP_MODEL, purchase: SHOP_MODEL },
    },
    modelRepository: repo.root,
    models: [{ name: SHOP_MODEL, version: options.version ?? "1" }],
    control: { topic: control, auditTopic: audit },
    processing: {
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 500,
      shutdownGraceMs: 15_000,
      transactionTimeoutMs: 30_000,
      maxRecordsPerTransaction: options.maxRecordsPerTransaction ?? 500,
      retryInitialMs: 50,
      retryMaxMs: 1_000,
    },
  };
  const configPath = writeConfig(t, raw);
  return { configPath, raw, repo, input, output, dlq, shadow, control, audit, group, name };
}
