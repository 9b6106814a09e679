// The shop example's pipeline config as an object, on topics of the caller's choosing,
// with timeouts suited to tests and benchmarks (short session timeout, short grace).
import { join } from "node:path";
import { REPO } from "./predictor-process.js";

export interface TopicsFixture {
  input: string;
  output: string;
  dlq: string;
  group: string;
}

/** A shop pipeline config (raw object) on the given topics, with test-friendly timeouts. */
export function shopPipeline(
  f: TopicsFixture,
  overrides: {
    maxBatchSize?: number;
    maxDelayMs?: number;
    lineageHeaders?: boolean;
    maxRecordsPerTransaction?: number;
  } = {},
): object {
  return {
    pipeline: { name: "test", groupId: f.group },
    input: { topic: f.input, partitions: 6 },
    output: {
      topic: f.output,
      partitions: 6,
      ...(overrides.lineageHeaders === undefined ? {} : { lineageHeaders: overrides.lineageHeaders }),
    },
    dlq: { topic: f.dlq, partitions: 6 },
    routing: { field: "type", routes: { view: "shop", cart: "shop", purchase: "shop" } },
    models: [
      {
        name: "shop",
        version: "1",
        path: join(REPO, "models/shop-propensity/1/model.onnx"),
        batching: { maxBatchSize: overrides.maxBatchSize ?? 128, maxDelayMs: overrides.maxDelayMs ?? 5 },
        inputs: [
          {
            name: "features",
            columns: [
              { field: "price", transform: "log1p" },
              { field: "quantity", transform: "log1p" },
              { field: "type", oneHot: ["view", "cart", "purchase"] },
              { field: "ts", transform: "hourSin" },
              { field: "ts", transform: "hourCos" },
              { constant: 1 },
            ],
          },
        ],
        outputs: [{ name: "propensity", field: "propensity" }],
      },
    ],
    processing: {
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 500,
      shutdownGraceMs: 15_000,
      transactionTimeoutMs: 30_000,
      maxRecordsPerTransaction: overrides.maxRecordsPerTransaction ?? 500,
    },
  };
}
