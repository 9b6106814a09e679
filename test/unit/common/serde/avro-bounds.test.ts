// Avro block counts are checked against the bytes left before they are trusted: a record
// declaring more array items or map entries than its buffer can hold fails with
// DECODE_FAILED at once instead of looping on the event loop (for years, at 2^52). Decoded
// through the real Avro codec (@confluentinc/schemaregistry's deserializer and its avsc),
// with the library's in-memory registry client; the 2^52 bombs run in a worker thread so a
// missing bound fails its test by timeout rather than blocking this process.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { MockClient } from "@confluentinc/schemaregistry";
import type { FeaturesConfig } from "../../../../services/common/config/schema.js";
import { isAimassError } from "../../../../services/common/errors.js";
import { installAvroBounds, MAX_EMPTY_ITEMS } from "../../../../services/common/serde/avro-bounds.js";
import { avroCodec, type ValueCodec } from "../../../../services/common/serde/codec.js";
import { decodeUpdate } from "../../../../services/feature-writer/update.js";
import { repoPath } from "../../../helpers/pipeline.js";
import type { DecodeJob, DecodeResult } from "./avro-decode.worker.js";

/** Avro's zig-zag varint of a long, for counts far beyond 2^31 (float arithmetic, like avsc). */
function long(n: number): number[] {
  let f = n >= 0 ? n * 2 : -n * 2 - 1;
  const out: number[] = [];
  do {
    let b = f % 128;
    f = Math.floor(f / 128);
    if (f >= 1) b |= 0x80;
    out.push(b);
  } while (f >= 1);
  return out;
}

function str(s: string): number[] {
  const bytes = Buffer.from(s, "utf8");
  return [...long(bytes.length), ...bytes];
}

const double = (d: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(d);
  return [...b];
};

const record = (fields: Array<{ name: string; type: unknown }>) =>
  JSON.stringify({ type: "record", name: "R", namespace: "t", fields });

const ARRAY_OF_INT = record([{ name: "a", type: { type: "array", items: "int" } }]);
const MAP_OF_DOUBLE = record([{ name: "m", type: { type: "map", values: "double" } }]);
const FEATURE_UPDATE = readFileSync(repoPath("schemas/feature-update.avsc"), "utf8");
const BOMB = 2 ** 52;

async function codecFor(schema: string): Promise<{ codec: ValueCodec; wire: (body: number[]) => Buffer }> {
  const registry = new MockClient();
  const id = await registry.register("t-value", { schemaType: "AVRO", schema });
  const wire = (body: number[]) => {
    const prefix = Buffer.alloc(5);
    prefix.writeInt32BE(id, 1);
    return Buffer.concat([prefix, Buffer.from(body)]);
  };
  return { codec: avroCodec({ registry }), wire };
}

async function decodeFails(codec: ValueCodec, bytes: Buffer, message: RegExp): Promise<void> {
  await assert.rejects(codec.decode("t", bytes), (err: unknown) => {
    assert.ok(isAimassError(err, "DECODE_FAILED"), `expected DECODE_FAILED, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });
}

/** Decodes in a worker thread; the test's own timeout is the bound on a decode that never ends. */
function decodeInWorker(t: TestContext, job: DecodeJob): Promise<DecodeResult[]> {
  const worker = new Worker(new URL("./avro-decode.worker.js", import.meta.url), { workerData: job });
  worker.unref();
  t.after(() => worker.terminate());
  return new Promise((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
}

test(
  "a 2^52 block count on an array, a map and the feature-update map fails DECODE_FAILED instead of looping",
  { timeout: 20_000 },
  async (t) => {
    const cases: Array<[string, number[]]> = [
      [ARRAY_OF_INT, [...long(BOMB), 2, 4]],
      [MAP_OF_DOUBLE, [...long(BOMB), ...str("k"), ...double(1)]],
      [FEATURE_UPDATE, [...str("user"), ...str("u-7"), ...long(1_764_480_000_000), ...long(BOMB), 2, 0x61]],
    ];
    for (const [schema, body] of cases) {
      const [result] = await decodeInWorker(t, { schema, bodies: [Uint8Array.from(body)] });
      assert.ok(result);
      assert.equal(result.ok, false, result.message);
      assert.equal(result.code, "DECODE_FAILED", result.message);
      assert.match(result.message, /corrupt Avro block: 4503599627370496 items declared with \d+ bytes left/);
    }
  },
);

test("a block count larger than the bytes left is corrupt, for arrays and maps, in positive and negative blocks", async () => {
  const array = await codecFor(ARRAY_OF_INT);
  // 5 million would loop (and fill a 5M-slot array) before avsc noticed the end.
  await decodeFails(
    array.codec,
    array.wire([...long(5_000_000), 2, 4]),
    /5000000 items declared with 2 bytes left/,
  );
  // A negative count is followed by the block's byte size.
  await decodeFails(array.codec, array.wire([...long(-5_000_000), ...long(2), 2, 4]), /5000000 items/);
  // The second block is checked too.
  await decodeFails(
    array.codec,
    array.wire([...long(1), 2, ...long(9), 4, 0]),
    /9 items declared with 2 bytes left/,
  );

  const map = await codecFor(MAP_OF_DOUBLE);
  await decodeFails(
    map.codec,
    map.wire([...long(3_000_000), ...str("k"), ...double(1)]),
    /3000000 items declared/,
  );
});

test("reading stops at the buffer's end: a count that fits the bytes but items that do not is a truncated buffer", async () => {
  const map = await codecFor(MAP_OF_DOUBLE);
  // 9 entries declared in 9+ bytes, but the first entry's double already runs past the end.
  await decodeFails(map.codec, map.wire([...long(9), ...str("k"), 1, 2, 3, 4, 5, 6, 0]), /truncated buffer/);
  const array = await codecFor(record([{ name: "a", type: { type: "array", items: "string" } }]));
  await decodeFails(array.codec, array.wire([...long(3), ...long(40), 0x61, 0x62, 0]), /truncated buffer/);
});

test("a 2^40 bytes or string length fails cleanly, without allocating", async () => {
  const both = await codecFor(
    record([
      { name: "s", type: "string" },
      { name: "b", type: "bytes" },
    ]),
  );
  await decodeFails(both.codec, both.wire([...long(2 ** 40), 0x61]), /truncated buffer/);
  await decodeFails(both.codec, both.wire([...str("ok"), ...long(2 ** 40), 0x61]), /truncated buffer/);
});

test("valid arrays and maps still decode: several blocks, negative blocks with sizes, empty ones", async () => {
  const array = await codecFor(ARRAY_OF_INT);
  assert.deepEqual(
    await array.codec.decode("t", array.wire([...long(2), 2, 4, ...long(-1), ...long(1), 6, 0])),
    {
      a: [1, 2, 3],
    },
  );
  assert.deepEqual(await array.codec.decode("t", array.wire([0])), { a: [] });
  const map = await codecFor(MAP_OF_DOUBLE);
  const body = [...long(1), ...str("x"), ...double(0.5), ...long(1), ...str("y"), ...double(-2), 0];
  assert.deepEqual({ ...(await map.codec.decode("t", map.wire(body))) }, { m: { x: 0.5, y: -2 } });
});

test("items that take no bytes are bounded by a per-record budget, not by the bytes left", async () => {
  const nulls = await codecFor(record([{ name: "n", type: { type: "array", items: "null" } }]));
  const three = await nulls.codec.decode("t", nulls.wire([...long(3), 0]));
  assert.deepEqual(three, { n: [null, null, null] });
  await decodeFails(
    nulls.codec,
    nulls.wire([...long(MAX_EMPTY_ITEMS + 1), 0]),
    /more than 1000000 items that take no bytes/,
  );
  // Nested: each inner block fits the budget alone, together they do not.
  const nested = await codecFor(
    record([{ name: "n", type: { type: "array", items: { type: "array", items: "null" } } }]),
  );
  const half = MAX_EMPTY_ITEMS / 2 + 1;
  await decodeFails(
    nested.codec,
    nested.wire([...long(2), ...long(half), 0, ...long(half), 0, 0]),
    /take no bytes/,
  );
});

test("the feature writer's decode of a feature update with a corrupt map count is DECODE_FAILED (stage decode)", async () => {
  const { codec, wire } = await codecFor(FEATURE_UPDATE);
  const features: FeaturesConfig = {
    keyPrefix: "aimass",
    commandTimeoutMs: 100,
    onUnavailable: "fail",
    views: [
      {
        name: "user",
        key: "userId",
        features: [{ name: "clicks_7d", type: "float", default: 0 }],
        maxAgeMs: 0,
        onStale: "defaults",
        ttlSeconds: 0,
      },
    ],
  };
  const head = [...str("user"), ...str("u-7"), ...long(1_764_480_000_000)];
  const good = await decodeUpdate(
    codec,
    "t",
    wire([...head, ...long(1), ...str("clicks_7d"), ...double(12), 0]),
    features,
  );
  assert.deepEqual(good.values, { clicks_7d: 12 });
  await assert.rejects(
    decodeUpdate(
      codec,
      "t",
      wire([...head, ...long(4_000_000), ...str("clicks_7d"), ...double(12), 0]),
      features,
    ),
    (err: unknown) => isAimassError(err, "DECODE_FAILED") && /4000000 items declared/.test(err.message),
  );
});

test("installing the bounds again changes nothing", async () => {
  installAvroBounds();
  installAvroBounds();
  const array = await codecFor(ARRAY_OF_INT);
  await decodeFails(array.codec, array.wire([...long(5_000_000), 2]), /5000000 items declared/);
  assert.deepEqual(await array.codec.decode("t", array.wire([...long(1), 2, 0])), { a: [1] });
});
