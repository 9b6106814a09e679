// Main-thread side of inference: a fixed number of worker threads, one ONNX Runtime session
// each, fed from a FIFO queue. Keeps the event loop free for Kafka I/O, replaces crashed
// workers, and turns everything that goes wrong into AimassErrors with stable codes.

import { Worker } from "node:worker_threads";
import { AimassError, errorMessage } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import type {
  LoadedModelInfo,
  ModelSpec,
  NamedTensors,
  WireError,
  WorkerMessage,
  WorkerRequest,
} from "./types.js";

export interface InferencePoolOptions {
  size: number;
  logger: Logger;
  /** Per worker: load + validate + warm up. Default 60000. */
  startTimeoutMs?: number;
  /** Runs waiting for a worker before run() rejects. Default 10000. */
  maxQueued?: number;
}

const WORKER_URL = new URL("./worker.js", import.meta.url);
const DEFAULT_START_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_QUEUED = 10_000;
const RESPAWN_MAX_DELAY_MS = 30_000;
/** How long a stopping worker may take to finish its run and exit before it is terminated. */
const STOP_GRACE_MS = 10_000;

interface Job {
  id: number;
  inputs: NamedTensors | undefined; // dropped once sent: its buffers now belong to the worker
  resolve: (outputs: NamedTensors) => void;
  reject: (err: unknown) => void;
  settled: boolean;
  detach: () => void;
}

interface Slot {
  worker: Worker;
  state: "loading" | "ready" | "stopping";
  /** The thread has exited (its 'exit' event fired). */
  exited?: boolean;
  job?: Job | undefined;
  timer: NodeJS.Timeout;
  loaded: () => void;
  loadFailed: (err: AimassError) => void;
}

function fromWire(error: WireError): AimassError {
  return new AimassError(error.code, error.message);
}

function closedError(): AimassError {
  return new AimassError("INFERENCE_POOL_CLOSED", "inference pool is closed");
}

/** Builds the message and its transfer list without detaching anything the caller did not hand over. */
function prepareInputs(inputs: NamedTensors): { message: NamedTensors; transfer: ArrayBuffer[] } {
  const message: NamedTensors = {};
  const transfer = new Set<ArrayBuffer>();
  for (const [name, t] of Object.entries(inputs)) {
    const buffer = t.data.buffer;
    const whole =
      buffer instanceof ArrayBuffer && t.data.byteOffset === 0 && t.data.byteLength === buffer.byteLength;
    // A view into a larger or shared buffer would be cloned whole (or detach bytes that are not
    // the batch's), so send a right-sized copy instead.
    const data = whole ? t.data : t.data.slice();
    transfer.add(data.buffer as ArrayBuffer);
    message[name] = { type: t.type, data, dims: t.dims };
  }
  return { message, transfer: [...transfer] };
}

export class InferencePool {
  private readonly logger: Logger;
  private readonly startTimeoutMs: number;
  private readonly maxQueued: number;
  // Not #private: the crash-recovery test reaches in to kill a worker.
  private readonly slots = new Set<Slot>();
  private readonly queue: Job[] = [];
  private readonly terminations = new Set<Promise<unknown>>();
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
    this.startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
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
    for (const slot of this.slots) if (slot.job !== undefined) busy++;
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
    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(
        new AimassError("INFERENCE_FAILED", `inference queue is full (${this.queue.length} batches waiting)`),
      );
    }
    return new Promise<NamedTensors>((resolve, reject) => {
      const job: Job = {
        id: this.nextId++,
        inputs,
        resolve,
        reject,
        settled: false,
        detach: () => undefined,
      };
      if (signal !== undefined) {
        const onAbort = (): void => this.abort(job, signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        job.detach = () => signal.removeEventListener("abort", onAbort);
      }
      this.queue.push(job);
      this.pump();
    });
  }

  /** Idempotent. Rejects queued and in-flight runs, then terminates every worker. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const timer of this.respawnTimers) clearTimeout(timer);
    this.respawnTimers.clear();
    for (const job of this.queue.splice(0)) this.settle(job, { error: closedError() });
    for (const slot of [...this.slots]) {
      if (slot.job !== undefined) this.settle(slot.job, { error: closedError() });
      if (slot.state === "loading") slot.loadFailed(closedError());
      this.retire(slot);
    }
    await Promise.all(this.terminations);
  }

  /** Starts one worker; resolves when it is ready, rejects (and cleans up) when it is not. */
  private spawn(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const worker = new Worker(WORKER_URL, { workerData: this.spec });
      const timeout = `worker did not load within ${this.startTimeoutMs} ms`;
      const timer = setTimeout(() => this.failLoad(slot, timeout), this.startTimeoutMs);
      const slot: Slot = { worker, timer, state: "loading", loaded: resolve, loadFailed: reject };
      worker.on("message", (message: WorkerMessage) => this.onMessage(slot, message));
      // 'error' is an uncaught exception in the worker; 'exit' follows it. Whichever comes first wins.
      worker.on("error", (err) => this.onGone(slot, `uncaught error: ${errorMessage(err)}`));
      worker.on("exit", (code) => {
        slot.exited = true;
        this.onGone(slot, `exited with code ${code}`);
      });
      this.slots.add(slot);
    });
  }

  private onMessage(slot: Slot, message: WorkerMessage): void {
    switch (message.kind) {
      case "log":
        this.relayLog(message.level, message.msg, message.fields);
        return;
      case "ready":
        return this.onReady(slot, message.info);
      case "load-failed":
        if (this.retire(slot)) slot.loadFailed(fromWire(message.error));
        return;
      case "result": {
        const job = slot.job;
        if (job === undefined || job.id !== message.id) {
          this.logger.warn("inference worker answered a run it was not given", { runId: message.id });
          return;
        }
        slot.job = undefined;
        this.settle(
          job,
          "error" in message ? { error: fromWire(message.error) } : { outputs: message.outputs },
        );
        this.pump();
        return;
      }
    }
  }

  private onReady(slot: Slot, info: LoadedModelInfo): void {
    if (slot.state !== "loading") return;
    clearTimeout(slot.timer);
    // A replacement reloads from disk: refuse to serve a different file under the same name.
    if (this.loadedInfo !== undefined && this.loadedInfo.sha256 !== info.sha256) {
      const change = `${this.loadedInfo.sha256} -> ${info.sha256}`;
      return this.failLoad(
        slot,
        `${this.spec.path} changed on disk since the pool started (sha256 ${change})`,
      );
    }
    this.loadedInfo ??= info;
    slot.state = "ready";
    slot.loaded();
    this.pump();
  }

  private onGone(slot: Slot, reason: string): void {
    if (slot.state === "loading") return this.failLoad(slot, `worker ${reason} while loading`);
    if (!this.retire(slot)) return; // we stopped it, or the other of 'error'/'exit' got here first
    this.logger.error("inference worker crashed; replacing it", { reason, inFlight: slot.job !== undefined });
    if (slot.job !== undefined) {
      const error = new AimassError("INFERENCE_FAILED", `inference worker ${reason} during the run`);
      this.settle(slot.job, { error });
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
        if (![...this.slots].some((s) => s.state === "ready")) {
          // Not the records' fault: a retryable code, so their batch is retried, not DLQ'd.
          const failure = new AimassError(
            "MODEL_UNAVAILABLE",
            `no inference worker available: ${errorMessage(err)}`,
          );
          for (const job of this.queue.splice(0)) this.settle(job, { error: failure });
        }
        const timer = setTimeout(
          () => {
            this.respawnTimers.delete(timer);
            this.replace(attempt + 1);
          },
          Math.min(1000 * 2 ** attempt, RESPAWN_MAX_DELAY_MS),
        );
        timer.unref();
        this.respawnTimers.add(timer);
      },
    );
  }

  private failLoad(slot: Slot, reason: string): void {
    const model = `model ${this.spec.name}@${this.spec.version}`;
    if (this.retire(slot)) slot.loadFailed(new AimassError("MODEL_LOAD_FAILED", `${model}: ${reason}`));
  }

  /** Removes a slot and terminates its thread; false if it was already removed. */
  private retire(slot: Slot): boolean {
    if (!this.slots.delete(slot)) return false;
    clearTimeout(slot.timer);
    slot.state = "stopping";
    const terminated = this.stop(slot).catch(() => undefined);
    this.terminations.add(terminated);
    void terminated.finally(() => this.terminations.delete(terminated));
    return true;
  }

  /**
   * Asks the thread to finish its run and exit, and terminates it only if it has not within
   * STOP_GRACE_MS: terminating a thread while onnxruntime creates a session or runs a batch
   * natively aborts the whole process. A loading thread gets the request once it has loaded
   * (or exits by itself when loading fails).
   */
  private async stop(slot: Slot): Promise<void> {
    if (slot.exited) return;
    const exited = new Promise<void>((r) => slot.worker.once("exit", () => r()));
    slot.worker.postMessage({ kind: "stop" } satisfies WorkerRequest);
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), STOP_GRACE_MS)));
    const outcome = await Promise.race([exited, grace]);
    clearTimeout(timer);
    if (outcome === "timeout") await slot.worker.terminate();
  }

  private pump(): void {
    for (const slot of this.slots) {
      // A loop, not an if: a dispatch that fails leaves the slot idle for the next job.
      while (slot.state === "ready" && slot.job === undefined) {
        const job = this.queue.shift();
        if (job === undefined) return;
        this.dispatch(slot, job);
      }
    }
  }

  private dispatch(slot: Slot, job: Job): void {
    const inputs = job.inputs ?? {};
    job.inputs = undefined;
    try {
      const { message, transfer } = prepareInputs(inputs);
      slot.worker.postMessage({ kind: "run", id: job.id, inputs: message }, transfer);
      slot.job = job;
    } catch (err) {
      const message = `cannot send inputs to the inference worker: ${errorMessage(err)}`;
      this.settle(job, { error: new AimassError("INFERENCE_FAILED", message) });
    }
  }

  private abort(job: Job, reason: unknown): void {
    const queuedAt = this.queue.indexOf(job);
    if (queuedAt >= 0) this.queue.splice(queuedAt, 1);
    // An in-flight run cannot be interrupted inside ORT; its worker stays busy until it answers.
    this.settle(job, { error: reason });
  }

  private settle(job: Job, outcome: { error: unknown } | { outputs: NamedTensors }): void {
    if (job.settled) return;
    job.settled = true;
    job.detach();
    if ("outputs" in outcome) job.resolve(outcome.outputs);
    else job.reject(outcome.error);
  }

  private relayLog(level: "warn" | "info", msg: string, fields: Record<string, unknown>): void {
    // Every worker (and every replacement) falls back the same way: say it once per pool.
    const key = `${level}:${msg}`;
    if (this.workerLogsSeen.has(key)) return;
    this.workerLogsSeen.add(key);
    this.logger[level](msg, fields);
  }
}
