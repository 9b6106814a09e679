// Produces benchmark/demo events to a topic: a fixed count or for a duration, flat out or at
// a target rate, with a chosen key distribution and value size.
// Payloads: `shop` (the shop example's events, key = userId) or `bench-mlp` (`{id, ts, x}`
// with x 64 numbers, the bench-mlp model's input, key = id).
// Keys (--keys): `natural` (default: shop → userId with the generator's skew, bench-mlp →
// the event id), or `uniform | zipf | sequential | single` over --key-count keys (see
// lib/keys.ts). For shop the key is always the event's userId (the predictor orders and
// looks features up per user), so the distribution picks the user; for bench-mlp keys are
// `k-<n>`. --payload-bytes pads every value to about N bytes with a `pad` field.
// Progress goes to stderr (one rewritten line on a TTY, a line every ~2 s otherwise; --quiet
// turns it off), the final report to stdout.
//   node dist/load-tests/produce-events.js --topic shop.events --count 10000 [--rate 2000]
//   node dist/load-tests/produce-events.js --payload bench-mlp --topic t --count 10000
//   node dist/load-tests/produce-events.js --topic t --count 5000 --keys zipf --key-count 100 --payload-bytes 512
//   node dist/load-tests/produce-events.js --topic t --rate 500 --duration 600   # a 10 min soak
// As a library, `produceEvents(argv)` is quiet unless argv has --progress (or
// `{ progress: true }` is passed).
import { randomBytes } from "node:crypto";
import { parseOptions, usageText, wantsHelp, type OptionSpecs, type ParsedOptions } from "./lib/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { AimassError, isAimassError } from "../services/common/errors.js";
import { createKafka } from "../services/common/kafka/client.js";
import { createLogger } from "../services/common/logger.js";
import { isKeyDistribution, keyPicker, KEY_DISTRIBUTIONS } from "./lib/keys.js";
import { checkPadTarget, padJson } from "./lib/padding.js";
import { Progress } from "./lib/progress.js";
import { prng, shopEvents } from "./lib/shop-events.js";

const specs = {
  payload: { type: "string", description: "shop | bench-mlp (default shop)" },
  topic: { type: "string", description: "topic to write (default shop.events)" },
  count: {
    type: "number",
    description: "events to produce (default 10000, or unbounded with --duration)",
  },
  duration: {
    type: "number",
    description: "produce for S seconds (with --count too: whichever ends first)",
  },
  rate: { type: "number", description: "events per second; 0 = flat out (default 0)" },
  seed: { type: "number", description: "PRNG seed (default 42)" },
  users: { type: "number", description: "distinct users, shop payload (default 1000)" },
  keys: {
    type: "string",
    description: `natural | ${KEY_DISTRIBUTIONS.join(" | ")} (default natural: shop → skewed userId, bench-mlp → id)`,
  },
  "key-count": {
    type: "number",
    description: "distinct keys for --keys (default: --users, 1000 for bench-mlp)",
  },
  "zipf-s": { type: "number", description: "zipf exponent s > 0 for --keys zipf (default 1.1)" },
  "payload-bytes": { type: "number", description: "pad each value to about N bytes (a `pad` field)" },
  "run-id": { type: "string", description: "event id prefix (default: time based)" },
  batch: {
    type: "number",
    description: "events per produce request (default 500; ≤ rate/10 when paced)",
  },
  traceparent: { type: "boolean", description: "give every event a W3C traceparent header" },
  progress: { type: "boolean", description: "progress on stderr (the CLI's default)" },
  quiet: { type: "boolean", description: "no progress on stderr" },
} satisfies OptionSpecs;

export const PAYLOADS = ["shop", "bench-mlp"] as const;
export type Payload = (typeof PAYLOADS)[number];
export const BENCH_MLP_WIDTH = 64;

export interface PayloadOptions {
  /** Key index in [0, key count) per event (lib/keys.ts); default: the payload's natural key. */
  pickKey?: () => number;
  /** Pad every value to about this many bytes; throws on the first event if it cannot. */
  payloadBytes?: number;
}

/** Events of a payload kind as `{key, value}` pairs; ids are `<runId>-<n>`. */
export function* payloadEvents(
  payload: Payload,
  runId: string,
  seed = 42,
  users = 1000,
  options: PayloadOptions = {},
): Generator<{ key: string; value: string }> {
  const events = rawEvents(payload, runId, seed, users, options.pickKey);
  const target = options.payloadBytes;
  if (target === undefined) {
    yield* events;
    return;
  }
  let first = true;
  for (const e of events) {
    if (first) checkPadTarget(e.value, target);
    first = false;
    yield { key: e.key, value: padJson(e.value, target) };
  }
}

function* rawEvents(
  payload: Payload,
  runId: string,
  seed: number,
  users: number,
  pickKey: (() => number) | undefined,
): Generator<{ key: string; value: string }> {
  if (payload === "shop") {
    for (const e of shopEvents({ seed, users, items: 500, runId, pickUser: pickKey }))
      yield { key: e.userId, value: JSON.stringify(e) };
    return;
  }
  const rand = prng(seed);
  for (let i = 0; ; i++) {
    const x = Array.from({ length: BENCH_MLP_WIDTH }, () => Math.round((rand() * 2 - 1) * 1e4) / 1e4);
    const id = `${runId}-${i}`;
    yield { key: pickKey ? `k-${pickKey()}` : id, value: JSON.stringify({ id, ts: Date.now(), x }) };
  }
}

export interface ProduceResult {
  runId: string;
  /** Events actually sent. */
  count: number;
  /** From the first send to the last acknowledgement (and the pacing's last wait). */
  seconds: number;
  /** Achieved rate, count / seconds. */
  eventsPerSecond: number;
  /** Total and mean UTF-8 bytes of the record values (keys and headers not counted). */
  valueBytes: number;
  avgValueBytes: number;
}

export interface ProduceControl {
  /** Progress on stderr (default false for library callers; --progress / --quiet in argv win). */
  progress?: boolean;
  /** Stops after the request in flight, e.g. on SIGINT; the result counts what was sent. */
  signal?: AbortSignal;
}

function usage(message: string): AimassError {
  return new AimassError("USAGE", message);
}

function positiveInt(value: number | undefined, name: string, orZero = false): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < (orZero ? 0 : 1)) {
    throw usage(`--${name} must be a ${orZero ? "non-negative" : "positive"} integer, got ${value}`);
  }
  return value;
}

interface Plan {
  payload: Payload;
  topic: string;
  /** Events to send at most (Infinity: until the duration ends). */
  count: number;
  /** Stop sending new batches after this many ms (Infinity: no limit). */
  deadlineMs: number;
  durationS: number | undefined;
  rate: number;
  batch: number;
  runId: string;
  seed: number;
  users: number;
  payloadOptions: PayloadOptions;
  traceparent: boolean;
}

function plan(argv: string[]): Plan & { options: ParsedOptions<typeof specs> } {
  const options = parseOptions(argv, specs);
  const payload = options.string("payload") ?? "shop";
  if (!(PAYLOADS as readonly string[]).includes(payload)) {
    throw usage(`--payload must be one of ${PAYLOADS.join(", ")}`);
  }
  const rate = options.number("rate") ?? 0;
  if (!(rate >= 0)) throw usage(`--rate must be ≥ 0, got ${rate}`);
  const durationS = options.number("duration");
  if (durationS !== undefined && !(durationS > 0)) throw usage(`--duration must be > 0, got ${durationS}`);
  const countArg = positiveInt(options.number("count"), "count", true);
  let count = countArg ?? (durationS === undefined ? 10_000 : Number.POSITIVE_INFINITY);
  let deadlineMs = Number.POSITIVE_INFINITY;
  if (durationS !== undefined) {
    deadlineMs = durationS * 1000;
    if (rate > 0) {
      // Paced: exactly rate × duration events (the pacing spreads them over the duration);
      // the deadline, a little later, only ends a run that cannot keep up with the rate.
      count = Math.min(count, Math.round(rate * durationS));
      deadlineMs += 250;
    }
  }
  // Paced runs send at most 100 ms of events per request, so a low rate is not one burst.
  let batch = positiveInt(options.number("batch"), "batch") ?? 500;
  if (rate > 0) batch = Math.min(batch, Math.max(1, Math.ceil(rate / 10)));

  const seed = options.number("seed") ?? 42;
  const usersArg = positiveInt(options.number("users"), "users");
  const keys = options.string("keys") ?? "natural";
  const keyCountArg = positiveInt(options.number("key-count"), "key-count");
  const zipfS = options.number("zipf-s");
  const payloadOptions: PayloadOptions = {};
  let users = usersArg ?? 1000;
  if (keys === "natural") {
    if (keyCountArg !== undefined || zipfS !== undefined) {
      throw usage("--key-count and --zipf-s choose keys for --keys uniform|zipf|sequential|single");
    }
  } else if (isKeyDistribution(keys)) {
    if (zipfS !== undefined && keys !== "zipf") throw usage("--zipf-s is for --keys zipf");
    if (
      payload === "shop" &&
      usersArg !== undefined &&
      keyCountArg !== undefined &&
      usersArg !== keyCountArg
    ) {
      throw usage("for the shop payload keys are users: give --key-count or --users, not both");
    }
    const keyCount = keyCountArg ?? usersArg ?? 1000;
    if (payload === "shop") users = keyCount;
    try {
      payloadOptions.pickKey = keyPicker({ distribution: keys, keyCount, zipfS, seed });
    } catch (err) {
      throw usage(`--keys ${keys}: ${(err as Error).message}`);
    }
  } else {
    throw usage(`--keys must be one of natural, ${KEY_DISTRIBUTIONS.join(", ")}; got "${keys}"`);
  }
  const payloadBytes = positiveInt(options.number("payload-bytes"), "payload-bytes");
  if (payloadBytes !== undefined) payloadOptions.payloadBytes = payloadBytes;

  return {
    options,
    payload: payload as Payload,
    topic: options.string("topic") ?? "shop.events",
    count,
    deadlineMs,
    durationS,
    rate,
    batch,
    runId: options.string("run-id") ?? `run${Date.now().toString(36)}`,
    seed,
    users,
    payloadOptions,
    traceparent: options.flag("traceparent"),
  };
}

export async function produceEvents(argv: string[], control: ProduceControl = {}): Promise<ProduceResult> {
  const p = plan(argv);
  const events = payloadEvents(p.payload, p.runId, p.seed, p.users, p.payloadOptions);
  // Generated before connecting, so a bad --payload-bytes fails fast.
  type Event = { key: string; value: string };
  let next = p.count > 0 ? (events.next().value as Event) : undefined;
  const showProgress = !p.options.flag("quiet") && (p.options.flag("progress") || control.progress === true);

  const logger = createLogger({ base: { service: "load" } });
  const kafka = createKafka({ brokers: endpointsFromEnv().kafkaBrokers, clientId: "aimass-load", logger });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
  await producer.connect();
  const progress = new Progress({
    label: "produce",
    total: Number.isFinite(p.count) ? p.count : undefined,
    durationS: p.durationS,
    quiet: !showProgress,
  });
  const started = performance.now();
  let sent = 0;
  let valueBytes = 0;
  try {
    while (sent < p.count && performance.now() - started < p.deadlineMs && !control.signal?.aborted) {
      const n = Math.min(p.batch, p.count - sent);
      const messages = [];
      for (let i = 0; i < n; i++) {
        const e = next ?? (events.next().value as Event);
        next = undefined;
        valueBytes += Buffer.byteLength(e.value);
        if (!p.traceparent) {
          messages.push(e);
          continue;
        }
        const trace = `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`;
        messages.push({ ...e, headers: { traceparent: trace } });
      }
      await producer.send({ topic: p.topic, messages });
      sent += n;
      progress.update(sent);
      if (p.rate > 0) {
        // Due time from the start (not from the last batch), so sleep jitter never accumulates:
        // after the last batch too, so seconds ≈ count / rate when the rate is reachable.
        const due = (sent / p.rate) * 1000 - (performance.now() - started);
        if (due > 0) await sleep(due, control.signal);
      }
    }
  } finally {
    progress.finish();
    await producer.disconnect();
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    runId: p.runId,
    count: sent,
    seconds,
    eventsPerSecond: sent / Math.max(seconds, 1e-6),
    valueBytes,
    avgValueBytes: sent === 0 ? 0 : valueBytes / sent,
  };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** The CLI's closing line. */
export function formatProduceReport(r: ProduceResult, targetRate: number): string {
  const int = (n: number) => Math.round(n).toLocaleString("en-US");
  const target = targetRate > 0 ? ` (target ${int(targetRate)})` : "";
  return (
    `produced ${int(r.count)} events (run ${r.runId}) in ${r.seconds.toFixed(1)} s: ` +
    `${int(r.eventsPerSecond)} ev/s${target}, ${int(r.avgValueBytes)} B/event value avg`
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (wantsHelp(process.argv)) {
    process.stdout.write(usageText("produce-events", specs));
  } else {
    const argv = process.argv.slice(2);
    const stop = new AbortController();
    // Ctrl-C ends a (soak) run cleanly: the batch in flight completes and the report prints.
    process.once("SIGINT", () => stop.abort());
    try {
      const r = await produceEvents(argv, { progress: true, signal: stop.signal });
      const rate = parseOptions(argv, specs).number("rate");
      process.stdout.write(`${formatProduceReport(r, rate ?? 0)}\n`);
    } catch (err) {
      if (!isAimassError(err, "USAGE")) throw err;
      process.stderr.write(`produce-events: ${err.message} (see --help)\n`);
      process.exitCode = 2;
    }
  }
}
