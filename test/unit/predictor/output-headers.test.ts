// Prediction headers: input headers pass through, lineage headers are added unless
// `output.lineageHeaders` is off. The model is a fake (this is about the record's envelope;
// inference and delivery are covered by the integration tests against the real broker).
import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePipelineConfig } from "../../../services/common/config/load.js";
import { jsonCodec } from "../../../services/common/serde/codec.js";
import type { ModelRuntime } from "../../../services/predictor/model-runtime.js";
import type { ModelSnapshot } from "../../../services/predictor/served-models.js";
import { RecordProcessor } from "../../../services/predictor/record-processor.js";
import type { SourceRecord } from "../../../services/common/records.js";

function processor(lineageHeaders?: boolean): RecordProcessor {
  const config = parsePipelineConfig(
    {
      pipeline: { name: "t", groupId: "g" },
      input: { topic: "in" },
      output: { topic: "out", ...(lineageHeaders === undefined ? {} : { lineageHeaders }) },
      dlq: { topic: "dlq" },
      routing: { default: "m" },
      models: [
        {
          name: "m",
          version: "7",
          path: "/nonexistent/model.onnx",
          inputs: [{ name: "x", columns: [{ field: "v" }] }],
          outputs: [{ name: "y", field: "score" }],
        },
      ],
    },
    "/tmp/pipeline.yaml",
  );
  const model = {
    config: config.models[0],
    info: { name: "m", version: "7", sha256: "0" },
    predict: async () => ({ ok: true, value: { score: 0.5 } }),
  } as unknown as ModelRuntime;
  const snapshot: ModelSnapshot = {
    select: () => model,
    shadowFor: () => undefined,
    release: () => undefined,
  };
  return new RecordProcessor({
    config,
    inputCodec: jsonCodec(),
    outputCodec: jsonCodec(),
    snapshot: () => snapshot,
  });
}

const record: SourceRecord = {
  topic: "in",
  partition: 4,
  offset: "1234",
  timestamp: "0",
  key: Buffer.from("k"),
  value: Buffer.from(JSON.stringify({ id: "e1", v: 2, ts: 1 })),
  headers: { "x-tenant": "acme" },
};

test("lineage headers by default, with the input's headers", async () => {
  const out = await processor().prepare([record]);
  assert.equal(out.predictions.length, 1);
  assert.deepEqual(out.predictions[0]?.headers, {
    "x-tenant": "acme",
    "aimass.model.name": "m",
    "aimass.model.version": "7",
    "aimass.source.topic": "in",
    "aimass.source.partition": "4",
    "aimass.source.offset": "1234",
  });
});

test("output.lineageHeaders: false keeps only the input's headers; the value still names the model", async () => {
  const out = await processor(false).prepare([record]);
  assert.deepEqual(out.predictions[0]?.headers, { "x-tenant": "acme" });
  const value = JSON.parse(String(out.predictions[0]?.value)) as { model: { name: string; version: string } };
  assert.equal(value.model.name, "m");
  assert.equal(value.model.version, "7");
});
