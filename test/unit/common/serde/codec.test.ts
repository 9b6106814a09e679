// The JSON value codec (Avro: avro-bounds.test.ts and the integration tests against the registry).
import { test } from "node:test";
import assert from "node:assert/strict";
import { isAimassError } from "../../../../services/common/errors.js";
import { jsonCodec } from "../../../../services/common/serde/codec.js";

const codec = jsonCodec();

async function decodeFails(bytes: Buffer, message: RegExp): Promise<void> {
  await assert.rejects(codec.decode("t", bytes), (err: unknown) => {
    assert.ok(isAimassError(err), `expected an AimassError, got ${String(err)}`);
    assert.equal(err.code, "DECODE_FAILED");
    assert.match(err.message, message);
    return true;
  });
}

test("format is json", () => {
  assert.equal(codec.format, "json");
});

test("JSON round trip keeps values, nesting and unicode", async () => {
  const value = {
    id: "e-1",
    price: 19.99,
    quantity: 0,
    ok: true,
    nothing: null,
    tags: ["a", "b"],
    nested: { deep: { n: -1.5e-7 } },
    text: "héllo ✓ 日本 🚀",
  };
  const bytes = await codec.encode("t", value);
  assert.ok(Buffer.isBuffer(bytes));
  assert.equal(bytes.toString("utf8"), JSON.stringify(value));
  assert.deepEqual(await codec.decode("t", bytes), value);
});

test("decoding accepts surrounding whitespace and a UTF-8 payload from any producer", async () => {
  assert.deepEqual(await codec.decode("t", Buffer.from('  {"a": [1, 2]}\n')), { a: [1, 2] });
  assert.deepEqual(await codec.decode("t", Buffer.from('{"k":"ü"}', "utf8")), { k: "ü" });
});

test("invalid JSON is DECODE_FAILED", async () => {
  await decodeFails(Buffer.from("{not json"), /not valid JSON/);
  await decodeFails(Buffer.from([0xff, 0xfe, 0x00, 0x01]), /not valid JSON/);
  await decodeFails(Buffer.alloc(0), /not valid JSON/);
  await decodeFails(Buffer.from('{"a":1}{"b":2}'), /not valid JSON/);
});

test("bytes that are not UTF-8 are DECODE_FAILED even inside a JSON string (no silent U+FFFD)", async () => {
  const inString = Buffer.concat([Buffer.from('{"id":"u'), Buffer.from([0xc3]), Buffer.from('"}')]);
  assert.equal(JSON.parse(inString.toString("utf8")).id, "u\ufffd", "what toString alone would decode");
  await decodeFails(inString, /not UTF-8/);
  await decodeFails(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0xed, 0xa0, 0x80, 0x7d]), /not UTF-8/); // a surrogate
});

test("valid JSON that is not an object is DECODE_FAILED", async () => {
  await decodeFails(Buffer.from("[1,2,3]"), /not an object/);
  await decodeFails(Buffer.from("[]"), /not an object/);
  await decodeFails(Buffer.from("null"), /not an object/);
  await decodeFails(Buffer.from("42"), /not an object/);
  await decodeFails(Buffer.from('"text"'), /not an object/);
  await decodeFails(Buffer.from("true"), /not an object/);
});

test("the invalid-JSON error keeps the parser's error as its cause", async () => {
  try {
    await codec.decode("t", Buffer.from("{"));
    assert.fail("decoded");
  } catch (err) {
    assert.ok(isAimassError(err, "DECODE_FAILED"));
    assert.ok(err.cause instanceof SyntaxError);
  }
});
