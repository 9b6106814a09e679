// Types shared by the inference pool (main thread) and its workers: what a model promises,
// the tensors that cross the thread boundary, and the messages the two sides exchange.

import type { ErrorCode } from "../../common/errors.js";

export type TensorType = "float32" | "int64";

export interface TensorData {
  type: TensorType;
  data: Float32Array | BigInt64Array;
  dims: number[];
}

export type NamedTensors = Record<string, TensorData>;

/** One input or output as the pipeline config promises it: a [batch, width] tensor. */
export interface ModelIoSpec {
  name: string;
  type: TensorType;
  width: number;
}

export interface ModelSpec {
  name: string;
  version: string;
  /** Path to model.onnx, absolute or relative to the process's cwd. */
  path: string;
  /** In order of preference, e.g. ["cuda", "cpu"]; "cpu" always works. */
  executionProviders: string[];
  /** Intra-op threads per session (each worker owns one session). */
  intraOpThreads: number;
  inputs: ModelIoSpec[];
  outputs: ModelIoSpec[];
}

export interface LoadedModelInfo {
  name: string;
  version: string;
  sha256: string;
  executionProvider: string;
  inputNames: string[];
  outputNames: string[];
}

/** An error as it crosses the thread boundary: prototypes are lost, the code is not. */
export interface WireError {
  code: ErrorCode;
  message: string;
}

/** Main thread -> worker. */
export interface RunRequest {
  kind: "run";
  id: number;
  inputs: NamedTensors;
}

/** Main thread -> worker: finish the run under way, release the session, end the thread. */
export interface StopRequest {
  kind: "stop";
}

export type WorkerRequest = RunRequest | StopRequest;

/** Worker -> main thread. */
export type WorkerMessage =
  | { kind: "log"; level: "warn" | "info"; msg: string; fields: Record<string, unknown> }
  | { kind: "ready"; info: LoadedModelInfo }
  | { kind: "load-failed"; error: WireError }
  | { kind: "result"; id: number; outputs: NamedTensors }
  | { kind: "result"; id: number; error: WireError };
