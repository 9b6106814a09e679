// Every kind of bad input ends as exactly one DLQ record with the right stage, never as a
// throw out of the processor, a hang or a prediction carrying garbage: sizes (key and
// headers included), tombstones, bytes that are not UTF-8, wrong JSON types, NaN, numbers
// float32 cannot hold, model outputs that are not finite, corrupt Avro and unknown schema
// ids. RecordProcessor is driven directly with a fake model (delivery is the integration
// tests' job); Avro goes through the real codec with the registry library's in-memory client.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { IHeaders, Message } from "kafkajs";
import { MockClient } from "@confluentinc/schemaregistry";
import { parsePipelineConfig } from "../../../services/common/config/load.js";
import type { PipelineConfigInput } from "../../../services/common/config/schema.js";
import { DLQ_FIT_HEADER } from "../../../services/common/dlq.js";
import { messageBytes } from "../../../services/common/kafka/slices.js";
import type { SourceRecord } from "../../../services/common/records.js";
import { avroCodec, jsonCodec, type ValueCodec } from "../../../services/common/serde/codec.js";
import type { ProcessedChunk } from "../../../services/predictor/chunk.js";
import { RecordProcessor, type ScoringModel } from "../../../services/predictor/record-processor.js";
import type { ModelSnapshot } from "../../../services/predictor/served-models.js";
import type { Row } from "../../../services/predictor/tensorize.js";

type Raw = Partial<Pick<PipelineConfigInput, "input" | "output" | "dlq">>;

/** A processor whose model scores `score = x` (x is the event's `v`), or what `score` says. */
function processor(raw: Raw = {}, o: { codec?: ValueCodec; score?: (row: Row) => number } = {}) {
  const config = parsePipelineConfig(
    {
      pipeline: { name: "t", groupId: "g" },
      input: { topic: "in", ...raw.input },
      output: { topic: "out", ...raw.output },
      dlq: { topic: "dlq", ...raw.dlq },
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
    {},
  );
  const [modelConfig] = config.models;
  assert.ok(modelConfig);
  const score = o.score ?? ((row: Row) => row.x?.[0] ?? 0);
  const model: ScoringModel = {
    config: modelConfig,
    info: {
      name: "m",
      version: "7",
      sha256: "0",
      executionProvider: "cpu",
      inputNames: ["x"],
      outputNames: ["y"],
    },
    predict: (row) => Promise.resolve({ ok: true, value: { score: score(row) } }),
    flush: () => undefined,
    close: () => Promise.resolve(),
  };
  const snapshot: ModelSnapshot<ScoringModel> = {
    select: () => model,
    shadowFor: () => undefined,
    release: () => undefined,
  };
  return new RecordProcessor({
    config,
    inputCodec: o.codec ?? jsonCodec(),
    outputCodec: jsonCodec(),
    snapshot: () => snapshot,
  });
}

let offset = 0;
function rec(
  value: Buffer | string | null,
  o: { key?: Buffer | null; headers?: IHeaders } = {},
): SourceRecord {
  return {
    topic: "in",
    partition: 0,
    offset: String(offset++),
    timestamp: "1764480000000",
    key: o.key === undefined ? Buffer.from("k") : o.key,
    value: typeof value === "string" ? Buffer.from(value, "utf8") : value,
    headers: o.headers ?? {},
  };
}

function text(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  return v === undefined ? undefined : Buffer.isBuffer(v) ? v.toString("utf8") : String(v);
}

/** Each input once: as a prediction or as a DLQ record (matched by source offset), never both. */
function outcomes(
  records: SourceRecord[],
  out: ProcessedChunk,
): Map<string, { dlq?: Message; prediction?: Message }> {
  const byOffset = new Map<string, { dlq?: Message; prediction?: Message }>();
  for (const m of out.predictions) {
    const at = text(m.headers, "aimass.source.offset") ?? "";
    assert.ok(!byOffset.has(at), `offset ${at} twice`);
    byOffset.set(at, { prediction: m });
  }
  for (const m of out.dlq) {
    const at = text(m.headers, "aimass.dlq.source.offset") ?? "";
    assert.ok(!byOffset.has(at), `offset ${at} twice`);
    byOffset.set(at, { dlq: m });
  }
  assert.deepEqual([...byOffset.keys()].sort(), records.map((r) => r.offset).sort());
  return byOffset;
}

async function expectDlq(
  p: RecordProcessor,
  record: SourceRecord,
  stage: string,
  code: string,
  message: RegExp,
) {
  const good = rec(JSON.stringify({ id: "good", v: 0.5 }));
  const out = await p.prepare([good, record]);
  const got = outcomes([good, record], out).get(record.offset);
  assert.ok(got?.dlq, `offset ${record.offset} was not dead-lettered`);
  const h = (name: string) => text(got.dlq?.headers, `aimass.dlq.${name}`);
  assert.equal(h("stage"), stage, h("error.message"));
  assert.equal(h("error.code"), code, h("error.message"));
  assert.match(h("error.message") ?? "", message);
  assert.equal(out.predictions.length, 1, "the batch-mate is scored");
  return got.dlq;
}

test("a tombstone is one DLQ record at decode, with its null value", async () => {
  const dlq = await expectDlq(processor(), rec(null), "decode", "DECODE_FAILED", /tombstone/);
  assert.equal(dlq.value, null);
});

test("a null key is no poison: a good record is scored with a null key; a bad one is dead-lettered with it", async () => {
  const p = processor();
  const good = rec(JSON.stringify({ id: "n", v: 1 }), { key: null });
  const out = await p.prepare([good]);
  assert.equal(out.predictions.length, 1);
  assert.equal(out.predictions[0]?.key, null);
  const dlq = await expectDlq(p, rec("{", { key: null }), "decode", "DECODE_FAILED", /not valid JSON/);
  assert.equal(dlq.key, null);
});

test("bytes that are not UTF-8 inside a JSON string are DECODE_FAILED, not a U+FFFD id scored", async () => {
  const value = Buffer.concat([Buffer.from('{"id":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('","v":1}')]);
  await expectDlq(processor(), rec(value), "decode", "DECODE_FAILED", /not UTF-8/);
  // A lone continuation byte and a truncated sequence too.
  await expectDlq(processor(), rec(Buffer.from([0x7b, 0x80, 0x7d])), "decode", "DECODE_FAILED", /not UTF-8/);
  await expectDlq(
    processor(),
    rec(Buffer.from('{"id":"\xe2\x82"}', "latin1")),
    "decode",
    "DECODE_FAILED",
    /UTF-8/,
  );
});

test("wrong JSON types, NaN and missing fields each end as one DLQ record at the right stage", async () => {
  const p = processor();
  await expectDlq(p, rec("[1,2]"), "decode", "DECODE_FAILED", /not an object/);
  await expectDlq(p, rec('"text"'), "decode", "DECODE_FAILED", /not an object/);
  await expectDlq(p, rec('{"id":"x","v":NaN}'), "decode", "DECODE_FAILED", /not valid JSON/);
  for (const v of ['"NaN"', '"12"', "{}", "[1]", "null"]) {
    await expectDlq(
      p,
      rec(`{"id":"x","v":${v}}`),
      "validate",
      "FIELD_INVALID",
      /"v" is (not a finite number|missing)/,
    );
  }
  await expectDlq(p, rec('{"id":"x"}'), "validate", "FIELD_INVALID", /"v" is missing/);
});

test("1e39 is FIELD_INVALID (validate), never Infinity in the tensor and a null score", async () => {
  await expectDlq(
    processor(),
    rec('{"id":"x","v":1e39}'),
    "validate",
    "FIELD_INVALID",
    /"v" is 1e\+39, beyond float32/,
  );
});

test("a non-finite model output dead-letters its own record (stage inference); its batch-mates are scored", async () => {
  const p = processor(
    {},
    { score: (row) => (row.x?.[0] === 2 ? Number.POSITIVE_INFINITY : row.x?.[0] === 3 ? Number.NaN : 0.5) },
  );
  const records = [1, 2, 3, 4].map((v) => rec(JSON.stringify({ id: `e${v}`, v })));
  const out = await p.prepare(records);
  const got = outcomes(records, out);
  assert.equal(out.predictions.length, 2);
  for (const m of out.predictions)
    assert.equal((JSON.parse(String(m.value)) as { score: unknown }).score, 0.5);
  for (const [r, shown] of [
    [records[1], "Infinity"],
    [records[2], "NaN"],
  ] as const) {
    const dlq = got.get(r?.offset ?? "")?.dlq;
    assert.ok(dlq);
    assert.equal(text(dlq.headers, "aimass.dlq.stage"), "inference");
    assert.equal(text(dlq.headers, "aimass.dlq.error.code"), "INFERENCE_FAILED");
    assert.match(
      text(dlq.headers, "aimass.dlq.error.message") ?? "",
      new RegExp(`output "y" \\(field "score"\\) is ${shown}`),
    );
  }
  assert.deepEqual(out.dlqByStage, { inference: 2 });
});

test("input.maxRecordBytes counts key and headers; too many headers and one oversized header are size failures", async () => {
  const p = processor({ input: { topic: "in", maxRecordBytes: 1_000, maxHeaders: 3, maxHeaderBytes: 300 } });
  const small = JSON.stringify({ id: "x", v: 1 });
  const vb = Buffer.byteLength(small);
  // The value alone fits; with its key it does not.
  await expectDlq(
    p,
    rec(small, { key: Buffer.alloc(990) }),
    "size",
    "PAYLOAD_TOO_LARGE",
    new RegExp(
      `record is ${vb + 990} bytes \\(value ${vb}, key 990, headers 0\\), limit 1000 \\(input.maxRecordBytes\\)`,
    ),
  );
  const fourHeaders = { a: "1", b: "2", c: "3", d: "4" };
  await expectDlq(
    p,
    rec(small, { headers: fourHeaders }),
    "size",
    "PAYLOAD_TOO_LARGE",
    /4 headers, limit 3 \(input.maxHeaders\)/,
  );
  // A repeated header counts once per value.
  await expectDlq(
    p,
    rec(small, { headers: { a: ["1", "2", "3", "4"] } }),
    "size",
    "PAYLOAD_TOO_LARGE",
    /4 headers/,
  );
  await expectDlq(
    p,
    rec(small, { headers: { big: Buffer.alloc(298) } }),
    "size",
    "PAYLOAD_TOO_LARGE",
    /header "big" is 301 bytes, limit 300 \(input.maxHeaderBytes\)/,
  );
  // Three headers of 290 bytes: each fits, with the value they do not.
  const padded = JSON.stringify({ id: "x", v: 1, pad: "a".repeat(150) });
  const many = { h1: Buffer.alloc(288), h2: Buffer.alloc(288), h3: Buffer.alloc(288) };
  await expectDlq(
    p,
    rec(padded, { headers: many }),
    "size",
    "PAYLOAD_TOO_LARGE",
    /key 1, headers 870\), limit 1000/,
  );
  // At the limits exactly, a record is scored.
  const fits = await p.prepare([rec(small, { key: Buffer.alloc(1_000 - vb - 4), headers: { h1: "ab" } })]);
  assert.equal(fits.predictions.length, 1);
});

test("output.maxRecordBytes counts the prediction's key and headers (stage encode)", async () => {
  const p = processor({ output: { topic: "out", maxRecordBytes: 1_000 } });
  await expectDlq(
    p,
    rec(JSON.stringify({ id: "x", v: 1 }), { headers: { trace: Buffer.alloc(900) } }),
    "encode",
    "ENCODE_FAILED",
    /over output.maxRecordBytes 1000/,
  );
});

test("the DLQ copy of a record near the limits fits dlq.maxRecordBytes and says what was cut", async () => {
  const p = processor({
    input: { topic: "in", maxRecordBytes: 50_000 },
    dlq: { topic: "dlq", maxRecordBytes: 10_000 },
  });
  const nearLimit = JSON.stringify({ id: "x", pad: "a".repeat(40_000) }); // valid, but without "v"
  const headers = { "x-tenant": "acme" };
  for (const [value, stage] of [
    [nearLimit, "validate"],
    [nearLimit + " ".repeat(20_000), "size"],
  ] as const) {
    const dlq = await expectDlq(
      p,
      rec(value, { headers }),
      stage,
      stage === "size" ? "PAYLOAD_TOO_LARGE" : "FIELD_INVALID",
      /./,
    );
    assert.ok(messageBytes(dlq) <= 10_000, `${messageBytes(dlq)} bytes`);
    assert.equal(text(dlq.headers, DLQ_FIT_HEADER.truncated), "headers,value");
    assert.equal(
      text(dlq.headers, DLQ_FIT_HEADER.originalBytes),
      String(Buffer.byteLength(value) + 1 + 8 + 4),
    );
    assert.equal(text(dlq.headers, "x-tenant"), undefined);
  }
});

async function avroProcessor() {
  const registry = new MockClient();
  const schema = {
    type: "record",
    name: "E",
    fields: [
      { name: "id", type: "string" },
      { name: "v", type: "double" },
      { name: "tags", type: { type: "map", values: "string" } },
    ],
  };
  const id = await registry.register("in-value", { schemaType: "AVRO", schema: JSON.stringify(schema) });
  const wire = (schemaId: number, body: number[]) => {
    const prefix = Buffer.alloc(5);
    prefix.writeInt32BE(schemaId, 1);
    return Buffer.concat([prefix, Buffer.from(body)]);
  };
  const p = processor({ input: { topic: "in", format: "avro" } }, { codec: avroCodec({ registry }) });
  return { p, id, wire };
}

test("Avro: an unknown schema id is SCHEMA_UNKNOWN and a corrupt map count DECODE_FAILED, both at decode", async () => {
  const { p, id, wire } = await avroProcessor();
  const head = [2, 0x61, ...Array.from(Buffer.alloc(8))]; // id "a", v 0
  const good = await p.prepare([rec(wire(id, [...head, 0]))]);
  assert.equal(good.predictions.length, 1);
  const check = async (record: SourceRecord, code: string, message: RegExp) => {
    const out = await p.prepare([record]);
    assert.equal(out.predictions.length, 0);
    assert.equal(out.dlq.length, 1);
    assert.equal(text(out.dlq[0]?.headers, "aimass.dlq.stage"), "decode");
    assert.equal(text(out.dlq[0]?.headers, "aimass.dlq.error.code"), code);
    assert.match(text(out.dlq[0]?.headers, "aimass.dlq.error.message") ?? "", message);
  };
  await check(rec(wire(id + 1000, [...head, 0])), "SCHEMA_UNKNOWN", /unknown to the registry/);
  // 6,000,000 map entries declared (zig-zag varint 0x80 0xb6 0xdc 0x05) in a handful of bytes.
  await check(
    rec(wire(id, [...head, 0x80, 0xb6, 0xdc, 0x05, 2, 0x61])),
    "DECODE_FAILED",
    /corrupt Avro block: 6000000 items/,
  );
});
