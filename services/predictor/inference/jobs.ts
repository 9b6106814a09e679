// A run as the pool tracks it from run() to its answer: the one way it settles, the bounded
// FIFO it waits in for a free thread, how its inputs cross to a thread, and the errors a run
// fails with when the pool, not the model, is the reason.

import { AimassError } from "../../common/errors.js";
import type { NamedTensors, WireError } from "./types.js";

export interface Job {
  readonly id: number;
  /** Dropped once sent: its buffers then belong to the worker. */
  inputs: NamedTensors | undefined;
  settled: boolean;
  readonly resolve: (outputs: NamedTensors) => void;
  readonly reject: (err: unknown) => void;
  /** Stops listening to the caller's AbortSignal. */
  detach: () => void;
}

export type JobOutcome = { error: unknown } | { outputs: NamedTensors };

export function createJob(
  id: number,
  inputs: NamedTensors,
  settle: { resolve: (outputs: NamedTensors) => void; reject: (err: unknown) => void },
  signal: AbortSignal | undefined,
  onAbort: (job: Job, reason: unknown) => void,
): Job {
  const job: Job = { id, inputs, settled: false, ...settle, detach: () => undefined };
  if (signal !== undefined) {
    const aborted = (): void => onAbort(job, signal.reason);
    signal.addEventListener("abort", aborted, { once: true });
    job.detach = () => signal.removeEventListener("abort", aborted);
  }
  return job;
}

/** Settles a job once; later outcomes (a late answer, a second failure) are ignored. */
export function settle(job: Job, outcome: JobOutcome): void {
  if (job.settled) return;
  job.settled = true;
  job.detach();
  if ("outputs" in outcome) job.resolve(outcome.outputs);
  else job.reject(outcome.error);
}

/** Runs waiting for a free thread, oldest first, at most maxRuns of them. */
export class RunQueue {
  private readonly jobs: Job[] = [];

  constructor(private readonly maxRuns: number) {}

  get length(): number {
    return this.jobs.length;
  }

  get full(): boolean {
    return this.jobs.length >= this.maxRuns;
  }

  push(job: Job): void {
    this.jobs.push(job);
  }

  shift(): Job | undefined {
    return this.jobs.shift();
  }

  remove(job: Job): void {
    const at = this.jobs.indexOf(job);
    if (at >= 0) this.jobs.splice(at, 1);
  }

  /** Empties the queue, failing every run in it with `error`. */
  failAll(error: unknown): void {
    for (const job of this.jobs.splice(0)) settle(job, { error });
  }
}

/** Builds the message and its transfer list without detaching anything the caller did not hand over. */
export function prepareInputs(inputs: NamedTensors): { message: NamedTensors; transfer: ArrayBuffer[] } {
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

/** An error from a worker thread: its prototype was lost on the way, its code was not. */
export function fromWire(error: WireError): AimassError {
  return new AimassError(error.code, error.message);
}

export function closedError(): AimassError {
  return new AimassError("INFERENCE_POOL_CLOSED", "inference pool is closed");
}

/** A run still unanswered when close() gave up waiting for its thread. */
export function stopTimeoutError(stopGraceMs: number): AimassError {
  return new AimassError(
    "SHUTDOWN_TIMEOUT",
    `inference run did not finish within the ${stopGraceMs} ms stop grace; its thread was terminated`,
  );
}
