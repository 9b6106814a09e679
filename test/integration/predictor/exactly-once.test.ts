// Exactly-once through crashes, zombies, scale-out and shutdown, with real predictor
// processes against the real broker. Every test checks the output read_committed: one
// prediction per input id, none missing, per-key order kept.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { connectedAdmin, tempTopic, uniqueName } from "../../helpers/stack.js";
import {
  shopPipeline,
  startPredictor,
  writeConfig,
  type TopicsFixture,
} from "../../helpers/predictor-process.js";
import { assertRunExactlyOnce, produceRun } from "../../helpers/exactly-once.js";

const JOINED = /"msg":"partitions assigned"[^\n]*"partitions":\[\d/;

async function fixture(t: TestContext): Promise<TopicsFixture> {
  const admin = await connectedAdmin(t);
  return {
    input: await tempTopic(t, admin, "eo-in", 6),
    output: await tempTopic(t, admin, "eo-out", 6),
    dlq: await tempTopic(t, admin, "eo-dlq", 6),
    group: uniqueName("eo-group"),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  "two workers, one killed -9 mid-stream and restarted: exactly one prediction per input",
  { timeout: 300_000 },
  async (t) => {
    const f = await fixture(t);
    const config = writeConfig(t, shopPipeline(f));
    const a = startPredictor(t, config, "A");
    const b = startPredictor(t, config, "B");
    await Promise.all([a.waitFor(JOINED), b.waitFor(JOINED)]);

    const runId = uniqueName("kill");
    const count = Number(process.env.EO_COUNT ?? 20_000);
    const producing = produceRun(f.input, count, 2_500, runId);
    await sleep(3_000);
    a.signal("SIGKILL");
    assert.equal((await a.exited).signal, "SIGKILL");
    await sleep(1_500);
    const a2 = startPredictor(t, config, "A2");
    await producing;
    await assertRunExactlyOnce(t, f.output, runId, count);
    await a2.waitFor(JOINED);
  },
);

test(
  "a zombie (SIGSTOP past its session timeout) is fenced and cannot commit after it resumes",
  { timeout: 300_000 },
  async (t) => {
    const f = await fixture(t);
    const config = writeConfig(t, shopPipeline(f, { maxDelayMs: 50 }));
    const zombie = startPredictor(t, config, "zombie");
    await zombie.waitFor(JOINED);
    const other = startPredictor(t, config, "other");
    await other.waitFor(JOINED);

    const runId = uniqueName("zombie");
    const count = 12_000;
    const producing = produceRun(f.input, count, 1_500, runId);
    await sleep(2_500);
    zombie.signal("SIGSTOP");
    // Past the 6 s session timeout: the group moves the zombie's partitions to `other`,
    // whose producers take over the same transactional ids.
    await sleep(10_000);
    zombie.signal("SIGCONT");
    await producing;
    await assertRunExactlyOnce(t, f.output, runId, count);
    // The zombie learned it was replaced: its producer was fenced, or the coordinator had
    // dropped it from the group (the deterministic fencing proof is in fencing.test.ts).
    await zombie.waitFor(/fenced|not aware of this member/i, 30_000);
  },
);

test(
  "a worker added mid-stream takes a share of the partitions with no loss and no duplicate",
  { timeout: 300_000 },
  async (t) => {
    const f = await fixture(t);
    const config = writeConfig(t, shopPipeline(f));
    const a = startPredictor(t, config, "A");
    await a.waitFor(JOINED);
    const runId = uniqueName("scale");
    const count = 15_000;
    const producing = produceRun(f.input, count, 2_500, runId);
    await sleep(2_500);
    const b = startPredictor(t, config, "B");
    await b.waitFor(JOINED);
    await producing;
    await assertRunExactlyOnce(t, f.output, runId, count);
    // Both members ended up with partitions after the join.
    assert.match(b.log, JOINED);
  },
);

test(
  "SIGTERM drains in-flight work, commits it and exits 0; a successor finishes the stream",
  { timeout: 300_000 },
  async (t) => {
    const f = await fixture(t);
    const config = writeConfig(t, shopPipeline(f, { maxDelayMs: 20 }));
    const a = startPredictor(t, config, "A");
    await a.waitFor(JOINED);
    const runId = uniqueName("term");
    const count = 10_000;
    const producing = produceRun(f.input, count, 2_500, runId);
    await sleep(2_000);
    a.signal("SIGTERM");
    const exit = await a.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, a.log.slice(-2000));
    assert.match(a.log, /"msg":"predictor stopped"[^\n]*"clean":true/);
    const b = startPredictor(t, config, "B");
    await producing;
    await assertRunExactlyOnce(t, f.output, runId, count);
    await b.waitFor(JOINED);
  },
);

test(
  "a model that does not match its tensor mapping stops the worker before it joins the group",
  { timeout: 120_000 },
  async (t) => {
    const f = await fixture(t);
    const raw = shopPipeline(f) as { models: Array<{ inputs: Array<{ columns: unknown[] }> }> };
    // Seven columns for a model whose input is [batch, 8].
    raw.models[0]?.inputs[0]?.columns.pop();
    const config = writeConfig(t, raw);
    const worker = startPredictor(t, config, "mismatch");
    const exit = await worker.exited;
    assert.equal(exit.code, 1, worker.log.slice(-2000));
    assert.match(worker.log, /MODEL_SIGNATURE_MISMATCH/);
    assert.match(worker.log, /features/);
    assert.doesNotMatch(worker.log, /partitions assigned/);
    const admin = await connectedAdmin(t);
    const { groups } = await admin.describeGroups([f.group]);
    assert.equal(groups[0]?.members.length ?? 0, 0, "the worker never joined the consumer group");
  },
);
