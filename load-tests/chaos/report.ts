// A chaos session's results as JSON (everything) and a markdown table (one row per run),
// both written to the results folder; the table also goes to stdout.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RunResult } from "./evaluate.js";

export interface SessionReport {
  startedAt: string;
  finishedAt: string;
  command: string;
  node: string;
  results: RunResult[];
  /** Scenarios that could not run at all, and why. */
  skipped: Array<{ scenario: string; reason: string }>;
}

const ms = (v: number | null) => (v === null ? "–" : Math.round(v).toLocaleString("en-US"));
const int = (v: number) => v.toLocaleString("en-US");

export function markdownTable(report: SessionReport): string {
  const lines = [
    "| scenario | run | result | events | predictions | DLQ | lost | duplicated | order breaks | offsets | first output after heal ms | lag zero after heal ms | p99 latency ms | worker crashes | s |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of report.results) {
    const offsets = r.offsets.ok
      ? "ok"
      : `${r.offsets.uncommitted.length} uncommitted, ${r.offsets.hanging.length} hanging`;
    const result = r.error ? `ERROR` : r.ok ? "pass" : "FAIL";
    lines.push(
      `| ${r.scenario} | ${r.run} | ${result} | ${int(r.events)} | ${int(r.predictions)} | ${int(r.dlq)} | ` +
        `${r.lost} | ${r.duplicated} | ${r.orderBreaks} | ${offsets} | ${ms(r.firstOutputMs)} | ` +
        `${ms(r.lagZeroMs)} | ${ms(r.latencyMs?.p99 ?? null)} | ${r.crashes.length} | ${r.durationS} |`,
    );
  }
  const notes: string[] = [];
  for (const r of report.results) {
    const problems = [
      r.error ? `error: ${r.error}` : "",
      r.unexpected ? `${r.unexpected} unexpected outputs` : "",
      r.misrouted ? `${r.misrouted} in the wrong stream (prediction vs DLQ)` : "",
      r.idMismatch ? `${r.idMismatch} predictions with another event's id` : "",
      r.sendFailures ? `${r.sendFailures} load sends failed (inputs are what the topic holds)` : "",
      r.ackedNotInInput
        ? `${r.ackedNotInInput} records acknowledged to the load generator are not in the input topic`
        : "",
    ].filter((s) => s);
    if (problems.length > 0 || !r.ok) {
      notes.push(`- ${r.scenario} #${r.run}: ${problems.join("; ") || "see evidence.json"} (${r.dir})`);
    }
  }
  for (const s of report.skipped) notes.push(`- ${s.scenario}: not run: ${s.reason}`);
  return [...lines, "", ...notes, "", ...kindTables(report.results)].join("\n");
}

/** For runs with bad records: where each kind went (DLQ stage/code counts). */
function kindTables(results: RunResult[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    const kinds = Object.entries(r.byKind);
    if (kinds.length <= 1) continue;
    out.push(
      `${r.scenario} #${r.run}, by record kind:`,
      "",
      "| kind | in | predictions | DLQ (stage/code) |",
    );
    out.push("|---|---|---|---|");
    for (const [kind, k] of kinds.sort(([a], [b]) => a.localeCompare(b))) {
      const reasons = Object.entries(k.dlqReasons)
        .map(([code, n]) => `${n} ${code}`)
        .join(", ");
      out.push(`| ${kind} | ${k.inputs} | ${k.predictions} | ${k.dlq}${reasons ? ` (${reasons})` : ""} |`);
    }
    out.push("");
  }
  return out;
}

/** Writes results.json and results.md into `dir`; returns the markdown. */
export function writeReport(dir: string, report: SessionReport): string {
  writeFileSync(join(dir, "results.json"), JSON.stringify(report, null, 2));
  const md = [
    `# Chaos results ${report.startedAt}`,
    "",
    `\`${report.command}\` on Node ${report.node}; faults through scripts/stack/node.sh.`,
    "",
    markdownTable(report),
  ].join("\n");
  writeFileSync(join(dir, "results.md"), md);
  return md;
}
