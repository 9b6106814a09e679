// Kafka client comparison: kafkajs vs @confluentinc/kafka-javascript (librdkafka, KafkaJS API)
// vs @platformatic/kafka, each running the same exactly-once passthrough (consume read_committed
// → produce the same bytes to the same partition of the output topic + the consumed offsets in
// one transaction of ≤ --max-per-txn records → commit; no inference). The clients other than
// kafkajs live in load-tests/kafka-clients (bash scripts/bench/install-kafka-clients.sh), not
// in the root package.json. The EOS model of each variant is documented in load-tests/clients/.
//
// Phase "throughput", per round, every client back to back (order rotated each round, so the
// ratios share machine state): --events N produced up front to a fresh 6-partition topic, the
// passthrough started in its own process (`--serve`), events/s = N over the time between the
// first and the last output a read_committed reader sees (bench-passthrough.ts's method).
//
// Phase "rebalance", per client: events produced at --rate/s for the whole phase (each carries
// `ts` = its creation time). Process A starts; after --warmup-seconds of output, process B joins
// the group (join); --join-window later A is SIGKILLed (kill); --kill-window later production
// stops and the output is drained. Measured, per event E (join / kill) with its window W:
//   pause = max end-to-end latency (output visible to the read_committed reader − event ts) of
//           the events created in [E − 1 s, E + W − 1 s), minus the steady-state p50 (events
//           created in [join − 6 s, join − 1 s), one process);
//   gap   = the longest time any output partition went without a new output in [E, E + W]
//           (each passthrough produces to the partition it consumed, so output partition =
//           input partition).
// Every phase checks duplicates / missing among the outputs (read_committed reader).
//
//   node dist/load-tests/bench-clients.js --clients kafkajs,confluent,platformatic \
//     --events 100000 --rounds 2 --rate 1000 [--phases throughput,rebalance]
//   (variants: kafkajs, confluent, confluent-848, confluent-pp, confluent-pp-848, platformatic,
//    platformatic-848; see --help)
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Kafka } from "kafkajs";
import { parseOptions, usageText, wantsHelp, type OptionSpecs } from "./lib/args.js";
import { endpointsFromEnv } from "../services/common/env.js";
import { createKafka } from "../services/common/kafka/client.js";
import { createLogger } from "../services/common/logger.js";
import { confluentVariants, loadConfluent } from "./clients/confluent.js";
import { kafkajsVariants } from "./clients/kafkajs.js";
import { loadPlatformatic, platformaticVariants } from "./clients/platformatic.js";
import {
  CLIENTS_PACKAGE,
  errorText,
  INSTALL_HINT,
  SERVE_SPECS,
  type ClientVariant,
} from "./clients/types.js";
import { percentile } from "./lib/percentiles.js";
import { REPO } from "./lib/predictor-process.js";
import { produceEvents } from "./produce-events.js";

const VARIANTS: ClientVariant[] = [...kafkajsVariants, ...confluentVariants, ...platformaticVariants];

const specs = {
  clients: {
    type: "string",
    description: `comma-separated variants (default kafkajs,confluent,platformatic): ${VARIANTS.map((v) => v.name).join(", ")}`,
  },
  phases: { type: "string", description: "throughput,rebalance (default both)" },
  rounds: { type: "number", description: "rounds (default 1)" },
  events: { type: "number", description: "events per throughput drain (default 100000)" },
  partitions: { type: "number", description: "input/output partitions (default 6)" },
  "max-per-txn": { type: "number", description: "records per transaction at most (default 500)" },
  rate: { type: "number", description: "rebalance phase: events/s produced (default 1000)" },
  "warmup-seconds": {
    type: "number",
    description: "rebalance: output time before the join (default 10)",
  },
  "join-window": {
    type: "number",
    description: "rebalance: seconds measured after the join (default 15)",
  },
  "kill-window": {
    type: "number",
    description: "rebalance: seconds measured after the kill (default 30; at least 60 for KIP-848 variants)",
  },
  "session-timeout": { type: "number", description: "group session timeout ms (default 6000)" },
  heartbeat: { type: "number", description: "group heartbeat interval ms (default 500)" },
  out: {
    type: "string",
    description: "JSON result path (default load-tests/results/clients-<ts>.json)",
  },
  // Internal: the bench spawns itself with these as its passthrough processes.
  ...SERVE_SPECS,
  client: { type: "string", description: "(internal, --serve) variant" },
} satisfies OptionSpecs;

interface Settings {
  events: number;
  partitions: number;
  maxPerTxn: number;
  rate: number;
  warmupS: number;
  joinWindowS: number;
  killWindowS: number;
  sessionTimeoutMs: number;
  heartbeatMs: number;
  logDir: string;
}

interface ThroughputResult {
  client: string;
  events: number;
  eventsPerSecond: number;
  /** From spawning the passthrough to the last output (includes start-up and group join). */
  secondsFromStart: number;
  duplicates: number;
  missing: number;
  logCounts: Record<string, number>;
}

interface PauseResult {
  /** Max latency of the window's events minus the steady p50 (ms). */
  pauseMs: number;
  maxLatencyMs: number;
  /** Longest time an output partition had no new output in the window (ms). */
  maxGapMs: number;
  events: number;
}

interface RebalanceResult {
  client: string;
  produced: number;
  duplicates: number;
  missing: number;
  steady: { p50: number; p99: number; max: number; events: number };
  join: PauseResult;
  kill: PauseResult;
  killWindowS: number;
  drainSeconds: number;
  logCounts: Record<string, number>;
}

const brokers = (): string[] => endpointsFromEnv().kafkaBrokers;
const kafkaFor = (clientId: string): Kafka =>
  createKafka({ brokers: brokers(), clientId, logger: createLogger({ level: "warn" }) });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// Serve: one passthrough process.

async function serve(variantName: string, o: { input: string; output: string; group: string } & Settings) {
  const v = VARIANTS.find((x) => x.name === variantName);
  if (!v) throw new Error(`unknown client ${variantName}`);
  const log = (msg: string, fields: Record<string, unknown> = {}): void => {
    process.stderr.write(
      JSON.stringify(
        { time: new Date().toISOString(), client: v.name, pid: process.pid, msg, ...fields },
        (_k, x) => (typeof x === "bigint" ? x.toString() : (x as unknown)),
      ) + "\n",
    );
  };
  const stopping = new Promise<void>((resolve) => process.once("SIGTERM", () => resolve()));
  const p = await v.start({
    brokers: brokers(),
    input: o.input,
    output: o.output,
    group: o.group,
    maxPerTxn: o.maxPerTxn,
    sessionTimeoutMs: o.sessionTimeoutMs,
    heartbeatMs: o.heartbeatMs,
    log,
  });
  log("started");
  await stopping;
  await Promise.race([p.stop(), sleep(10_000)]);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------
// The bench side.

/** A passthrough child process; its stderr goes to a log file that is scanned for errors. */
class ServeProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  readonly logPath: string;
  constructor(
    variant: string,
    f: { input: string; output: string; group: string },
    s: Settings,
    tag: string,
  ) {
    this.logPath = join(s.logDir, `${tag}.log`);
    const out = createWriteStream(this.logPath);
    this.child = spawn(
      process.execPath,
      [
        fileURLToPath(import.meta.url),
        "--serve",
        "--client",
        variant,
        "--input",
        f.input,
        "--output",
        f.output,
        "--group",
        f.group,
        "--max-per-txn",
        String(s.maxPerTxn),
        "--session-timeout",
        String(s.sessionTimeoutMs),
        "--heartbeat",
        String(s.heartbeatMs),
      ],
      { cwd: REPO, stdio: ["ignore", "ignore", "pipe"] },
    );
    this.child.stderr?.pipe(out);
    this.exited = new Promise((r) => this.child.once("exit", () => r()));
  }
  kill(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }
  async stop(): Promise<void> {
    this.kill("SIGTERM");
    await Promise.race([this.exited, sleep(15_000)]);
    this.kill("SIGKILL");
    await this.exited;
  }
}

/** Error lines in the passthrough logs, by message. */
function scanErrors(paths: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of paths) {
    let text = "";
    try {
      text = readFileSync(p, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      let msg = line.slice(0, 80);
      try {
        const j = JSON.parse(line) as { msg?: unknown; level?: unknown };
        if (j.msg === "started" || j.msg === "group join") continue;
        msg = String(j.msg).slice(0, 60);
      } catch {
        // not JSON (a client's own logger): counted by its first 80 characters
      }
      counts[msg] = (counts[msg] ?? 0) + 1;
    }
  }
  return counts;
}

interface Seen {
  ts: number;
  at: number;
  partition: number;
}

/** read_committed reader of the output topic: first-seen time of every run event, duplicates. */
class OutputReader {
  readonly seen = new Map<string, Seen>();
  /** Arrival times per output partition (for gaps). */
  readonly arrivals = new Map<number, number[]>();
  duplicates = 0;
  firstAt = 0;
  lastAt = 0;
  private readonly consumer;
  private waiter: { count: number; resolve: () => void } | undefined;

  constructor(
    private readonly topic: string,
    private readonly runId: string,
  ) {
    this.consumer = kafkaFor("aimass-reader").consumer({
      groupId: `aimass-reader-${runId}-${process.pid}`,
      maxWaitTimeInMs: 50,
      readUncommitted: false,
    });
  }

  async start(): Promise<void> {
    const prefix = `${this.runId}-`;
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.topic], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false, // see read-predictions.ts: commits would delay what the reader sees
      partitionsConsumedConcurrently: 16,
      eachBatch: async ({ batch }) => {
        const now = Date.now();
        let times = this.arrivals.get(batch.partition);
        if (!times) this.arrivals.set(batch.partition, (times = []));
        times.push(now);
        for (const m of batch.messages) {
          const e = JSON.parse(m.value?.toString() ?? "{}") as { id?: unknown; ts?: unknown };
          const id = String(e.id ?? "");
          if (!id.startsWith(prefix)) continue;
          if (this.seen.has(id)) {
            this.duplicates++;
            continue;
          }
          if (this.firstAt === 0) this.firstAt = now;
          this.lastAt = now;
          this.seen.set(id, { ts: Number(e.ts), at: now, partition: batch.partition });
        }
        if (this.waiter && this.seen.size >= this.waiter.count) this.waiter.resolve();
      },
    });
  }

  /** Resolves true once `count` distinct events were seen, false on timeout. */
  async waitFor(count: number, timeoutMs: number): Promise<boolean> {
    if (this.seen.size >= count) return true;
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([
      new Promise<boolean>((resolve) => (this.waiter = { count, resolve: () => resolve(true) })),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    this.waiter = undefined;
    return ok;
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}

async function withTopics<T>(
  s: Settings,
  prefix: string,
  fn: (f: { id: string; input: string; output: string; group: string }) => Promise<T>,
): Promise<T> {
  const admin = kafkaFor("aimass-bench").admin();
  await admin.connect();
  const id = `${prefix}-${Date.now().toString(36)}`;
  const f = { id, input: `${id}.in`, output: `${id}.out`, group: `${id}.group` };
  await admin.createTopics({
    topics: [f.input, f.output].map((topic) => ({
      topic,
      numPartitions: s.partitions,
      replicationFactor: 1,
    })),
    waitForLeaders: true,
  });
  try {
    return await fn(f);
  } finally {
    await admin.deleteTopics({ topics: [f.input, f.output] }).catch(() => undefined);
    await admin.deleteGroups([f.group]).catch(() => undefined);
    await admin.disconnect();
  }
}

async function throughput(v: ClientVariant, s: Settings, round: number): Promise<ThroughputResult> {
  return withTopics(s, `clients-tp-${v.name}`, async (f) => {
    const runId = `${f.id}-t`;
    await produceEvents(["--topic", f.input, "--count", String(s.events), "--run-id", runId]);
    const reader = new OutputReader(f.output, runId);
    await reader.start();
    const started = Date.now();
    const proc = new ServeProcess(v.name, f, s, `r${round}-throughput-${v.name}`);
    try {
      await reader.waitFor(s.events, 300_000);
      return {
        client: v.name,
        events: s.events,
        eventsPerSecond: Math.round(s.events / Math.max(0.001, (reader.lastAt - reader.firstAt) / 1000)),
        secondsFromStart: (reader.lastAt - started) / 1000,
        duplicates: reader.duplicates,
        missing: s.events - reader.seen.size,
        logCounts: {},
      };
    } finally {
      await proc.stop();
      await reader.stop();
    }
  }).then((r) => ({ ...r, logCounts: scanErrors([join(s.logDir, `r${round}-throughput-${v.name}.log`)]) }));
}

function pauseIn(reader: OutputReader, at: number, windowMs: number, steadyP50: number): PauseResult {
  let maxLatency = 0;
  let events = 0;
  for (const e of reader.seen.values()) {
    // Events created from 1 s before the event up to 1 s before the window's end (the kill
    // follows the join window directly: its own pause must not count for the join).
    if (e.ts < at - 1_000 || e.ts >= at + windowMs - 1_000) continue;
    events++;
    maxLatency = Math.max(maxLatency, e.at - e.ts);
  }
  // Window bounds count as outputs: a partition silent for the whole window has a gap of W.
  const end = at + windowMs;
  let maxGap = 0;
  for (const times of reader.arrivals.values()) {
    let prev = at;
    for (const t of times) {
      if (t <= at) continue;
      if (t > end) break;
      maxGap = Math.max(maxGap, t - prev);
      prev = t;
    }
    maxGap = Math.max(maxGap, end - prev);
  }
  return { pauseMs: Math.round(maxLatency - steadyP50), maxLatencyMs: maxLatency, maxGapMs: maxGap, events };
}

async function rebalance(v: ClientVariant, s: Settings, round: number): Promise<RebalanceResult> {
  const killWindowS = v.brokerSideSessionTimeout ? Math.max(60, s.killWindowS) : s.killWindowS;
  const tags = [`r${round}-rebalance-${v.name}-A`, `r${round}-rebalance-${v.name}-B`];
  return withTopics(s, `clients-rb-${v.name}`, async (f) => {
    const runId = `${f.id}-r`;
    const reader = new OutputReader(f.output, runId);
    await reader.start();
    const stopProducing = new AbortController();
    const totalS = s.warmupS + s.joinWindowS + killWindowS + 60;
    const producing = produceEvents(
      [
        "--topic",
        f.input,
        "--count",
        String(s.rate * totalS),
        "--rate",
        String(s.rate),
        "--batch",
        "20",
        "--run-id",
        runId,
      ],
      { signal: stopProducing.signal },
    );
    producing.catch(() => undefined); // awaited below; this only keeps an early failure handled
    const a = new ServeProcess(v.name, f, s, tags[0] as string);
    let b: ServeProcess | undefined;
    try {
      const deadline = Date.now() + 60_000;
      while (reader.firstAt === 0 && Date.now() < deadline) await sleep(100);
      if (reader.firstAt === 0) throw new Error(`${v.name}: no output within 60 s (see ${a.logPath})`);
      await sleep(s.warmupS * 1000);
      const joinAt = Date.now();
      b = new ServeProcess(v.name, f, s, tags[1] as string);
      await sleep(s.joinWindowS * 1000);
      const killAt = Date.now();
      a.kill("SIGKILL");
      await sleep(killWindowS * 1000);
      stopProducing.abort();
      const produced = (await producing).count;
      const drainStart = Date.now();
      await reader.waitFor(produced, 60_000);
      const drainSeconds = (Date.now() - drainStart) / 1000;
      const steady = [...reader.seen.values()]
        .filter((e) => e.ts >= joinAt - 6_000 && e.ts < joinAt - 1_000)
        .map((e) => e.at - e.ts)
        .sort((x, y) => x - y);
      const p50 = percentile(steady, 50);
      return {
        client: v.name,
        produced,
        duplicates: reader.duplicates,
        missing: produced - reader.seen.size,
        steady: { p50, p99: percentile(steady, 99), max: steady.at(-1) ?? Number.NaN, events: steady.length },
        join: pauseIn(reader, joinAt, s.joinWindowS * 1000, p50),
        kill: pauseIn(reader, killAt, killWindowS * 1000, p50),
        killWindowS,
        drainSeconds,
        logCounts: {},
      };
    } finally {
      stopProducing.abort();
      await producing.catch(() => undefined);
      a.kill("SIGKILL");
      await b?.stop();
      await reader.stop();
    }
  }).then((r) => ({ ...r, logCounts: scanErrors(tags.map((t) => join(s.logDir, `${t}.log`))) }));
}

function packageVersion(dir: string, name: string): string {
  try {
    return (
      JSON.parse(readFileSync(join(dir, "node_modules", name, "package.json"), "utf8")) as { version: string }
    ).version;
  } catch {
    return "not installed";
  }
}

const fmt = (n: number | undefined): string =>
  n === undefined || Number.isNaN(n) ? "–" : String(Math.round(n));

async function main(): Promise<void> {
  if (wantsHelp(process.argv)) {
    process.stdout.write(usageText("bench-clients", specs));
    return;
  }
  const options = parseOptions(process.argv.slice(2), specs);
  const num = (name: Parameters<typeof options.number>[0], fallback: number): number =>
    options.number(name) ?? fallback;
  const settings: Settings = {
    events: num("events", 100_000),
    partitions: num("partitions", 6),
    maxPerTxn: num("max-per-txn", 500),
    rate: num("rate", 1000),
    warmupS: num("warmup-seconds", 10),
    joinWindowS: num("join-window", 15),
    killWindowS: num("kill-window", 30),
    sessionTimeoutMs: num("session-timeout", 6000),
    heartbeatMs: num("heartbeat", 500),
    logDir: "",
  };
  if (options.flag("serve")) {
    await serve(options.requiredString("client"), {
      ...settings,
      input: options.requiredString("input"),
      output: options.requiredString("output"),
      group: options.requiredString("group"),
    });
    return;
  }
  const names = (options.string("clients") ?? "kafkajs,confluent,platformatic").split(",");
  const variants = names.map((n) => {
    const v = VARIANTS.find((x) => x.name === n.trim());
    if (!v) throw new Error(`unknown client "${n}"; one of ${VARIANTS.map((x) => x.name).join(", ")}`);
    return v;
  });
  const phases = (options.string("phases") ?? "throughput,rebalance").split(",").map((p) => p.trim());
  const rounds = num("rounds", 1);
  // Fail early, with the fix, when a client is not installed.
  let librdkafka = "–";
  for (const c of new Set(variants.map((v) => v.client))) {
    if (c === "kafkajs") continue;
    try {
      if (c === "confluent") librdkafka = (await loadConfluent()).librdkafkaVersion;
      else await loadPlatformatic();
    } catch (err) {
      const why = errorText(err);
      process.stderr.write(
        `bench-clients: cannot load the ${c} client: ${why}${why.includes(INSTALL_HINT) ? "" : `; ${INSTALL_HINT}`}\n`,
      );
      process.exitCode = 2;
      return;
    }
  }
  const stamp = Date.now();
  const resultsDir = join(REPO, "load-tests", "results");
  settings.logDir = join(resultsDir, `clients-${stamp}-logs`);
  mkdirSync(settings.logDir, { recursive: true });
  const versions = {
    node: process.version,
    kafkajs: packageVersion(REPO, "kafkajs"),
    "@confluentinc/kafka-javascript": packageVersion(CLIENTS_PACKAGE, "@confluentinc/kafka-javascript"),
    librdkafka,
    "@platformatic/kafka": packageVersion(CLIENTS_PACKAGE, "@platformatic/kafka"),
  };
  const say = (line: string): boolean => process.stderr.write(`[bench-clients] ${line}\n`);
  const results: {
    round: number;
    throughput: ThroughputResult[];
    rebalance: RebalanceResult[];
    failures: { client: string; phase: string; error: string }[];
  }[] = [];
  for (let round = 1; round <= rounds; round++) {
    const order = variants.map((_, i) => variants[(i + round - 1) % variants.length] as ClientVariant);
    const r = {
      round,
      throughput: [] as ThroughputResult[],
      rebalance: [] as RebalanceResult[],
      failures: [] as { client: string; phase: string; error: string }[],
    };
    results.push(r);
    if (phases.includes("throughput")) {
      for (const v of order) {
        say(`round ${round} throughput ${v.name}...`);
        try {
          const t = await throughput(v, settings, round);
          say(`  ${t.eventsPerSecond} events/s, dup ${t.duplicates}, missing ${t.missing}`);
          r.throughput.push(t);
        } catch (err) {
          say(`  failed: ${errorText(err)}`);
          r.failures.push({ client: v.name, phase: "throughput", error: errorText(err) });
        }
      }
    }
    if (phases.includes("rebalance")) {
      for (const v of order) {
        say(`round ${round} rebalance ${v.name}...`);
        try {
          const b = await rebalance(v, settings, round);
          say(
            `  steady p50 ${fmt(b.steady.p50)} ms, join pause ${b.join.pauseMs} ms (gap ${b.join.maxGapMs}), ` +
              `kill pause ${b.kill.pauseMs} ms (gap ${b.kill.maxGapMs}), dup ${b.duplicates}, missing ${b.missing}`,
          );
          r.rebalance.push(b);
        } catch (err) {
          say(`  failed: ${errorText(err)}`);
          r.failures.push({ client: v.name, phase: "rebalance", error: errorText(err) });
        }
      }
    }
  }
  const lines = [
    "| round | client | EOS model | group protocol | events/s | vs kafkajs | dup | missing | steady p50 ms | join pause ms (gap) | kill pause ms (gap) | rb dup | rb missing |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  let failed = false;
  for (const r of results) {
    failed ||= r.failures.length > 0;
    const base = r.throughput.find((t) => t.client === "kafkajs")?.eventsPerSecond;
    for (const v of variants) {
      const t = r.throughput.find((x) => x.client === v.name);
      const b = r.rebalance.find((x) => x.client === v.name);
      failed ||= (t?.duplicates ?? 0) + (t?.missing ?? 0) + (b?.duplicates ?? 0) + (b?.missing ?? 0) > 0;
      lines.push(
        `| ${r.round} | ${v.name} | ${v.eosModel} | ${v.protocol} | ${fmt(t?.eventsPerSecond)} | ` +
          `${t && base ? (t.eventsPerSecond / base).toFixed(2) : "–"} | ${fmt(t?.duplicates)} | ${fmt(t?.missing)} | ` +
          `${fmt(b?.steady.p50)} | ${b ? `${b.join.pauseMs} (${b.join.maxGapMs})` : "–"} | ` +
          `${b ? `${b.kill.pauseMs} (${b.kill.maxGapMs})` : "–"} | ${fmt(b?.duplicates)} | ${fmt(b?.missing)} |`,
      );
    }
  }
  for (const r of results)
    for (const f of r.failures) lines.push(`\nround ${r.round}: ${f.client} ${f.phase} failed: ${f.error}`);
  process.stdout.write(lines.join("\n") + "\n");
  const out = options.string("out") ?? join(resultsDir, `clients-${stamp}.json`);
  const variantInfo = variants.map(({ name, client, eosModel, protocol, brokerSideSessionTimeout }) => ({
    name,
    client,
    eosModel,
    protocol,
    sessionTimeout: brokerSideSessionTimeout ? "broker-side (KIP-848)" : settings.sessionTimeoutMs,
  }));
  writeFileSync(
    out,
    JSON.stringify({ versions, settings, variants: variantInfo, results, table: lines }, null, 2) + "\n",
  );
  say(`results: ${out} (passthrough logs: ${settings.logDir})`);
  process.exitCode = failed ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
}
