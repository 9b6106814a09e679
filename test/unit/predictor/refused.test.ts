// divertRefused / handleRefusal: a message the broker refused is traced to its input record and
// replaced by that record's DLQ copy; what cannot be traced fails loudly instead of guessing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AimassError } from "../../../services/common/errors.js";
import { silentLogger } from "../../../services/common/logger.js";
import type { SourceRecord } from "../../../services/common/records.js";
import type { ProcessedChunk } from "../../../services/predictor/chunk.js";
import { divertRefused, handleRefusal } from "../../../services/predictor/refused.js";

const o = { outputTopic: "out", dlqTopic: "dlq", shadowTopic: "shadow", dlq: { pipeline: "p" } };
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
  const offset = divertRefused(c, records, [{ topic: "out", index: 2 }], new Error("MESSAGE_TOO_LARGE"), o);
  assert.deepEqual(offset, ["11"]);
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
    () => divertRefused(chunk(), records, [{ topic: "out", index: 9 }], new Error("x"), o),
    /cannot be traced/,
  );
  assert.throws(
    () => divertRefused(chunk(), records, [{ topic: "elsewhere", index: 0 }], new Error("x"), o),
    /cannot be traced/,
  );
});

test("several refusals in one isolated attempt are diverted together; a refused shadow is dropped", () => {
  const c = {
    ...chunk(),
    shadow: [
      { key: null, value: "s10" },
      { key: null, value: "s11" },
    ],
  };
  const refused = [
    { topic: "out", index: 0 },
    { topic: "out", index: 3 },
    { topic: "out", index: 1 },
    { topic: "shadow", index: 1 },
  ];
  const offsets = divertRefused(c, records, refused, new Error("MESSAGE_TOO_LARGE"), o);
  assert.deepEqual(offsets.sort(), ["10", "11", "12"]);
  assert.deepEqual(c.predictions, []);
  assert.deepEqual(
    c.dlq.map((m) => m.value?.toString()),
    ["v10", "v11", "v12"],
    "in offset order",
  );
  assert.deepEqual(
    c.shadow.map((m) => m.value),
    ["s10"],
  );
  assert.equal(c.shadowFailures, 1);
});

test("a refusal that cannot be handled leaves the chunk as it was", () => {
  const c = chunk();
  const before = JSON.stringify(c);
  assert.throws(() =>
    divertRefused(
      c,
      records,
      [
        { topic: "out", index: 0 },
        { topic: "out", index: 42 },
      ],
      new Error("x"),
      o,
    ),
  );
  assert.equal(JSON.stringify(c), before);
});

test("handleRefusal: isolation after record-level errors, diversion when named, retry when untraceable", () => {
  const group = { prepared: [chunk()], records: [records] };
  const kafka = (type: string) => new AimassError("KAFKA_TRANSIENT", type, { cause: { type } });
  assert.equal(handleRefusal(kafka("MESSAGE_TOO_LARGE"), group, o, silentLogger), "isolate");
  assert.equal(handleRefusal(kafka("INVALID_RECORD"), group, o, silentLogger), "isolate");
  assert.equal(handleRefusal(kafka("INVALID_TIMESTAMP"), group, o, silentLogger), "none", "clock skew");
  assert.equal(handleRefusal(kafka("REQUEST_TIMED_OUT"), group, o, silentLogger), "none");
  assert.equal(handleRefusal(new Error("boom"), group, o, silentLogger), "none");
  const named = (refused: unknown) =>
    new AimassError("KAFKA_RECORD_REJECTED", "refused", { details: { refused } });
  assert.equal(handleRefusal(named([{ topic: "out", index: 0 }]), group, o, silentLogger), "diverted");
  assert.equal(group.prepared[0]?.dlq.length, 1);
  assert.equal(handleRefusal(named([{ topic: "out", index: 99 }]), group, o, silentLogger), "isolate");
  assert.equal(handleRefusal(named(undefined), group, o, silentLogger), "isolate");
  const two = { prepared: [chunk(), chunk()], records: [records, records] };
  assert.equal(handleRefusal(named([{ topic: "out", index: 0 }]), two, o, silentLogger), "isolate");
});
