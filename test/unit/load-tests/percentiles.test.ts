// The latency histogram against exact nearest-rank percentiles: every reported value within
// the histogram's precision, exact mean/max, merging, clamping and the empty case.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  LATENCY_PRECISION,
  LatencyHistogram,
  percentile,
  summarize,
} from "../../../load-tests/lib/percentiles.js";
import { prng } from "../../../load-tests/lib/shop-events.js";

/** Log-uniform latencies from 10 µs to 10 s, with sub-ms fractions: every bucket size in play. */
function sample(n: number, seed: number): number[] {
  const rand = prng(seed);
  return Array.from({ length: n }, () => 10 ** (rand() * 6 - 2));
}

/** Recorded µs are rounded (0.0005 ms), and a bucket's top is at most 1/1024 above its values. */
function assertClose(actual: number, exact: number, what: string): void {
  const tolerance = exact * LATENCY_PRECISION + 0.0005 + 1e-9;
  assert.ok(
    actual >= exact - 0.0005 - 1e-9 && actual <= exact + tolerance,
    `${what}: ${actual} vs exact ${exact} (tolerance +${tolerance})`,
  );
}

test("percentiles match exact nearest-rank ones within the histogram's precision", () => {
  const values = sample(20_000, 7);
  const h = new LatencyHistogram();
  for (const v of values) h.record(v);
  const sorted = [...values].sort((a, b) => a - b);
  for (const p of [1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100]) {
    assertClose(h.percentile(p), percentile(sorted, p), `p${p}`);
  }
  const s = h.summary();
  assert.equal(s.n, values.length);
  assertClose(s.p50, percentile(sorted, 50), "p50");
  assertClose(s.p90, percentile(sorted, 90), "p90");
  assertClose(s.p99, percentile(sorted, 99), "p99");
  assertClose(s.p999, percentile(sorted, 99.9), "p99.9");
  // Max and mean are kept exactly beside the histogram.
  assert.equal(s.max, sorted[sorted.length - 1]);
  assert.ok(Math.abs(s.mean - summarize(values).mean) < 1e-9);
  assert.equal(h.min, sorted[0]);
  assert.deepEqual(JSON.parse(JSON.stringify(h)), s);
});

test("small integer-ms samples: exact below 2.048 ms, and a percentile never exceeds the max", () => {
  const h = new LatencyHistogram();
  for (const v of [0.001, 0.5, 1, 1.25, 2]) h.record(v);
  assert.equal(h.percentile(20), 0.001);
  assert.equal(h.percentile(50), 1);
  assert.equal(h.percentile(80), 1.25);
  assert.equal(h.percentile(100), 2);
  const big = new LatencyHistogram();
  for (let i = 1; i <= 100; i++) big.record(i * 37);
  assert.equal(big.percentile(100), 3700);
  assert.equal(big.max, 3700);
});

test("merge gives the same percentiles as recording everything into one histogram", () => {
  const a = sample(5_000, 1);
  const b = sample(5_000, 2);
  const ha = new LatencyHistogram();
  const hb = new LatencyHistogram();
  const all = new LatencyHistogram();
  for (const v of a) ha.record(v);
  for (const v of b) hb.record(v);
  for (const v of [...a, ...b]) all.record(v);
  const merged = ha.merge(hb).summary();
  const whole = all.summary();
  assert.equal(merged.n, 10_000);
  for (const k of ["p50", "p90", "p99", "p999", "max"] as const) assert.equal(merged[k], whole[k], k);
  assert.ok(Math.abs(merged.mean - whole.mean) < 1e-9);
});

test("empty: NaN percentiles and max, mean 0, like summarize([])", () => {
  const s = new LatencyHistogram().summary();
  const e = summarize([]);
  assert.equal(s.n, 0);
  for (const v of [s.p50, s.p90, s.p99, s.p999, s.max]) assert.ok(Number.isNaN(v));
  assert.equal(s.mean, e.mean);
});

test("values out of range are clamped and counted; non-finite ones ignored", () => {
  const h = new LatencyHistogram();
  h.record(-3);
  h.record(2);
  h.record(2 * 3_600_000);
  h.record(Number.NaN);
  assert.equal(h.count, 3);
  assert.equal(h.clamped, 2);
  assert.equal(h.min, 0);
  assert.equal(h.max, 3_600_000);
  assert.equal(h.percentile(34), 2);
  h.reset();
  assert.equal(h.count, 0);
  assert.equal(h.clamped, 0);
});

test("summarize keeps its exact nearest-rank behaviour", () => {
  const s = summarize([5, 1, 4, 2, 3, 6, 7, 8, 9, 10]);
  assert.deepEqual(s, { n: 10, p50: 5, p90: 9, p99: 10, max: 10, mean: 5.5 });
  // An exact rank is not bumped by float error: 99.9% of 20,000 is rank 19,980.
  const ranks = Array.from({ length: 20_000 }, (_, i) => i + 1);
  assert.equal(percentile(ranks, 99.9), 19_980);
  assert.equal(percentile(ranks, 99.99), 19_998);
});
