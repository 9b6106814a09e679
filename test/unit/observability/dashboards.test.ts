// Static checks of the Grafana dashboards, the alert rules and the Grafana provisioning in
// k8s/monitoring: everything parses, every panel queries something, and every metric an
// expression names is one the services actually export (so a typo or a renamed metric fails
// here, before anyone looks at an empty panel). The proof that every expression returns data
// from a real Prometheus is test/integration/observability/prometheus.test.ts.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parse as parseYaml } from "yaml";
import { Registry } from "prom-client";
import { PredictorMetrics } from "../../../services/predictor/metrics.js";
import { REPO } from "../../../load-tests/lib/predictor-process.js";

const MONITORING = join(REPO, "k8s/monitoring");
const DASHBOARDS = join(MONITORING, "dashboards");
const RULES = join(MONITORING, "alerts/aimass-rules.yaml");
const OPERATIONS = join(REPO, "docs/operations.md");
const EXPECTED_DASHBOARDS = [
  "aimass-feature-store.json",
  "aimass-kafka-eos.json",
  "aimass-models.json",
  "aimass-overview.json",
];
const FEATURE_DASHBOARD = "aimass-feature-store.json";
/** Grafana's own variables that may appear in an expression. */
const BUILTIN_VARIABLES = new Set(["__rate_interval", "__interval", "__range"]);
const METRIC = /aimass_[a-z0-9_]+/g;

interface Target {
  expr?: string;
  refId?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { h: number; w: number; x: number; y: number };
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
}
interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: Panel[];
  templating?: { list?: Variable[] };
}
interface Expression {
  file: string;
  where: string;
  expr: string;
}

function loadDashboards(): Array<{ file: string; dashboard: Dashboard }> {
  return readdirSync(DASHBOARDS)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((file) => {
      const text = readFileSync(join(DASHBOARDS, file), "utf8");
      try {
        return { file, dashboard: JSON.parse(text) as Dashboard };
      } catch (err) {
        throw new Error(`${file} is not valid JSON: ${String(err)}`);
      }
    });
}

/** Every panel, rows' nested panels included. */
function allPanels(panels: Panel[] = []): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels)]);
}

function variableQuery(v: Variable): string {
  return (typeof v.query === "string" ? v.query : v.query?.query) ?? "";
}

function dashboardExpressions(file: string, d: Dashboard): Expression[] {
  const out: Expression[] = [];
  for (const p of allPanels(d.panels)) {
    for (const t of p.targets ?? []) {
      if (t.expr)
        out.push({ file, where: `panel "${p.title ?? p.id}" ${t.refId ?? ""}`.trim(), expr: t.expr });
    }
  }
  for (const v of d.templating?.list ?? []) {
    if (v.type === "query") out.push({ file, where: `variable $${v.name}`, expr: variableQuery(v) });
  }
  return out;
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function loadRules(): Rule[] {
  const doc = parseYaml(readFileSync(RULES, "utf8")) as { groups: Array<{ name: string; rules: Rule[] }> };
  return doc.groups.flatMap((g) => g.rules);
}

/** Metric names a registry exports, with _bucket/_sum/_count for its histograms and summaries. */
async function exportedNames(registry: Registry): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(m.name + s);
    if (String(m.type) === "summary") for (const s of ["_sum", "_count"]) names.add(m.name + s);
  }
  return names;
}

/**
 * The feature writer's metric names, or undefined while services/feature-writer does not exist.
 * Its module is loaded dynamically (it is being built next to this test): any exported
 * `*Metrics` class with a `prometheus` (or `registry`) Registry, or an exported Registry, counts.
 */
async function writerNames(): Promise<Set<string> | undefined> {
  const src = join(REPO, "services/feature-writer");
  if (!existsSync(src) || !readdirSync(src).some((f) => f.endsWith(".ts"))) return undefined;
  const dist = join(REPO, "dist/services/feature-writer");
  const names = new Set<string>();
  for (const f of existsSync(dist) ? readdirSync(dist).filter((x) => x.endsWith(".js")) : []) {
    const mod = (await import(pathToFileURL(join(dist, f)).href)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(mod)) {
      if (value instanceof Registry) for (const n of await exportedNames(value)) names.add(n);
      if (typeof value === "function" && /Metrics$/.test(name)) {
        const Ctor = value as new (...args: unknown[]) => { registry?: unknown; prometheus?: unknown };
        const metrics = new Ctor(() => false);
        const registry = metrics.prometheus ?? metrics.registry;
        if (registry instanceof Registry) for (const n of await exportedNames(registry)) names.add(n);
      }
    }
  }
  assert.ok(
    names.size > 0,
    "services/feature-writer exists but no metrics were found in dist/services/feature-writer " +
      "(an exported *Metrics class with a `prometheus` registry, or an exported Registry): update this test",
  );
  return names;
}

async function knownMetrics(): Promise<{ predictor: Set<string>; writer: Set<string> | undefined }> {
  return { predictor: await exportedNames(new PredictorMetrics().prometheus), writer: await writerNames() };
}

/**
 * Metric names in `exprs` that no registry exports. Feature-store names are only checked once
 * their side exists (predictor: any aimass_feature_* metric in PredictorMetrics; writer: the
 * feature-writer module); until then they are listed in `pending`.
 */
function unknownMetrics(
  exprs: Expression[],
  known: { predictor: Set<string>; writer: Set<string> | undefined },
): { unknown: string[]; pending: Set<string> } {
  const predictorHasFeatures = [...known.predictor].some((n) => n.startsWith("aimass_feature_"));
  const unknown: string[] = [];
  const pending = new Set<string>();
  for (const e of exprs) {
    for (const name of new Set(e.expr.match(METRIC) ?? [])) {
      if (known.predictor.has(name) || known.writer?.has(name)) continue;
      const mayBePending =
        e.file === FEATURE_DASHBOARD &&
        ((name.startsWith("aimass_feature_") && !predictorHasFeatures) ||
          (name.startsWith("aimass_features_") && known.writer === undefined));
      if (mayBePending) pending.add(name);
      else unknown.push(`${e.file} ${e.where}: ${name}`);
    }
  }
  return { unknown, pending };
}

function notePending(t: TestContext, pending: Set<string>): void {
  if (pending.size === 0) return;
  t.diagnostic(
    `NOTE: not checked yet, the feature path has not landed: ${[...pending].sort().join(", ")} ` +
      "(checked automatically once PredictorMetrics exports aimass_feature_* / services/feature-writer exists)",
  );
}

test("the four dashboards parse, with unique uids and titles, schemaVersion 39 and a $datasource", () => {
  const all = loadDashboards();
  assert.deepEqual(
    all.map((d) => d.file),
    EXPECTED_DASHBOARDS,
  );
  const uids = all.map((d) => d.dashboard.uid);
  const titles = all.map((d) => d.dashboard.title);
  for (const { file, dashboard: d } of all) {
    assert.match(d.uid ?? "", /^[a-z0-9-]{1,40}$/, `${file}: stable uid`);
    assert.ok(d.title, `${file}: title`);
    assert.equal(d.schemaVersion, 39, `${file}: schemaVersion`);
    const ds = d.templating?.list?.find((v) => v.name === "datasource");
    assert.ok(ds, `${file}: a $datasource variable`);
    assert.equal(ds.type, "datasource", `${file}: $datasource type`);
    assert.equal(variableQuery(ds), "prometheus", `${file}: $datasource plugin`);
  }
  assert.equal(new Set(uids).size, uids.length, `duplicate uid: ${uids.join(", ")}`);
  assert.equal(new Set(titles).size, titles.length, `duplicate title: ${titles.join(", ")}`);
});

test("every panel has a datasource, a unit, a position and a target with an expression", () => {
  const problems: string[] = [];
  for (const { file, dashboard: d } of loadDashboards()) {
    const ids = new Set<number>();
    for (const p of allPanels(d.panels)) {
      const name = `${file} panel "${p.title ?? p.id}"`;
      if (p.id === undefined || ids.has(p.id)) problems.push(`${name}: missing or duplicate id`);
      else ids.add(p.id);
      if (!p.gridPos) problems.push(`${name}: no gridPos`);
      if (p.type === "row") continue;
      if (p.datasource?.type !== "prometheus" || p.datasource.uid !== "${datasource}")
        problems.push(`${name}: datasource is not {prometheus, \${datasource}}`);
      if (!p.fieldConfig?.defaults?.unit) problems.push(`${name}: no unit`);
      const targets = p.targets ?? [];
      if (targets.length === 0) problems.push(`${name}: no target`);
      for (const t of targets) {
        if (!t.expr?.trim()) problems.push(`${name} ${t.refId ?? ""}: empty expr`);
        if (t.datasource?.uid !== "${datasource}")
          problems.push(`${name} ${t.refId ?? ""}: target datasource`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test("expressions use only defined variables, and every range is [$__rate_interval]", () => {
  const problems: string[] = [];
  for (const { file, dashboard: d } of loadDashboards()) {
    const defined = new Set((d.templating?.list ?? []).map((v) => v.name));
    for (const e of dashboardExpressions(file, d)) {
      for (const m of e.expr.matchAll(/\$\{?(\w+)/g)) {
        const name = m[1] ?? "";
        if (!defined.has(name) && !BUILTIN_VARIABLES.has(name))
          problems.push(`${file} ${e.where}: undefined variable $${name}`);
      }
      for (const m of e.expr.matchAll(/\[([^\]]*)\]/g)) {
        if (m[1] !== "$__rate_interval") problems.push(`${file} ${e.where}: range [${m[1]}]`);
      }
      if (e.where.startsWith("variable") && !/^label_values\(/.test(e.expr))
        problems.push(`${file} ${e.where}: query variables use label_values(...)`);
    }
  }
  assert.deepEqual(problems, []);
});

test("every metric a dashboard names is exported by the predictor (or the feature writer)", async (t) => {
  const known = await knownMetrics();
  const exprs = loadDashboards().flatMap(({ file, dashboard }) => dashboardExpressions(file, dashboard));
  assert.ok(exprs.length > 40, `only ${exprs.length} expressions found`);
  const { unknown, pending } = unknownMetrics(exprs, known);
  notePending(t, pending);
  assert.deepEqual(unknown, [], "metrics named in dashboards but exported by no registry");
});

test("the metric check catches a typo", async () => {
  const known = await knownMetrics();
  const typo: Expression = {
    file: "aimass-overview.json",
    where: "x",
    expr: "rate(aimass_event_consumed_total[1m])",
  };
  assert.deepEqual(unknownMetrics([typo], known).unknown, [
    "aimass-overview.json x: aimass_event_consumed_total",
  ]);
  const bucket: Expression = { file: "x", where: "x", expr: "aimass_end_to_end_latency_seconds_bucket" };
  assert.deepEqual(unknownMetrics([bucket], known).unknown, []);
});

test("the alert rules: the required alerts, annotations with runbooks that exist, known metrics", async (t) => {
  const rules = loadRules();
  const alerts = rules.filter((r) => r.alert);
  assert.deepEqual(alerts.map((r) => r.alert).sort(), [
    "AimassConsumerLagGrowing",
    "AimassDLQRateHigh",
    "AimassEndToEndP99OverSLO",
    "AimassEventLoopLag",
    "AimassNoReadyWorker",
    "AimassPartitionStalled",
    "AimassProducerFenced",
    "AimassTransactionAborts",
  ]);
  const docs = readFileSync(OPERATIONS, "utf8");
  // GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
  const anchors = new Set(
    [...docs.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) =>
      (m[1] ?? "")
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, "")
        .replace(/ /g, "-"),
    ),
  );
  const problems: string[] = [];
  for (const r of alerts) {
    for (const a of ["summary", "description", "runbook"])
      if (!r.annotations?.[a]) problems.push(`${r.alert}: no ${a} annotation`);
    if (!r.labels?.severity) problems.push(`${r.alert}: no severity label`);
    const m = /^docs\/operations\.md#([\w-]+)$/.exec(r.annotations?.runbook ?? "");
    if (!m) problems.push(`${r.alert}: runbook is not docs/operations.md#<anchor>`);
    else if (!anchors.has(m[1] ?? "")) problems.push(`${r.alert}: docs/operations.md has no #${m[1]}`);
  }
  assert.deepEqual(problems, []);
  assert.equal(alerts.find((r) => r.alert === "AimassProducerFenced")?.labels?.severity, "info");
  const exprs = rules.map((r) => ({
    file: "aimass-rules.yaml",
    where: r.alert ?? r.record ?? "",
    expr: r.expr,
  }));
  const { unknown, pending } = unknownMetrics(exprs, await knownMetrics());
  notePending(t, pending);
  assert.deepEqual(unknown, []);
});

test("Grafana provisioning: datasource uid prometheus from PROMETHEUS_URL, and a dashboards folder", () => {
  const ds = parseYaml(
    readFileSync(join(MONITORING, "grafana/provisioning/datasources/prometheus.yaml"), "utf8"),
  ) as { apiVersion: number; datasources: Array<Record<string, unknown>> };
  assert.equal(ds.apiVersion, 1);
  const prom = ds.datasources.find((d) => d.uid === "prometheus");
  assert.ok(prom, "a datasource with uid prometheus");
  assert.equal(prom.type, "prometheus");
  assert.match(String(prom.url), /^\$\{?PROMETHEUS_URL\}?$/);
  const dashboards = parseYaml(
    readFileSync(join(MONITORING, "grafana/provisioning/dashboards/aimass.yaml"), "utf8"),
  ) as { apiVersion: number; providers: Array<{ type: string; options: { path: string } }> };
  assert.equal(dashboards.apiVersion, 1);
  assert.equal(dashboards.providers[0]?.type, "file");
  assert.ok(dashboards.providers[0]?.options.path);
  // The example Prometheus config loads the rule file that exists next to it.
  const prometheus = parseYaml(readFileSync(join(MONITORING, "prometheus.yml"), "utf8")) as {
    rule_files: string[];
  };
  for (const f of prometheus.rule_files) assert.ok(existsSync(join(MONITORING, f)), `rule file ${f}`);
});
