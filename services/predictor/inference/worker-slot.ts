// One inference thread: starts the worker script, carries the one run the thread is working
// on, and stops the thread within a bound. What the thread's messages mean is the pool's call.

import { Worker } from "node:worker_threads";
import { errorMessage, type AimassError } from "../../common/errors.js";
import { prepareInputs, type Job } from "./jobs.js";
import type { ModelSpec, WorkerMessage, WorkerRequest } from "./types.js";

/** The worker script that serves a model with onnxruntime (inference/worker.ts). */
export const INFERENCE_WORKER_URL = new URL("./worker.js", import.meta.url);

export interface SlotEvents {
  /** The pool accepted the thread's model: its spawn resolves. */
  loaded(): void;
  /** Loading failed or was cut short: its spawn rejects. */
  loadFailed(err: AimassError): void;
  message(message: WorkerMessage): void;
  /** An uncaught error or the thread's exit. Both can fire; the pool acts on the first. */
  gone(reason: string): void;
  loadTimedOut(): void;
}

/**
 * How stop() ended. "stuck": the thread was terminated but is still inside a native call
 * (terminate() only takes effect when the thread next runs JavaScript); it is unref'd and left
 * to end with its call or with the process.
 */
export type StopOutcome = "exited" | "terminated" | "stuck";

export class WorkerSlot {
  private stateValue: "loading" | "ready" | "stopping" = "loading";
  private current: Job | undefined;
  private readonly worker: Worker;
  private hasExited = false;
  private readonly exit: Promise<void>;
  private readonly startTimer: NodeJS.Timeout;

  constructor(
    workerUrl: URL,
    spec: ModelSpec,
    startTimeoutMs: number,
    private readonly events: SlotEvents,
  ) {
    this.worker = new Worker(workerUrl, { workerData: spec });
    this.startTimer = setTimeout(() => events.loadTimedOut(), startTimeoutMs);
    // Registered first, so `hasExited` is set before the pool hears of the exit.
    this.exit = new Promise((resolve) =>
      this.worker.once("exit", () => {
        this.hasExited = true;
        resolve();
      }),
    );
    this.worker.on("message", (message: WorkerMessage) => events.message(message));
    this.worker.on("error", (err) => events.gone(`uncaught error: ${errorMessage(err)}`));
    this.worker.on("exit", (code) => events.gone(`exited with code ${code}`));
  }

  get loading(): boolean {
    return this.stateValue === "loading";
  }

  get ready(): boolean {
    return this.stateValue === "ready";
  }

  /** Ready and not working on a run. */
  get idle(): boolean {
    return this.stateValue === "ready" && this.current === undefined;
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  markLoaded(): void {
    clearTimeout(this.startTimer);
    this.stateValue = "ready";
    this.events.loaded();
  }

  failLoading(err: AimassError): void {
    clearTimeout(this.startTimer);
    this.events.loadFailed(err);
  }

  /** Hands the job's inputs to the thread; throws (the job not taken) if they cannot be sent. */
  send(job: Job): void {
    const inputs = job.inputs ?? {};
    job.inputs = undefined;
    const { message, transfer } = prepareInputs(inputs);
    this.worker.postMessage({ kind: "run", id: job.id, inputs: message } satisfies WorkerRequest, transfer);
    this.current = job;
  }

  /** The run this answer is for, no longer the thread's; undefined if the thread was not given it. */
  answered(id: number): Job | undefined {
    if (this.current?.id !== id) return undefined;
    return this.take();
  }

  /** The run under way, if any, taken from the thread (which crashed or was stopped). */
  take(): Job | undefined {
    const job = this.current;
    this.current = undefined;
    return job;
  }

  /**
   * Asks the thread to finish its run and exit, and terminates it only if it has not within
   * graceMs: terminating a thread while onnxruntime creates a session or runs a batch natively
   * aborts the whole process. A loading thread gets the request once it has loaded (or exits by
   * itself when loading fails). Resolves within graceMs + terminateWaitMs whatever the thread does.
   */
  async stop(graceMs: number, terminateWaitMs: number): Promise<StopOutcome> {
    this.stateValue = "stopping";
    clearTimeout(this.startTimer);
    if (this.hasExited) return "exited";
    this.worker.postMessage({ kind: "stop" } satisfies WorkerRequest);
    if (await settlesWithin(this.exit, graceMs)) return "exited";
    if (await settlesWithin(this.worker.terminate(), terminateWaitMs)) return "terminated";
    this.worker.unref();
    return "stuck";
  }
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const settled = promise.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, expired]);
  } finally {
    clearTimeout(timer);
  }
}
