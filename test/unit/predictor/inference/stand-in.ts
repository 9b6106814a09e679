// What pool tests need to drive the stand-in worker (stand-in-worker.ts): its URL, a spec for
// it, and runs that tell it how to behave.

import type { ModelSpec, NamedTensors } from "../../../../services/predictor/inference/types.js";

export const STAND_IN_WORKER_URL = new URL("./stand-in-worker.js", import.meta.url);

/** A run's first input value: what the stand-in does with that run. */
export const Behaviour = {
  /** Answers with its input. */
  echo: 0,
  /** Ends the thread (exit code 7) without answering, as a crash would. */
  crash: 1,
  /** Never answers, and ignores the stop request; the thread stays idle in JavaScript. */
  ignore: 2,
  /** Blocks the thread in a native call (as a stuck onnxruntime run would) until `release` exists. */
  blockNatively: 3,
} as const;

export type BehaviourName = keyof typeof Behaviour;

/** The stand-in's log line once a run has reached it and it is about to misbehave. */
export const STUCK_LOG = "stand-in: run accepted, not answering";

/** `release`: a file path that does not exist yet; creating it unblocks blockNatively. */
export function standInSpec(release = "unused"): ModelSpec {
  return {
    name: "stand-in",
    version: "1",
    path: release,
    executionProviders: ["cpu"],
    intraOpThreads: 1,
    inputs: [{ name: "x", type: "float32", width: 1 }],
    outputs: [{ name: "x", type: "float32", width: 1 }],
  };
}

export function standInRun(behaviour: BehaviourName): NamedTensors {
  return { x: { type: "float32", data: Float32Array.of(Behaviour[behaviour]), dims: [1, 1] } };
}
