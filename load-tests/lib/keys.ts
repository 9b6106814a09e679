// Key distributions for the load generator: which of `keyCount` keys the next event gets.
// Every picker is deterministic for a seed (its own mulberry32 stream, so picking keys does
// not shift the other random fields of an event) and returns a key index in [0, keyCount).
//   uniform     every key equally likely
//   zipf        P(rank k) ∝ 1 / k^s, k = 1..keyCount (index 0 is the hottest key)
//   sequential  0, 1, …, keyCount - 1, 0, 1, … (round robin)
//   single      always 0 (one hot key: every event on one partition)
import { prng } from "./shop-events.js";

export const KEY_DISTRIBUTIONS = ["uniform", "zipf", "sequential", "single"] as const;
export type KeyDistribution = (typeof KEY_DISTRIBUTIONS)[number];

/** The zipf sampler keeps a CDF of keyCount doubles: 8 MB at this limit. */
export const MAX_ZIPF_KEYS = 1_000_000;

export interface KeyPickerOptions {
  distribution: KeyDistribution;
  /** Distinct keys (ignored by `single`). */
  keyCount: number;
  /** Zipf exponent s > 0 (default 1.1). */
  zipfS?: number | undefined;
  seed: number;
}

export function isKeyDistribution(s: string): s is KeyDistribution {
  return (KEY_DISTRIBUTIONS as readonly string[]).includes(s);
}

/** A function returning the next key index; throws on options it cannot honour. */
export function keyPicker(o: KeyPickerOptions): () => number {
  const n = o.distribution === "single" ? 1 : o.keyCount;
  if (!Number.isInteger(n) || n < 1) throw new Error(`key count must be a positive integer, got ${n}`);
  // A stream apart from the event generator's (which uses `seed` itself).
  const rand = prng((o.seed ^ 0x5bd1e995) >>> 0);
  switch (o.distribution) {
    case "single":
      return () => 0;
    case "sequential": {
      let i = -1;
      return () => (i = (i + 1) % n);
    }
    case "uniform":
      return () => Math.floor(rand() * n);
    case "zipf": {
      const sample = zipfSampler(n, o.zipfS ?? 1.1);
      return () => sample(rand());
    }
  }
}

/**
 * Inverse-CDF zipf sampling: the normalized CDF is precomputed once (O(n)), each draw is a
 * binary search (O(log n)). Maps u ∈ [0, 1) to an index in [0, n), index k-1 having
 * probability (1/k^s) / H(n, s).
 */
export function zipfSampler(n: number, s: number): (u: number) => number {
  if (!(s > 0) || !Number.isFinite(s)) throw new Error(`zipf exponent must be > 0, got ${s}`);
  if (n > MAX_ZIPF_KEYS) {
    throw new Error(`zipf supports at most ${MAX_ZIPF_KEYS.toLocaleString("en-US")} keys, got ${n}`);
  }
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 1; k <= n; k++) {
    sum += k ** -s;
    cdf[k - 1] = sum;
  }
  for (let i = 0; i < n; i++) cdf[i] = (cdf[i] as number) / sum;
  cdf[n - 1] = 1; // no rounding gap at the top
  return (u) => {
    // First index whose cumulative probability exceeds u.
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}

/** The probability zipf(n, s) gives the hottest key: 1 / H(n, s). */
export function zipfTopShare(n: number, s: number): number {
  let h = 0;
  for (let k = 1; k <= n; k++) h += k ** -s;
  return 1 / h;
}
