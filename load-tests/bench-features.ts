// Feature lookup latency per micro-batch size, against the Redis at REDIS_URL:
//   node dist/load-tests/bench-features.js [--sizes 1,8,32,128,512] [--iterations 200]
// Loads features for --users users and --items items under a unique key prefix (deleted
// afterwards), then for each batch size times, on the same random events (a user and an item
// each, so 2 views per event):
//   aimass      one FeatureStore.lookup of the batch: ONE pipeline, one HGETALL per distinct hash;
//   naive       one HGETALL per event per view, each awaited before the next (no pipeline);
//   concurrent  one HGETALL per event per view, all issued at once (Promise.all) on a client
//               with auto-pipelining off: no explicit pipeline, one socket write per command.
// The three run one after the other within each iteration, in rotating order, so drift and
// noise hit them alike. naive and concurrent only fetch (aimass also parses and applies the
// views' defaults), which favours them. Results: a table on stdout and JSON in load-tests/results/.
import { mkdirSync, writeFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { Redis } from "ioredis";
import { parseOptions, usageText, wantsHelp, type OptionSpecs } from "./lib/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { createLogger } from "../services/common/logger.js";
import type { FeaturesConfig } from "../services/common/config/schema.js";
import { FeatureStore, type FeatureUpdate, type LookupRequest } from "../services/common/features/store.js";
import { REPO } from "./lib/predictor-process.js";
import { prng } from "./lib/shop-events.js";
import { summarize } from "./lib/percentiles.js";

const specs = {
  sizes: {
    type: "string",
    description: "comma list of batch sizes, in events (default 1,8,32,128,512)",
  },
  iterations: { type: "number", description: "timed lookups per batch size and way (default 200)" },
  warmup: { type: "number", description: "untimed iterations first, per batch size (default 20)" },
  users: { type: "number", description: "users loaded (default 10000)" },
  items: { type: "number", description: "items loaded (default 5000)" },
  "budget-seconds": {
    type: "number",
    description: "stop a batch size's iterations after this long; fewer samples are reported (default 20)",
  },
  seed: { type: "number", description: "PRNG seed (default 11)" },
} satisfies OptionSpecs;

type Way = "aimass" | "naive" | "concurrent";
const WAYS: Way[] = ["aimass", "naive", "concurrent"];

interface Stats {
  n: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

interface Row {
  size: number;
  /** Mean distinct hashes per batch: what aimass fetches (naive and concurrent fetch 2 × size). */
  hashes: number;
  aimass: Stats;
  naive: Stats;
  concurrent: Stats;
  /** naive p50 / aimass p50, and the same for p99. */
  naiveOverAimass: { p50: number; p99: number };
  concurrentOverAimass: { p50: number; p99: number };
}

interface Event {
  userId: string;
  itemId: string;
}

function featuresConfig(keyPrefix: string): FeaturesConfig {
  return {
    keyPrefix,
    // Generous: the bench measures latency, a timeout would only turn a slow sample into an error.
    commandTimeoutMs: 5_000,
    onUnavailable: "fail",
    views: [
      {
        name: "user",
        key: "userId",
        maxAgeMs: 0,
        onStale: "defaults",
        ttlSeconds: 0,
        features: [
          { name: "clicks_7d", type: "float", default: 0 },
          { name: "carts_7d", type: "float", default: 0 },
          { name: "purchases_30d", type: "int", default: 0 },
        ],
      },
      {
        name: "item",
        key: "itemId",
        maxAgeMs: 0,
        onStale: "defaults",
        ttlSeconds: 0,
        features: [
          { name: "popularity_7d", type: "float", default: 0.1 },
          { name: "price_band", type: "int", default: 2 },
        ],
      },
    ],
  };
}

function stats(samples: number[]): Stats {
  const s = summarize(samples);
  return { n: s.n, p50Ms: round(s.p50), p99Ms: round(s.p99), meanMs: round(s.mean) };
}

const round = (ms: number) => Math.round(ms * 1_000) / 1_000;
const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : Number.NaN);

export async function benchFeatures(argv: string[]): Promise<{ rows: Row[]; file: string }> {
  const options = parseOptions(argv, specs);
  const sizes = (options.string("sizes") ?? "1,8,32,128,512")
    .split(",")
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
  if (sizes.length === 0) throw new Error("--sizes: give positive integers, e.g. 1,8,32");
  const iterations = options.number("iterations") ?? 200;
  const warmup = options.number("warmup") ?? 20;
  const users = options.number("users") ?? 10_000;
  const items = options.number("items") ?? 5_000;
  const budgetMs = (options.number("budget-seconds") ?? 20) * 1_000;
  const rand = prng(options.number("seed") ?? 11);

  const url = endpointsFromEnv().redisUrl;
  const prefix = `aimass-bench-${randomUUID().slice(0, 8)}`;
  const config = featuresConfig(prefix);
  const logger = createLogger({ level: "warn", base: { service: "bench-features" } });
  const store = FeatureStore.connect(url, config, logger);
  // The naive ways' client: plain ioredis, auto-pipelining off (its default, said explicitly).
  const plain = new Redis(url, { enableAutoPipelining: false, maxRetriesPerRequest: 1 });
  const keys: string[] = [];
  try {
    await store.waitReady(5_000);

    // Load: every user and item gets values, so every lookup is a hit.
    const ts = Date.now();
    const updates: FeatureUpdate[] = [];
    for (let u = 0; u < users; u++) {
      updates.push({
        view: "user",
        key: `u-${u}`,
        ts,
        values: { clicks_7d: u % 40, carts_7d: u % 7, purchases_30d: u % 3 },
      });
      keys.push(store.hashKey("user", `u-${u}`));
    }
    for (let i = 0; i < items; i++) {
      updates.push({
        view: "item",
        key: `i-${i}`,
        ts,
        values: { popularity_7d: (i % 1000) / 1000, price_band: i % 5 },
      });
      keys.push(store.hashKey("item", `i-${i}`));
    }
    for (let k = 0; k < updates.length; k += 1_000) await store.write(updates.slice(k, k + 1_000));

    const batchOf = (size: number): Event[] =>
      Array.from({ length: size }, () => ({
        userId: `u-${Math.floor(rand() * users)}`,
        itemId: `i-${Math.floor(rand() * items)}`,
      }));
    const hashKeysOf = (batch: Event[]): string[] =>
      batch.flatMap((e) => [store.hashKey("user", e.userId), store.hashKey("item", e.itemId)]);

    const run: Record<Way, (batch: Event[]) => Promise<number>> = {
      aimass: async (batch) => {
        const requests: LookupRequest[] = batch.map((e) => store.entityKeys({ ...e }));
        const results = await store.lookup(requests);
        return results.reduce((n, r) => n + Object.values(r).filter((v) => v.status === "hit").length, 0);
      },
      naive: async (batch) => {
        let n = 0;
        for (const key of hashKeysOf(batch)) {
          const hash = await plain.hgetall(key);
          n += Object.keys(hash).length > 0 ? 1 : 0;
        }
        return n;
      },
      concurrent: async (batch) => {
        const hashes = await Promise.all(hashKeysOf(batch).map((key) => plain.hgetall(key)));
        return hashes.filter((h) => Object.keys(h).length > 0).length;
      },
    };

    const rows: Row[] = [];
    for (const size of sizes) {
      const samples: Record<Way, number[]> = { aimass: [], naive: [], concurrent: [] };
      let hashes = 0;
      const started = performance.now();
      for (let it = 0; it < warmup + iterations; it++) {
        if (it >= warmup && performance.now() - started > budgetMs) break;
        const batch = batchOf(size);
        if (it >= warmup) hashes += new Set(hashKeysOf(batch)).size;
        for (let w = 0; w < WAYS.length; w++) {
          const way = WAYS[(it + w) % WAYS.length] as Way;
          const t0 = performance.now();
          const found = await run[way](batch);
          const ms = performance.now() - t0;
          if (found !== 2 * size) throw new Error(`${way}: ${found} of ${2 * size} lookups found data`);
          if (it >= warmup) samples[way].push(ms);
        }
      }
      const s = {
        aimass: stats(samples.aimass),
        naive: stats(samples.naive),
        concurrent: stats(samples.concurrent),
      };
      rows.push({
        size,
        hashes: Math.round((hashes / (s.aimass.n || 1)) * 10) / 10,
        ...s,
        naiveOverAimass: {
          p50: ratio(s.naive.p50Ms, s.aimass.p50Ms),
          p99: ratio(s.naive.p99Ms, s.aimass.p99Ms),
        },
        concurrentOverAimass: {
          p50: ratio(s.concurrent.p50Ms, s.aimass.p50Ms),
          p99: ratio(s.concurrent.p99Ms, s.aimass.p99Ms),
        },
      });
    }

    const dir = join(REPO, "load-tests", "results");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `features-${Date.now()}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          options: { sizes, iterations, warmup, users, items, budgetMs },
          redis: url.replace(/\/\/[^@/]*@/, "//***@"),
          roundTripsPerAimassLookup: 1,
          rows,
          node: process.version,
        },
        null,
        2,
      ),
    );
    return { rows, file };
  } finally {
    for (let k = 0; k < keys.length; k += 1_000)
      await plain.unlink(...keys.slice(k, k + 1_000)).catch(() => 0);
    plain.disconnect();
    await store.close();
  }
}

export function formatTable(rows: Row[]): string {
  const x = (r: number) => `${r.toFixed(1)}×`;
  const head =
    "| batch (events) | hashes (aimass) | aimass p50 / p99 ms | naive p50 / p99 ms | concurrent p50 / p99 ms | naive/aimass p50 / p99 | concurrent/aimass p50 / p99 | n |";
  const lines = rows.map(
    (r) =>
      `| ${r.size} | ${r.hashes.toFixed(1)} | ${r.aimass.p50Ms} / ${r.aimass.p99Ms} | ${r.naive.p50Ms} / ${r.naive.p99Ms} | ` +
      `${r.concurrent.p50Ms} / ${r.concurrent.p99Ms} | ${x(r.naiveOverAimass.p50)} / ${x(r.naiveOverAimass.p99)} | ` +
      `${x(r.concurrentOverAimass.p50)} / ${x(r.concurrentOverAimass.p99)} | ${r.aimass.n} |`,
  );
  return [head, "|---|---|---|---|---|---|---|---|", ...lines, ""].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (wantsHelp(process.argv)) {
    process.stdout.write(usageText("bench-features", specs));
  } else {
    const started = performance.now();
    const { rows, file } = await benchFeatures(process.argv.slice(2));
    process.stdout.write(formatTable(rows));
    process.stdout.write(`\n${((performance.now() - started) / 1000).toFixed(1)} s; JSON: ${file}\n`);
  }
}
