// Runs predictor workers as real OS processes (`aimass predict`), so tests can kill -9,
// SIGSTOP/SIGCONT and SIGTERM them like an orchestrator would.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { TestContext } from "node:test";
import { defer } from "./stack.js";

const REPO = resolve(import.meta.dirname, "../../..");

export interface TopicsFixture {
  input: string;
  output: string;
  dlq: string;
  group: string;
}

/** A shop pipeline config (raw object) on the given topics, with test-friendly timeouts. */
export function shopPipeline(
  f: TopicsFixture,
  overrides: { maxBatchSize?: number; maxDelayMs?: number } = {},
): object {
  return {
    pipeline: { name: "test", groupId: f.group },
    input: { topic: f.input, partitions: 6 },
    output: { topic: f.output, partitions: 6 },
    dlq: { topic: f.dlq, partitions: 6 },
    routing: { field: "type", routes: { view: "shop", cart: "shop", purchase: "shop" } },
    models: [
      {
        name: "shop",
        version: "1",
        path: join(REPO, "models/shop-propensity/1/model.onnx"),
        batching: { maxBatchSize: overrides.maxBatchSize ?? 128, maxDelayMs: overrides.maxDelayMs ?? 5 },
        inputs: [
          {
            name: "features",
            columns: [
              { field: "price", transform: "log1p" },
              { field: "quantity", transform: "log1p" },
              { field: "type", oneHot: ["view", "cart", "purchase"] },
              { field: "ts", transform: "hourSin" },
              { field: "ts", transform: "hourCos" },
              { constant: 1 },
            ],
          },
        ],
        outputs: [{ name: "propensity", field: "propensity" }],
      },
    ],
    processing: {
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 500,
      shutdownGraceMs: 15_000,
      transactionTimeoutMs: 30_000,
      maxRecordsPerTransaction: 500,
    },
  };
}

export function writeConfig(t: Pick<TestContext, "after">, config: object): string {
  const dir = mkdtempSync(join(tmpdir(), "aimass-test-"));
  defer(t, () => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "pipeline.json");
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

export class PredictorProcess {
  readonly child: ChildProcess;
  private output = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    configPath: string,
    readonly name: string,
  ) {
    this.child = spawn(process.execPath, [join(REPO, "bin/aimass.js"), "predict", "--config", configPath], {
      cwd: REPO,
      env: { ...process.env, AIMASS_LOG_LEVEL: process.env.AIMASS_TEST_WORKER_LOG_LEVEL ?? "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const collect = (b: Buffer) => {
      this.output += b.toString();
      if (process.env.AIMASS_TEST_ECHO_WORKERS) process.stderr.write(`[${name}] ${b.toString()}`);
    };
    this.child.stdout?.on("data", collect);
    this.child.stderr?.on("data", collect);
    this.exited = new Promise((r) => this.child.once("exit", (code, signal) => r({ code, signal })));
  }

  get log(): string {
    return this.output;
  }

  /** Resolves once the worker has joined the group with partitions (log line). */
  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.output)) {
      if (this.child.exitCode !== null)
        throw new Error(`${this.name} exited early:\n${this.output.slice(-3000)}`);
      if (Date.now() > deadline)
        throw new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms:\n${this.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }

  /** Registers a kill -9 at test end, whatever happened. */
  static start(t: Pick<TestContext, "after">, configPath: string, name: string): PredictorProcess {
    const p = new PredictorProcess(configPath, name);
    defer(t, async () => {
      p.signal("SIGCONT");
      p.signal("SIGKILL");
      await p.exited;
    });
    return p;
  }
}
