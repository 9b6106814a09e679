// One served model version: its inference pool, its micro-batcher, and the row <-> tensor
// mapping. Inference errors are isolated per record by bisecting a failed batch, so a
// record that makes the model throw reaches the DLQ and its batch-mates still get scored.
import { isAimassError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { ModelConfig } from "../common/config/schema.js";
import { TUNING } from "../common/tuning.js";
import { INFERENCE_WORKER_URL, InferencePool } from "./inference/pool.js";
import type { LoadedModelInfo, ModelSpec } from "./inference/types.js";
import { MicroBatcher, type Outcome } from "./batcher.js";
import { fromTensors, inputWidth, toTensors, type Row } from "./tensorize.js";

export type ModelOutput = Record<string, unknown>;

export interface ModelRuntimeHooks {
  onBatchClosed?: (
    model: ModelConfig,
    info: { size: number; reason: "size" | "delay" | "flush"; queueWaitMs: number },
  ) => void;
  onInference?: (model: ModelConfig, info: { size: number; ms: number; ok: boolean }) => void;
}

export function modelSpec(model: ModelConfig): ModelSpec {
  return {
    name: model.name,
    version: model.version,
    path: model.path,
    executionProviders: model.executionProviders,
    intraOpThreads: model.intraOpThreads,
    inputs: model.inputs.map((i) => ({ name: i.name, type: i.type, width: inputWidth(i) })),
    outputs: model.outputs.map((o) => ({ name: o.name, type: "float32", width: o.width })),
  };
}

export class ModelRuntime {
  private readonly batcher: MicroBatcher<Row, ModelOutput>;

  private constructor(
    readonly config: ModelConfig,
    private readonly pool: InferencePool,
    private readonly hooks: ModelRuntimeHooks,
  ) {
    this.batcher = new MicroBatcher<Row, ModelOutput>({
      maxBatchSize: config.batching.maxBatchSize,
      maxDelayMs: config.batching.maxDelayMs,
      // Two batches per worker thread: one running, one ready to start as soon as it ends.
      maxInFlightBatches: config.poolSize * 2,
      run: (rows) => this.runIsolated(rows),
      onBatch: (info) => hooks.onBatchClosed?.(config, info),
    });
  }

  /** Loads, validates and warms the model in every pool thread before returning. */
  static async load(
    config: ModelConfig,
    logger: Logger,
    hooks: ModelRuntimeHooks = {},
  ): Promise<ModelRuntime> {
    const pool = await InferencePool.create(modelSpec(config), {
      ...TUNING.inference,
      workerUrl: INFERENCE_WORKER_URL,
      size: config.poolSize,
      logger: logger.child({ model: config.name, version: config.version }),
    });
    return new ModelRuntime(config, pool, hooks);
  }

  get info(): LoadedModelInfo {
    return this.pool.info;
  }

  /** Pool utilisation, labelled "<model>@<version>" for the pool gauges. */
  get poolSample(): { model: string; busy: number; size: number; queued: number } {
    return {
      model: `${this.config.name}@${this.config.version}`,
      busy: this.pool.busyWorkers,
      size: this.pool.size,
      queued: this.pool.queued + this.batcher.queued,
    };
  }

  predict(row: Row): Promise<Outcome<ModelOutput>> {
    return this.batcher.submit(row);
  }

  flush(): void {
    this.batcher.flush();
  }

  async close(): Promise<void> {
    this.batcher.stop();
    await this.pool.close();
  }

  private async runIsolated(rows: Row[]): Promise<Outcome<ModelOutput>[]> {
    const started = performance.now();
    try {
      const outputs = await this.pool.run(toTensors(this.config, rows));
      this.hooks.onInference?.(this.config, { size: rows.length, ms: performance.now() - started, ok: true });
      return fromTensors(this.config, outputs, rows.length).map((value) => ({ ok: true, value }));
    } catch (error) {
      this.hooks.onInference?.(this.config, {
        size: rows.length,
        ms: performance.now() - started,
        ok: false,
      });
      if (!isAimassError(error, "INFERENCE_FAILED")) throw error;
      if (rows.length === 1) return [{ ok: false, error }];
      // Bisect: the halves that run cleanly keep their results; the bad record is found in
      // log2(batch) extra runs.
      const mid = rows.length >> 1;
      const [left, right] = await Promise.all([
        this.runIsolated(rows.slice(0, mid)),
        this.runIsolated(rows.slice(mid)),
      ]);
      return [...left, ...right];
    }
  }
}
