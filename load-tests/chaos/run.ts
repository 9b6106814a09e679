// `npm run chaos [scenario…] [options]`: runs chaos scenarios against stacks of their own
// (one per Kafka node count, on ports apart from the shared stack's), checks every run
// black-box (events in, predictions and DLQ out) and writes results.json and results.md to
// a timestamped folder under --out. A run that fails keeps its evidence there: the ids, the
// workers' logs, the timeline of faults. SIGINT or SIGTERM stops the run in progress, the
// workers and the stack, and still writes what was measured.
//   npm run chaos -- --ci
//   npm run chaos -- broker-kill-restart --runs 3
//   npm run chaos -- zombie poison --events 20000 --nodes 3
import { appendFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { isAimassError } from "../../services/common/errors.js";
import { createKafka } from "../../services/common/kafka/client.js";
import { createLogger } from "../../services/common/logger.js";
import { formatOptions, wantsHelp } from "../lib/args.js";
import { REPO } from "../lib/predictor-process.js";
import { runScenario } from "./engine.js";
import type { RunResult } from "./evaluate.js";
import { planFrom, specs, type Plan, type PlannedScenario } from "./plan.js";
import { writeReport, type SessionReport } from "./report.js";
import { CI_SUBSET, SCENARIOS } from "./scenarios.js";
import { ChaosStack, portsFrom, type StackOptions } from "./stack.js";

const say = (line: string) =>
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} chaos ${line}\n`);

function helpText(): string {
  const names = SCENARIOS.map(
    (s) => `  ${s.name.padEnd(28)} ${s.summary}${s.onDemand ? " (on demand)" : ""}`,
  );
  return [
    "Usage: npm run chaos -- [scenario…] [options]",
    "",
    "Scenarios (default: all but the on-demand ones):",
    ...names,
    "",
    "Options:",
    formatOptions(specs),
    "",
    `--ci runs ${CI_SUBSET.join(", ")} at their short CI sizes.`,
    "",
  ].join("\n");
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
}

async function runGroup(
  plan: Plan,
  group: Plan["groups"][number],
  sessionDir: string,
  signal: AbortSignal,
  report: SessionReport,
  save: () => void,
): Promise<void> {
  const stackOptions: StackOptions = {
    dir: resolve(plan.stackDir ?? join(REPO, ".stack", "chaos"), `n${group.nodes}`),
    nodes: group.nodes,
    ports: portsFrom(plan.portBase),
    logFile: join(sessionDir, `stack-n${group.nodes}.log`),
  };
  say(`starting a ${group.nodes}-node stack in ${stackOptions.dir}`);
  let stack: ChaosStack;
  try {
    stack = await ChaosStack.up(stackOptions);
  } catch (err) {
    await ChaosStack.downQuiet(stackOptions);
    for (const p of group.scenarios) report.skipped.push({ scenario: p.scenario.name, reason: String(err) });
    say(`no ${group.nodes}-node stack: ${String(err)}`);
    return;
  }
  const harnessLog = join(sessionDir, `harness-n${group.nodes}.log`);
  const kafka = createKafka({
    brokers: stack.endpoints.kafkaBrokers,
    clientId: "aimass-chaos",
    logger: createLogger({ level: "warn", write: (line) => appendFileSync(harnessLog, `${line}\n`) }),
    extra: { retry: { initialRetryTime: 200, retries: 30, maxRetryTime: 2_000 } },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    for (const p of group.scenarios) {
      for (let run = 1; run <= plan.runs && !signal.aborted; run++) {
        report.results.push(await oneRun(p, run, plan, stack, kafka, admin, sessionDir, signal));
        save();
        await stack.heal().catch((err: unknown) => say(`healing the stack failed: ${String(err)}`));
      }
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
    if (plan.keepStack && !signal.aborted && group === plan.groups[plan.groups.length - 1]) {
      await stack.resumeAll();
      const env = Object.entries(ChaosStack.scriptEnv(stackOptions)).map(([k, v]) => `${k}=${v}`);
      say(`left the stack running (${stack.endpoints.kafkaBrokers.join(",")}); stop it with:`);
      say(`  ${env.join(" ")} bash scripts/stack/down.sh`);
    } else {
      say(`stopping the ${group.nodes}-node stack`);
      await stack.down().catch((err: unknown) => say(`down.sh failed: ${String(err)}`));
    }
  }
}

async function oneRun(
  p: PlannedScenario,
  run: number,
  plan: Plan,
  stack: ChaosStack,
  kafka: ReturnType<typeof createKafka>,
  admin: ReturnType<ReturnType<typeof createKafka>["admin"]>,
  sessionDir: string,
  signal: AbortSignal,
): Promise<RunResult> {
  const dir = join(sessionDir, `${p.scenario.name}-r${run}`);
  say(`${p.scenario.name} #${run}: ${p.scenario.summary}`);
  const started = Date.now();
  try {
    const r = await runScenario({
      scenario: p.scenario,
      run,
      sizing: p.sizing,
      nodes: p.nodes,
      seed: plan.seed + run - 1,
      stack,
      kafka,
      admin,
      dir,
      signal,
      log: say,
    });
    say(
      `${p.scenario.name} #${run}: ${r.ok ? "pass" : "FAIL"}: ${r.events} in, ${r.predictions} predictions, ` +
        `${r.dlq} DLQ, ${r.lost} lost, ${r.duplicated} duplicated, ${r.orderBreaks} order breaks, offsets ` +
        `${r.offsets.ok ? "ok" : "NOT ok"}, recovery ${r.firstOutputMs ?? "–"} / ${r.lagZeroMs ?? "–"} ms`,
    );
    return r;
  } catch (err) {
    say(`${p.scenario.name} #${run}: ERROR ${String(err)}`);
    return errorResult(p, run, dir, (Date.now() - started) / 1000, err);
  }
}

function errorResult(
  p: PlannedScenario,
  run: number,
  dir: string,
  durationS: number,
  err: unknown,
): RunResult {
  return {
    scenario: p.scenario.name,
    run,
    ok: false,
    error: err instanceof Error ? err.message : String(err),
    sizing: p.sizing,
    durationS: Math.round(durationS),
    events: 0,
    predictions: 0,
    dlq: 0,
    lost: 0,
    duplicated: 0,
    unexpected: 0,
    misrouted: 0,
    idMismatch: 0,
    orderBreaks: 0,
    offsets: { ok: false, uncommitted: [], hanging: [] },
    recovery: [],
    firstOutputMs: null,
    lagZeroMs: null,
    latencyMs: null,
    sendFailures: 0,
    ackedNotInInput: 0,
    crashes: [],
    byKind: {},
    modelVersions: {},
    notes: {},
    samples: {},
    dir,
  };
}

async function main(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(helpText());
    return 0;
  }
  let plan: Plan;
  try {
    plan = planFrom(argv);
  } catch (err) {
    if (!isAimassError(err, "USAGE")) throw err;
    process.stderr.write(`chaos: ${err.message} (see --help)\n`);
    return 2;
  }
  if (plan.list) {
    for (const g of plan.groups)
      for (const p of g.scenarios)
        process.stdout.write(
          `${p.scenario.name}\t${p.nodes} node(s)\t${p.sizing.events} @ ${p.sizing.rate}/s\n`,
        );
    return 0;
  }
  const sessionDir = join(resolve(plan.out ?? join(REPO, "load-tests", "results", "chaos")), stamp());
  mkdirSync(sessionDir, { recursive: true });
  const stop = new AbortController();
  const interrupt = (sig: string) => {
    if (stop.signal.aborted) return;
    say(`${sig}: stopping the run in progress, the workers and the stack`);
    stop.abort();
  };
  process.on("SIGINT", () => interrupt("SIGINT"));
  process.on("SIGTERM", () => interrupt("SIGTERM"));
  const report: SessionReport = {
    startedAt: new Date().toISOString(),
    finishedAt: "",
    command: `chaos ${argv.join(" ")}`.trim(),
    node: process.version,
    results: [],
    skipped: [],
  };
  const save = () => {
    report.finishedAt = new Date().toISOString();
    return writeReport(sessionDir, report);
  };
  for (const group of plan.groups) {
    if (stop.signal.aborted) break;
    await runGroup(plan, group, sessionDir, stop.signal, report, save);
  }
  process.stdout.write(save());
  say(`results in ${sessionDir}`);
  const failed = report.results.some((r) => !r.ok) || report.skipped.length > 0;
  return stop.signal.aborted ? 130 : failed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
// kafkajs and child processes can hold handles; the report is written, so do not hang on them.
setTimeout(() => process.exit(), 5_000).unref();
