// Produces benchmark/demo events to a topic: a fixed count, flat out or at a target rate.
// Payloads: `shop` (the shop example's events, key = userId) or `bench-mlp` (`{id, ts, x}`
// with x 64 numbers, the bench-mlp model's input, key = id).
//   node dist/load-tests/produce-events.js --topic shop.events --count 10000 [--rate 2000]
//   node dist/load-tests/produce-events.js --payload bench-mlp --topic t --count 10000
import { randomBytes } from "node:crypto";
import { parseArgs, formatOptions, type OptionSpec } from "../services/control/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { createKafka } from "../services/common/kafka/client.js";
import { createLogger } from "../services/common/logger.js";
import { prng, shopEvents } from "./lib/shop-events.js";

const specs: OptionSpec[] = [
  { name: "payload", type: "string", description: "shop | bench-mlp (default shop)" },
  { name: "topic", type: "string", description: "topic to write (default shop.events)" },
  { name: "count", type: "number", description: "events to produce (default 10000)" },
  { name: "rate", type: "number", description: "events per second; 0 = flat out (default 0)" },
  { name: "seed", type: "number", description: "PRNG seed (default 42)" },
  { name: "users", type: "number", description: "distinct users, shop payload (default 1000)" },
  { name: "run-id", type: "string", description: "event id prefix (default: time based)" },
  { name: "batch", type: "number", description: "events per produce request (default 500)" },
  { name: "traceparent", type: "boolean", description: "give every event a W3C traceparent header" },
];

export const PAYLOADS = ["shop", "bench-mlp"] as const;
export type Payload = (typeof PAYLOADS)[number];
export const BENCH_MLP_WIDTH = 64;

/** Events of a payload kind as `{key, value}` pairs; ids are `<runId>-<n>`. */
export function* payloadEvents(
  payload: Payload,
  runId: string,
  seed = 42,
  users = 1000,
): Generator<{ key: string; value: string }> {
  if (payload === "shop") {
    for (const e of shopEvents({ seed, users, items: 500, runId }))
      yield { key: e.userId, value: JSON.stringify(e) };
    return;
  }
  const rand = prng(seed);
  for (let i = 0; ; i++) {
    const x = Array.from({ length: BENCH_MLP_WIDTH }, () => Math.round((rand() * 2 - 1) * 1e4) / 1e4);
    const id = `${runId}-${i}`;
    yield { key: id, value: JSON.stringify({ id, ts: Date.now(), x }) };
  }
}

export async function produceEvents(
  argv: string[],
): Promise<{ runId: string; count: number; seconds: number }> {
  const { options } = parseArgs(argv, specs);
  const payload = (options.payload as string | undefined) ?? "shop";
  if (!(PAYLOADS as readonly string[]).includes(payload)) {
    throw new Error(`--payload must be one of ${PAYLOADS.join(", ")}`);
  }
  const topic = (options.topic as string | undefined) ?? "shop.events";
  const count = (options.count as number | undefined) ?? 10_000;
  const rate = (options.rate as number | undefined) ?? 0;
  const batch = (options.batch as number | undefined) ?? 500;
  const runId = (options["run-id"] as string | undefined) ?? `run${Date.now().toString(36)}`;
  const traceparent = options.traceparent === true;
  const logger = createLogger({ base: { service: "load" } });
  const kafka = createKafka({ brokers: endpointsFromEnv().kafkaBrokers, clientId: "aimass-load", logger });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
  await producer.connect();
  const events = payloadEvents(
    payload as Payload,
    runId,
    (options.seed as number | undefined) ?? 42,
    (options.users as number | undefined) ?? 1000,
  );
  const started = performance.now();
  let sent = 0;
  try {
    while (sent < count) {
      const n = Math.min(batch, count - sent);
      const messages = [];
      for (let i = 0; i < n; i++) {
        const e = events.next().value as { key: string; value: string };
        if (!traceparent) {
          messages.push(e);
          continue;
        }
        const trace = `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`;
        messages.push({ ...e, headers: { traceparent: trace } });
      }
      await producer.send({ topic, messages });
      sent += n;
      if (rate > 0) {
        const due = (sent / rate) * 1000 - (performance.now() - started);
        if (due > 0) await new Promise((r) => setTimeout(r, due));
      }
    }
  } finally {
    await producer.disconnect();
  }
  return { runId, count: sent, seconds: (performance.now() - started) / 1000 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.includes("--help")) {
    process.stdout.write(`Usage: produce-events [options]\n\n${formatOptions(specs)}\n`);
  } else {
    const r = await produceEvents(process.argv.slice(2));
    process.stdout.write(`produced ${r.count} events (run ${r.runId}) in ${r.seconds.toFixed(1)} s\n`);
  }
}
