// Live model control against the real stack, with predictor workers as processes and the
// `aimass models` CLI as a process: a deploy mid-stream (exactly once, a clean switch per
// partition, measured), a version that fails to load, a canary by stable key hash, shadow
// predictions on their own topic, rollback, and the CLI's usage errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { connectedAdmin, defer, testKafka, uniqueName } from "../../helpers/stack.js";
import { readTopic, type ReadRecord } from "../../helpers/kafka-read.js";
import { startPredictor, type PredictorProcess } from "../../helpers/predictor-process.js";
import { assertExactlyOnce, parsePredictions, produceRun } from "../../helpers/exactly-once.js";
import { repoRoot } from "../../helpers/pipeline.js";
import {
  liveControlPipeline,
  SHOP_MODEL,
  tempModelRepo,
  type LiveControlPipeline,
} from "../../helpers/model-repo.js";
import {
  inCanary,
  parseDesiredState,
  type AuditRecord,
} from "../../../services/common/control/desired-state.js";

const JOINED = /"msg":"partitions assigned"[^\n]*"partitions":\[\d/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `aimass <args>` as a process (as an operator would) and collects its output. */
function aimass(args: string[]): Promise<CliResult> {
  const child = spawn(process.execPath, ["bin/aimass.js", ...args], {
    cwd: repoRoot,
    env: { ...process.env, AIMASS_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function models(action: string, p: LiveControlPipeline, args: string[]): Promise<CliResult> {
  return aimass(["models", action, "--config", p.configPath, ...args]);
}

const show = (r: CliResult) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** The CLI printed an "applied" apply result for each of these workers (instance id ends in its pid). */
function assertApplied(r: CliResult, workers: PredictorProcess[]): Map<string, number> {
  assert.equal(r.code, 0, show(r));
  const applied = new Map<string, number>();
  for (const m of r.stdout.matchAll(/worker (\S+): applied in (\d+) ms/g))
    applied.set(m[1] ?? "", Number(m[2]));
  for (const w of workers) {
    const mine = [...applied.keys()].filter((id) => id.endsWith(`-${w.child.pid}`));
    assert.equal(
      mine.length,
      1,
      `worker ${w.name} (pid ${w.child.pid}) did not report "applied":\n${show(r)}`,
    );
  }
  return applied;
}

interface PredictionValue {
  eventId: string;
  model: { name: string; version: string; sha256: string };
  eventTs: number | null;
  predictedAt: number;
}

interface Prediction extends PredictionValue {
  key: string | null;
  /** Output partition. */
  partition: number;
  sourcePartition: number;
  sourceOffset: bigint;
  shadow: boolean;
}

function header(r: ReadRecord, name: string): string | undefined {
  const h = r.headers?.[name];
  return (Array.isArray(h) ? h[0] : h)?.toString();
}

function predictions(records: ReadRecord[]): Prediction[] {
  return records.map((r) => ({
    ...(JSON.parse(r.value?.toString() ?? "null") as PredictionValue),
    key: r.key,
    partition: r.partition,
    sourcePartition: Number(header(r, "aimass.source.partition")),
    sourceOffset: BigInt(header(r, "aimass.source.offset") ?? "-1"),
    shadow: header(r, "aimass.shadow") === "1",
  }));
}

/** Reads a prediction topic (read_committed) until `count` records, lingering for late duplicates. */
async function readPredictions(
  t: Parameters<typeof readTopic>[0],
  topic: string,
  count: number,
  lingerMs = 2_000,
): Promise<ReadRecord[]> {
  return readTopic(t, testKafka(), topic, { until: (r) => r.length >= count, timeoutMs: 120_000, lingerMs });
}

async function readAudit(t: Parameters<typeof readTopic>[0], p: LiveControlPipeline, applies: number) {
  const records = await readTopic(t, testKafka(), p.audit, {
    until: (r) => r.filter((x) => x.value?.toString().includes('"type":"apply"')).length >= applies,
    timeoutMs: 20_000,
  });
  return records.map((r) => JSON.parse(r.value?.toString() ?? "null") as AuditRecord);
}

const idsOf = (runId: string, count: number) => Array.from({ length: count }, (_, i) => `${runId}-${i}`);
const versionsOf = (ps: Prediction[]) => [...new Set(ps.map((p) => p.model.version))].sort();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

test(
  "deploying version 2 during a continuous stream: exactly once, after the switch only version 2",
  { timeout: 180_000 },
  async (t) => {
    const admin = await connectedAdmin(t);
    const p = await liveControlPipeline(t, admin, { prefix: "lc-deploy" });
    const a = startPredictor(t, p.configPath, "A");
    const b = startPredictor(t, p.configPath, "B");
    await Promise.all([a.waitFor(JOINED), b.waitFor(JOINED)]);

    const runId = uniqueName("deploy");
    const count = 14_000;
    const rate = 1_000;
    // Small batches keep the input smooth at 250 ms resolution.
    const producing = produceRun(p.input, count, rate, runId, 25);
    await sleep(4_000);
    const cliStartedAt = Date.now();
    const cli = await models("deploy", p, [
      ...["--model", SHOP_MODEL, "--version", "2", "--reason", "test", "--wait-ms", "5000"],
    ]);
    const cliReturnedAt = Date.now();
    assertApplied(cli, [a, b]);
    assert.match(cli.stdout, /revision 1 written/);
    await producing;
    // A second run, produced after the CLI returned (every worker had applied by then),
    // however long the CLI took on a busy machine.
    const afterRunId = uniqueName("after-deploy");
    const afterCount = 1_000;
    await produceRun(p.input, afterCount, rate, afterRunId, 25);

    const records = await readPredictions(t, p.output, count + afterCount);
    assertExactlyOnce(parsePredictions(records), [...idsOf(runId, count), ...idsOf(afterRunId, afterCount)]);
    assert.equal(records.length, count + afterCount);
    const ps = predictions(records);
    for (const x of ps) {
      assert.equal(x.model.name, SHOP_MODEL);
      assert.ok(x.model.version === "1" || x.model.version === "2", `version ${x.model.version}`);
      assert.equal(x.model.sha256, p.repo.sha256(x.model.version), `sha256 of version ${x.model.version}`);
    }
    assert.deepEqual(versionsOf(ps), ["1", "2"], "the deploy landed mid-stream");

    // Per input partition, in offset order: once version 2 serves, version 1 never again.
    const firstV2At: number[] = [];
    for (let partition = 0; partition < 6; partition++) {
      const mine = ps
        .filter((x) => x.sourcePartition === partition)
        .sort((x, y) => (x.sourceOffset < y.sourceOffset ? -1 : 1));
      const first = mine.findIndex((x) => x.model.version === "2");
      assert.ok(first >= 0, `partition ${partition} never switched`);
      const lateV1 = mine.slice(first).filter((x) => x.model.version === "1");
      assert.equal(
        lateV1.length,
        0,
        `partition ${partition}: v1 after v2 at offset ${lateV1[0]?.sourceOffset}`,
      );
      firstV2At.push((mine[first] as Prediction).predictedAt);
    }
    // Events produced after the CLI returned (every worker had applied by then) are all v2.
    const after = ps.filter((x) => x.eventId.startsWith(`${afterRunId}-`));
    assert.equal(after.length, afterCount);
    assert.deepEqual(versionsOf(after), ["2"]);

    // Measurements: control write → first v2 prediction; per-worker load; throughput dip.
    const control = await readTopic(t, testKafka(), p.control, {
      until: (r) => r.length >= 1,
      timeoutMs: 10_000,
    });
    const state = parseDesiredState(control[0]?.value as Buffer);
    assert.equal(state.active, "2");
    assert.equal(state.previous, "1");
    const audit = await readAudit(t, p, 2);
    const applies = audit.filter((r): r is Extract<AuditRecord, { type: "apply" }> => r.type === "apply");
    assert.equal(applies.length, 2);
    for (const r of applies)
      assert.deepEqual({ ok: r.ok, active: r.serving.active }, { ok: true, active: "2" });
    assert.ok(audit.some((r) => r.type === "change" && r.state.revision === 1));

    const firstV2 = Math.min(...firstV2At);
    const lastPartitionSwitched = Math.max(...firstV2At);
    // Throughput in 250 ms buckets: predictions by predictedAt, and (for context) the input
    // by event time, which the producer stamps as it sends.
    const bucketMs = 250;
    const count250 = (times: number[]) => {
      const m = new Map<number, number>();
      for (const ms of times) m.set(Math.floor(ms / bucketMs), (m.get(Math.floor(ms / bucketMs)) ?? 0) + 1);
      return m;
    };
    const out = count250(ps.map((x) => x.predictedAt));
    const inp = count250(ps.map((x) => x.eventTs ?? 0));
    const firstBucket = Math.min(...out.keys());
    const lastBucket = Math.max(...out.keys());
    // The steady part of the stream: drop the first and last second (ramp up, tail).
    const steady: number[] = [];
    for (let k = firstBucket + 4; k <= lastBucket - 4; k++) steady.push(out.get(k) ?? 0);
    const med = median(steady);
    const lowest = (fromMs: number, toMs: number) => {
      let min = Infinity;
      let at = 0;
      for (let k = Math.floor(fromMs / bucketMs); k <= Math.floor(toMs / bucketMs); k++) {
        const n = out.get(k) ?? 0;
        if (n < min) [min, at] = [n, k * bucketMs - state.updatedAt];
      }
      return { min, at };
    };
    const perSec = (n: number) => Math.round((n * 1_000) / bucketMs);
    const dip = (n: number) => (med > 0 ? Math.round((1 - n / med) * 100) : 0);
    // The switch: from the control write until every partition has been on v2 for 2 s.
    const atSwitch = lowest(state.updatedAt, lastPartitionSwitched + 2_000);
    // The whole CLI run (its start-up competes for the CPUs with the workers and the producer).
    const atCli = lowest(cliStartedAt, cliReturnedAt);
    // Baseline noise: the steady stream before the CLI started and after it returned.
    const quietBefore = lowest((firstBucket + 4) * bucketMs, cliStartedAt - bucketMs);
    const quietAfter = lowest(cliReturnedAt + bucketMs, (lastBucket - 4) * bucketMs);
    const baseline = quietBefore.min <= quietAfter.min ? quietBefore : quietAfter;
    const series: string[] = [];
    for (
      let k = Math.floor((state.updatedAt - 2_000) / bucketMs);
      k <= Math.floor((lastPartitionSwitched + 2_000) / bucketMs);
      k++
    ) {
      series.push(`${k * bucketMs - state.updatedAt}:${perSec(out.get(k) ?? 0)}/${perSec(inp.get(k) ?? 0)}`);
    }
    console.log(
      `MEASURE deploy switch: control record written → first v2 prediction ${firstV2 - state.updatedAt} ms; ` +
        `→ every partition on v2 ${lastPartitionSwitched - state.updatedAt} ms`,
    );
    for (const r of applies) {
      console.log(
        `MEASURE apply on worker ${r.worker}: loadMs ${r.loadMs} (load + warm), applied ${r.at - state.updatedAt} ms after the write`,
      );
    }
    console.log(
      `MEASURE throughput (${bucketMs} ms buckets, input ${rate}/s): median ${perSec(med)}/s; ` +
        `lowest from the write to 2 s after the last partition switched ${perSec(atSwitch.min)}/s ` +
        `at ${atSwitch.at} ms (dip ${dip(atSwitch.min)}% vs median); ` +
        `lowest while the CLI ran ${perSec(atCli.min)}/s at ${atCli.at} ms (dip ${dip(atCli.min)}%); ` +
        `baseline: lowest with no CLI running ${perSec(baseline.min)}/s (dip ${dip(baseline.min)}%)`,
    );
    console.log(
      `MEASURE throughput series (ms from the write: predictions/s / input/s): ${series.join(" ")}`,
    );
    console.log(
      `MEASURE stream: ${count} events at ${rate}/s on 6 partitions, 2 workers; ` +
        `${ps.filter((x) => x.model.version === "1").length} on v1, ${ps.filter((x) => x.model.version === "2").length} on v2; ` +
        `CLI lines: ${cli.stdout.trim().split("\n").join(" | ")}`,
    );
  },
);

test(
  "a version whose file is corrupt fails to load and version 1 keeps serving",
  { timeout: 120_000 },
  async (t) => {
    const admin = await connectedAdmin(t);
    const repo = tempModelRepo(t, { corrupt: ["9"] });
    const p = await liveControlPipeline(t, admin, { repo, partitions: 3, prefix: "lc-corrupt" });
    const w = startPredictor(t, p.configPath, "W");
    await w.waitFor(JOINED);

    const cli = await models("deploy", p, ["--model", SHOP_MODEL, "--version", "9", "--wait-ms", "4000"]);
    assert.equal(cli.code, 1, show(cli));
    assert.match(cli.stdout, /worker \S+: REFUSED in \d+ ms, now active 1 \(.+\)/);
    // The CLI reverted the desired state to what is served, as a new revision.
    assert.match(cli.stdout, /refused by a worker; revision 2 restores active 1/);
    await w.waitFor(/model change refused/, 5_000);

    const runId = uniqueName("corrupt");
    await produceRun(p.input, 1_000, 0, runId);
    const ps = predictions(await readPredictions(t, p.output, 1_000));
    assertExactlyOnce(ps, idsOf(runId, 1_000));
    assert.deepEqual(versionsOf(ps), ["1"]);
    for (const x of ps) assert.equal(x.model.sha256, repo.sha256("1"));

    const audit = await readAudit(t, p, 1);
    const apply = audit.find((r) => r.type === "apply");
    assert.ok(apply && apply.type === "apply");
    assert.equal(apply.ok, false);
    assert.equal(apply.revision, 1);
    assert.equal(apply.serving.active, "1");
    assert.ok(apply.error && apply.error.length > 0, "the apply record carries the error");

    const list = await models("list", p, []);
    assert.equal(list.code, 0, show(list));
    assert.match(list.stdout, /version 1\s+sha256 [0-9a-f]{16}/);
    assert.match(list.stdout, /version 9\s+sha256 [0-9a-f]{16}/);
  },
);

test(
  "a 10% canary sends 10% ± 2% of keys to the canary, the same key always to the same version",
  { timeout: 120_000 },
  async (t) => {
    const admin = await connectedAdmin(t);
    const p = await liveControlPipeline(t, admin, { partitions: 3, prefix: "lc-canary" });
    const w = startPredictor(t, p.configPath, "W");
    await w.waitFor(JOINED);

    const cli = await models("canary", p, [
      ...["--model", SHOP_MODEL, "--version", "2", "--percent", "10", "--wait-ms", "3000"],
    ]);
    assertApplied(cli, [w]);
    assert.match(cli.stdout, /now active 1, canary 2@10%/);

    // 5,000 distinct keys, two events each (the second round in later chunks).
    const runId = uniqueName("canary");
    const keys = Array.from({ length: 5_000 }, (_, i) => `${runId}-user${i}`);
    const producer = testKafka().producer({ idempotent: true });
    await producer.connect();
    defer(t, () => producer.disconnect().catch(() => undefined));
    let seq = 0;
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < keys.length; i += 500) {
        const messages = keys.slice(i, i + 500).map((key) => ({
          key,
          value: JSON.stringify({
            id: `${runId}-${seq++}`,
            type: "view",
            userId: key,
            itemId: "i-1",
            ts: Date.now(),
            price: 20,
            quantity: 1,
          }),
        }));
        await producer.send({ topic: p.input, messages });
      }
    }
    const ps = predictions(await readPredictions(t, p.output, seq));
    assertExactlyOnce(ps, idsOf(runId, seq));

    const byKey = new Map<string, Set<string>>();
    for (const x of ps) {
      const set = byKey.get(x.key ?? "") ?? new Set<string>();
      set.add(x.model.version);
      byKey.set(x.key ?? "", set);
    }
    assert.equal(byKey.size, keys.length);
    const mixed = [...byKey].filter(([, v]) => v.size !== 1);
    assert.equal(mixed.length, 0, `keys served by two versions: ${mixed.slice(0, 3).map(([k]) => k)}`);
    const onCanary = keys.filter((k) => byKey.get(k)?.has("2"));
    const share = onCanary.length / keys.length;
    console.log(
      `MEASURE canary 10%: ${onCanary.length} of ${keys.length} keys on v2 (${(share * 100).toFixed(2)}%)`,
    );
    assert.ok(share >= 0.08 && share <= 0.12, `share on the canary ${share}`);
    const wrong = keys.filter((k) => byKey.get(k)?.has("2") !== inCanary(Buffer.from(k), 10));
    assert.equal(wrong.length, 0, `keys not where inCanary puts them: ${wrong.slice(0, 3)}`);
  },
);

test("shadow outputs appear only on the shadow topic", { timeout: 120_000 }, async (t) => {
  const admin = await connectedAdmin(t);
  const p = await liveControlPipeline(t, admin, { partitions: 3, prefix: "lc-shadow" });
  const w = startPredictor(t, p.configPath, "W");
  await w.waitFor(JOINED);

  const on = await models("shadow", p, ["--model", SHOP_MODEL, "--version", "2", "--wait-ms", "3000"]);
  assertApplied(on, [w]);
  assert.match(on.stdout, /now active 1, shadow 2/);
  const run1 = uniqueName("shadow-on");
  await produceRun(p.input, 2_000, 0, run1);
  const out1 = predictions(await readPredictions(t, p.output, 2_000));
  assertExactlyOnce(out1, idsOf(run1, 2_000));
  assert.deepEqual(versionsOf(out1), ["1"]);
  assert.ok(out1.every((x) => !x.shadow));
  const shadow1 = predictions(await readPredictions(t, p.shadow, 2_000));
  assertExactlyOnce(shadow1, idsOf(run1, 2_000));
  assert.deepEqual(versionsOf(shadow1), ["2"]);
  assert.ok(shadow1.every((x) => x.shadow && x.model.sha256 === p.repo.sha256("2")));

  const off = await models("shadow", p, ["--model", SHOP_MODEL, "--off", "--wait-ms", "3000"]);
  assertApplied(off, [w]);
  assert.match(off.stdout, /now active 1\s*$/m);
  const run2 = uniqueName("shadow-off");
  await produceRun(p.input, 1_000, 0, run2);
  const out2 = predictions(await readPredictions(t, p.output, 3_000)).filter((x) =>
    x.eventId.startsWith(run2),
  );
  assertExactlyOnce(out2, idsOf(run2, 1_000));
  assert.deepEqual(versionsOf(out2), ["1"]);
  // The output is committed in the same transactions as any shadow records would be.
  const shadow2 = predictions(await readPredictions(t, p.shadow, 2_000, 2_000));
  assert.equal(shadow2.length, 2_000);
  assert.equal(shadow2.filter((x) => x.eventId.startsWith(run2)).length, 0);
});

test("rollback returns to the previous version", { timeout: 120_000 }, async (t) => {
  const admin = await connectedAdmin(t);
  const p = await liveControlPipeline(t, admin, { partitions: 3, prefix: "lc-rollback" });
  const w = startPredictor(t, p.configPath, "W");
  await w.waitFor(JOINED);

  const deploy = await models("deploy", p, ["--model", SHOP_MODEL, "--version", "2", "--wait-ms", "3000"]);
  assertApplied(deploy, [w]);
  const runA = uniqueName("rb-a");
  await produceRun(p.input, 1_000, 0, runA);
  const a = predictions(await readPredictions(t, p.output, 1_000, 500));
  assertExactlyOnce(a, idsOf(runA, 1_000));
  assert.deepEqual(versionsOf(a), ["2"]);

  const rollback = await models("rollback", p, [
    ...["--model", SHOP_MODEL, "--reason", "bad metrics", "--wait-ms", "3000"],
  ]);
  assertApplied(rollback, [w]);
  assert.match(rollback.stdout, /revision 2 written/);
  assert.match(rollback.stdout, /now active 1/);
  const runB = uniqueName("rb-b");
  await produceRun(p.input, 1_000, 0, runB);
  const all = predictions(await readPredictions(t, p.output, 2_000));
  const b = all.filter((x) => x.eventId.startsWith(runB));
  assertExactlyOnce(b, idsOf(runB, 1_000));
  assert.deepEqual(versionsOf(b), ["1"]);
  assert.equal(all.length, 2_000);

  const list = await models("list", p, []);
  assert.match(list.stdout, /desired:\s+active 1, no canary, no shadow/);
  assert.match(list.stdout, /revision 2 by .+ — bad metrics/);
});

test("models CLI: usage errors exit 2 and name the problem; list shows versions and state", async (t) => {
  const admin = await connectedAdmin(t);
  const p = await liveControlPipeline(t, admin, { partitions: 1, prefix: "lc-cli" });
  const m = ["--model", SHOP_MODEL];
  const cases: Array<{ args: string[]; message: RegExp }> = [
    { args: ["deploy", "--model", "nope", "--version", "2"], message: /unknown model "nope"/ },
    { args: ["deploy", ...m], message: /required option '--version <version>' not specified/ },
    { args: ["deploy", ...m, "--version", "7"], message: /has no version "7" \(repository has: 1, 2\)/ },
    { args: ["canary", ...m, "--version", "2", "--percent", "150"], message: /--percent must be a number/ },
    { args: ["canary", ...m, "--version", "2", "--percent", "-1"], message: /--percent must be a number/ },
    {
      args: ["canary", ...m, "--version", "2", "--percent", "abc"],
      message: /option '--percent <0-100>' argument 'abc' is invalid/,
    },
    { args: ["deploy", "--version", "2"], message: /required option '-m, --model <name>' not specified/ },
    { args: ["shadow", ...m], message: /--version is required/ },
  ];
  const results = await Promise.all(cases.map((c) => models(c.args[0] as string, p, c.args.slice(1))));
  results.forEach((r, i) => {
    const c = cases[i] as (typeof cases)[number];
    assert.equal(r.code, 2, `${c.args.join(" ")}: ${show(r)}`);
    assert.match(r.stderr, c.message, `${c.args.join(" ")}: ${show(r)}`);
  });

  // Nothing above reached the control topic.
  const before = await models("list", p, []);
  assert.equal(before.code, 0, show(before));
  assert.match(before.stdout, /desired:\s+active 1 \(pipeline config; no control record yet\)/);
  for (const v of ["1", "2"]) {
    assert.ok(
      before.stdout.includes(`version ${v.padEnd(6)} sha256 ${p.repo.sha256(v).slice(0, 16)}`),
      `list shows version ${v} with its sha256:\n${before.stdout}`,
    );
  }

  const deploy = await models("deploy", p, [
    ...m,
    "--version",
    "2",
    "--by",
    "tester",
    "--reason",
    "cli test",
  ]);
  assert.equal(deploy.code, 0, show(deploy));
  const after = await models("list", p, []);
  assert.match(after.stdout, /desired:\s+active 2, no canary, no shadow/);
  assert.match(after.stdout, /changed:\s+revision 1 by tester at \S+ — cli test/);
});
