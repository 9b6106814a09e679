// divertRefused / handleRefusal: a message the broker refused is traced to its input record and
// replaced by that record's DLQ copy; what cannot be traced fails loudly instead of guessing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AimassError } from "../../../services/common/errors.js";
import { silentLogger } from "../../../services/common/logger.js";
import type { SourceRecord } from "../../../services/common/records.js";
import type { ProcessedChunk } from "../../../services/predictor/chunk.js";
import { divertRefused, handleRefusal } from "../../../services/predictor/refused.js";

const o = { outputTopic: "out", dlqTopic: "dlq", dlq: { pipeline: "p" } };
const records: SourceRecord[] = ["10", "11", "12"].map((offset) => ({
  topic: "in",
  partition: 0,
  offset,
  timestamp: "0",
  key: Buffer.from(`k${offset}`),
  value: Buffer.from(`v${offset}`),
  headers: {},
}));
const chunk = (): ProcessedChunk => ({
  // Record 11 has two predictions (say a fan-out): both go when one is refused.
  predictions: ["a10", "a11", "b11", "a12"].map((v) => ({ key: null, value: v })),
  predictionSources: [0, 1, 1, 2],
  dlq: [],
  shadow: [],
  dlqByStage: {},
  shadowFailures: 0,
});

test("a refused prediction takes every prediction of its record to the DLQ, once", () => {
  const c = chunk();
  const offset = divertRefused(c, records, { topic: "out", index: 2 }, new Error("MESSAGE_TOO_LARGE"), o);
  assert.equal(offset, "11");
  assert.deepEqual(
    c.predictions.map((m) => m.value),
    ["a10", "a12"],
  );
  assert.deepEqual(c.predictionSources, [0, 2]);
  assert.equal(c.dlq.length, 1);
  assert.equal(c.dlq[0]?.value?.toString(), "v11");
  assert.equal(String(c.dlq[0]?.headers?.["aimass.dlq.stage"]), "produce");
  assert.equal(c.dlqByStage.produce, 1);
});

test("a refusal that cannot be traced to an input record throws", () => {
  assert.throws(
    () => divertRefused(chunk(), records, { topic: "out", index: 9 }, new Error("x"), o),
    /cannot be traced/,
  );
  assert.throws(
    () => divertRefused(chunk(), records, { topic: "elsewhere", index: 0 }, new Error("x"), o),
    /cannot be traced/,
  );
});

test("handleRefusal: record-level Kafka errors ask for isolation; other errors do not", () => {
  const group = { prepared: [chunk()], records: [records] };
  const kafka = (type: string) => new AimassError("KAFKA_TRANSIENT", type, { cause: { type } });
  assert.equal(handleRefusal(kafka("MESSAGE_TOO_LARGE"), group, o, silentLogger), true);
  assert.equal(handleRefusal(kafka("INVALID_RECORD"), group, o, silentLogger), true);
  assert.equal(handleRefusal(kafka("REQUEST_TIMED_OUT"), group, o, silentLogger), false);
  assert.equal(handleRefusal(new Error("boom"), group, o, silentLogger), false);
  const named = new AimassError("KAFKA_RECORD_REJECTED", "refused", { details: { topic: "out", index: 0 } });
  assert.equal(handleRefusal(named, group, o, silentLogger), true);
  assert.equal(group.prepared[0]?.dlq.length, 1);
  assert.throws(
    () =>
      handleRefusal(named, { prepared: [chunk(), chunk()], records: [records, records] }, o, silentLogger),
    /names no record of one chunk/,
  );
});
