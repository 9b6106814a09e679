// One run of one scenario, black-box: create the pipeline's topics and config, start the
// workers, send the planned records at a steady rate while the scenario's nemesis injects and
// heals faults, wait for the outputs, read everything back (input, predictions, DLQ) and run
// the four checks. Workers, readers and the load always stop, also on failure and interrupt.
import { spawn } from "node:child_process";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Admin, Kafka } from "kafkajs";
import { sleep } from "../../services/common/lifecycle.js";
import { REPO } from "../lib/predictor-process.js";
import { avroRecords } from "./avro.js";
import { AVRO_PLAN_KINDS, eventPlan } from "./events.js";
import { LoadGenerator } from "./load.js";
import { createPipeline, MAX_RECORD_BYTES, PARTITIONS, type RunPipeline } from "./pipeline.js";
import { TopicReader } from "./reader.js";
import { evaluate, type RunResult } from "./evaluate.js";
import { readInputs, readOffsets, toOutputs } from "./readback.js";
import type { FaultWindow } from "./checks.js";
import type { Scenario, ScenarioContext, Sizing } from "./scenario.js";
import type { ChaosStack } from "./stack.js";
import { WorkerPool } from "./workers.js";

export interface RunOptions {
  scenario: Scenario;
  run: number;
  sizing: Sizing;
  /** Kafka nodes of the stack (topics are replicated on three). */
  nodes: 1 | 3;
  seed: number;
  stack: ChaosStack;
  kafka: Kafka;
  admin: Admin;
  dir: string;
  signal: AbortSignal;
  log: (line: string) => void;
}

export async function runScenario(o: RunOptions): Promise<RunResult> {
  const { scenario: s, stack, kafka, admin } = o;
  const startedAt = Date.now();
  const id = `chaos-${s.name}-${startedAt.toString(36)}-r${o.run}`;
  mkdirSync(o.dir, { recursive: true });
  const log = (line: string) => {
    o.log(`[${s.name} #${o.run}] ${line}`);
    appendFileSync(join(o.dir, "timeline.log"), `${new Date().toISOString()} ${line}\n`);
  };
  const pipeline = await createPipeline(admin, {
    id,
    shape: s.shape,
    nodes: o.nodes,
    dir: o.dir,
    ...(s.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: s.sessionTimeoutMs }),
    ...(s.format === undefined ? {} : { format: s.format }),
  });
  const plan = eventPlan({
    runId: id,
    seed: o.seed,
    count: o.sizing.events,
    users: 500,
    badShare: s.badShare ?? 0,
    maxRecordBytes: MAX_RECORD_BYTES,
    ...(s.format === "avro" ? { kinds: AVRO_PLAN_KINDS } : {}),
  });
  const records =
    s.format === "avro"
      ? await avroRecords(plan, { registryUrl: stack.endpoints.schemaRegistryUrl, topic: pipeline.input })
      : plan;
  const windows: FaultWindow[] = [];
  const notes: Record<string, unknown> = {};
  const follower = new TopicReader({ kafka, groupId: `${id}.follower`, topics: pipeline.transactional });
  const workers = new WorkerPool({
    configPath: pipeline.configPath,
    env: stack.clientEnv,
    logDir: join(o.dir, "workers"),
    restartDelayMs: 1_000,
    log,
  });
  const stopLoad = new AbortController();
  const onAbort = () => stopLoad.abort();
  o.signal.addEventListener("abort", onAbort, { once: true });
  const load = new LoadGenerator({
    kafka,
    topic: pipeline.input,
    partitions: PARTITIONS,
    records,
    count: o.sizing.events,
    rate: o.sizing.rate,
    signal: stopLoad.signal,
  });
  let loading: Promise<void> = Promise.resolve();
  try {
    await follower.start();
    log(`starting ${s.workers} worker(s) on ${pipeline.input}`);
    await workers.startJoined(s.workers);
    log(`load: ${o.sizing.events} records at ${o.sizing.rate}/s`);
    loading = load.run();
    const ctx = context(o, pipeline, workers, load, loading, windows, notes, log);
    await Promise.all([loading, s.nemesis(ctx)]);
    log(
      `load done: ${load.sent} sent, ${load.ackedAt.size} acknowledged, ${load.failures.length} failed sends`,
    );
    if (o.signal.aborted) throw new Error("interrupted");

    const inputs = await readInputs(kafka, admin, pipeline.input, `${id}.input-reader`);
    const settleMs = s.settleTimeoutMs ?? 120_000;
    const settled = await follower.until(() => follower.size >= inputs.length, settleMs);
    await follower.quiet(5_000, 30_000);
    log(
      `outputs: ${follower.size} for ${inputs.length} inputs${settled ? "" : ` (not all within ${settleMs} ms)`}`,
    );
    const offsets = await readOffsets(kafka, admin, pipeline, follower, `${id}.hw-reader`);
    const records = follower.all();
    notes.readerRestarts = follower.restarts;
    notes.dlqRecordsCut = records.filter(
      (r) => r.topic === pipeline.dlq && r.headers["aimass.dlq.truncated"] !== undefined,
    ).length;
    return evaluate({
      scenario: s.name,
      run: o.run,
      sizing: o.sizing,
      dir: o.dir,
      durationS: (Date.now() - startedAt) / 1000,
      inputs,
      outputs: toOutputs(records, pipeline, inputs),
      predictionValues: records.filter((r) => r.topic === pipeline.output).map((r) => r.value),
      offsets,
      windows,
      ackedAt: load.ackedAt,
      sendFailures: load.failures.length,
      crashes: workers.crashes,
      notes,
    });
  } finally {
    stopLoad.abort();
    o.signal.removeEventListener("abort", onAbort);
    await loading.catch(() => undefined);
    await workers.close(20_000);
    await follower.stop();
    writeFileSync(join(o.dir, "windows.json"), JSON.stringify({ windows, notes }, null, 2));
  }
}

function context(
  o: RunOptions,
  pipeline: RunPipeline,
  workers: WorkerPool,
  load: LoadGenerator,
  loading: Promise<void>,
  windows: FaultWindow[],
  notes: Record<string, unknown>,
  log: (line: string) => void,
): ScenarioContext {
  return {
    stack: o.stack,
    workers,
    pipeline,
    sizing: o.sizing,
    seed: o.seed,
    signal: o.signal,
    atShare: (share) => load.sentAtLeast(Math.floor(o.sizing.events * share)),
    loadDone: () => loading.catch(() => undefined),
    sleep: (ms) => sleep(ms, o.signal),
    fault(label) {
      const w: FaultWindow = { label, faultAt: Date.now(), healAt: Number.NaN };
      log(`fault: ${label}`);
      return () => {
        w.healAt = Date.now();
        windows.push(w);
        log(`healed: ${label} after ${w.healAt - w.faultAt} ms`);
      };
    },
    log,
    cli: (args) => runCli(args, o.stack.clientEnv),
    note: (key, value) => (notes[key] = value),
    oldestWorker() {
      const w = workers.live[0];
      if (!w) throw new Error("no worker is running");
      return w;
    },
  };
}

function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO, "bin/aimass.js"), ...args], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (b: Buffer) => (output += b.toString()));
    child.stderr.on("data", (b: Buffer) => (output += b.toString()));
    child.once("exit", (code) => resolve({ code, output }));
  });
}
