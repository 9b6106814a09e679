// Produces feature updates for the shop example's users and items (the ids shop events
// use), so predictions find their features in Redis.
//   node dist/load-tests/produce-features.js --users 1000 --items 500 [--topic shop.features]
import { parseOptions, usageText, wantsHelp, type OptionSpecs } from "./lib/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { createKafka } from "../services/common/kafka/client.js";
import { createLogger } from "../services/common/logger.js";
import { prng } from "./lib/shop-events.js";

const specs = {
  topic: { type: "string", description: "feature updates topic (default shop.features)" },
  users: { type: "number", description: "users u-0… to update (default 1000)" },
  items: { type: "number", description: "items i-0… to update (default 500)" },
  seed: { type: "number", description: "PRNG seed (default 7)" },
  ts: { type: "number", description: "event time of the values, epoch ms (default now)" },
} satisfies OptionSpecs;

export async function produceFeatures(argv: string[]): Promise<{ count: number; ts: number }> {
  const options = parseOptions(argv, specs);
  const topic = options.string("topic") ?? "shop.features";
  const users = options.number("users") ?? 1000;
  const items = options.number("items") ?? 500;
  const ts = options.number("ts") ?? Date.now();
  const rand = prng(options.number("seed") ?? 7);
  const kafka = createKafka({
    brokers: endpointsFromEnv().kafkaBrokers,
    clientId: "aimass-features-load",
    logger: createLogger(),
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
  await producer.connect();
  const messages: Array<{ key: string; value: string }> = [];
  for (let u = 0; u < users; u++) {
    const clicks = Math.floor(rand() * 40);
    const values = {
      clicks_7d: clicks,
      carts_7d: Math.floor(clicks * rand() * 0.3),
      purchases_30d: Math.floor(rand() * 4),
    };
    messages.push({ key: `u-${u}`, value: JSON.stringify({ view: "user", key: `u-${u}`, ts, values }) });
  }
  for (let i = 0; i < items; i++) {
    const values = { popularity_7d: Math.round(rand() * 1000) / 1000, price_band: Math.floor(rand() * 5) };
    messages.push({ key: `i-${i}`, value: JSON.stringify({ view: "item", key: `i-${i}`, ts, values }) });
  }
  try {
    for (let k = 0; k < messages.length; k += 500)
      await producer.send({ topic, messages: messages.slice(k, k + 500) });
  } finally {
    await producer.disconnect();
  }
  return { count: messages.length, ts };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (wantsHelp(process.argv)) {
    process.stdout.write(usageText("produce-features", specs));
  } else {
    const r = await produceFeatures(process.argv.slice(2));
    process.stdout.write(
      `produced ${r.count} feature updates (event time ${new Date(r.ts).toISOString()})\n`,
    );
  }
}
