// The pipeline a chaos run drives: its topics, created with names of their own (6 input
// partitions; on 3 nodes replicated 3 times with min.insync.replicas 2), and its config file,
// with short timeouts so faults show quickly, and a DLQ record budget small enough that large
// bad records are cut. Three shapes:
//   events      the shop model scored from event fields only (plus an identity column on
//               `quantity`, so a 1e39 reaches the model as it is);
//   features    the shop model's version 3, reading the user and item views from Redis;
//   repository  versions 1 and 2 in a model repository of the run's own, with control, audit
//               and shadow topics, for live model changes.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Admin, ITopicConfig } from "kafkajs";
import { REPO } from "../lib/predictor-process.js";

export type PipelineShape = "events" | "features" | "repository";

export const MODEL = "shop-propensity";
/** input.maxRecordBytes: room for records with 12 KB of headers, as the shop example allows. */
export const MAX_RECORD_BYTES = 65_536;
/** dlq.maxRecordBytes at its minimum, so a DLQ record of a large input is cut (docs/dlq.md). */
export const DLQ_MAX_RECORD_BYTES = 8_192;
export const PARTITIONS = 6;
/** processing.transactionTimeoutMs: a zombie scenario stops a worker past it. */
export const TRANSACTION_TIMEOUT_MS = 30_000;

export interface RunPipeline {
  shape: PipelineShape;
  name: string;
  group: string;
  /** Transactional ids are `<prefix>.<input topic>.<partition>`. */
  transactionalIdPrefix: string;
  input: string;
  output: string;
  dlq: string;
  /** Topics a read_committed reader must be able to read to their end. */
  transactional: string[];
  shadow?: string;
  control?: string;
  audit?: string;
  configPath: string;
  sessionTimeoutMs: number;
}

export interface PipelineOptions {
  id: string;
  shape: PipelineShape;
  nodes: 1 | 3;
  /** Where the config (and a repository's model copy) goes. */
  dir: string;
  sessionTimeoutMs?: number;
  /** input.format. @default "json" */
  format?: "json" | "avro";
}

const EVENT_COLUMNS = [
  { field: "price", transform: "log1p" },
  { field: "quantity", transform: "log1p" },
  { field: "type", oneHot: ["view", "cart", "purchase"] },
  { field: "ts", transform: "hourSin" },
  { field: "ts", transform: "hourCos" },
  { field: "quantity", transform: "identity" },
];

/** The views of examples/shop/pipeline.yaml: Redis is read on every chunk, defaults fill gaps. */
const VIEWS = [
  {
    name: "user",
    key: "userId",
    maxAgeMs: 604_800_000,
    onStale: "defaults",
    features: [
      { name: "clicks_7d", default: 0 },
      { name: "carts_7d", default: 0 },
      { name: "purchases_30d", type: "int", default: 0 },
    ],
  },
  {
    name: "item",
    key: "itemId",
    maxAgeMs: 86_400_000,
    onStale: "defaults",
    features: [
      { name: "popularity_7d", default: 0.1 },
      { name: "price_band", type: "int", default: 2 },
    ],
  },
];

export async function createPipeline(admin: Admin, o: PipelineOptions): Promise<RunPipeline> {
  const replicas =
    o.nodes === 3 ? { replicationFactor: 3, config: { "min.insync.replicas": "2" } } : undefined;
  const topic = (
    name: string,
    partitions = PARTITIONS,
    extra: Record<string, string> = {},
  ): ITopicConfig => ({
    topic: name,
    numPartitions: partitions,
    replicationFactor: replicas?.replicationFactor ?? 1,
    configEntries: Object.entries({ ...replicas?.config, ...extra }).map(([k, v]) => ({ name: k, value: v })),
  });
  const name = o.id;
  const p: RunPipeline = {
    shape: o.shape,
    name,
    group: `${name}.group`,
    transactionalIdPrefix: `${name}.group`,
    input: `${name}.in`,
    output: `${name}.out`,
    dlq: `${name}.dlq`,
    transactional: [`${name}.out`, `${name}.dlq`],
    configPath: join(o.dir, "pipeline.json"),
    sessionTimeoutMs: o.sessionTimeoutMs ?? 6_000,
  };
  const topics = [topic(p.input), topic(p.output), topic(p.dlq)];
  if (o.shape === "repository") {
    p.shadow = `${name}.shadow`;
    p.control = `${name}.control`;
    p.audit = `${name}.audit`;
    p.transactional.push(p.shadow);
    topics.push(topic(p.shadow), topic(p.control, 1, { "cleanup.policy": "compact" }), topic(p.audit, 1));
  }
  await admin.createTopics({ topics, waitForLeaders: true });
  mkdirSync(o.dir, { recursive: true });
  writeFileSync(p.configPath, JSON.stringify(pipelineConfig(p, o), null, 2));
  return p;
}

function pipelineConfig(p: RunPipeline, o: PipelineOptions): object {
  const replication = o.nodes === 3 ? { replicationFactor: 3 } : {};
  const base = {
    pipeline: { name: p.name, groupId: p.group, transactionalIdPrefix: p.transactionalIdPrefix },
    input: {
      topic: p.input,
      partitions: PARTITIONS,
      maxRecordBytes: MAX_RECORD_BYTES,
      ...(o.format === "avro" ? { format: "avro" } : {}),
      ...replication,
    },
    output: {
      topic: p.output,
      partitions: PARTITIONS,
      ...replication,
      ...(p.shadow ? { shadowTopic: p.shadow } : {}),
    },
    dlq: { topic: p.dlq, partitions: PARTITIONS, maxRecordBytes: DLQ_MAX_RECORD_BYTES, ...replication },
    routing: { field: "type", routes: { view: MODEL, cart: MODEL, purchase: MODEL } },
    processing: {
      sessionTimeoutMs: p.sessionTimeoutMs,
      heartbeatIntervalMs: Math.floor(p.sessionTimeoutMs / 6),
      shutdownGraceMs: 15_000,
      transactionTimeoutMs: TRANSACTION_TIMEOUT_MS,
      maxRecordsPerTransaction: 500,
      retryInitialMs: 50,
      retryMaxMs: 1_000,
    },
  };
  switch (o.shape) {
    case "events":
      return {
        ...base,
        models: [
          {
            name: MODEL,
            version: "1",
            path: join(REPO, "models", MODEL, "1", "model.onnx"),
            batching: { maxBatchSize: 128, maxDelayMs: 5 },
            inputs: [{ name: "features", columns: EVENT_COLUMNS }],
            outputs: [{ name: "propensity", field: "propensity" }],
          },
        ],
      };
    case "features":
      return {
        ...base,
        modelRepository: join(REPO, "models"),
        models: [{ name: MODEL, version: "3" }],
        features: {
          keyPrefix: `chaos:${p.name}`,
          commandTimeoutMs: 250,
          onUnavailable: "fail",
          views: VIEWS,
        },
      };
    case "repository":
      return {
        ...base,
        modelRepository: copyRepository(o.dir),
        models: [{ name: MODEL, version: "1" }],
        control: { topic: p.control, auditTopic: p.audit },
      };
  }
}

/** Versions 1 and 2 (event fields only) copied into the run's folder. */
function copyRepository(dir: string): string {
  const root = join(dir, "models");
  const from = join(REPO, "models", MODEL);
  mkdirSync(join(root, MODEL), { recursive: true });
  copyFileSync(join(from, "model.yaml"), join(root, MODEL, "model.yaml"));
  for (const v of ["1", "2"]) {
    mkdirSync(join(root, MODEL, v), { recursive: true });
    copyFileSync(join(from, v, "model.onnx"), join(root, MODEL, v, "model.onnx"));
  }
  return root;
}
