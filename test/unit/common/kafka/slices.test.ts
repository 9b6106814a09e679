// sliceByBytes: bounded produce requests, order kept per topic, nothing dropped or repeated.
import { test } from "node:test";
import assert from "node:assert/strict";
import { messageBytes, sliceByBytes } from "../../../../services/common/kafka/slices.js";

const msg = (topic: string, i: number, bytes: number) => ({ key: `${topic}-${i}`, value: "x".repeat(bytes) });

test("everything fits: one slice, untouched", () => {
  const tm = [{ topic: "out", messages: [msg("out", 0, 10), msg("out", 1, 10)] }];
  assert.deepEqual(sliceByBytes(tm, 10_000), [tm]);
  assert.deepEqual(sliceByBytes([], 10_000), []);
});

test("slices stay under the budget and keep every message once, in order, per topic", () => {
  const tm = [
    { topic: "out", messages: Array.from({ length: 50 }, (_, i) => msg("out", i, 100 + (i % 7) * 30)) },
    { topic: "dlq", messages: Array.from({ length: 7 }, (_, i) => msg("dlq", i, 400)) },
  ];
  const budget = 1_000;
  const slices = sliceByBytes(tm, budget);
  assert.ok(slices.length > 5);
  for (const s of slices) {
    const size = s.flatMap((t) => t.messages).reduce((n, m) => n + messageBytes(m), 0);
    assert.ok(size <= budget, `slice of ${size} bytes`);
  }
  for (const { topic, messages } of tm) {
    const got = slices.flatMap((s) => s.filter((t) => t.topic === topic).flatMap((t) => t.messages));
    assert.deepEqual(got, messages);
  }
});

test("a message over the budget gets a slice of its own", () => {
  const big = msg("out", 1, 5_000);
  const slices = sliceByBytes(
    [{ topic: "out", messages: [msg("out", 0, 10), big, msg("out", 2, 10)] }],
    1_000,
  );
  assert.equal(slices.length, 3);
  assert.deepEqual(slices[1], [{ topic: "out", messages: [big] }]);
});

test("sizes count key, value and headers", () => {
  const base = messageBytes({ key: "k", value: "v" });
  assert.equal(messageBytes({ key: "k", value: "v", headers: { h: "12345" } }), base + 1 + 5 + 4);
  assert.equal(messageBytes({ key: null, value: Buffer.alloc(100) }), base - 2 + 100);
});
