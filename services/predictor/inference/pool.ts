// Main-thread side of inference: a fixed number of worker threads, one ONNX Runtime session
// each, fed from a bounded FIFO queue. Keeps the event loop free for Kafka I/O, replaces
// crashed threads, closes within a bound, and turns everything that goes wrong into
// AimassErrors with stable codes.

import { AimassError, errorMessage } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { closedError, createJob, fromWire, RunQueue, settle, stopTimeoutError, type Job } from "./jobs.js";
import type { LoadedModelInfo, ModelSpec, NamedTensors, WorkerMessage } from "./types.js";
import { WorkerSlot, type StopOutcome } from "./worker-slot.js";

export { INFERENCE_WORKER_URL } from "./worker-slot.js";

/** Resolved options: callers pass TUNING.inference (tests pass smaller values). */
export interface InferencePoolOptions {
  /** Worker threads, each with its own session. */
  size: number;
  logger: Logger;
  /** The worker script: INFERENCE_WORKER_URL, or a stand-in speaking its protocol in tests. */
  workerUrl: URL;
  /** Per thread: load + validate + warm up. */
  startTimeoutMs: number;
  /** Runs waiting for a thread beyond this are refused. */
  maxQueuedRuns: number;
  /** Backoff cap between attempts to replace a crashed thread. */
  respawnMaxDelayMs: number;
  /** close() lets a run under way finish for this long before terminating its thread. */
  stopGraceMs: number;
  /** ...and then waits this long for the termination to take effect. */
  terminateWaitMs: number;
}

export class InferencePool {
  private readonly logger: Logger;
  private readonly slots = new Set<WorkerSlot>();
  private readonly queue: RunQueue;
  private readonly stopping = new Set<Promise<void>>();
  private readonly respawnTimers = new Set<NodeJS.Timeout>();
  private readonly workerLogsSeen = new Set<string>();
  private loadedInfo: LoadedModelInfo | undefined;
  private nextId = 1;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly spec: ModelSpec,
    private readonly options: InferencePoolOptions,
  ) {
    this.logger = options.logger.child({ model: spec.name, modelVersion: spec.version });
    this.queue = new RunQueue(options.maxQueuedRuns);
  }

  /** Resolves once every worker has loaded, validated and warmed up the model. */
  static async create(spec: ModelSpec, options: InferencePoolOptions): Promise<InferencePool> {
    if (!Number.isInteger(options.size) || options.size < 1) {
      throw new AimassError(
        "CONFIG_INVALID",
        `inference pool size must be a positive integer, got ${options.size}`,
      );
    }
    const pool = new InferencePool(spec, options);
    // Every spawn settles before a failure closes the pool: terminating a worker thread while
    // onnxruntime is still creating its session aborts the whole process (a Napi::Error thrown
    // during the thread's teardown), which a bad model deployed live must never do.
    const spawned = await Promise.allSettled(Array.from({ length: options.size }, () => pool.spawn()));
    const failed = spawned.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed !== undefined) {
      await pool.close();
      throw failed.reason;
    }
    pool.logger.info("inference pool ready", { ...pool.info, size: options.size });
    return pool;
  }

  get info(): LoadedModelInfo {
    if (this.loadedInfo === undefined) throw new Error("InferencePool.info read before the pool was created");
    return this.loadedInfo;
  }

  get size(): number {
    return this.options.size;
  }

  get busyWorkers(): number {
    let busy = 0;
    for (const slot of this.slots) if (slot.busy) busy++;
    return busy;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Runs one batch. The inputs' buffers are transferred to a worker: do not reuse them. */
  run(inputs: NamedTensors, signal?: AbortSignal): Promise<NamedTensors> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    // Callers bound their in-flight batches; reaching this means that bound is missing.
    if (this.queue.full) {
      return Promise.reject(
        new AimassError("INFERENCE_FAILED", `inference queue is full (${this.queue.length} batches waiting)`),
      );
    }
    return new Promise<NamedTensors>((resolve, reject) => {
      const job = createJob(this.nextId++, inputs, { resolve, reject }, signal, (j, reason) =>
        this.abort(j, reason),
      );
      this.queue.push(job);
      this.pump();
    });
  }

  /**
   * Idempotent. Refuses new runs and fails queued ones with INFERENCE_POOL_CLOSED; a run under
   * way gets stopGraceMs to answer, then fails with SHUTDOWN_TIMEOUT as its thread is
   * terminated. Resolves within stopGraceMs + terminateWaitMs.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const timer of this.respawnTimers) clearTimeout(timer);
    this.respawnTimers.clear();
    this.queue.failAll(closedError());
    for (const slot of [...this.slots]) {
      if (slot.loading) slot.failLoading(closedError());
      this.retire(slot);
    }
    await Promise.all(this.stopping);
  }

  /** Starts one worker; resolves when it is ready, rejects (and cleans up) when it is not. */
  private spawn(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const { workerUrl, startTimeoutMs } = this.options;
      const slot: WorkerSlot = new WorkerSlot(workerUrl, this.spec, startTimeoutMs, {
        loaded: resolve,
        loadFailed: reject,
        message: (message) => this.onMessage(slot, message),
        gone: (reason) => this.onGone(slot, reason),
        loadTimedOut: () => this.failLoad(slot, `worker did not load within ${startTimeoutMs} ms`),
      });
      this.slots.add(slot);
    });
  }

  private onMessage(slot: WorkerSlot, message: WorkerMessage): void {
    switch (message.kind) {
      case "log":
        this.relayLog(message.level, message.msg, message.fields);
        return;
      case "ready":
        return this.onReady(slot, message.info);
      case "load-failed":
        if (this.retire(slot)) slot.failLoading(fromWire(message.error));
        return;
      case "result": {
        const job = slot.answered(message.id);
        if (job === undefined) {
          this.logger.warn("inference worker answered a run it was not given", { runId: message.id });
          return;
        }
        settle(job, "error" in message ? { error: fromWire(message.error) } : { outputs: message.outputs });
        this.pump();
        return;
      }
    }
  }

  private onReady(slot: WorkerSlot, info: LoadedModelInfo): void {
    if (!slot.loading) return;
    // A replacement reloads from disk: refuse to serve a different file under the same name.
    if (this.loadedInfo !== undefined && this.loadedInfo.sha256 !== info.sha256) {
      const change = `${this.loadedInfo.sha256} -> ${info.sha256}`;
      return this.failLoad(
        slot,
        `${this.spec.path} changed on disk since the pool started (sha256 ${change})`,
      );
    }
    this.loadedInfo ??= info;
    slot.markLoaded();
    this.pump();
  }

  private onGone(slot: WorkerSlot, reason: string): void {
    if (slot.loading) return this.failLoad(slot, `worker ${reason} while loading`);
    if (!this.retire(slot)) return; // we stopped it, or the other of 'error'/'exit' got here first
    const job = slot.take();
    this.logger.error("inference worker crashed; replacing it", { reason, inFlight: job !== undefined });
    if (job !== undefined) {
      const error = new AimassError("INFERENCE_FAILED", `inference worker ${reason} during the run`);
      settle(job, { error });
    }
    this.replace(0);
  }

  /** Loads a new worker in place of a crashed one, backing off while loading keeps failing. */
  private replace(attempt: number): void {
    if (this.closing !== undefined) return;
    this.spawn().then(
      () => this.logger.info("inference worker replaced", { attempt }),
      (err: unknown) => {
        if (this.closing !== undefined) return;
        this.logger.error("cannot replace inference worker", { err, attempt });
        // With no worker left, queued runs would wait for a recovery that may never come.
        if (![...this.slots].some((s) => s.ready)) {
          // Not the records' fault: a retryable code, so their batch is retried, not DLQ'd.
          const message = `no inference worker available: ${errorMessage(err)}`;
          this.queue.failAll(new AimassError("MODEL_UNAVAILABLE", message));
        }
        const timer = setTimeout(
          () => {
            this.respawnTimers.delete(timer);
            this.replace(attempt + 1);
          },
          Math.min(1000 * 2 ** attempt, this.options.respawnMaxDelayMs),
        );
        timer.unref();
        this.respawnTimers.add(timer);
      },
    );
  }

  private failLoad(slot: WorkerSlot, reason: string): void {
    const model = `model ${this.spec.name}@${this.spec.version}`;
    if (this.retire(slot)) slot.failLoading(new AimassError("MODEL_LOAD_FAILED", `${model}: ${reason}`));
  }

  /** Removes a slot and stops its thread; false if it was already removed. */
  private retire(slot: WorkerSlot): boolean {
    if (!this.slots.delete(slot)) return false;
    const { stopGraceMs, terminateWaitMs } = this.options;
    const stopped = slot
      .stop(stopGraceMs, terminateWaitMs)
      .then((outcome) => this.stopped(slot, outcome))
      .catch((err: unknown) => this.logger.warn("stopping an inference thread failed", { err }));
    this.stopping.add(stopped);
    void stopped.finally(() => this.stopping.delete(stopped));
    return true;
  }

  /** A thread is gone: fail the run it never answered, and say so if it could not be ended. */
  private stopped(slot: WorkerSlot, outcome: StopOutcome): void {
    if (outcome === "stuck") {
      this.logger.warn("inference thread still inside a native call after terminate; not waiting for it", {
        waitedMs: this.options.stopGraceMs + this.options.terminateWaitMs,
      });
    }
    const job = slot.take();
    if (job === undefined) return;
    settle(job, { error: outcome === "exited" ? closedError() : stopTimeoutError(this.options.stopGraceMs) });
  }

  private pump(): void {
    for (const slot of this.slots) {
      // A loop, not an if: a dispatch that fails leaves the slot idle for the next job.
      while (slot.idle) {
        const job = this.queue.shift();
        if (job === undefined) return;
        this.dispatch(slot, job);
      }
    }
  }

  private dispatch(slot: WorkerSlot, job: Job): void {
    try {
      slot.send(job);
    } catch (err) {
      const message = `cannot send inputs to the inference worker: ${errorMessage(err)}`;
      settle(job, { error: new AimassError("INFERENCE_FAILED", message) });
    }
  }

  private abort(job: Job, reason: unknown): void {
    this.queue.remove(job);
    // An in-flight run cannot be interrupted inside ORT; its worker stays busy until it answers.
    settle(job, { error: reason });
  }

  private relayLog(level: "warn" | "info", msg: string, fields: Record<string, unknown>): void {
    // Every worker (and every replacement) falls back the same way: say it once per pool.
    const key = `${level}:${msg}`;
    if (this.workerLogsSeen.has(key)) return;
    this.workerLogsSeen.add(key);
    this.logger[level](msg, fields);
  }
}
