// Reads a prediction topic (read_committed) until every prediction of a run has arrived,
// then reports counts, duplicates, end-to-end latency (event time → visible to a
// read_committed consumer) and the score distribution.
// Latency percentiles come from an HdrHistogram (lib/percentiles.ts: 1 µs .. 1 h, 3
// significant digits, so within ~0.1%); the score distribution is exact.
// Progress goes to stderr (seen/count, current rate, running p99; one rewritten line on a TTY,
// a line every ~2 s otherwise; --quiet turns it off), the report to stdout.
//   node dist/load-tests/read-predictions.js --run-id <id> --count 10000 [--topic shop.predictions]
//   node dist/load-tests/read-predictions.js --run-id <id> --count 300000 --timeout-ms 900000 --quiet
// As a library, `readPredictions(argv)` is quiet unless argv has --progress (or
// `{ progress: true }` is passed).
import { parseOptions, usageText, wantsHelp, type OptionSpecs } from "./lib/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { createKafka } from "../services/common/kafka/client.js";
import { createLogger } from "../services/common/logger.js";
import { LatencyHistogram, summarize, type LatencySummary } from "./lib/percentiles.js";
import { Progress } from "./lib/progress.js";

const specs = {
  topic: { type: "string", description: "prediction topic (default shop.predictions)" },
  "dlq-topic": { type: "string", description: "DLQ topic to count (default shop.events.dlq)" },
  "run-id": { type: "string", description: "event id prefix of the run", required: true },
  count: { type: "number", description: "events the run produced", required: true },
  "timeout-ms": { type: "number", description: "give up after (default 120000)" },
  "score-field": { type: "string", description: "prediction field to summarize (default propensity)" },
  "max-wait-ms": {
    type: "number",
    description: "the reader's fetch.max.wait (default 50; bounds how late it can see a commit)",
  },
  "from-end": {
    type: "boolean",
    description: "skip what the topics already hold (start at their end offsets), for a run that starts now",
  },
  progress: { type: "boolean", description: "progress on stderr (the CLI's default)" },
  quiet: { type: "boolean", description: "no progress on stderr" },
} satisfies OptionSpecs;

export interface RunReport {
  predictions: number;
  duplicates: number;
  dlq: number;
  missing: number;
  /** Event time → seen, from an HdrHistogram (within ~0.1%); mean and max are exact. */
  latencyMs: LatencySummary;
  /** Latencies outside 0 .. 1 h (clock skew, or a very late record), clamped into range. */
  latencyClamped: number;
  /** Wall-clock ms of the first and last prediction of the run seen (throughput window). */
  firstAt: number;
  lastAt: number;
  score: ReturnType<typeof summarize>;
  samples: unknown[];
}

export async function readPredictions(
  argv: string[],
  control: {
    progress?: boolean;
    /**
     * Called once the reader has joined its group (partitions assigned): events produced
     * after this are measured from their arrival, not from the reader's start-up.
     */
    onReady?: () => void;
  } = {},
): Promise<RunReport> {
  const options = parseOptions(argv, specs);
  const topic = options.string("topic") ?? "shop.predictions";
  const dlqTopic = options.string("dlq-topic") ?? "shop.events.dlq";
  const runId = options.requiredString("run-id");
  const count = options.requiredNumber("count");
  const scoreField = options.string("score-field") ?? "propensity";
  const timeoutMs = options.number("timeout-ms") ?? 120_000;
  const prefix = `${runId}-`;
  const kafka = createKafka({
    brokers: endpointsFromEnv().kafkaBrokers,
    clientId: "aimass-reader",
    logger: createLogger(),
  });
  const consumer = kafka.consumer({
    groupId: `aimass-reader-${runId}-${process.pid}`,
    maxWaitTimeInMs: options.number("max-wait-ms") ?? 50,
  });
  const seen = new Set<string>();
  let duplicates = 0;
  let dlq = 0;
  const latency = new LatencyHistogram();
  const scores: number[] = [];
  const samples: unknown[] = [];
  let firstAt = 0;
  let lastAt = 0;
  const progress = new Progress({
    label: "read",
    total: count,
    unit: "pred",
    quiet: options.flag("quiet") || !(options.flag("progress") || control.progress === true),
    extra: () => (latency.count > 0 ? `p99 ${formatMs(latency.percentile(99))} ms` : undefined),
  });
  // --from-end: the end offsets now, read before subscribing, so nothing produced after this
  // call can be skipped (a `latest` reset at the first fetch could skip early predictions).
  const ends: Array<{ topic: string; partition: number; offset: string }> = [];
  if (options.flag("from-end")) {
    const admin = kafka.admin();
    await admin.connect();
    try {
      for (const t of [topic, dlqTopic]) {
        for (const p of await admin.fetchTopicOffsets(t))
          ends.push({ topic: t, partition: p.partition, offset: p.high });
      }
    } finally {
      await admin.disconnect();
    }
  }
  await consumer.connect();
  await consumer.subscribe({ topics: [topic, dlqTopic], fromBeginning: true });
  const onReady = control.onReady;
  if (onReady) {
    const off = consumer.on(consumer.events.GROUP_JOIN, () => {
      off();
      onReady();
    });
  }
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  // No offset commits: the reader's group is its own, and kafkajs' default (a commit after every
  // batch, before the next fetch) delays what it sees by tens of ms with a few partitions.
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic: t, message }) => {
      const now = Date.now();
      if (t === dlqTopic) {
        if (message.value?.toString().includes(prefix)) dlq++;
      } else {
        const v = JSON.parse(message.value?.toString() ?? "{}") as Record<string, unknown>;
        const id = String(v.eventId ?? "");
        if (!id.startsWith(prefix)) return;
        if (seen.has(id)) duplicates++;
        if (firstAt === 0) firstAt = now;
        lastAt = now;
        seen.add(id);
        if (typeof v.eventTs === "number") latency.record(now - v.eventTs);
        if (typeof v[scoreField] === "number") scores.push(v[scoreField] as number);
        if (samples.length < 3) samples.push(v);
      }
      progress.update(seen.size + dlq);
      if (seen.size + dlq >= count) finish();
    },
  });
  for (const e of ends) consumer.seek(e);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
  clearTimeout(timer);
  progress.finish();
  await consumer.disconnect();
  return {
    predictions: seen.size,
    duplicates,
    dlq,
    missing: Math.max(0, count - seen.size - dlq),
    latencyMs: latency.summary(),
    latencyClamped: latency.clamped,
    firstAt,
    lastAt,
    score: summarize(scores),
    samples,
  };
}

function formatMs(ms: number): string {
  return ms < 10 ? ms.toFixed(2) : ms < 1000 ? ms.toFixed(0) : Math.round(ms).toLocaleString("en-US");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (wantsHelp(process.argv)) {
    process.stdout.write(usageText("read-predictions", specs));
  } else {
    const r = await readPredictions(process.argv.slice(2), { progress: true });
    const f = (n: number) => n.toFixed(n < 10 ? 3 : 0);
    const l = r.latencyMs;
    const clamped = r.latencyClamped > 0 ? `  (${r.latencyClamped} out of range, clamped)` : "";
    process.stdout.write(
      [
        `predictions: ${r.predictions}   dlq: ${r.dlq}   duplicates: ${r.duplicates}   missing: ${r.missing}`,
        `end-to-end latency ms (event time → read_committed): p50 ${f(l.p50)}  p90 ${f(l.p90)}  p99 ${f(l.p99)}  p99.9 ${f(l.p999)}  max ${f(l.max)}  mean ${f(l.mean)}${clamped}`,
        `score: mean ${r.score.mean.toFixed(3)}  p50 ${f(r.score.p50)}  p90 ${f(r.score.p90)}  max ${f(r.score.max)}`,
        "sample predictions:",
        ...r.samples.map((s) => `  ${JSON.stringify(s)}`),
        "",
      ].join("\n"),
    );
    process.exitCode = r.duplicates === 0 && r.missing === 0 ? 0 : 1;
  }
}
