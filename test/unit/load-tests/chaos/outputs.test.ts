// How read-back records become outputs for the checks: named by the chaos id header, or (a
// DLQ record cut to its budget, which lost the input's headers) by its source offset; shadow
// predictions are not outputs; a DLQ record's reason comes from its aimass.dlq.* headers.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { InputRecord } from "../../../../load-tests/chaos/checks.js";
import { toOutputs } from "../../../../load-tests/chaos/readback.js";
import type { RunPipeline } from "../../../../load-tests/chaos/pipeline.js";
import type { ReadRecord } from "../../../../load-tests/chaos/reader.js";

const pipeline: RunPipeline = {
  shape: "events",
  name: "p",
  group: "p.group",
  transactionalIdPrefix: "p.group",
  input: "p.in",
  output: "p.out",
  dlq: "p.dlq",
  shadow: "p.shadow",
  transactional: ["p.out", "p.dlq", "p.shadow"],
  configPath: "/dev/null",
  sessionTimeoutMs: 6_000,
};

const inputs: InputRecord[] = [
  { id: "e-0", key: "k", partition: 2, offset: 40, kind: "good", expect: "prediction" },
  { id: "e-1", key: "k", partition: 2, offset: 41, kind: "large-headers-not-json", expect: "dlq" },
];

const record = (topic: string, headers: Record<string, string>, value: string | null = null): ReadRecord => ({
  topic,
  partition: 0,
  offset: 7,
  key: Buffer.from("k"),
  value: value === null ? null : Buffer.from(value),
  headers,
  seenAt: 123,
});

test("outputs are named by their chaos id header, or by the source offset a cut DLQ record keeps", () => {
  const outs = toOutputs(
    [
      record("p.out", { "chaos.id": "e-0" }, JSON.stringify({ eventId: "e-0" })),
      record("p.dlq", {
        "aimass.dlq.source.topic": "p.in",
        "aimass.dlq.source.partition": "2",
        "aimass.dlq.source.offset": "41",
        "aimass.dlq.stage": "decode",
        "aimass.dlq.error.code": "DECODE_FAILED",
        "aimass.dlq.error.message": "not valid JSON",
        "aimass.dlq.truncated": "headers",
      }),
      record("p.shadow", { "chaos.id": "e-0" }, JSON.stringify({ eventId: "e-0" })),
      record("p.dlq", { "aimass.dlq.source.topic": "other", "aimass.dlq.source.partition": "2" }),
    ],
    pipeline,
    inputs,
  );
  assert.deepEqual(
    outs.map((o) => [o.stream, o.id]),
    [
      ["prediction", "e-0"],
      ["dlq", "e-1"],
      ["dlq", undefined],
    ],
  );
  assert.equal(outs[0]?.eventId, "e-0");
  assert.equal(outs[1]?.reason, "decode/DECODE_FAILED: not valid JSON");
});
