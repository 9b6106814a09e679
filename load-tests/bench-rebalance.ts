// The processing pause when a predictor joins the group and when one is killed (SIGKILL), with
// exactly-once on. Events arrive at a steady rate the whole time; a read_committed reader
// records each prediction's end-to-end latency with the time it became visible. Phases:
// steady (one worker), join (a second worker starts), steady (two), kill (kill -9 of one).
// For each event the pause is the worst latency of the events produced in the window after it
// (they waited for the rebalance) minus the steady p50 before it; both are reported. A kill's
// pause is bounded below by the session timeout: the group only notices a dead member then.
//   node dist/load-tests/bench-rebalance.js [--rate 1000] [--phase-seconds 15]
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseOptions, usageText, wantsHelp, type OptionSpecs } from "./lib/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { createKafka } from "../services/common/kafka/client.js";
import { createLogger } from "../services/common/logger.js";
import { LatencyHistogram } from "./lib/percentiles.js";
import { PredictorProcess, REPO } from "./lib/predictor-process.js";
import { shopPipeline } from "./lib/shop-pipeline.js";
import { produceEvents } from "./produce-events.js";

const specs = {
  rate: { type: "number", description: "events/s throughout (default 1000)" },
  "phase-seconds": { type: "number", description: "seconds per phase (default 15)" },
  "session-timeout-ms": { type: "number", description: "workers' session timeout (default 6000)" },
} satisfies OptionSpecs;

const JOINED = /"msg":"partitions assigned"[^\n]*"partitions":\[\d/;

export interface PauseRow {
  event: "join" | "kill";
  steadyP50Ms: number;
  steadyP99Ms: number;
  /** Worst end-to-end latency of the events produced in the phase after the event. */
  worstMs: number;
  pauseMs: number;
}

interface Seen {
  producedAt: number;
  latencyMs: number;
}

export async function benchRebalance(o: {
  rate: number;
  phaseSeconds: number;
  sessionTimeoutMs: number;
}): Promise<{ rows: PauseRow[]; duplicates: number; missing: number }> {
  const logger = createLogger({ level: "warn" });
  const kafka = createKafka({ brokers: endpointsFromEnv().kafkaBrokers, clientId: "aimass-bench", logger });
  const admin = kafka.admin();
  await admin.connect();
  const id = `rebalance-${Date.now().toString(36)}`;
  const f = { input: `${id}.in`, output: `${id}.out`, dlq: `${id}.dlq`, group: `${id}.group` };
  await admin.createTopics({
    topics: [f.input, f.output, f.dlq].map((topic) => ({ topic, numPartitions: 6, replicationFactor: 1 })),
    waitForLeaders: true,
  });
  const config = shopPipeline(f) as { processing: Record<string, number> };
  config.processing.sessionTimeoutMs = o.sessionTimeoutMs;
  const dir = join(REPO, ".stack", "bench");
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, `${id}.json`);
  writeFileSync(configPath, JSON.stringify(config));

  const seen = new Map<string, Seen>();
  let duplicates = 0;
  const reader = kafka.consumer({ groupId: `${id}-reader`, maxWaitTimeInMs: 50 });
  const workers: PredictorProcess[] = [];
  try {
    await reader.connect();
    await reader.subscribe({ topics: [f.output], fromBeginning: true });
    await reader.run({
      autoCommit: false, // see read-predictions.ts: commits would delay what the reader sees
      eachMessage: async ({ message }) => {
        const now = Date.now();
        const v = JSON.parse(message.value?.toString() ?? "{}") as { eventId?: string; eventTs?: number };
        if (typeof v.eventId !== "string" || typeof v.eventTs !== "number") return;
        if (seen.has(v.eventId)) duplicates++;
        else seen.set(v.eventId, { producedAt: v.eventTs, latencyMs: now - v.eventTs });
      },
    });
    const a = new PredictorProcess(configPath, "rebalance-a");
    workers.push(a);
    await a.waitFor(JOINED);

    const total = Math.round(o.rate * o.phaseSeconds * 4);
    const producing = produceEvents([
      "--topic",
      f.input,
      "--count",
      String(total),
      "--rate",
      String(o.rate),
      "--batch",
      String(Math.max(1, Math.ceil(o.rate / 200))),
      "--run-id",
      id,
    ]);
    const t0 = Date.now();
    const at = (s: number) => new Promise((r) => setTimeout(r, Math.max(0, t0 + s * 1000 - Date.now())));
    await at(o.phaseSeconds);
    const joinAt = Date.now();
    const b = new PredictorProcess(configPath, "rebalance-b");
    workers.push(b);
    await at(o.phaseSeconds * 3);
    const killAt = Date.now();
    b.signal("SIGKILL");
    await producing;
    const end = Date.now();
    // Let the last events through (a kill near the end waits out the session timeout).
    const deadline = Date.now() + o.sessionTimeoutMs + 30_000;
    while (seen.size < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));

    const all = [...seen.values()];
    const rows: PauseRow[] = [];
    for (const [event, from, to, before] of [
      // The join window stops a second short of the kill: events that were in flight on the
      // killed worker wait out its session timeout, and belong to the kill.
      ["join", joinAt, killAt - 1000, t0],
      ["kill", killAt, end, joinAt + o.phaseSeconds * 1000],
    ] as const) {
      const steady = new LatencyHistogram();
      for (const s of all)
        if (s.producedAt >= before + 2000 && s.producedAt < from) steady.record(s.latencyMs);
      const after = all.filter((s) => s.producedAt >= from && s.producedAt < to);
      const p50 = steady.percentile(50);
      const p99 = steady.percentile(99);
      const worst = Math.max(0, ...after.map((s) => s.latencyMs));
      rows.push({
        event,
        steadyP50Ms: Math.round(p50),
        steadyP99Ms: Math.round(p99),
        worstMs: Math.round(worst),
        pauseMs: Math.round(worst - p50),
      });
    }
    return { rows, duplicates, missing: total - seen.size };
  } finally {
    for (const w of workers) w.signal("SIGTERM");
    await Promise.all(workers.map((w) => w.exited));
    await reader.disconnect();
    await admin.deleteTopics({ topics: [f.input, f.output, f.dlq] }).catch(() => undefined);
    await admin.disconnect();
  }
}

export function pauseTable(rows: PauseRow[]): string {
  return [
    "| event | steady p50 ms | steady p99 ms | worst latency after ms | pause ms (worst − steady p50) |",
    "|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.event} | ${r.steadyP50Ms} | ${r.steadyP99Ms} | ${r.worstMs} | ${r.pauseMs} |`),
    "",
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (wantsHelp(process.argv)) {
    process.stdout.write(usageText("bench-rebalance", specs));
  } else {
    const options = parseOptions(process.argv.slice(2), specs);
    const o = {
      rate: options.number("rate") ?? 1000,
      phaseSeconds: options.number("phase-seconds") ?? 15,
      sessionTimeoutMs: options.number("session-timeout-ms") ?? 6000,
    };
    const r = await benchRebalance(o);
    process.stdout.write(pauseTable(r.rows));
    process.stdout.write(`duplicates ${r.duplicates}, missing ${r.missing}\n`);
    const out = join(REPO, "load-tests", "results");
    mkdirSync(out, { recursive: true });
    writeFileSync(
      join(out, `rebalance-${Date.now()}.json`),
      JSON.stringify({ options: o, ...r, node: process.version }, null, 2),
    );
    process.exitCode = r.duplicates === 0 && r.missing === 0 ? 0 : 1;
  }
}
