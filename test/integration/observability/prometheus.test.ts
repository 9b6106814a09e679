// The dashboards and alerts tell the truth: a real Prometheus scrapes two real predictor
// processes under load (poison records included, so DLQ series exist) with the alert rules
// loaded, and every PromQL expression of every dashboard panel, dashboard variable and alert
// rule is evaluated against it. Each must parse and return data; for an alert, the left-hand
// side of each threshold comparison must return data (the alert itself is rightly empty).
// A few values whose truth is known from the setup (2 workers ready, 6 partitions owned, each
// with a stall gauge) are checked too.
//
// Needs the Debian package `prometheus` (/usr/bin/prometheus, /usr/bin/promtool); fails, does
// not skip, when they are missing. PROMETHEUS_BIN / PROMTOOL_BIN override the paths.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { connectedAdmin, defer, tempTopic, testKafka, uniqueName } from "../../helpers/stack.js";
import { shopPipeline, writeConfig, type TopicsFixture } from "../../helpers/predictor-process.js";
import { REPO } from "../../../load-tests/lib/predictor-process.js";
import { produceEvents } from "../../../load-tests/produce-events.js";
import { produceFeatures } from "../../../load-tests/produce-features.js";

const PROMETHEUS = process.env.PROMETHEUS_BIN ?? "/usr/bin/prometheus";
const PROMTOOL = process.env.PROMTOOL_BIN ?? "/usr/bin/promtool";
const DASHBOARDS = join(REPO, "k8s/monitoring/dashboards");
const RULES = join(REPO, "k8s/monitoring/alerts/aimass-rules.yaml");
const FEATURE_DASHBOARD = "aimass-feature-store.json";
const JOINED = /"msg":"partitions assigned"[^\n]*"partitions":\[\d/;
/** Grafana's $__rate_interval with a 1 s scrape interval would be 4 s; 15 s is what users see. */
const GRAFANA_BUILTINS: Record<string, string> = { __rate_interval: "15s", __interval: "5s", __range: "1m" };
const LOAD_RATE = 400;
const LOAD_SECONDS = 20;
/** How long expressions may take to return data once the load runs (rate() needs 2 scrapes). */
const EVALUATE_WITHIN_MS = 35_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ expressions

/** One query to run, where it comes from, and what counts as passing. */
interface Check {
  source: string;
  expr: string;
  /** data: a non-empty result; parse: status success, empty allowed; value: a predicate on it. */
  want: "data" | "parse" | { describe: string; ok: (values: number[]) => boolean };
  /** From the feature-store dashboard: evaluated once a process exports one of its metrics. */
  feature: boolean;
}

interface Target {
  expr?: string;
  refId?: string;
}
interface Panel {
  id?: number;
  title?: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
}
interface Dashboard {
  title?: string;
  panels?: Panel[];
  templating?: { list?: Variable[] };
}

/** Grafana variables → values: builtins fixed, every dashboard variable "All" (`.*`). */
function substitute(expr: string, variables: string[]): string {
  let out = expr;
  const names = [...Object.keys(GRAFANA_BUILTINS), ...variables].sort((a, b) => b.length - a.length);
  for (const name of names) {
    const value = GRAFANA_BUILTINS[name] ?? ".*";
    out = out.replace(new RegExp(`\\$\\{${name}(?::\\w+)?\\}|\\$${name}(?!\\w)`, "g"), value);
  }
  return out;
}

function dashboardChecks(): Check[] {
  const checks: Check[] = [];
  const files = readdirSync(DASHBOARDS)
    .filter((f) => f.endsWith(".json"))
    .sort();
  assert.ok(files.length >= 4, `dashboards in ${DASHBOARDS}: ${files.join(", ")}`);
  for (const file of files) {
    const d = JSON.parse(readFileSync(join(DASHBOARDS, file), "utf8")) as Dashboard;
    const variables = (d.templating?.list ?? []).map((v) => v.name).filter((n) => n !== "datasource");
    const feature = file === FEATURE_DASHBOARD;
    const walk = (panels: Panel[] = []) => {
      for (const p of panels) {
        for (const t of p.targets ?? []) {
          if (!t.expr) continue;
          const source = `${file} panel "${p.title ?? p.id}" ${t.refId ?? ""}`.trim();
          checks.push({ source, expr: substitute(t.expr, variables), want: "data", feature });
        }
        walk(p.panels);
      }
    };
    walk(d.panels);
    for (const v of d.templating?.list ?? []) {
      if (v.type !== "query") continue;
      const q = (typeof v.query === "string" ? v.query : v.query?.query) ?? "";
      // label_values(<selector>, <label>) lists the label's values among the selector's series.
      const m = /^label_values\(\s*(.+)\s*,\s*(\w+)\s*\)$/s.exec(q);
      if (!m) continue;
      const expr = `count by (${m[2]}) (${substitute(m[1] ?? "", variables)})`;
      checks.push({ source: `${file} variable $${v.name}`, expr, want: "data", feature });
    }
  }
  return checks;
}

/** Binary operators at the top level of an expression (outside brackets and strings). */
function topLevelOperators(expr: string): Array<{ index: number; op: string }> {
  const ops: Array<{ index: number; op: string }> = [];
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i] ?? "";
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'" || c === "`") quote = c;
    else if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) depth--;
    else if (depth === 0) {
      const two = expr.slice(i, i + 2);
      if (["==", "!=", ">=", "<="].includes(two)) {
        ops.push({ index: i, op: two });
        i++;
      } else if (c === ">" || c === "<") {
        ops.push({ index: i, op: c });
      } else if (i === 0 || /[\s)]/.test(expr[i - 1] ?? "")) {
        const m = /^(and|or|unless)(?![\w])/.exec(expr.slice(i));
        if (m?.[1]) {
          ops.push({ index: i, op: m[1] });
          i += m[1].length - 1;
        }
      }
    }
  }
  return ops;
}

/** `( x )` → `x` when the parentheses enclose the whole expression. */
function unwrap(expr: string): string {
  let e = expr.trim();
  for (;;) {
    if (!e.startsWith("(") || !e.endsWith(")")) return e;
    let depth = 0;
    for (let i = 0; i < e.length - 1; i++) {
      if (e[i] === "(") depth++;
      else if (e[i] === ")") depth--;
      if (depth === 0) return e; // the first "(" closes before the end: "(a) + (b)"
    }
    e = e.slice(1, -1).trim();
  }
}

/**
 * What of an alert expression must return data: split at top-level `and`/`or`/`unless`; of
 * each operand, the left-hand side of its last top-level comparison (the thresholded value),
 * or for `absent(x)` — empty exactly when things are fine — its argument `x`.
 */
function alertParts(expr: string): Array<{ expr: string; how: string }> {
  const e = unwrap(expr);
  const setOps = topLevelOperators(e).filter((o) => ["and", "or", "unless"].includes(o.op));
  const operands: string[] = [];
  let start = 0;
  for (const o of setOps) {
    operands.push(e.slice(start, o.index));
    start = o.index + o.op.length;
  }
  operands.push(e.slice(start));
  return operands.map((raw) => {
    // Vector matching after a set operator belongs to it, not to the operand.
    const operand = unwrap(raw.replace(/^\s*(on|ignoring)\s*\([^)]*\)/, ""));
    const absent = /^absent\s*\(([\s\S]*)\)$/.exec(operand);
    if (absent && unwrap(operand) === operand && topLevelOperators(operand).length === 0)
      return { expr: (absent[1] ?? "").trim(), how: "argument of absent()" };
    const cmp = topLevelOperators(operand)
      .filter((o) => !["and", "or", "unless"].includes(o.op))
      .at(-1);
    return cmp
      ? { expr: operand.slice(0, cmp.index).trim(), how: `left of ${cmp.op}` }
      : { expr: operand, how: "operand" };
  });
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}

function ruleChecks(): { checks: Check[]; rules: Rule[] } {
  const doc = parseYaml(readFileSync(RULES, "utf8")) as { groups: Array<{ rules: Rule[] }> };
  const rules = doc.groups.flatMap((g) => g.rules);
  const checks: Check[] = [];
  for (const r of rules) {
    const name = r.alert ?? r.record ?? "?";
    if (r.record) {
      checks.push({ source: `rule ${name}`, expr: r.expr, want: "data", feature: false });
      continue;
    }
    checks.push({ source: `alert ${name} (full)`, expr: r.expr, want: "parse", feature: false });
    for (const part of alertParts(r.expr)) {
      checks.push({ source: `alert ${name} (${part.how})`, expr: part.expr, want: "data", feature: false });
    }
  }
  return { checks, rules };
}

/** Values known from the setup: what the overview must show for 2 workers on 6 partitions. */
function truthChecks(): Check[] {
  const value = (describe: string, ok: (v: number[]) => boolean) => ({ describe, ok });
  const one = (expr: string, describe: string, ok: (v: number) => boolean): Check => ({
    source: `truth: ${describe}`,
    expr,
    want: value(describe, (v) => v.length === 1 && ok(v[0] ?? NaN)),
    feature: false,
  });
  return [
    one("sum(aimass_ready)", "2 workers ready", (v) => v === 2),
    one("sum(aimass_assigned_partitions)", "6 partitions assigned in total", (v) => v === 6),
    one("count(aimass_model_info)", "1 model on each of 2 workers", (v) => v === 2),
    one("count(aimass_partition_stall_seconds)", "a stall gauge for each of 6 partitions", (v) => v === 6),
    one("sum(rate(aimass_events_consumed_total[15s]))", "events flowing in", (v) => v > 0),
    one("sum(rate(aimass_predictions_produced_total[15s]))", "predictions flowing out", (v) => v > 0),
    one('sum(aimass_dlq_records_total{stage="decode"})', "poison records DLQ'd at decode", (v) => v >= 1),
  ];
}

// ------------------------------------------------------------------ Prometheus

interface QueryResult {
  status: string;
  error?: string;
  errorType?: string;
  data?: { resultType: string; result: unknown };
}

async function query(base: string, expr: string): Promise<QueryResult> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`, {
    signal: AbortSignal.timeout(10_000),
  });
  return (await res.json()) as QueryResult;
}

/** Sample values of an instant-query result (vector or scalar); [] when empty. */
function values(r: QueryResult): number[] {
  const result = r.data?.result;
  if (r.data?.resultType === "scalar") return [Number((result as [number, string])[1])];
  if (!Array.isArray(result)) return [];
  return result.map((s) => {
    const sample = s as { value?: [number, string]; values?: Array<[number, string]> };
    return Number(sample.value?.[1] ?? sample.values?.at(-1)?.[1]);
  });
}

/** null when the check passes, else why not. A parse error is final (`final: true`). */
async function evaluate(base: string, c: Check): Promise<{ problem: string | null; final: boolean }> {
  let r: QueryResult;
  try {
    r = await query(base, c.expr);
  } catch (err) {
    return { problem: `query failed: ${String(err)}`, final: false };
  }
  if (r.status !== "success") return { problem: `${r.errorType ?? "error"}: ${r.error ?? "?"}`, final: true };
  if (c.want === "parse") return { problem: null, final: true };
  const v = values(r);
  if (c.want === "data") return { problem: v.length > 0 ? null : "empty result", final: false };
  return {
    problem: c.want.ok(v) ? null : `expected ${c.want.describe}, got [${v.join(", ")}]`,
    final: false,
  };
}

const metricNames = (expr: string) => [...new Set(expr.match(/aimass_[a-z0-9_]+/g) ?? [])];

async function exportedNames(base: string): Promise<Set<string>> {
  const res = await fetch(`${base}/api/v1/label/__name__/values`, { signal: AbortSignal.timeout(10_000) });
  return new Set(((await res.json()) as { data?: string[] }).data ?? []);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "0.0.0.0", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A child process whose output is kept, killed -9 when the test ends. */
function startProcess(t: TestContext, name: string, command: string, args: string[]) {
  const child: ChildProcess = spawn(command, args, {
    cwd: REPO,
    env: { ...process.env, AIMASS_LOG_LEVEL: process.env.AIMASS_TEST_WORKER_LOG_LEVEL ?? "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const collect = (b: Buffer) => {
    output += b.toString();
    if (output.length > 2_000_000) output = output.slice(-1_000_000);
    if (process.env.AIMASS_TEST_ECHO_WORKERS) process.stderr.write(`[${name}] ${b.toString()}`);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  defer(t, async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  const log = () => output;
  return {
    log,
    async waitFor(ready: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!(await ready())) {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(
            `${name} exited early (${child.exitCode ?? child.signalCode}):\n${log().slice(-3000)}`,
          );
        if (Date.now() > deadline)
          throw new Error(`${name}: not ${what} within ${timeoutMs} ms:\n${log().slice(-3000)}`);
        await sleep(200);
      }
    },
  };
}

/**
 * A predictor worker (`aimass predict --metrics-port <port>`). PredictorProcess cannot pass
 * extra arguments yet, hence this.
 */
function startWorker(t: TestContext, configPath: string, name: string, port: number) {
  const args = [
    join(REPO, "bin/aimass.js"),
    "predict",
    "--config",
    configPath,
    "--metrics-port",
    String(port),
  ];
  const p = startProcess(t, name, process.execPath, args);
  return { ...p, joined: () => p.waitFor(() => JOINED.test(p.log()), "joined with partitions", 60_000) };
}

function requireBinaries(): void {
  const missing = [PROMETHEUS, PROMTOOL].filter((b) => !existsSync(b));
  assert.deepEqual(
    missing,
    [],
    `missing ${missing.join(" and ")}: install the Debian package "prometheus" ` +
      "(apt-get install -y --no-install-recommends prometheus), or set PROMETHEUS_BIN/PROMTOOL_BIN",
  );
}

// ------------------------------------------------------------------ the test

test("promtool accepts the alert rules", () => {
  requireBinaries();
  const r = spawnSync(PROMTOOL, ["check", "rules", RULES], { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 0, `promtool check rules failed:\n${r.stdout}\n${r.stderr}`);
});

/**
 * Synthetic series for `promtool test rules`: job "bad" breaks every alert's condition for
 * long enough, job "good" stays just inside every threshold.
 */
function alertScenario(): { series: Array<{ series: string; values: string }>; firing: string[] } {
  const s = (series: string, values: string) => ({ series, values });
  const hist = (job: string, fastBucketValues: string) =>
    ["0.25", "0.5", "1", "+Inf"].map((le) =>
      s(
        `aimass_end_to_end_latency_seconds_bucket{job="${job}",instance="a",le="${le}"}`,
        le === "0.25" || le === "0.5" ? fastBucketValues : "0+100x40",
      ),
    );
  return {
    series: [
      // Lag: growing above the floor vs. high but flat vs. growing below the floor.
      s('aimass_consumer_lag_records{job="bad",instance="a",topic="in-bad",partition="0"}', "2000+100x40"),
      s('aimass_consumer_lag_records{job="good",instance="a",topic="in-flat",partition="0"}', "5000x40"),
      s('aimass_consumer_lag_records{job="good",instance="a",topic="in-small",partition="0"}', "100+10x40"),
      // DLQ: 2 % vs 0.5 % of input.
      s('aimass_events_consumed_total{job="bad",instance="a",topic="in"}', "0+1000x40"),
      s('aimass_dlq_records_total{job="bad",instance="a",stage="decode"}', "0+20x40"),
      s('aimass_events_consumed_total{job="good",instance="a",topic="in"}', "0+1000x40"),
      s('aimass_dlq_records_total{job="good",instance="a",stage="decode"}', "0+5x40"),
      // End to end: every record between 0.5 and 1 s vs. all under 0.25 s.
      ...hist("bad", "0x40"),
      ...hist("good", "0+100x40"),
      // Ready: "bad" loses its only worker after 10 minutes.
      s('aimass_ready{job="bad",instance="a"}', "1x10 0x30"),
      s('aimass_ready{job="good",instance="a"}', "1x40"),
      // Aborts: 0.2/s vs 0.05/s.
      s('aimass_transaction_aborts_total{job="bad",instance="a"}', "0+12x40"),
      s('aimass_transaction_aborts_total{job="good",instance="a"}', "0+3x40"),
      // Fenced once at minute 27 vs never.
      s('aimass_producer_fenced_total{job="bad",instance="a"}', "0x26 1x13"),
      s('aimass_producer_fenced_total{job="good",instance="a"}', "0x40"),
      // Event loop: 0.2 s vs 0.05 s.
      s('aimass_nodejs_eventloop_lag_p99_seconds{job="bad",instance="a"}', "0.2x40"),
      s('aimass_nodejs_eventloop_lag_p99_seconds{job="good",instance="a"}', "0.05x40"),
      // Stall: no commit for 30 s more every minute (over 120 s from minute 5) vs 110 s at most.
      s('aimass_partition_stall_seconds{job="bad",instance="a",topic="in",partition="0"}', "0+30x40"),
      s('aimass_partition_stall_seconds{job="good",instance="a",topic="in",partition="0"}', "110x40"),
    ],
    firing: [
      'ALERTS{alertname="AimassConsumerLagGrowing",alertstate="firing",severity="warning",topic="in-bad"}',
      'ALERTS{alertname="AimassDLQRateHigh",alertstate="firing",severity="warning",job="bad"}',
      'ALERTS{alertname="AimassEndToEndP99OverSLO",alertstate="firing",severity="warning",slo_seconds="0.5",job="bad"}',
      'ALERTS{alertname="AimassNoReadyWorker",alertstate="firing",severity="critical",job="bad"}',
      'ALERTS{alertname="AimassTransactionAborts",alertstate="firing",severity="warning",job="bad",instance="a"}',
      'ALERTS{alertname="AimassProducerFenced",alertstate="firing",severity="info",job="bad",instance="a"}',
      'ALERTS{alertname="AimassEventLoopLag",alertstate="firing",severity="warning",job="bad",instance="a"}',
      'ALERTS{alertname="AimassPartitionStalled",alertstate="firing",severity="warning",job="bad",instance="a",topic="in",partition="0"}',
    ],
  };
}

test("promtool: each alert fires when its condition holds, and only then", (t) => {
  requireBinaries();
  const dir = mkdtempSync(join(tmpdir(), "aimass-promtool-"));
  defer(t, () => rmSync(dir, { recursive: true, force: true }));
  const { series, firing } = alertScenario();
  const firingAt = (minutes: string, labels: string[]) => ({
    expr: 'ALERTS{alertstate="firing"}',
    eval_time: minutes,
    exp_samples: labels.map((l) => ({ labels: l, value: 1 })),
  });
  const tests = {
    rule_files: [RULES],
    evaluation_interval: "1m",
    tests: [
      // At 30 minutes every "bad" condition has held for longer than its `for`.
      {
        name: "bad vs good",
        interval: "1m",
        input_series: series,
        promql_expr_test: [firingAt("30m", firing)],
      },
      // Before the `for` durations have passed nothing fires (the fencing comes later).
      { name: "not yet", interval: "1m", input_series: series, promql_expr_test: [firingAt("4m", [])] },
      // No worker exposes aimass_ready at all.
      {
        name: "no worker",
        interval: "1m",
        input_series: [{ series: 'up{job="other"}', values: "1x10" }],
        promql_expr_test: [
          firingAt("1m", []),
          firingAt("5m", ['ALERTS{alertname="AimassNoReadyWorker",alertstate="firing",severity="critical"}']),
        ],
      },
    ],
  };
  const file = join(dir, "aimass-rules.test.yaml");
  writeFileSync(file, JSON.stringify(tests, null, 2));
  const r = spawnSync(PROMTOOL, ["test", "rules", file], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, `promtool test rules failed:\n${r.stdout}\n${r.stderr}`);
});

test(
  "every dashboard and alert expression returns data from Prometheus scraping predictors under load",
  { timeout: 150_000 },
  async (t) => {
    requireBinaries();
    const started = Date.now();
    const dashboards = dashboardChecks();
    const { checks: alerts, rules } = ruleChecks();
    const checks = [...dashboards, ...alerts, ...truthChecks()];

    const admin = await connectedAdmin(t);
    const f: TopicsFixture = {
      input: await tempTopic(t, admin, "obs-in", 6),
      output: await tempTopic(t, admin, "obs-out", 6),
      dlq: await tempTopic(t, admin, "obs-dlq", 6),
      group: uniqueName("obs-group"),
    };
    // The shop example's model version 3 reads online features: the predictors look them up
    // and a feature-writer keeps them fresh, so the feature-store dashboard has data too.
    const updates = await tempTopic(t, admin, "obs-features", 3);
    const featuresDlq = await tempTopic(t, admin, "obs-features-dlq", 3);
    const keyPrefix = uniqueName("aimass-obs");
    const example = parseYaml(readFileSync(join(REPO, "examples/shop/pipeline.yaml"), "utf8")) as {
      features: Record<string, unknown>;
    };
    const config = writeConfig(t, {
      ...shopPipeline(f),
      modelRepository: join(REPO, "models"),
      models: [{ name: "shop-propensity", version: "3" }],
      routing: { field: "type", default: "shop-propensity" },
      control: { topic: `${f.group}.control`, auditTopic: `${f.group}.control.audit` },
      features: {
        ...example.features,
        keyPrefix,
        updates: { topic: updates, partitions: 3 },
        dlq: { topic: featuresDlq, partitions: 3 },
      },
    });
    const [portA, portB, portW, portProm] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];

    const dir = mkdtempSync(join(tmpdir(), "aimass-prometheus-"));
    defer(t, () => rmSync(dir, { recursive: true, force: true }));
    const promConfig = {
      global: { scrape_interval: "1s", scrape_timeout: "1s", evaluation_interval: "1s" },
      rule_files: [RULES],
      scrape_configs: [
        {
          job_name: "aimass",
          static_configs: [{ targets: [`127.0.0.1:${portA}`, `127.0.0.1:${portB}`, `127.0.0.1:${portW}`] }],
        },
      ],
    };
    writeFileSync(join(dir, "prometheus.yml"), JSON.stringify(promConfig, null, 2));

    const a = startWorker(t, config, "A", portA);
    const b = startWorker(t, config, "B", portB);
    startProcess(t, "W", process.execPath, [
      ...[join(REPO, "bin/aimass.js"), "features", "--config", config, "--metrics-port", String(portW)],
    ]);
    await produceFeatures(["--topic", updates, "--users", "1000", "--items", "500"]);
    const base = `http://127.0.0.1:${portProm}`;
    const prometheus = startProcess(t, "prometheus", PROMETHEUS, [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${portProm}`,
      "--log.level=warn",
    ]);
    const promReady = async () => {
      try {
        return (await fetch(`${base}/-/ready`, { signal: AbortSignal.timeout(2_000) })).ok;
      } catch {
        return false;
      }
    };
    await Promise.all([a.joined(), b.joined(), prometheus.waitFor(promReady, "ready", 30_000)]);
    t.diagnostic(`workers joined and Prometheus ready after ${Date.now() - started} ms`);

    // Load: shop events at a steady rate, plus a few non-JSON values every few seconds so the
    // DLQ counters exist and move.
    const producing = produceEvents([
      ...["--topic", f.input, "--count", String(LOAD_RATE * LOAD_SECONDS), "--rate", String(LOAD_RATE)],
      ...["--run-id", uniqueName("obs"), "--batch", "50"],
    ]);
    let loading = true;
    const stopPoisoning = () => {
      loading = false;
    };
    producing.then(stopPoisoning, stopPoisoning);
    let poisoning: Promise<void> = Promise.resolve();

    // Evaluate until every check passes or the time is up. A feature-store expression is
    // evaluated once a running process exports any metric it names (so a `... or fallback`
    // expression counts once its process runs); one whose metrics never appear fails.
    const failures = new Map<Check, string>();
    try {
      const producer = testKafka().producer();
      await producer.connect();
      defer(t, () => producer.disconnect());
      poisoning = (async () => {
        for (let round = 0; loading; round++) {
          const messages = [0, 1, 2].map((i) => ({
            key: `poison-${round}-${i}`,
            value: `not json {${round}`,
          }));
          await producer.send({ topic: f.input, messages });
          await sleep(3_000);
        }
      })();
      const deadline = Date.now() + EVALUATE_WITHIN_MS;
      const pending = new Set<Check>(checks);
      let exported = new Set<string>();
      const covered = (c: Check) => !c.feature || metricNames(c.expr).some((n) => exported.has(n));
      for (;;) {
        exported = await exportedNames(base);
        for (const c of [...pending].filter(covered)) {
          const { problem, final } = await evaluate(base, c);
          if (problem === null) failures.delete(c);
          else failures.set(c, problem);
          if (problem === null || final) pending.delete(c);
        }
        if (![...pending].some(covered) || Date.now() > deadline) break;
        await sleep(2_000);
      }
      for (const c of pending) {
        if (covered(c)) continue;
        const absent = metricNames(c.expr).filter((n) => !exported.has(n));
        failures.set(c, `no running process exports ${absent.join(", ")}`);
      }
    } finally {
      loading = false;
      await Promise.allSettled([producing, poisoning]);
    }

    // Every rule loaded and evaluated without error.
    const rulesRes = (await (await fetch(`${base}/api/v1/rules`)).json()) as {
      data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> };
    };
    const loaded = rulesRes.data.groups.flatMap((g) => g.rules);
    assert.equal(loaded.length, rules.length, "rules loaded by Prometheus");
    for (const r of loaded) {
      if (r.health !== "err") continue;
      const c: Check = { source: `rule ${r.name} (Prometheus)`, expr: "", want: "parse", feature: false };
      failures.set(c, `evaluation error: ${r.lastError ?? "?"}`);
    }

    const report = [...failures].map(
      ([c, why]) => `- ${c.source}: ${why}\n    ${c.expr.replace(/\s+/g, " ")}`,
    );
    t.diagnostic(`${checks.length - failures.size} expressions passed, ${Date.now() - started} ms`);
    if (report.length > 0) {
      const tail = (log: string) => log.trimEnd().split("\n").slice(-15).join("\n    ");
      for (const [name, p] of [
        ["A", a],
        ["B", b],
        ["prometheus", prometheus],
      ] as const)
        t.diagnostic(`${name} log (last lines):\n    ${tail(p.log())}`);
    }
    assert.equal(
      report.length,
      0,
      `${report.length} of ${checks.length} expressions failed:\n${report.join("\n")}`,
    );
  },
);
