// Key distributions of the load generator (deterministic per seed; zipf's hottest-key share
// as theory says; uniform covering every key) and value padding.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isAimassError } from "../../../services/common/errors.js";
import { keyPicker, MAX_ZIPF_KEYS, zipfSampler, zipfTopShare } from "../../../load-tests/lib/keys.js";
import { checkPadTarget, PAD_OVERHEAD, padJson } from "../../../load-tests/lib/padding.js";
import { payloadEvents, produceEvents } from "../../../load-tests/produce-events.js";

function draws(pick: () => number, n: number): number[] {
  return Array.from({ length: n }, pick);
}

function counts(values: number[], keys: number): number[] {
  const c = new Array<number>(keys).fill(0);
  for (const v of values) c[v] = (c[v] as number) + 1;
  return c;
}

test("every distribution is deterministic for a seed", () => {
  for (const distribution of ["uniform", "zipf", "sequential", "single"] as const) {
    const a = draws(keyPicker({ distribution, keyCount: 50, seed: 3 }), 500);
    const b = draws(keyPicker({ distribution, keyCount: 50, seed: 3 }), 500);
    assert.deepEqual(a, b, distribution);
    assert.ok(
      a.every((k) => Number.isInteger(k) && k >= 0 && k < 50),
      distribution,
    );
  }
  const other = draws(keyPicker({ distribution: "uniform", keyCount: 50, seed: 4 }), 500);
  assert.notDeepEqual(draws(keyPicker({ distribution: "uniform", keyCount: 50, seed: 3 }), 500), other);
});

test("uniform covers every key, each about equally often", () => {
  const c = counts(draws(keyPicker({ distribution: "uniform", keyCount: 100, seed: 1 }), 50_000), 100);
  // 500 expected per key, sd ≈ 22: ±25% is over 5 sd.
  assert.ok(
    c.every((n) => n > 375 && n < 625),
    `counts ${Math.min(...c)}..${Math.max(...c)}`,
  );
});

test("zipf: rank-1 and rank-2 shares match theory, ranks fall off", () => {
  const n = 100;
  const s = 1.1;
  const total = 200_000;
  const c = counts(draws(keyPicker({ distribution: "zipf", keyCount: n, zipfS: s, seed: 9 }), total), n);
  const top = zipfTopShare(n, s);
  const share1 = (c[0] as number) / total;
  const share2 = (c[1] as number) / total;
  // sd of a share ≈ sqrt(p(1-p)/total) < 0.0011: 0.006 is over 5 sd.
  assert.ok(Math.abs(share1 - top) < 0.006, `rank 1: ${share1} vs ${top}`);
  assert.ok(Math.abs(share2 - top / 2 ** s) < 0.006, `rank 2: ${share2} vs ${top / 2 ** s}`);
  assert.ok((c[0] as number) > (c[9] as number) && (c[9] as number) > (c[99] as number));
  // Exponent 1 with 1000 keys: the top key gets 1/H(1000) ≈ 13.4%.
  assert.ok(Math.abs(zipfTopShare(1000, 1) - 0.1336) < 0.001);
});

test("zipf sampler: ends of the unit interval, and bad parameters", () => {
  const sample = zipfSampler(10, 1.1);
  assert.equal(sample(0), 0);
  assert.equal(sample(0.999_999_999), 9);
  assert.throws(() => zipfSampler(10, 0), /exponent/);
  assert.throws(() => zipfSampler(MAX_ZIPF_KEYS + 1, 1), /at most/);
  assert.throws(() => keyPicker({ distribution: "uniform", keyCount: 0, seed: 1 }), /positive integer/);
});

test("sequential cycles through the keys, single is one key", () => {
  assert.deepEqual(
    draws(keyPicker({ distribution: "sequential", keyCount: 3, seed: 1 }), 7),
    [0, 1, 2, 0, 1, 2, 0],
  );
  assert.deepEqual(draws(keyPicker({ distribution: "single", keyCount: 99, seed: 1 }), 4), [0, 0, 0, 0]);
});

function take<T>(it: Iterator<T>, n: number): T[] {
  return Array.from({ length: n }, () => it.next().value as T);
}

test("shop payload: the key stays the userId, drawn from the distribution; other fields unchanged", () => {
  const natural = take(payloadEvents("shop", "r", 5, 1000), 200);
  const picked = take(
    payloadEvents("shop", "r", 5, 10, {
      pickKey: keyPicker({ distribution: "sequential", keyCount: 10, seed: 5 }),
    }),
    200,
  );
  picked.forEach((e, i) => {
    const v = JSON.parse(e.value) as Record<string, unknown>;
    assert.equal(e.key, v.userId);
    assert.equal(v.userId, `u-${i % 10}`);
    const n = JSON.parse((natural[i] as { value: string }).value) as Record<string, unknown>;
    for (const f of ["id", "type", "itemId", "price", "quantity"]) assert.equal(v[f], n[f], f);
  });
});

test("bench-mlp payload: picked keys are k-<n>, the natural key the id", () => {
  const [natural] = take(payloadEvents("bench-mlp", "r"), 1);
  assert.equal(natural?.key, "r-0");
  const picked = take(
    payloadEvents("bench-mlp", "r", 1, 1000, {
      pickKey: keyPicker({ distribution: "single", keyCount: 1, seed: 1 }),
    }),
    3,
  );
  assert.deepEqual(
    picked.map((e) => e.key),
    ["k-0", "k-0", "k-0"],
  );
});

test("padding: exact target size, parseable, fields kept", () => {
  const json = JSON.stringify({ id: "e-1", name: "é ü", n: 1.5 });
  for (const target of [Buffer.byteLength(json) + PAD_OVERHEAD, 100, 512, 4096]) {
    const padded = padJson(json, target);
    assert.equal(Buffer.byteLength(padded), target);
    const v = JSON.parse(padded) as Record<string, unknown>;
    assert.equal(v.name, "é ü");
    assert.equal(typeof v.pad, "string");
  }
  assert.equal(Buffer.byteLength(padJson("{}", 20)), 20);
  assert.deepEqual(Object.keys(JSON.parse(padJson("{}", 20)) as object), ["pad"]);
  // Too small for the field: unchanged.
  assert.equal(padJson(json, Buffer.byteLength(json) + 3), json);
});

test("padded payload events are within a few bytes of the target and parse", () => {
  for (const [payload, target] of [
    ["shop", 512],
    ["bench-mlp", 2048],
  ] as const) {
    for (const e of take(payloadEvents(payload, "run-x", 42, 1000, { payloadBytes: target }), 2000)) {
      const size = Buffer.byteLength(e.value);
      assert.ok(Math.abs(size - target) <= 4, `${payload}: ${size} bytes`);
      assert.ok("pad" in (JSON.parse(e.value) as object));
    }
  }
});

test("a target below the unpadded event is a USAGE error naming the minimum", () => {
  const usage = (err: unknown) => {
    assert.ok(isAimassError(err, "USAGE"), String(err));
    assert.match(
      err.message,
      /--payload-bytes 50 is smaller than an event: unpadded it is \d+ bytes.*at least \d+/,
    );
    return true;
  };
  assert.throws(
    () => checkPadTarget('{"id":"a-very-long-event-id-indeed-more-than-fifty-bytes"}', 50),
    usage,
  );
  assert.throws(() => payloadEvents("shop", "r", 42, 1000, { payloadBytes: 50 }).next(), usage);
});

test("produceEvents rejects bad generator options before connecting", async () => {
  const cases: Array<[string[], RegExp]> = [
    [["--keys", "pareto"], /--keys must be one of natural, uniform, zipf/],
    [["--key-count", "10"], /--key-count and --zipf-s/],
    [["--keys", "uniform", "--zipf-s", "1.2"], /--zipf-s is for --keys zipf/],
    [["--keys", "zipf", "--zipf-s", "0"], /exponent must be > 0/],
    [["--keys", "zipf", "--users", "10", "--key-count", "20"], /not both/],
    [["--payload-bytes", "50"], /smaller than an event/],
    [["--duration", "0"], /--duration must be > 0/],
    [["--count", "1.5"], /--count must be a non-negative integer/],
  ];
  for (const [argv, message] of cases) {
    await assert.rejects(produceEvents(["--topic", "never-created", ...argv]), (err: unknown) => {
      assert.ok(isAimassError(err, "USAGE"), `${argv.join(" ")}: ${String(err)}`);
      assert.match(err.message, message);
      return true;
    });
  }
});
