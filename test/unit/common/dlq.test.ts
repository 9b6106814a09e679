// Dead-letter messages: the source record's key, value and headers pass through byte for
// byte, and the aimass.dlq.* headers say where it came from and why it failed; a record over
// the DLQ's byte budget is cut down and says what was cut.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { IHeaders, Message } from "kafkajs";
import { AimassError } from "../../../services/common/errors.js";
import { DLQ_FIT_HEADER, DLQ_HEADER, dlqMessage, recordBytes } from "../../../services/common/dlq.js";
import { messageBytes } from "../../../services/common/kafka/slices.js";
import type { SourceRecord } from "../../../services/common/records.js";

function record(overrides: Partial<SourceRecord> = {}): SourceRecord {
  return {
    topic: "shop.events",
    partition: 4,
    offset: "9007199254740993", // beyond 2^53: must stay a string
    timestamp: "1764480000123",
    key: Buffer.from([0x75, 0x2d, 0x37, 0x00, 0xff]),
    value: Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0x22, 0x80]),
    headers: {
      traceparent: Buffer.from("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
      binary: Buffer.from([0, 1, 2, 254, 255]),
      plain: "text",
    },
    ...overrides,
  };
}

function header(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  if (v === undefined) return undefined;
  assert.ok(!Array.isArray(v), `${name} is a single value`);
  return Buffer.isBuffer(v) ? v.toString("utf8") : v;
}

test("key, value and original headers pass through byte-identical", () => {
  const source = record();
  const keyCopy = Buffer.from(source.key as Buffer);
  const valueCopy = Buffer.from(source.value as Buffer);
  const msg = dlqMessage(source, "decode", new AimassError("DECODE_FAILED", "not valid JSON"), {
    pipeline: "shop",
  });
  assert.ok(Buffer.isBuffer(msg.key));
  assert.ok(Buffer.isBuffer(msg.value));
  assert.ok((msg.key as Buffer).equals(keyCopy));
  assert.ok((msg.value as Buffer).equals(valueCopy));
  const h = msg.headers ?? {};
  assert.ok(Buffer.isBuffer(h.traceparent) && h.traceparent.equals(source.headers.traceparent as Buffer));
  assert.ok(Buffer.isBuffer(h.binary) && h.binary.equals(Buffer.from([0, 1, 2, 254, 255])));
  assert.equal(h.plain, "text");
  // The source record itself is not modified.
  assert.deepEqual(Object.keys(source.headers), ["traceparent", "binary", "plain"]);
});

test("every aimass.dlq.* header is set, with the record's origin and the AimassError", () => {
  const before = Date.now();
  const msg = dlqMessage(
    record(),
    "validate",
    new AimassError("FIELD_INVALID", 'field "price" is missing', { details: { field: "price" } }),
    { pipeline: "shop", model: { name: "shop-propensity", version: "2" } },
  );
  const after = Date.now();
  const h = msg.headers;
  for (const name of Object.values(DLQ_HEADER)) {
    assert.ok(name.startsWith("aimass.dlq."), name);
    assert.notEqual(header(h, name), undefined, `${name} set`);
  }
  assert.equal(header(h, "aimass.dlq.stage"), "validate");
  assert.equal(header(h, "aimass.dlq.error.code"), "FIELD_INVALID");
  assert.equal(header(h, "aimass.dlq.error.class"), "AimassError:FIELD_INVALID");
  assert.equal(header(h, "aimass.dlq.error.message"), 'field "price" is missing');
  assert.equal(header(h, "aimass.dlq.source.topic"), "shop.events");
  assert.equal(header(h, "aimass.dlq.source.partition"), "4");
  assert.equal(header(h, "aimass.dlq.source.offset"), "9007199254740993");
  assert.equal(header(h, "aimass.dlq.source.timestamp"), "1764480000123");
  assert.equal(header(h, "aimass.dlq.pipeline"), "shop");
  assert.equal(header(h, "aimass.dlq.model.name"), "shop-propensity");
  assert.equal(header(h, "aimass.dlq.model.version"), "2");
  const failedAt = Number(header(h, "aimass.dlq.failed.at"));
  assert.ok(failedAt >= before && failedAt <= after, `failed.at ${failedAt} in [${before}, ${after}]`);
});

test("without a model there are no model headers", () => {
  const msg = dlqMessage(record(), "route", new AimassError("ROUTE_UNKNOWN", "no model"), { pipeline: "p" });
  assert.equal(header(msg.headers, "aimass.dlq.model.name"), undefined);
  assert.equal(header(msg.headers, "aimass.dlq.model.version"), undefined);
  assert.ok(!Object.prototype.hasOwnProperty.call(msg.headers, "aimass.dlq.model.name"));
  assert.equal(header(msg.headers, "aimass.dlq.stage"), "route");
  assert.equal(header(msg.headers, "aimass.dlq.error.code"), "ROUTE_UNKNOWN");
});

test("other errors: code UNKNOWN, their class name, and their message", () => {
  const typeError = dlqMessage(record(), "encode", new TypeError("bad thing"), { pipeline: "p" });
  assert.equal(header(typeError.headers, "aimass.dlq.error.code"), "UNKNOWN");
  assert.equal(header(typeError.headers, "aimass.dlq.error.class"), "TypeError");
  assert.equal(header(typeError.headers, "aimass.dlq.error.message"), "bad thing");

  const thrown = dlqMessage(record(), "inference", "a string was thrown", { pipeline: "p" });
  assert.equal(header(thrown.headers, "aimass.dlq.error.code"), "UNKNOWN");
  assert.equal(header(thrown.headers, "aimass.dlq.error.class"), "string");
  assert.equal(header(thrown.headers, "aimass.dlq.error.message"), "a string was thrown");
});

test("the error message is capped at 1000 characters plus an ellipsis", () => {
  const long = "x".repeat(999) + "yz" + "w".repeat(500);
  const msg = dlqMessage(record(), "inference", new AimassError("INFERENCE_FAILED", long), { pipeline: "p" });
  const text = header(msg.headers, "aimass.dlq.error.message") ?? "";
  assert.equal(text, "x".repeat(999) + "y" + "…");
  assert.equal(text.length, 1001);

  const exact = "e".repeat(1000);
  const fits = dlqMessage(record(), "inference", new AimassError("INFERENCE_FAILED", exact), {
    pipeline: "p",
  });
  assert.equal(header(fits.headers, "aimass.dlq.error.message"), exact);
});

test("null key and null value (a tombstone) stay null", () => {
  const msg = dlqMessage(
    record({ key: null, value: null, headers: {} }),
    "decode",
    new AimassError("DECODE_FAILED", "tombstone"),
    { pipeline: "p" },
  );
  assert.equal(msg.key, null);
  assert.equal(msg.value, null);
  assert.equal(header(msg.headers, "aimass.dlq.stage"), "decode");
});

test("a record replayed from a DLQ gets fresh aimass.dlq.* headers, not its old ones", () => {
  const source = record({
    headers: {
      "aimass.dlq.stage": "decode",
      "aimass.dlq.error.code": "DECODE_FAILED",
      "aimass.dlq.source.offset": "1",
      "x-keep": "me",
    },
  });
  const msg = dlqMessage(source, "validate", new AimassError("FIELD_INVALID", "bad"), { pipeline: "p" });
  assert.equal(header(msg.headers, "aimass.dlq.stage"), "validate");
  assert.equal(header(msg.headers, "aimass.dlq.error.code"), "FIELD_INVALID");
  assert.equal(header(msg.headers, "aimass.dlq.source.offset"), "9007199254740993");
  assert.equal(header(msg.headers, "x-keep"), "me");
});

// The DLQ byte budget (dlq.maxRecordBytes): a DLQ record never grows past it, whatever the
// input's value, key or headers, so the broker never refuses it and its transaction commits.

const BUDGET = 10_000;
const ctxWithBudget = { pipeline: "shop", model: { name: "m", version: "1" }, maxRecordBytes: BUDGET };

function bytes(n: number, fill = 0x61): Buffer {
  return Buffer.alloc(n, fill);
}

function assertKeepsOrigin(msg: Message, source: SourceRecord): void {
  assert.ok(messageBytes(msg) <= BUDGET, `${messageBytes(msg)} bytes, budget ${BUDGET}`);
  assert.equal(header(msg.headers, DLQ_HEADER.sourceTopic), source.topic);
  assert.equal(header(msg.headers, DLQ_HEADER.sourcePartition), String(source.partition));
  assert.equal(header(msg.headers, DLQ_HEADER.sourceOffset), source.offset);
  assert.equal(header(msg.headers, DLQ_HEADER.stage), "size");
  assert.equal(header(msg.headers, DLQ_HEADER.errorCode), "PAYLOAD_TOO_LARGE");
  assert.equal(header(msg.headers, DLQ_HEADER.modelName), "m");
  assert.equal(header(msg.headers, DLQ_FIT_HEADER.originalBytes), String(recordBytes(source)));
}

const tooLarge = new AimassError("PAYLOAD_TOO_LARGE", "too large");

test("a DLQ record within the budget is untouched and has no truncation headers", () => {
  const source = record({ value: bytes(5_000) });
  const msg = dlqMessage(source, "size", tooLarge, ctxWithBudget);
  assert.ok((msg.value as Buffer).equals(source.value as Buffer));
  assert.equal(header(msg.headers, "plain"), "text");
  assert.equal(header(msg.headers, DLQ_FIT_HEADER.truncated), undefined);
  assert.equal(header(msg.headers, DLQ_FIT_HEADER.originalBytes), undefined);
});

test("a value near the limit: the input's headers are dropped, then the value is cut to fit", () => {
  const source = record({ value: bytes(BUDGET - 50) });
  const msg = dlqMessage(source, "size", tooLarge, ctxWithBudget);
  assertKeepsOrigin(msg, source);
  assert.equal(header(msg.headers, DLQ_FIT_HEADER.truncated), "headers,value");
  for (const name of Object.keys(source.headers)) assert.equal(msg.headers?.[name], undefined, name);
  const value = msg.value as Buffer;
  assert.ok(value.length > 0 && value.length < (source.value as Buffer).length);
  assert.ok((source.value as Buffer).subarray(0, value.length).equals(value), "the value's prefix is kept");
  assert.ok((msg.key as Buffer).equals(source.key as Buffer), "the key is kept");
  // As much of the value as fits: one byte more would not.
  assert.ok(messageBytes({ ...msg, value: bytes(value.length + 40) }) > BUDGET);
});

test("a small value with large headers: only the headers go", () => {
  const source = record({ value: Buffer.from('{"id":1}'), headers: { big: bytes(20_000), small: "s" } });
  const msg = dlqMessage(source, "size", tooLarge, ctxWithBudget);
  assertKeepsOrigin(msg, source);
  assert.equal(header(msg.headers, DLQ_FIT_HEADER.truncated), "headers");
  assert.ok((msg.value as Buffer).equals(source.value as Buffer));
  assert.equal(msg.headers?.big, undefined);
  assert.equal(msg.headers?.small, undefined);
});

test("a key too large for the budget is cut after the value", () => {
  const source = record({ key: bytes(30_000, 0x6b), value: Buffer.from("v") });
  const msg = dlqMessage(source, "size", tooLarge, ctxWithBudget);
  assertKeepsOrigin(msg, source);
  assert.equal(header(msg.headers, DLQ_FIT_HEADER.truncated), "headers,value,key");
  assert.equal((msg.value as Buffer).length, 0);
  const key = msg.key as Buffer;
  assert.ok(key.length > 0 && (source.key as Buffer).subarray(0, key.length).equals(key));
});

test("a tombstone with oversized headers stays a tombstone", () => {
  const source = record({ value: null, headers: { big: bytes(50_000) } });
  const msg = dlqMessage(source, "size", tooLarge, ctxWithBudget);
  assertKeepsOrigin(msg, source);
  assert.equal(msg.value, null);
  assert.equal(header(msg.headers, DLQ_FIT_HEADER.truncated), "headers");
});

test("repeated headers and a long error message count too; the result is never over the budget", () => {
  const long = new AimassError("PAYLOAD_TOO_LARGE", "é".repeat(5_000));
  for (const size of [0, 1, 100, 8_000, 9_000, 9_500, 9_900, 10_000, 10_100, 50_000]) {
    const source = record({ value: bytes(size), headers: { rep: [bytes(300), bytes(300)], x: "y" } });
    const msg = dlqMessage(source, "size", long, ctxWithBudget);
    assert.ok(messageBytes(msg) <= BUDGET, `value ${size}: ${messageBytes(msg)} bytes`);
    assert.equal(header(msg.headers, DLQ_HEADER.sourceOffset), source.offset);
  }
});

test("without a budget (the feature writer) nothing is cut", () => {
  const source = record({ value: bytes(2_000_000) });
  const msg = dlqMessage(source, "size", tooLarge, { pipeline: "p" });
  assert.equal((msg.value as Buffer).length, 2_000_000);
  assert.equal(header(msg.headers, "plain"), "text");
});
