// InferencePool against the committed ONNX models: results, signature checks, load failures,
// provider fallback, concurrency, and that the main event loop stays free; and against a
// stand-in worker: crash recovery, and close() staying bounded when a run never answers.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isAimassError } from "../../../../services/common/errors.js";
import type { Logger } from "../../../../services/common/logger.js";
import { TUNING } from "../../../../services/common/tuning.js";
import {
  INFERENCE_WORKER_URL,
  InferencePool,
  type InferencePoolOptions,
} from "../../../../services/predictor/inference/pool.js";
import type { ModelSpec, NamedTensors } from "../../../../services/predictor/inference/types.js";
import { STAND_IN_WORKER_URL, STUCK_LOG, standInRun, standInSpec } from "./stand-in.js";

interface LogLine {
  level: string;
  msg: string;
  fields: Record<string, unknown> | undefined;
}

function capture(lines: LogLine[]): Logger {
  const push = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
    lines.push({ level, msg, fields });
  };
  const logger: Logger = {
    debug: push("debug"),
    info: push("info"),
    warn: push("warn"),
    error: push("error"),
    child: () => logger,
  };
  return logger;
}

const quiet = (): Logger => capture([]);

function options(overrides: Partial<InferencePoolOptions> = {}): InferencePoolOptions {
  return { ...TUNING.inference, workerUrl: INFERENCE_WORKER_URL, size: 1, logger: quiet(), ...overrides };
}

function standIn(overrides: Partial<InferencePoolOptions> = {}): InferencePoolOptions {
  return options({ workerUrl: STAND_IN_WORKER_URL, ...overrides });
}

async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function propensity(version: string, overrides: Partial<ModelSpec> = {}): ModelSpec {
  return {
    name: "shop-propensity",
    version,
    path: `models/shop-propensity/${version}/model.onnx`,
    executionProviders: ["cpu"],
    intraOpThreads: 1,
    inputs: [{ name: "features", type: "float32", width: 8 }],
    outputs: [{ name: "propensity", type: "float32", width: 1 }],
    ...overrides,
  };
}

const gather: ModelSpec = {
  name: "test-gather",
  version: "1",
  path: "models/test-gather/1/model.onnx",
  executionProviders: ["cpu"],
  intraOpThreads: 1,
  inputs: [{ name: "idx", type: "int64", width: 1 }],
  outputs: [{ name: "score", type: "float32", width: 1 }],
};

const bench: ModelSpec = {
  name: "bench-mlp",
  version: "1",
  path: "models/bench-mlp/1/model.onnx",
  executionProviders: ["cpu"],
  intraOpThreads: 1,
  inputs: [{ name: "x", type: "float32", width: 64 }],
  outputs: [{ name: "y", type: "float32", width: 1 }],
};

// Moderate values: large ones saturate the sigmoid, where v1 and v2 both round to 1.
const ROWS = [
  [0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.14, 0.16],
  [0.3, -0.2, 0.1, -0.4, 0.2, 0, -0.1, 0.5],
  [-0.5, 0.25, 0, 0.1, -0.2, 0.3, 0.05, -0.15],
];

// A fresh array per call: run() transfers (detaches) the buffers it is given.
function features(rows: number[][]): NamedTensors {
  return { features: { type: "float32", data: Float32Array.from(rows.flat()), dims: [rows.length, 8] } };
}

function floats(outputs: NamedTensors, name: string): number[] {
  const t = outputs[name];
  assert.ok(t !== undefined, `output ${name} present`);
  assert.equal(t.type, "float32");
  return Array.from(t.data as Float32Array);
}

function idx(value: bigint): NamedTensors {
  return { idx: { type: "int64", data: BigInt64Array.from([value]), dims: [1, 1] } };
}

async function rejectsWith(promise: Promise<unknown>, code: string, messageIncludes?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAimassError(err), `expected an AimassError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (messageIncludes !== undefined) assert.match(err.message, new RegExp(messageIncludes));
    return true;
  });
}

test("shop-propensity v1: batch equals row-by-row, outputs in (0,1), sha256 reported", async (t) => {
  const pool = await InferencePool.create(propensity("1"), options());
  t.after(() => pool.close());

  const sha = createHash("sha256").update(readFileSync("models/shop-propensity/1/model.onnx")).digest("hex");
  assert.equal(pool.info.sha256, sha);
  assert.equal(pool.info.executionProvider, "cpu");
  assert.deepEqual(pool.info.inputNames, ["features"]);
  assert.deepEqual(pool.info.outputNames, ["propensity"]);

  const batch = await pool.run(features(ROWS));
  assert.deepEqual(batch.propensity?.dims, [3, 1]);
  const scores = floats(batch, "propensity");
  assert.equal(scores.length, 3);
  for (const [i, row] of ROWS.entries()) {
    const score = scores[i] ?? NaN;
    assert.ok(score > 0 && score < 1, `score ${score} in (0,1)`);
    const [single] = floats(await pool.run(features([row])), "propensity");
    assert.ok(Math.abs((single ?? NaN) - score) < 1e-6, `row ${i}: ${single} vs ${score}`);
  }
});

test("shop-propensity v2 gives different outputs than v1 for the same input", async (t) => {
  const v1 = await InferencePool.create(propensity("1"), options());
  t.after(() => v1.close());
  const v2 = await InferencePool.create(propensity("2"), options());
  t.after(() => v2.close());
  assert.notEqual(v1.info.sha256, v2.info.sha256);
  const a = floats(await v1.run(features(ROWS)), "propensity");
  const b = floats(await v2.run(features(ROWS)), "propensity");
  assert.ok(
    a.some((x, i) => Math.abs(x - (b[i] ?? NaN)) > 1e-4),
    `v1 ${a} vs v2 ${b}`,
  );
});

test("test-gather: int64 input, ORT run errors are INFERENCE_FAILED and the worker survives", async (t) => {
  const pool = await InferencePool.create(gather, options());
  t.after(() => pool.close());
  const [score] = floats(await pool.run(idx(2n)), "score");
  assert.ok(Math.abs((score ?? NaN) - 0.3) < 1e-6);
  await rejectsWith(pool.run(idx(99n)), "INFERENCE_FAILED", "out of data bounds");
  const [again] = floats(await pool.run(idx(0n)), "score");
  assert.ok(Math.abs((again ?? NaN) - 0.1) < 1e-6);
});

test("config/model mismatch is MODEL_SIGNATURE_MISMATCH naming the tensor", async () => {
  const wrongName = propensity("1", { inputs: [{ name: "wrong", type: "float32", width: 8 }] });
  await rejectsWith(InferencePool.create(wrongName, options()), "MODEL_SIGNATURE_MISMATCH", '"wrong"');
  const wrongWidth = propensity("1", { inputs: [{ name: "features", type: "float32", width: 7 }] });
  await rejectsWith(
    InferencePool.create(wrongWidth, options({ size: 2 })),
    "MODEL_SIGNATURE_MISMATCH",
    '"features".*7',
  );
  const wrongType = propensity("1", { outputs: [{ name: "propensity", type: "int64", width: 1 }] });
  await rejectsWith(
    InferencePool.create(wrongType, options()),
    "MODEL_SIGNATURE_MISMATCH",
    '"propensity".*int64',
  );
});

test("corrupt or missing model file is MODEL_LOAD_FAILED", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "aimass-pool-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const corrupt = join(dir, "model.onnx");
  const bytes = randomBytes(4096);
  bytes[0] = 0; // protobuf field number 0 is invalid, so the random bytes can never parse
  writeFileSync(corrupt, bytes);
  await rejectsWith(InferencePool.create(propensity("1", { path: corrupt }), options()), "MODEL_LOAD_FAILED");
  const missing = join(dir, "nope.onnx");
  await rejectsWith(
    InferencePool.create(propensity("1", { path: missing }), options()),
    "MODEL_LOAD_FAILED",
    "nope.onnx",
  );
});

test("an unavailable execution provider falls back to cpu with one warn line", async (t) => {
  const lines: LogLine[] = [];
  const spec = propensity("1", { executionProviders: ["cuda", "cpu"] });
  const pool = await InferencePool.create(spec, options({ size: 2, logger: capture(lines) }));
  t.after(() => pool.close());
  assert.equal(pool.info.executionProvider, "cpu");
  const warns = lines.filter((l) => l.level === "warn");
  assert.equal(warns.length, 1, JSON.stringify(warns));
  assert.match(warns[0]?.msg ?? "", /cuda/);
  assert.equal(warns[0]?.fields?.provider, "cuda");
  assert.equal(typeof warns[0]?.fields?.reason, "string");
});

test("concurrent runs on a pool of 2; close is idempotent and rejects later runs", async (t) => {
  const pool = await InferencePool.create(propensity("1"), options({ size: 2 }));
  t.after(() => pool.close());
  assert.equal(pool.size, 2);
  const expected = floats(await pool.run(features(ROWS)), "propensity");
  const runs = Array.from({ length: 20 }, () => pool.run(features(ROWS)));
  assert.ok(pool.busyWorkers <= 2);
  assert.ok(pool.busyWorkers + pool.queued === 20, `busy ${pool.busyWorkers} queued ${pool.queued}`);
  for (const outputs of await Promise.all(runs)) assert.deepEqual(floats(outputs, "propensity"), expected);
  assert.equal(pool.busyWorkers, 0);
  assert.equal(pool.queued, 0);

  // Both threads are idle, so the first two start at once and the other three wait in the queue.
  const inFlight = Array.from({ length: 5 }, () => pool.run(features(ROWS)));
  const settled = Promise.allSettled(inFlight);
  await Promise.all([pool.close(), pool.close()]);
  const results = await settled;
  // Runs under way finish within the stop grace and keep their results; queued ones fail.
  for (const result of results.slice(0, 2)) {
    assert.equal(result.status, "fulfilled");
    if (result.status === "fulfilled") assert.deepEqual(floats(result.value, "propensity"), expected);
  }
  for (const result of results.slice(2)) {
    assert.equal(result.status, "rejected");
    if (result.status === "rejected")
      assert.equal(isAimassError(result.reason, "INFERENCE_POOL_CLOSED"), true);
  }
  await pool.close();
  await rejectsWith(pool.run(features(ROWS)), "INFERENCE_POOL_CLOSED");
});

test("an aborted queued run rejects with the signal's reason and leaves the queue", async (t) => {
  const pool = await InferencePool.create(propensity("1"), options({ maxQueuedRuns: 2 }));
  t.after(() => pool.close());
  const first = pool.run(features(ROWS));
  const controller = new AbortController();
  const aborted = pool.run(features(ROWS), controller.signal);
  const third = pool.run(features(ROWS));
  await rejectsWith(pool.run(features(ROWS)), "INFERENCE_FAILED", "queue is full");
  controller.abort(new Error("caller gave up"));
  await assert.rejects(aborted, /caller gave up/);
  assert.equal(pool.queued, 1);
  await Promise.all([first, third]);
});

test("a crashed worker fails its run with INFERENCE_FAILED and is replaced", async (t) => {
  const lines: LogLine[] = [];
  const pool = await InferencePool.create(standInSpec(), standIn({ logger: capture(lines) }));
  t.after(() => pool.close());
  await rejectsWith(pool.run(standInRun("crash")), "INFERENCE_FAILED", "exited with code 7");
  // Queued until the replacement has loaded.
  const outputs = await pool.run(standInRun("echo"));
  assert.deepEqual(floats(outputs, "x"), [0]);
  assert.equal(lines.filter((l) => l.level === "error").length, 1, JSON.stringify(lines));
  assert.ok(lines.some((l) => l.msg === "inference worker replaced"));
});

test("close() with a run that never answers terminates the thread after the grace", async (t) => {
  const lines: LogLine[] = [];
  const pool = await InferencePool.create(
    standInSpec(),
    standIn({ logger: capture(lines), stopGraceMs: 100 }),
  );
  t.after(() => pool.close());
  const run = rejectsWith(pool.run(standInRun("ignore")), "SHUTDOWN_TIMEOUT", "100 ms stop grace");
  const queued = rejectsWith(pool.run(standInRun("echo")), "INFERENCE_POOL_CLOSED");
  await until("the run to reach its thread", () => lines.some((l) => l.msg === STUCK_LOG));
  await pool.close();
  await Promise.all([run, queued]);
  assert.ok(!lines.some((l) => /native call/.test(l.msg)), JSON.stringify(lines));
});

test(
  "close() stays bounded when a thread is stuck in a native call that terminate() cannot interrupt",
  { timeout: 60_000 },
  async (t) => {
    const release = join(tmpdir(), `aimass-stand-in-${randomUUID()}`);
    // The blocked thread (and so this test process) can only end once its native call returns.
    t.after(() => writeFileSync(release, ""));
    const lines: LogLine[] = [];
    const grace = { stopGraceMs: 100, terminateWaitMs: 100 };
    const pool = await InferencePool.create(
      standInSpec(release),
      standIn({ logger: capture(lines), ...grace }),
    );
    const run = rejectsWith(pool.run(standInRun("blockNatively")), "SHUTDOWN_TIMEOUT");
    await until("the run to reach its thread", () => lines.some((l) => l.msg === STUCK_LOG));
    const started = performance.now();
    // Resolves although the thread is still blocked: it is released only after this returns.
    await pool.close();
    const tookMs = performance.now() - started;
    await run;
    const stuck = lines.filter((l) => l.level === "warn" && /native call/.test(l.msg));
    assert.equal(stuck.length, 1, JSON.stringify(lines));
    assert.equal(stuck[0]?.fields?.waitedMs, 200);
    // Far below the production grace: close() used the bound it was given, not a default.
    assert.ok(tookMs < TUNING.inference.stopGraceMs, `close took ${tookMs.toFixed(0)} ms`);
  },
);

test("the main event loop keeps ticking while batches run", async (t) => {
  const pool = await InferencePool.create(bench, options({ size: 2 }));
  t.after(() => pool.close());
  const batch = (): NamedTensors => ({
    x: { type: "float32", data: new Float32Array(512 * 64).fill(0.5), dims: [512, 64] },
  });

  let ticks = 0;
  let last = performance.now();
  let maxGap = 0;
  const interval = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 5);
  const started = performance.now();
  let runs = 0;
  try {
    // Long enough for timers to matter, however fast the machine: at least 40 batches and 300 ms.
    while (runs < 40 || performance.now() - started < 300) {
      const outputs = await Promise.all(
        [batch(), batch(), batch(), batch()].map((inputs) => pool.run(inputs)),
      );
      for (const out of outputs) assert.deepEqual(out.y?.dims, [512, 1]);
      runs += outputs.length;
    }
  } finally {
    clearInterval(interval);
  }
  const total = performance.now() - started;
  assert.ok(ticks >= 3, `only ${ticks} ticks in ${total.toFixed(0)} ms of inference`);
  assert.ok(maxGap < total, `max gap ${maxGap.toFixed(0)} ms vs ${total.toFixed(0)} ms total`);
});
