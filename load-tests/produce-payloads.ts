// Produces benchmark events of a chosen payload to a topic, flat out: `shop` (the shop
// example's events, as produce-events.ts writes them) or `bench-mlp` (`{id, ts, x}` with x
// 64 numbers, the bench-mlp model's input).
//   node dist/load-tests/produce-payloads.js --payload bench-mlp --topic t --count 10000
import { formatOptions, parseArgs, type OptionSpec } from "../services/control/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { createKafka } from "../services/common/kafka/client.js";
import { createLogger } from "../services/common/logger.js";
import { prng, shopEvents } from "./lib/shop-events.js";

const specs: OptionSpec[] = [
  { name: "payload", type: "string", description: "shop | bench-mlp (default shop)" },
  { name: "topic", type: "string", description: "topic to write", required: true },
  { name: "count", type: "number", description: "events to produce (default 10000)" },
  { name: "seed", type: "number", description: "PRNG seed (default 42)" },
  { name: "run-id", type: "string", description: "event id prefix (default: time based)" },
  { name: "batch", type: "number", description: "events per produce request (default 500)" },
];

export const PAYLOADS = ["shop", "bench-mlp"] as const;
export type Payload = (typeof PAYLOADS)[number];

export const BENCH_MLP_WIDTH = 64;

/** Events of a payload kind, as `{key, value}` pairs; ids are `<runId>-<n>`. */
export function* payloadEvents(
  payload: Payload,
  runId: string,
  seed = 42,
): Generator<{ key: string; value: string }> {
  if (payload === "shop") {
    for (const e of shopEvents({ seed, users: 1000, items: 500, runId })) {
      yield { key: e.userId, value: JSON.stringify(e) };
    }
    return;
  }
  const rand = prng(seed);
  for (let i = 0; ; i++) {
    const x = Array.from({ length: BENCH_MLP_WIDTH }, () => Math.round((rand() * 2 - 1) * 1e4) / 1e4);
    const id = `${runId}-${i}`;
    yield { key: id, value: JSON.stringify({ id, ts: Date.now(), x }) };
  }
}

export async function producePayloads(
  argv: string[],
): Promise<{ runId: string; count: number; seconds: number }> {
  const { options } = parseArgs(argv, specs);
  const payload = (options.payload as string | undefined) ?? "shop";
  if (!(PAYLOADS as readonly string[]).includes(payload)) {
    throw new Error(`--payload must be one of ${PAYLOADS.join(", ")}`);
  }
  const topic = options.topic as string;
  const count = (options.count as number | undefined) ?? 10_000;
  const batch = (options.batch as number | undefined) ?? 500;
  const runId = (options["run-id"] as string | undefined) ?? `run${Date.now().toString(36)}`;
  const logger = createLogger({ base: { service: "load" } });
  const kafka = createKafka({ brokers: endpointsFromEnv().kafkaBrokers, clientId: "aimass-load", logger });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
  await producer.connect();
  const events = payloadEvents(payload as Payload, runId, (options.seed as number | undefined) ?? 42);
  const started = performance.now();
  let sent = 0;
  try {
    while (sent < count) {
      const n = Math.min(batch, count - sent);
      const messages = [];
      for (let i = 0; i < n; i++) messages.push(events.next().value as { key: string; value: string });
      await producer.send({ topic, messages });
      sent += n;
    }
  } finally {
    await producer.disconnect();
  }
  return { runId, count: sent, seconds: (performance.now() - started) / 1000 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.includes("--help")) {
    process.stdout.write(`Usage: produce-payloads [options]\n\n${formatOptions(specs)}\n`);
  } else {
    const r = await producePayloads(process.argv.slice(2));
    process.stdout.write(`produced ${r.count} events (run ${r.runId}) in ${r.seconds.toFixed(1)} s\n`);
  }
}
