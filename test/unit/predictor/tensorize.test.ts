// Event ↔ tensor mapping: the example model's row for a known event, every way an event can
// fail to fit (typed errors naming the field, numbers float32 cannot hold included), stacking
// rows into / splitting outputs out of [batch, width] tensors, and outputs that are not finite.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isAimassError, type ErrorCode } from "../../../services/common/errors.js";
import { loadPipelineConfig } from "../../../services/common/config/load.js";
import type { ModelConfig, TensorInputConfig } from "../../../services/common/config/schema.js";
import {
  FLOAT32_MAX,
  fromTensors,
  getField,
  inputWidth,
  nonFiniteOutput,
  toRow,
  toTensors,
} from "../../../services/predictor/tensorize.js";
import type { NamedTensors } from "../../../services/predictor/inference/types.js";
import { repoPath } from "../../helpers/pipeline.js";
import { resolveVersion } from "../../../services/common/models/repository.js";

// Version 1 of the example's model: the event-only mapping (version 3 adds online features).
const example = await loadPipelineConfig(repoPath("examples/shop/pipeline.yaml"), {});
const shop = resolveVersion(example.modelRepository as string, "shop-propensity", "1");

function model(inputs: TensorInputConfig[], outputs: ModelConfig["outputs"] = []): ModelConfig {
  return {
    name: "m",
    version: "1",
    path: "/m.onnx",
    executionProviders: ["cpu"],
    poolSize: 1,
    intraOpThreads: 1,
    batching: { maxBatchSize: 8, maxDelayMs: 5 },
    inputs,
    outputs: outputs.length > 0 ? outputs : [{ name: "y", width: 1, field: "y" }],
  };
}

const HOUR = 3_600_000;
const TS_0200 = Date.UTC(2025, 10, 30, 2); // 02:00 UTC: angle π/6

function event(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: "e-1", type: "cart", price: 19.99, quantity: 2, ts: TS_0200, ...overrides };
}

function assertClose(actual: number[] | undefined, expected: number[], eps = 1e-12): void {
  assert.ok(actual, "row present");
  assert.equal(actual.length, expected.length, `${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`);
  expected.forEach((e, i) => {
    assert.ok(Math.abs((actual[i] ?? NaN) - e) <= eps, `[${i}] ${actual[i]} vs ${e}`);
  });
}

function throwsCode(fn: () => unknown, code: ErrorCode, field?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isAimassError(err), `expected an AimassError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (field !== undefined) {
      assert.ok(err.message.includes(`"${field}"`), `message names ${field}: ${err.message}`);
      assert.equal(err.details.field, field);
    }
    return true;
  });
}

test("the example model's row: log1p, one-hot, hour of day sin/cos, constant", () => {
  assert.equal(inputWidth(shop.inputs[0] as TensorInputConfig), 8);
  const row = toRow(shop, event());
  assert.deepEqual(Object.keys(row), ["features"]);
  assertClose(row.features, [
    3.0440461338325413, // log1p(19.99)
    1.0986122886681096, // log1p(2) = ln 3
    0,
    1,
    0, // cart
    0.5, // sin(π/6)
    0.8660254037844387, // cos(π/6)
    1,
  ]);

  const purchase = toRow(
    shop,
    event({ type: "purchase", price: 0, quantity: Math.E - 1, ts: TS_0200 + 4 * HOUR }),
  );
  // 06:00 → angle π/2.
  assertClose(purchase.features, [0, 1, 0, 0, 1, 1, 0, 1]);
  const view = toRow(shop, event({ type: "view", ts: Date.UTC(2025, 0, 1, 18) }));
  assertClose(view.features?.slice(2), [1, 0, 0, -1, 0, 1]);
});

test("hour of day wraps for any epoch ms, including before 1970", () => {
  // 1969-12-31T22:00Z: the same hour every day, the same angle (-π/6).
  const before = toRow(shop, event({ ts: -2 * HOUR }));
  const after = toRow(shop, event({ ts: Date.UTC(2030, 5, 1, 22) }));
  assertClose(before.features?.slice(5, 7), [-0.5, 0.8660254037844387]);
  assertClose(after.features?.slice(5, 7), [-0.5, 0.8660254037844387]);
});

test("identity, bool, dotted paths and booleans as numbers", () => {
  const m = model([
    {
      name: "x",
      type: "float32",
      columns: [
        { field: "a", transform: "identity" },
        { field: "user.age", transform: "identity" },
        { field: "flag", transform: "bool" },
        { field: "zero", transform: "bool" },
        { field: "yes", transform: "identity" },
      ],
    },
  ]);
  const row = toRow(m, { a: -3.5, user: { age: 41 }, flag: 7, zero: 0, yes: true });
  assert.deepEqual(row.x, [-3.5, 41, 1, 0, 1]);
  assert.equal(getField({ a: { b: { c: 5 } } }, "a.b.c"), 5);
  assert.equal(getField({ a: 1 }, "a.b"), undefined);
  throwsCode(() => toRow(m, { a: 1, user: null, flag: 1, zero: 0, yes: 1 }), "FIELD_INVALID", "user.age");
});

test("a missing field is FIELD_INVALID naming it", () => {
  const e = event();
  delete e.price;
  throwsCode(() => toRow(shop, e), "FIELD_INVALID", "price");
  throwsCode(() => toRow(shop, event({ quantity: null })), "FIELD_INVALID", "quantity");
  const noTs = event();
  delete noTs.ts;
  throwsCode(() => toRow(shop, noTs), "FIELD_INVALID", "ts");
});

test("NaN, ±Infinity and strings where a number is expected are FIELD_INVALID", () => {
  for (const bad of [
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    "19.99",
    "NaN",
    {},
    [1],
  ]) {
    throwsCode(() => toRow(shop, event({ price: bad })), "FIELD_INVALID", "price");
  }
  // What JSON gives for a huge exponent.
  const parsed = JSON.parse('{"type":"view","price":1e999,"quantity":1,"ts":0}') as Record<string, unknown>;
  assert.equal(parsed.price, Number.POSITIVE_INFINITY);
  throwsCode(() => toRow(shop, parsed), "FIELD_INVALID", "price");
});

test("log1p of a value ≤ -1 is FIELD_INVALID", () => {
  throwsCode(() => toRow(shop, event({ price: -1 })), "FIELD_INVALID");
  assert.doesNotThrow(() => toRow(shop, event({ price: -0.5 })));
});

test("a one-hot value outside its list is FIELD_INVALID naming the field", () => {
  throwsCode(() => toRow(shop, event({ type: "refund" })), "FIELD_INVALID", "type");
  throwsCode(() => toRow(shop, event({ type: "VIEW" })), "FIELD_INVALID", "type");
  const missing = event();
  delete missing.type;
  throwsCode(() => toRow(shop, missing), "FIELD_INVALID", "type");
});

test("a length column with the wrong length or no array is TENSOR_SHAPE; bad elements FIELD_INVALID", () => {
  const m = model([{ name: "x", type: "float32", columns: [{ field: "vec", length: 4 }, { constant: 9 }] }]);
  assert.equal(inputWidth(m.inputs[0] as TensorInputConfig), 5);
  assert.deepEqual(toRow(m, { vec: [1, 2, 3, 4] }).x, [1, 2, 3, 4, 9]);
  throwsCode(() => toRow(m, { vec: [1, 2, 3] }), "TENSOR_SHAPE", "vec");
  throwsCode(() => toRow(m, { vec: [1, 2, 3, 4, 5] }), "TENSOR_SHAPE", "vec");
  throwsCode(() => toRow(m, { vec: "1,2,3,4" }), "TENSOR_SHAPE", "vec");
  throwsCode(() => toRow(m, {}), "TENSOR_SHAPE", "vec");
  throwsCode(() => toRow(m, { vec: [1, null, 3, 4] }), "FIELD_INVALID", "vec");
  throwsCode(() => toRow(m, { vec: [1, 2, Number.NaN, 4] }), "FIELD_INVALID", "vec");
});

test("an int64 input rejects non-integers", () => {
  const m = model([{ name: "idx", type: "int64", columns: [{ field: "idx", transform: "identity" }] }]);
  assert.deepEqual(toRow(m, { idx: 3 }).idx, [3]);
  throwsCode(() => toRow(m, { idx: 1.5 }), "FIELD_INVALID");
  throwsCode(() => toRow(m, { idx: 2 ** 60 }), "FIELD_INVALID");
});

test("toTensors stacks rows into [n, width] float32 and int64 tensors", () => {
  const m = model([
    {
      name: "f",
      type: "float32",
      columns: [
        { field: "a", transform: "identity" },
        { field: "v", length: 2 },
      ],
    },
    { name: "i", type: "int64", columns: [{ field: "k", transform: "identity" }, { constant: 7 }] },
  ]);
  const rows = [
    toRow(m, { a: 0.5, v: [1, 2], k: 3 }),
    toRow(m, { a: -1.25, v: [3, 4], k: -9 }),
    toRow(m, { a: 100, v: [5, 6], k: 0 }),
  ];
  const t = toTensors(m, rows);
  assert.deepEqual(Object.keys(t).sort(), ["f", "i"]);
  assert.equal(t.f?.type, "float32");
  assert.deepEqual(t.f?.dims, [3, 3]);
  assert.ok(t.f?.data instanceof Float32Array);
  assert.deepEqual(Array.from(t.f.data as Float32Array), [0.5, 1, 2, -1.25, 3, 4, 100, 5, 6]);
  assert.equal(t.i?.type, "int64");
  assert.deepEqual(t.i?.dims, [3, 2]);
  assert.ok(t.i?.data instanceof BigInt64Array);
  assert.deepEqual(Array.from(t.i.data as BigInt64Array), [3n, 7n, -9n, 7n, 0n, 7n]);

  const shopT = toTensors(shop, [toRow(shop, event()), toRow(shop, event({ type: "view" }))]);
  assert.deepEqual(shopT.features?.dims, [2, 8]);
  assert.equal(shopT.features?.data.length, 16);
  assert.equal(shopT.features?.data[8], Math.fround(3.0440461338325413));
  assert.equal(shopT.features?.data[10], 1); // second row: view
});

test("fromTensors splits outputs per row; width > 1 gives arrays", () => {
  const m = model(
    [{ name: "x", type: "float32", columns: [{ field: "a", transform: "identity" }] }],
    [
      { name: "p", width: 1, field: "score" },
      { name: "e", width: 2, field: "embedding" },
    ],
  );
  const outputs: NamedTensors = {
    p: { type: "float32", data: Float32Array.from([0.25, 0.5, 0.75]), dims: [3, 1] },
    e: { type: "float32", data: Float32Array.from([1, 2, 3, 4, 5, 6]), dims: [3, 2] },
  };
  assert.deepEqual(fromTensors(m, outputs, 3), [
    { score: 0.25, embedding: [1, 2] },
    { score: 0.5, embedding: [3, 4] },
    { score: 0.75, embedding: [5, 6] },
  ]);
  // int64 outputs become plain numbers.
  const ints: NamedTensors = {
    p: { type: "int64", data: BigInt64Array.from([4n, 5n]), dims: [2, 1] },
    e: { type: "float32", data: Float32Array.from([0, 0, 0, 0]), dims: [2, 2] },
  };
  assert.deepEqual(
    fromTensors(m, ints, 2).map((r) => r.score),
    [4, 5],
  );
});

test("fromTensors rejects a wrong-sized or missing output with INFERENCE_FAILED", () => {
  const m = model(
    [{ name: "x", type: "float32", columns: [{ field: "a", transform: "identity" }] }],
    [{ name: "p", width: 1, field: "score" }],
  );
  throwsCode(
    () => fromTensors(m, { p: { type: "float32", data: Float32Array.from([1, 2]), dims: [2, 1] } }, 3),
    "INFERENCE_FAILED",
  );
  throwsCode(
    () => fromTensors(m, { p: { type: "float32", data: Float32Array.from([1, 2, 3, 4]), dims: [4, 1] } }, 3),
    "INFERENCE_FAILED",
  );
  throwsCode(() => fromTensors(m, {}, 1), "INFERENCE_FAILED");
});

test("feature columns read the looked-up view values, with their transform", () => {
  const m = model([
    {
      name: "x",
      type: "float32",
      columns: [
        { field: "price", transform: "identity" },
        { feature: "user.clicks_7d", transform: "log1p" },
        { feature: "item.price_band", transform: "identity" },
      ],
    },
  ]);
  const row = toRow(m, event({ price: 5 }), { user: { clicks_7d: 9 }, item: { price_band: 3 } });
  assert.deepEqual(row.x, [5, Math.log1p(9), 3]);
  assert.throws(
    () => toRow(m, event(), { user: { clicks_7d: 1 } }),
    (err: unknown) => isAimassError(err, "FIELD_INVALID") && /item\.price_band/.test(err.message),
  );
});

test("a finite number beyond float32's range is FIELD_INVALID for a float32 input, naming the field", () => {
  const m = model([
    {
      name: "x",
      type: "float32",
      columns: [
        { field: "a", transform: "identity" },
        { field: "vec", length: 2 },
        { field: "b", transform: "log1p" },
      ],
    },
  ]);
  const ok = { a: 1, vec: [0, 0], b: 0 };
  // In a Float32Array, 1e39 is Infinity: the model would see it and score garbage.
  assert.equal(Float32Array.from([1e39])[0], Number.POSITIVE_INFINITY);
  for (const bad of [1e39, -1e39, 3.5e38, Number.MAX_VALUE]) {
    throwsCode(() => toRow(m, { ...ok, a: bad }), "FIELD_INVALID", "a");
    throwsCode(() => toRow(m, { ...ok, vec: [0, bad] }), "FIELD_INVALID", "vec");
  }
  assert.throws(() => toRow(m, { ...ok, a: 1e39 }), /"a" is 1e\+39, beyond float32's range/);
  // float32's own maximum still fits, and what the tensor gets is what counts: log1p(1e39) is 89.8.
  assert.deepEqual(toRow(m, { ...ok, a: FLOAT32_MAX, vec: [-FLOAT32_MAX, 1e-46] }).x?.slice(0, 3), [
    FLOAT32_MAX,
    -FLOAT32_MAX,
    1e-46,
  ]);
  assert.ok(Math.abs((toRow(m, { ...ok, b: 1e39 }).x?.[3] ?? 0) - Math.log1p(1e39)) < 1e-9);
  // int64 inputs keep their own check (safe integers), not float32's.
  const ints = model([{ name: "idx", type: "int64", columns: [{ field: "idx", transform: "identity" }] }]);
  throwsCode(() => toRow(ints, { idx: 1e39 }), "FIELD_INVALID", "idx");
});

test("nonFiniteOutput names the output a row got NaN or ±Infinity for; finite rows pass", () => {
  const m = model(
    [{ name: "x", type: "float32", columns: [{ field: "a", transform: "identity" }] }],
    [
      { name: "p", width: 1, field: "score" },
      { name: "e", width: 2, field: "embedding" },
    ],
  );
  const outputs: NamedTensors = {
    p: { type: "float32", data: Float32Array.from([0.5, Number.POSITIVE_INFINITY, 0.25, 0.1]), dims: [4, 1] },
    e: { type: "float32", data: Float32Array.from([1, 2, 3, 4, 5, Number.NaN, 7, 8]), dims: [4, 2] },
  };
  const rows = fromTensors(m, outputs, 4);
  const errors = rows.map((r) => nonFiniteOutput(m, r));
  assert.equal(errors[0], undefined);
  assert.equal(errors[3], undefined);
  assert.ok(isAimassError(errors[1], "INFERENCE_FAILED"));
  assert.match(errors[1].message, /output "p" \(field "score"\) is Infinity/);
  assert.equal(errors[1].details.output, "p");
  assert.ok(isAimassError(errors[2], "INFERENCE_FAILED"));
  assert.match(errors[2].message, /output "e" \(field "embedding"\) is NaN at index 1/);
  assert.ok(nonFiniteOutput(m, { score: -Infinity, embedding: [1, 2] }));
  assert.ok(nonFiniteOutput(m, { embedding: [1, 2] }), "a missing output is not finite either");
});
