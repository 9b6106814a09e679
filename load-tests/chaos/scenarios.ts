// The chaos scenarios, in order of priority. Each names its stack, pipeline and load and
// injects its faults through the context; the engine checks every run the same way.
import { prng } from "../lib/shop-events.js";
import { MODEL, TRANSACTION_TIMEOUT_MS } from "./pipeline.js";
import type { Scenario, ScenarioContext } from "./scenario.js";

/** A fault on a node: `start` (or `resume`) heals it after `downMs`. */
async function nodeFault(
  ctx: ScenarioContext,
  name: string,
  fault: "kill" | "stop" | "pause",
  downMs: number,
): Promise<void> {
  const heal = ctx.fault(`${fault} ${name}`);
  ctx.log(`${fault} ${name}`);
  await ctx.stack.node(name, fault);
  await ctx.sleep(downMs);
  await ctx.stack.node(name, fault === "pause" ? "resume" : "start");
  heal();
  ctx.log(`${name} back`);
}

const brokerKillRestart: Scenario = {
  name: "broker-kill-restart",
  summary: "single broker killed -9 mid-stream, restarted ~5 s later",
  nodes: 1,
  shape: "events",
  workers: 2,
  sizing: { events: 12_000, rate: 400 },
  ci: { events: 6_000, rate: 300 },
  async nemesis(ctx) {
    await ctx.atShare(0.3);
    await nodeFault(ctx, "kafka", "kill", 5_000);
  },
};

/** SIGSTOP the oldest worker for `stopMs`, SIGCONT, and note whether it saw it was replaced. */
async function zombieFault(ctx: ScenarioContext, stopMs: number): Promise<void> {
  const w = ctx.oldestWorker();
  const heal = ctx.fault(`SIGSTOP ${w.name} for ${stopMs} ms`);
  ctx.workers.pause(w);
  await ctx.sleep(stopMs);
  ctx.workers.resume(w);
  heal();
  const deadline = Date.now() + 30_000;
  while (!/fenced|not aware of this member|rebalanc/i.test(w.log) && Date.now() < deadline)
    await ctx.sleep(500);
  ctx.note("zombieNoticed", /fenced|not aware of this member|rebalanc/i.test(w.log));
}

const zombie: Scenario = {
  name: "zombie",
  summary: "one of two workers SIGSTOPped past its session timeout, then SIGCONT",
  nodes: 1,
  shape: "events",
  workers: 2,
  sizing: { events: 12_000, rate: 400 },
  ci: { events: 6_000, rate: 300 },
  async nemesis(ctx) {
    await ctx.atShare(0.25);
    await zombieFault(ctx, ctx.pipeline.sessionTimeoutMs * 2);
  },
};

// Past the transaction timeout the broker aborts the zombie's open transaction and bumps its
// producer epoch on its own, while the partition's new owner has already taken over: the
// zombie wakes up with a producer the coordinator has fenced twice over.
const zombieTxnTimeout: Scenario = {
  name: "zombie-txn-timeout",
  summary: "one of two workers SIGSTOPped past the 30 s transaction timeout, then SIGCONT",
  nodes: 1,
  shape: "events",
  workers: 2,
  sizing: { events: 16_000, rate: 300 },
  async nemesis(ctx) {
    await ctx.atShare(0.2);
    await zombieFault(ctx, TRANSACTION_TIMEOUT_MS + 10_000);
  },
};

const poison: Scenario = {
  name: "poison",
  summary: "1% bad records of every kind (and edge cases) mixed into good events",
  nodes: 1,
  shape: "events",
  workers: 2,
  badShare: 0.01,
  sizing: { events: 10_000, rate: 500 },
  ci: { events: 4_000, rate: 400 },
  nemesis: (ctx) => ctx.loadDone(),
};

// Avro input: block-count bombs in an array and a map, unknown schema ids, truncated and
// non-wire-format values, NaN, Infinity and 1e39 (Avro doubles hold them all) among good
// events. A bomb that decoding did not bound would hang the worker and then every next owner.
const poisonAvro: Scenario = {
  name: "poison-avro",
  summary: "1% bad Avro records of every kind (bombs, unknown schema ids, truncated, NaN) among good ones",
  nodes: 1,
  shape: "events",
  format: "avro",
  workers: 2,
  badShare: 0.01,
  sizing: { events: 10_000, rate: 500 },
  nemesis: (ctx) => ctx.loadDone(),
};

const workerKill: Scenario = {
  name: "worker-kill",
  summary: "a worker killed -9 three times, a replacement started 2 s after each",
  nodes: 1,
  shape: "events",
  workers: 2,
  sizing: { events: 15_000, rate: 400 },
  async nemesis(ctx) {
    for (const share of [0.2, 0.45, 0.7]) {
      await ctx.atShare(share);
      const w = ctx.oldestWorker();
      const heal = ctx.fault(`kill -9 ${w.name}`);
      await ctx.workers.stop(w, "SIGKILL");
      await ctx.sleep(2_000);
      ctx.workers.start();
      heal();
    }
  },
};

const redisKill: Scenario = {
  name: "redis-kill",
  summary: "Redis (the feature store) killed -9 mid-stream, restarted ~5 s later",
  nodes: 1,
  shape: "features",
  workers: 2,
  sizing: { events: 12_000, rate: 400 },
  async nemesis(ctx) {
    await ctx.atShare(0.3);
    await nodeFault(ctx, "redis", "kill", 5_000);
  },
};

const redisPause: Scenario = {
  name: "redis-pause",
  summary: "Redis SIGSTOPped for 30 s, then SIGCONT",
  nodes: 1,
  shape: "features",
  workers: 2,
  sizing: { events: 20_000, rate: 300 },
  async nemesis(ctx) {
    await ctx.atShare(0.2);
    await nodeFault(ctx, "redis", "pause", 30_000);
  },
};

const brokerPause: Scenario = {
  name: "broker-pause",
  summary: "the single broker SIGSTOPped for 35 s (past the 30 s request timeout), then SIGCONT",
  nodes: 1,
  shape: "events",
  workers: 2,
  sizing: { events: 20_000, rate: 300 },
  settleTimeoutMs: 180_000,
  async nemesis(ctx) {
    await ctx.atShare(0.2);
    await nodeFault(ctx, "kafka", "pause", 35_000);
  },
};

const scaleChurn: Scenario = {
  name: "scale-churn",
  summary: "between 1 and 4 workers, a new count every 10 s (SIGTERM to scale in)",
  nodes: 1,
  shape: "events",
  workers: 2,
  sizing: { events: 24_000, rate: 400 },
  async nemesis(ctx) {
    const rand = prng(ctx.seed);
    let count = 2;
    let done = false;
    const loading = ctx.loadDone().then(() => (done = true));
    while (!done && !ctx.signal.aborted) {
      await Promise.race([ctx.sleep(10_000), loading]);
      if (done) break;
      let next = count;
      while (next === count) next = 1 + Math.floor(rand() * 4);
      const heal = ctx.fault(`scale ${count} → ${next}`);
      await ctx.workers.scaleTo(next);
      heal();
      ctx.log(`scaled ${count} → ${next}`);
      count = next;
    }
    await ctx.workers.scaleTo(2);
  },
};

const leaderKill: Scenario = {
  name: "leader-kill",
  summary: "3 nodes: the leader of input partition 0 killed -9, restarted 10 s later",
  nodes: 3,
  shape: "events",
  workers: 2,
  // Bad records put DLQ records in most transactions: output and DLQ partition on two brokers.
  badShare: 0.05,
  sizing: { events: 12_000, rate: 400 },
  async nemesis(ctx) {
    await ctx.atShare(0.3);
    const leader = await ctx.stack.leaderOf(ctx.pipeline.input, 0);
    ctx.note("killed", leader);
    await nodeFault(ctx, leader, "kill", 10_000);
  },
};

const coordinatorKill: Scenario = {
  name: "coordinator-kill",
  summary:
    "3 nodes: the transaction coordinator of partition 0's transactional id killed -9, restarted 10 s later",
  nodes: 3,
  shape: "events",
  workers: 2,
  // Bad records put DLQ records in most transactions: output and DLQ partition on two brokers.
  badShare: 0.05,
  sizing: { events: 12_000, rate: 400 },
  async nemesis(ctx) {
    await ctx.atShare(0.3);
    const id = `${ctx.pipeline.transactionalIdPrefix}.${ctx.pipeline.input}.0`;
    const coordinator = await ctx.stack.coordinatorOf(id);
    ctx.note("killed", coordinator);
    await nodeFault(ctx, coordinator, "kill", 10_000);
  },
};

const rollingRestart: Scenario = {
  name: "rolling-restart",
  summary: "3 nodes: each broker stopped and started in turn under load",
  nodes: 3,
  shape: "events",
  workers: 2,
  // Bad records put DLQ records in most transactions: output and DLQ partition on two brokers.
  badShare: 0.05,
  sizing: { events: 30_000, rate: 300 },
  async nemesis(ctx) {
    await ctx.atShare(0.1);
    for (const broker of ctx.stack.brokers) {
      await nodeFault(ctx, broker, "stop", 3_000);
      await ctx.sleep(5_000);
    }
  },
};

const modelChanges: Scenario = {
  name: "model-changes-during-churn",
  summary: "canary, deploy, shadow and rollback through `aimass models` while scaling 1–3 workers",
  nodes: 1,
  shape: "repository",
  workers: 2,
  sizing: { events: 20_000, rate: 400 },
  async nemesis(ctx) {
    const config = ctx.pipeline.configPath;
    const steps: Array<[number, string[], number]> = [
      [0.15, ["canary", "--version", "2", "--percent", "20"], 3],
      [0.35, ["deploy", "--version", "2"], 1],
      [0.55, ["shadow", "--version", "1"], 3],
      [0.75, ["rollback"], 2],
    ];
    const results: Array<{ step: string; code: number | null }> = [];
    for (const [share, args, workers] of steps) {
      await ctx.atShare(share);
      const heal = ctx.fault(`models ${args.join(" ")}; scale to ${workers}`);
      const scaling = ctx.workers.scaleTo(workers);
      const r = await ctx.cli([
        ...["models", args[0] as string, "--config", config, "--model", MODEL, ...args.slice(1)],
        ...["--reason", "chaos", "--wait-ms", "0"],
      ]);
      await scaling;
      heal();
      results.push({ step: args.join(" "), code: r.code });
      if (r.code !== 0) ctx.log(`aimass models ${args.join(" ")} exited ${r.code}: ${r.output.slice(-500)}`);
    }
    ctx.note("modelCommands", results);
  },
};

const soak: Scenario = {
  name: "soak",
  summary:
    "30 min under load with a rotating nemesis: worker kill, zombie, broker kill, Redis pause, scaling",
  nodes: 1,
  shape: "features",
  workers: 2,
  onDemand: true,
  sizing: { events: 360_000, rate: 200 },
  settleTimeoutMs: 300_000,
  async nemesis(ctx) {
    const faults: Array<() => Promise<void>> = [
      async () => {
        const w = ctx.oldestWorker();
        const heal = ctx.fault(`kill -9 ${w.name}`);
        await ctx.workers.stop(w, "SIGKILL");
        ctx.workers.start();
        heal();
      },
      async () => {
        const w = ctx.oldestWorker();
        const heal = ctx.fault(`SIGSTOP ${w.name}`);
        ctx.workers.pause(w);
        await ctx.sleep(ctx.pipeline.sessionTimeoutMs * 2);
        ctx.workers.resume(w);
        heal();
      },
      () => nodeFault(ctx, "kafka", "kill", 5_000),
      () => nodeFault(ctx, "redis", "pause", 10_000),
      async () => {
        const heal = ctx.fault("scale to 3 and back to 2");
        await ctx.workers.scaleTo(3);
        await ctx.sleep(10_000);
        await ctx.workers.scaleTo(2);
        heal();
      },
    ];
    let done = false;
    const loading = ctx.loadDone().then(() => (done = true));
    for (let i = 0; !done && !ctx.signal.aborted; i++) {
      await Promise.race([ctx.sleep(60_000), loading]);
      if (done) break;
      await (faults[i % faults.length] as () => Promise<void>)();
    }
  },
};

export const SCENARIOS: readonly Scenario[] = [
  brokerKillRestart,
  zombie,
  zombieTxnTimeout,
  poison,
  poisonAvro,
  workerKill,
  redisKill,
  redisPause,
  brokerPause,
  scaleChurn,
  leaderKill,
  coordinatorKill,
  rollingRestart,
  modelChanges,
  soak,
];

export const CI_SUBSET = ["broker-kill-restart", "zombie", "poison"] as const;
