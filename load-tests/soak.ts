// Memory stability under sustained load: one predictor on the shop pipeline, events at a fixed
// rate for --seconds (10 minutes by default), the worker's RSS (/proc/<pid>/status VmRSS, all
// its threads) sampled every 5 s. Reports RSS after warm-up, at the end, the maximum, and the
// slope of a least-squares line through the second half of the run (MB/min): a leak shows as
// a slope that does not fall with a longer run. Exactly-once is checked on every event.
//   node dist/load-tests/soak.js [--seconds 600] [--rate 10000]
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseOptions, usageText, wantsHelp, type OptionSpecs } from "./lib/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { createKafka } from "../services/common/kafka/client.js";
import { createLogger } from "../services/common/logger.js";
import { PredictorProcess, REPO } from "./lib/predictor-process.js";
import { shopPipeline } from "./lib/shop-pipeline.js";
import { produceEvents } from "./produce-events.js";
import { readPredictions } from "./read-predictions.js";

const specs = {
  seconds: { type: "number", description: "length of the run (default 600)" },
  rate: { type: "number", description: "events/s (default 10000)" },
  "warmup-seconds": { type: "number", description: "RSS baseline taken after this (default 60)" },
} satisfies OptionSpecs;

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const num = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const den = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (wantsHelp(process.argv)) {
    process.stdout.write(usageText("soak", specs));
  } else {
    const options = parseOptions(process.argv.slice(2), specs);
    const seconds = options.number("seconds") ?? 600;
    const rate = options.number("rate") ?? 10_000;
    const warmup = options.number("warmup-seconds") ?? Math.min(60, seconds / 4);
    const kafka = createKafka({
      brokers: endpointsFromEnv().kafkaBrokers,
      clientId: "aimass-soak",
      logger: createLogger({ level: "warn" }),
    });
    const admin = kafka.admin();
    await admin.connect();
    const id = `soak-${Date.now().toString(36)}`;
    const f = { input: `${id}.in`, output: `${id}.out`, dlq: `${id}.dlq`, group: `${id}.group` };
    await admin.createTopics({
      topics: [f.input, f.output, f.dlq].map((topic) => ({ topic, numPartitions: 6, replicationFactor: 1 })),
      waitForLeaders: true,
    });
    const dir = join(REPO, ".stack", "bench");
    mkdirSync(dir, { recursive: true });
    const configPath = join(dir, `${id}.json`);
    writeFileSync(configPath, JSON.stringify(shopPipeline(f)));
    const worker = new PredictorProcess(configPath, "soak");
    const samples: Array<[number, number]> = [];
    let sampler: NodeJS.Timeout | undefined;
    try {
      await worker.waitFor(/"msg":"partitions assigned"/);
      const pid = worker.child.pid as number;
      const t0 = Date.now();
      const sample = () => {
        const s: [number, number] = [(Date.now() - t0) / 1000, rssMb(pid)];
        samples.push(s);
        process.stderr.write(`soak ${s[0].toFixed(0)} s: worker RSS ${s[1].toFixed(1)} MB\n`);
      };
      sample();
      sampler = setInterval(sample, 5000);
      const count = Math.round(rate * seconds);
      const reading = readPredictions([
        "--topic",
        f.output,
        "--dlq-topic",
        f.dlq,
        "--run-id",
        id,
        "--count",
        String(count),
        "--timeout-ms",
        String((seconds + 300) * 1000),
        "--quiet",
      ]);
      const produced = await produceEvents([
        "--topic",
        f.input,
        "--count",
        String(count),
        "--rate",
        String(rate),
        "--batch",
        String(Math.max(1, Math.ceil(rate / 200))),
        "--run-id",
        id,
      ]);
      const r = await reading;
      clearInterval(sampler);
      sample();
      const base = samples.find(([t]) => t >= warmup) ?? samples[0];
      const last = samples[samples.length - 1] as [number, number];
      const half = samples.filter(([t]) => t >= last[0] / 2);
      const result = {
        seconds,
        rate,
        achievedRate: Math.round(produced.count / produced.seconds),
        events: count,
        rssAfterWarmupMb: Math.round((base?.[1] ?? Number.NaN) * 10) / 10,
        rssEndMb: Math.round(last[1] * 10) / 10,
        rssMaxMb: Math.round(Math.max(...samples.map(([, v]) => v)) * 10) / 10,
        secondHalfSlopeMbPerMin: Math.round(slope(half) * 60 * 100) / 100,
        latencyP50Ms: r.latencyMs.p50,
        latencyP99Ms: r.latencyMs.p99,
        duplicates: r.duplicates,
        missing: r.missing,
      };
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      const out = join(REPO, "load-tests", "results");
      mkdirSync(out, { recursive: true });
      writeFileSync(
        join(out, `soak-${Date.now()}.json`),
        JSON.stringify({ ...result, samples, node: process.version }, null, 2),
      );
      process.exitCode = r.duplicates === 0 && r.missing === 0 ? 0 : 1;
    } finally {
      clearInterval(sampler);
      worker.signal("SIGTERM");
      await worker.exited;
      await admin.deleteTopics({ topics: [f.input, f.output, f.dlq] }).catch(() => undefined);
      await admin.disconnect();
    }
  }
}
