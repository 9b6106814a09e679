// Percentiles of recorded samples, two ways:
// - `summarize`: exact nearest-rank percentiles of a sample held in memory. Used for score
//   distributions: scores are fractions in [0, 1] where an HDR histogram's fixed relative
//   precision and integer units fit badly, and a run's sample is bounded by its event count.
// - `LatencyHistogram`: an HdrHistogram (hdr-histogram-js, its JS implementation) for
//   latencies: constant memory (~90 KB) however long a run or soak test is, mergeable, and
//   cheap enough to read a running p99 from while recording.
import { build, type Histogram } from "hdr-histogram-js";

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  // The nudge keeps float error from bumping an exact rank up one (99.9 / 100 * 20000 is
  // 19980.000000000004), as HdrHistogram does.
  const x = (p / 100) * sorted.length;
  const rank = Math.ceil(x - x * 1e-12);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export function summarize(values: number[]): {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
} {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / (sorted.length || 1);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean,
  };
}

/** `summarize`'s fields plus p99.9, all in milliseconds. */
export interface LatencySummary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

// Units: the histogram counts integer microseconds, so a latency in ms keeps sub-millisecond
// precision (performance.now() deltas, a sub-ms broker round trip) while the tracked range
// is 1 µs .. 1 h. At 3 significant digits HdrHistogram keeps 2048 sub-buckets per power of
// two: values up to 2.048 ms are exact to the µs, larger ones are reported as the top of
// their bucket, at most 1/1024 (~0.1%) above the recorded value. Memory is ~22 buckets ×
// 1024 × 4 bytes whatever is recorded.
const US_PER_MS = 1000;
const LOWEST_US = 1;
const HIGHEST_US = 3_600 * 1_000_000;
const DIGITS = 3;

/** Relative precision of reported values: a percentile is within this fraction (+1 µs). */
export const LATENCY_PRECISION = 2 ** -10;

/**
 * Latencies in milliseconds → percentiles. Values outside 0 .. 1 h are clamped into range
 * (and counted in `clamped`); the exact mean, min and max are kept beside the histogram.
 */
export class LatencyHistogram {
  readonly #h: Histogram;
  #sumMs = 0;
  #minMs = Number.POSITIVE_INFINITY;
  #maxMs = Number.NEGATIVE_INFINITY;
  #clamped = 0;

  constructor() {
    this.#h = build({
      useWebAssembly: false,
      bitBucketSize: 32,
      autoResize: false,
      lowestDiscernibleValue: LOWEST_US,
      highestTrackableValue: HIGHEST_US,
      numberOfSignificantValueDigits: DIGITS,
    });
  }

  /** Records one latency in ms (fractions allowed). Non-finite values are ignored. */
  record(ms: number): void {
    if (!Number.isFinite(ms)) return;
    let us = Math.round(ms * US_PER_MS);
    if (us < 0 || us > HIGHEST_US) {
      this.#clamped++;
      us = Math.min(HIGHEST_US, Math.max(0, us));
      ms = us / US_PER_MS;
    }
    this.#h.recordValue(us);
    this.#sumMs += ms;
    if (ms < this.#minMs) this.#minMs = ms;
    if (ms > this.#maxMs) this.#maxMs = ms;
  }

  get count(): number {
    return this.#h.totalCount;
  }

  /** Values recorded out of range (negative: clock skew; over an hour) and clamped. */
  get clamped(): number {
    return this.#clamped;
  }

  /** Nearest-rank percentile p (0 < p ≤ 100) in ms; NaN when empty. Never above max. */
  percentile(p: number): number {
    if (this.count === 0) return Number.NaN;
    if (p <= 0) return this.min;
    return Math.min(this.#h.getValueAtPercentile(p) / US_PER_MS, this.#maxMs);
  }

  get min(): number {
    return this.count === 0 ? Number.NaN : this.#minMs;
  }

  get max(): number {
    return this.count === 0 ? Number.NaN : this.#maxMs;
  }

  /** Exact arithmetic mean in ms (0 when empty, as `summarize` gives). */
  get mean(): number {
    return this.count === 0 ? 0 : this.#sumMs / this.count;
  }

  /** Adds another histogram's samples to this one. */
  merge(other: LatencyHistogram): this {
    this.#h.add(other.#h);
    this.#sumMs += other.#sumMs;
    this.#minMs = Math.min(this.#minMs, other.#minMs);
    this.#maxMs = Math.max(this.#maxMs, other.#maxMs);
    this.#clamped += other.#clamped;
    return this;
  }

  reset(): void {
    this.#h.reset();
    this.#sumMs = 0;
    this.#minMs = Number.POSITIVE_INFINITY;
    this.#maxMs = Number.NEGATIVE_INFINITY;
    this.#clamped = 0;
  }

  summary(): LatencySummary {
    return {
      n: this.count,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
      max: this.max,
      mean: this.mean,
    };
  }

  toJSON(): LatencySummary {
    return this.summary();
  }
}
