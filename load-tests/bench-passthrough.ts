// The transport limit: Kafka exactly-once passthrough with kafkajs and no inference. A
// consumer group (read_committed, autoCommit off) and one transactional producer per input
// partition (the predictor's partition-worker idea, minus batching and inference): each
// fetched batch, in chunks of at most --max-per-txn records (default 1000, as the pipeline's
// maxRecordsPerTransaction), is produced unchanged (to the input's partition number) with the
// input offset in the same transaction, then committed (load-tests/clients/kafkajs.ts).
// Measured like bench-pipeline's throughput phase: N events are produced up front, the
// passthrough starts in its own process (as the predictor does), and events/s is N over the
// time between the first and last output a read_committed reader sees.
//   node dist/load-tests/bench-passthrough.js [--events 20000] [--partitions 6]
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Kafka } from "kafkajs";
import { parseOptions, usageText, wantsHelp, type OptionSpecs } from "./lib/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { createKafka } from "../services/common/kafka/client.js";
import { createLogger } from "../services/common/logger.js";
import { startKafkajsPassthrough } from "./clients/kafkajs.js";
import { SERVE_SPECS } from "./clients/types.js";
import { REPO } from "./lib/predictor-process.js";
import { produceEvents } from "./produce-events.js";

const specs = {
  events: { type: "number", description: "events to drain (default 20000)" },
  partitions: { type: "number", description: "input/output partitions (default 6)" },
  "max-per-txn": {
    type: "number",
    description: "records per transaction at most (default 1000, the pipeline's default)",
  },
  // Internal: the bench spawns itself with these as its passthrough processes.
  ...SERVE_SPECS,
} satisfies OptionSpecs;

export interface PassthroughResult {
  events: number;
  partitions: number;
  eventsPerSecond: number;
  duplicates: number;
  missing: number;
}

const kafkaFor = (clientId: string): Kafka =>
  createKafka({
    brokers: endpointsFromEnv().kafkaBrokers,
    clientId,
    logger: createLogger({ level: "warn" }),
  });

/**
 * Consume → produce the same bytes + offsets → commit, one transactional producer per
 * partition: the kafkajs adapter that bench-clients.ts compares with the other clients.
 */
async function serve(o: { input: string; output: string; group: string; maxPerTxn: number }): Promise<void> {
  const passthrough = await startKafkajsPassthrough({
    ...o,
    brokers: endpointsFromEnv().kafkaBrokers,
    sessionTimeoutMs: 6_000,
    heartbeatMs: 500,
    log: () => undefined,
  });
  await new Promise<void>((resolve) => process.once("SIGTERM", () => resolve()));
  await passthrough.stop();
}

/** Reads the output (read_committed) until `count` distinct run events arrived or the timeout. */
async function readOutput(topic: string, runId: string, count: number, timeoutMs: number) {
  const consumer = kafkaFor("aimass-reader").consumer({
    groupId: `aimass-reader-${runId}-${process.pid}`,
    maxWaitTimeInMs: 50,
  });
  const seen = new Set<string>();
  let duplicates = 0;
  let firstAt = 0;
  let lastAt = 0;
  const prefix = `${runId}-`;
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  await consumer.run({
    autoCommit: false, // see read-predictions.ts: commits would delay what the reader sees
    eachMessage: async ({ message }) => {
      const now = Date.now();
      const id = String((JSON.parse(message.value?.toString() ?? "{}") as { id?: unknown }).id ?? "");
      if (!id.startsWith(prefix)) return;
      if (seen.has(id)) duplicates++;
      if (firstAt === 0) firstAt = now;
      lastAt = now;
      seen.add(id);
      if (seen.size >= count) finish();
    },
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
  clearTimeout(timer);
  await consumer.disconnect();
  return { seen: seen.size, duplicates, firstAt, lastAt };
}

export async function benchPassthrough(
  o: { events?: number | undefined; partitions?: number | undefined; maxPerTxn?: number } = {},
): Promise<PassthroughResult> {
  const events = o.events ?? 20_000;
  const partitions = o.partitions ?? 6;
  const admin = kafkaFor("aimass-bench").admin();
  await admin.connect();
  const id = `passthrough-${Date.now().toString(36)}`;
  const f = { input: `${id}.in`, output: `${id}.out`, group: `${id}.group` };
  await admin.createTopics({
    topics: [f.input, f.output].map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
    waitForLeaders: true,
  });
  try {
    const p = await produceEvents(["--topic", f.input, "--count", String(events), "--run-id", `${id}-t`]);
    const reading = readOutput(f.output, p.runId, events, 300_000);
    const child = spawn(
      process.execPath,
      [
        fileURLToPath(import.meta.url),
        "--serve",
        "--input",
        f.input,
        "--output",
        f.output,
        "--group",
        f.group,
        "--max-per-txn",
        String(o.maxPerTxn ?? 1000),
      ],
      { cwd: REPO, stdio: ["ignore", "ignore", "inherit"] },
    );
    const exited = new Promise((r) => child.once("exit", r));
    try {
      const r = await reading;
      return {
        events,
        partitions,
        eventsPerSecond: Math.round(events / Math.max(0.001, (r.lastAt - r.firstAt) / 1000)),
        duplicates: r.duplicates,
        missing: events - r.seen,
      };
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
  } finally {
    await admin.deleteTopics({ topics: [f.input, f.output] }).catch(() => undefined);
    await admin.disconnect();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (wantsHelp(process.argv)) {
    process.stdout.write(usageText("bench-passthrough", specs));
    process.exit(0);
  }
  const options = parseOptions(process.argv.slice(2), specs);
  const maxPerTxn = options.number("max-per-txn") ?? 1000;
  if (options.flag("serve")) {
    await serve({
      input: options.requiredString("input"),
      output: options.requiredString("output"),
      group: options.requiredString("group"),
      maxPerTxn,
    });
  } else {
    const r = await benchPassthrough({
      events: options.number("events"),
      partitions: options.number("partitions"),
      maxPerTxn,
    });
    process.stdout.write(
      `passthrough: ${r.eventsPerSecond} events/s (${r.events} events, ${r.partitions} partitions; duplicates ${r.duplicates}, missing ${r.missing})\n`,
    );
    const out = join(REPO, "load-tests", "results");
    mkdirSync(out, { recursive: true });
    writeFileSync(
      join(out, `passthrough-${Date.now()}.json`),
      JSON.stringify({ ...r, node: process.version }, null, 2),
    );
    process.exitCode = r.duplicates === 0 && r.missing === 0 ? 0 : 1;
  }
}
