// The chaos runner's command line: scenario names (default: all but the on-demand ones) and
// typed options (lib/args.ts), turned into a plan of scenario groups, one stack per node count.
import { AimassError } from "../../services/common/errors.js";
import { parseOptions, type OptionSpecs } from "../lib/args.js";
import { CI_SUBSET, SCENARIOS } from "./scenarios.js";
import type { Scenario, Sizing } from "./scenario.js";

export const specs = {
  runs: { type: "number", description: "repeat each scenario N times (default 1)" },
  events: { type: "number", description: "records per run (default: the scenario's)" },
  rate: { type: "number", description: "records per second (default: the scenario's)" },
  ci: { type: "boolean", description: `the short CI subset: ${CI_SUBSET.join(", ")}` },
  nodes: {
    type: "number",
    description: "1 | 3: Kafka nodes for scenarios that work on either (fault-specific ones keep theirs)",
  },
  seed: { type: "number", description: "seed of the generated records and of random choices (default 42)" },
  out: { type: "string", description: "results folder (default load-tests/results/chaos)" },
  "stack-dir": { type: "string", description: "parent folder of the chaos stacks (default .stack/chaos)" },
  "port-base": {
    type: "number",
    description: "chaos stack ports: Kafka base+92.., registry base+81, Redis base+379 (default 19000)",
  },
  "keep-stack": {
    type: "boolean",
    description: "leave the last stack running for a post-mortem (it prints how to stop it)",
  },
  list: { type: "boolean", description: "list the scenarios and exit" },
  help: { type: "boolean", description: "this text" },
} satisfies OptionSpecs;

/** Scenarios bound to a node count by their fault (a single broker, a leader among three). */
const FIXED_NODES = new Set([
  "broker-kill-restart",
  "broker-pause",
  "leader-kill",
  "coordinator-kill",
  "rolling-restart",
  "soak",
]);

export interface PlannedScenario {
  scenario: Scenario;
  sizing: Sizing;
  nodes: 1 | 3;
}

export interface Plan {
  groups: Array<{ nodes: 1 | 3; scenarios: PlannedScenario[] }>;
  runs: number;
  seed: number;
  out: string | undefined;
  stackDir: string | undefined;
  portBase: number;
  keepStack: boolean;
  list: boolean;
}

const usage = (message: string) => new AimassError("USAGE", message);

/** Separates scenario names from options: an option that takes a value takes the next word. */
export function splitArgs(argv: string[]): { names: string[]; options: string[] } {
  const names: string[] = [];
  const options: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith("--")) {
      names.push(a);
      continue;
    }
    options.push(a);
    const spec = (specs as OptionSpecs)[a.slice(2)];
    if (spec && spec.type !== "boolean" && !a.includes("=") && i + 1 < argv.length)
      options.push(argv[++i] as string);
  }
  return { names, options };
}

function positiveInt(v: number | undefined, name: string): number | undefined {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw usage(`--${name} must be a positive integer`);
  return v;
}

export function planFrom(argv: string[], catalog: readonly Scenario[] = SCENARIOS): Plan {
  const { names, options: raw } = splitArgs(argv);
  const o = parseOptions(raw, specs);
  const ci = o.flag("ci");
  if (ci && names.length > 0) throw usage("--ci picks its own scenarios; give either names or --ci");
  const byName = new Map(catalog.map((s) => [s.name, s]));
  for (const n of names) {
    if (!byName.has(n))
      throw usage(`unknown scenario "${n}"; one of: ${catalog.map((s) => s.name).join(", ")}`);
  }
  const chosen = ci
    ? CI_SUBSET.map((n) => byName.get(n) as Scenario)
    : names.length > 0
      ? [...new Set(names)].map((n) => byName.get(n) as Scenario)
      : catalog.filter((s) => !s.onDemand);
  const nodes = o.number("nodes");
  if (nodes !== undefined && nodes !== 1 && nodes !== 3) throw usage("--nodes must be 1 or 3");
  const events = positiveInt(o.number("events"), "events");
  const rate = o.number("rate");
  if (rate !== undefined && !(rate > 0)) throw usage("--rate must be > 0");
  const planned = chosen.map((scenario): PlannedScenario => {
    const base = ci ? (scenario.ci ?? scenario.sizing) : scenario.sizing;
    return {
      scenario,
      sizing: { events: events ?? base.events, rate: rate ?? base.rate },
      nodes: nodes !== undefined && !FIXED_NODES.has(scenario.name) ? nodes : scenario.nodes,
    };
  });
  const groups: Plan["groups"] = [];
  for (const n of [1, 3] as const) {
    const scenarios = planned.filter((p) => p.nodes === n);
    if (scenarios.length > 0) groups.push({ nodes: n, scenarios });
  }
  return {
    groups,
    runs: positiveInt(o.number("runs"), "runs") ?? 1,
    seed: o.number("seed") ?? 42,
    out: o.string("out"),
    stackDir: o.string("stack-dir"),
    portBase: positiveInt(o.number("port-base"), "port-base") ?? 19_000,
    keepStack: o.flag("keep-stack"),
    list: o.flag("list"),
  };
}
