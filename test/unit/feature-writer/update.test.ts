// Feature update validation: every way an update can be wrong is named in the error, and a
// good one comes out with numeric values (bools as 0/1).
import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePipelineConfig } from "../../../services/common/config/load.js";
import type { FeaturesConfig } from "../../../services/common/config/schema.js";
import { isAimassError } from "../../../services/common/errors.js";
import { jsonCodec } from "../../../services/common/serde/codec.js";
import { decodeUpdate, validateUpdate } from "../../../services/feature-writer/update.js";
import { testPipelineRaw } from "../../helpers/pipeline.js";

function shopFeatures(): FeaturesConfig {
  const raw = testPipelineRaw({
    input: "in",
    output: "out",
    dlq: "dlq",
    group: "g",
    patch: (r) => {
      r.features = {
        views: [
          {
            name: "user",
            key: "userId",
            features: [
              { name: "clicks_7d", type: "int" },
              { name: "carts_7d", type: "int" },
              { name: "purchases_30d", type: "int" },
              { name: "vip", type: "bool" },
              { name: "spend_30d" },
            ],
          },
          {
            name: "item",
            key: "itemId",
            features: [{ name: "popularity_7d" }, { name: "price_band", type: "int" }],
          },
        ],
        updates: { topic: "features.updates" },
        dlq: { topic: "features.dlq" },
      };
    },
  });
  const features = parsePipelineConfig(raw, "/tmp/test.yaml", {}).features;
  assert.ok(features);
  return features;
}

const features = shopFeatures();
const TS = 1_764_480_000_000;

/** Asserts a FIELD_INVALID error whose message matches every pattern. */
function invalid(raw: Record<string, unknown>, ...patterns: RegExp[]): void {
  assert.throws(
    () => validateUpdate(raw, features),
    (err: unknown) => {
      assert.ok(isAimassError(err, "FIELD_INVALID"), `expected FIELD_INVALID, got ${String(err)}`);
      for (const p of patterns) assert.match(err.message, p);
      return true;
    },
  );
}

test("a valid update comes back with numeric values", () => {
  assert.deepEqual(
    validateUpdate(
      { view: "user", key: "u-7", ts: TS, values: { clicks_7d: 12, purchases_30d: 1, spend_30d: 19.5 } },
      features,
    ),
    { view: "user", key: "u-7", ts: TS, values: { clicks_7d: 12, purchases_30d: 1, spend_30d: 19.5 } },
  );
});

test("bools become 0/1, for bool and numeric features alike", () => {
  const u = validateUpdate(
    { view: "user", key: "u-7", ts: TS, values: { vip: true, spend_30d: false } },
    features,
  );
  assert.deepEqual(u.values, { vip: 1, spend_30d: 0 });
});

test("a subset of the view's features is allowed; extra top-level fields are ignored", () => {
  const u = validateUpdate(
    { view: "item", key: "i-42", ts: TS, values: { price_band: 3 }, source: "x" },
    features,
  );
  assert.deepEqual(u, { view: "item", key: "i-42", ts: TS, values: { price_band: 3 } });
});

test("an Avro long decoded as a bigint is accepted", () => {
  const u = validateUpdate(
    { view: "item", key: "i-1", ts: BigInt(TS), values: { popularity_7d: 0.5 } },
    features,
  );
  assert.equal(u.ts, TS);
});

test("unknown view names the view and the known ones", () => {
  invalid({ view: "shop", key: "s-1", ts: TS, values: { x: 1 } }, /unknown view "shop"/, /known: user, item/);
  invalid({ key: "s-1", ts: TS, values: { x: 1 } }, /"view" is missing/);
  invalid({ view: 7, key: "s-1", ts: TS, values: { x: 1 } }, /"view" is not a string/);
});

test("unknown feature for that view", () => {
  invalid(
    { view: "item", key: "i-1", ts: TS, values: { clicks_7d: 1 } },
    /view "item" has no feature "clicks_7d"/,
  );
});

test("non-finite or non-numeric values", () => {
  for (const value of [Infinity, -Infinity, NaN, "12", null, [1], { a: 1 }]) {
    invalid(
      { view: "user", key: "u-1", ts: TS, values: { spend_30d: value } },
      /feature "spend_30d" is not a finite number or boolean/,
    );
  }
});

test("int and bool features check their values", () => {
  invalid({ view: "user", key: "u-1", ts: TS, values: { clicks_7d: 1.5 } }, /"clicks_7d" is an int feature/);
  invalid({ view: "user", key: "u-1", ts: TS, values: { vip: 2 } }, /"vip" is a bool feature/);
  assert.deepEqual(
    validateUpdate({ view: "user", key: "u-1", ts: TS, values: { vip: 0 } }, features).values,
    {
      vip: 0,
    },
  );
});

test("ts must be a positive integer", () => {
  for (const ts of [0, -1, 1.5, "1764480000000", null, undefined, Number.MAX_SAFE_INTEGER + 2, -5n]) {
    invalid({ view: "user", key: "u-1", ts, values: { clicks_7d: 1 } }, /"ts" must be a positive integer/);
  }
});

test("key must be a non-empty string", () => {
  for (const key of ["", 7, null, undefined, { id: 1 }]) {
    invalid({ view: "user", key, ts: TS, values: { clicks_7d: 1 } }, /"key" must be a non-empty string/);
  }
});

test("values must be a non-empty object", () => {
  invalid({ view: "user", key: "u-1", ts: TS, values: {} }, /"values" is empty/);
  for (const values of [undefined, null, [1, 2], 3, "clicks_7d=1"]) {
    invalid({ view: "user", key: "u-1", ts: TS, values }, /"values" must be an object/);
  }
});

test("every problem of a record is named at once", () => {
  invalid(
    { view: "user", key: "", ts: -1, values: { nope: 1, spend_30d: "x" } },
    /for view "user"/,
    /"key" must be/,
    /"ts" must be/,
    /no feature "nope"/,
    /"spend_30d" is not a finite number/,
  );
});

test("decodeUpdate: bytes that are not a JSON object fail to decode; bad content fails validation", async () => {
  const codec = jsonCodec();
  const decode = (value: Buffer | null) => decodeUpdate(codec, "t", value, features);
  await assert.rejects(
    decode(null),
    (e: unknown) => isAimassError(e, "DECODE_FAILED") && /tombstone/.test(e.message),
  );
  await assert.rejects(decode(Buffer.from("{nope")), (e: unknown) => isAimassError(e, "DECODE_FAILED"));
  await assert.rejects(decode(Buffer.from("[1,2]")), (e: unknown) => isAimassError(e, "DECODE_FAILED"));
  await assert.rejects(decode(Buffer.from('{"view":"user"}')), (e: unknown) =>
    isAimassError(e, "FIELD_INVALID"),
  );
  const ok = await decode(
    Buffer.from(JSON.stringify({ view: "user", key: "u-7", ts: TS, values: { clicks_7d: 12, vip: false } })),
  );
  assert.deepEqual(ok, { view: "user", key: "u-7", ts: TS, values: { clicks_7d: 12, vip: 0 } });
});

test("every line of examples/shop/features.sample.jsonl is valid for the shop views", async () => {
  const { readFile } = await import("node:fs/promises");
  const { repoPath } = await import("../../helpers/pipeline.js");
  const shop = parsePipelineConfig(
    testPipelineRaw({
      input: "in",
      output: "out",
      dlq: "dlq",
      group: "g",
      patch: (r) => {
        r.features = {
          views: [
            {
              name: "user",
              key: "userId",
              features: [{ name: "clicks_7d" }, { name: "carts_7d" }, { name: "purchases_30d" }],
            },
            { name: "item", key: "itemId", features: [{ name: "popularity_7d" }, { name: "price_band" }] },
          ],
        };
      },
    }),
    "/tmp/test.yaml",
    {},
  ).features;
  assert.ok(shop);
  const lines = (await readFile(repoPath("examples/shop/features.sample.jsonl"), "utf8"))
    .split("\n")
    .filter(Boolean);
  assert.equal(lines.length, 20);
  for (const line of lines) validateUpdate(JSON.parse(line) as Record<string, unknown>, shop);
});
