// Worker-thread entry: owns one ONNX Runtime session for one model and serves run requests.
// onnxruntime-node's run() blocks its calling thread for the whole inference, so sessions live
// here and never on the main thread, where they would stall Kafka I/O.

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { resolve } from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { AimassError, errorMessage, isAimassError, type ErrorCode } from "../../common/errors.js";
import type {
  ModelIoSpec,
  ModelSpec,
  NamedTensors,
  RunRequest,
  WorkerRequest,
  TensorData,
  WireError,
  WorkerMessage,
} from "./types.js";

// Batch 1 and a typical micro-batch: the first runs allocate arenas and pick kernels, so the
// first real batch should not pay for that.
const WARMUP_BATCHES = [1, 32];
// Run errors go back to the caller with ORT's message; ORT's own stderr copy is noise.
const RUN_OPTIONS: InferenceSession.RunOptions = { logSeverityLevel: 4 };

if (parentPort === null) throw new Error("inference/worker.js must be started as a worker_thread");
const port = parentPort;
const spec = workerData as ModelSpec;
const model = `model ${spec.name}@${spec.version}`;
const outputNames = spec.outputs.map((io) => io.name);

function post(message: WorkerMessage, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function toWire(err: unknown, fallback: ErrorCode): WireError {
  return isAimassError(err)
    ? { code: err.code, message: err.message }
    : { code: fallback, message: errorMessage(err) };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  // Streamed: model files can be far larger than we want to hold twice in memory.
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function createSession(): Promise<{ session: InferenceSession; provider: string }> {
  const providers = spec.executionProviders.length > 0 ? spec.executionProviders : ["cpu"];
  const failures: string[] = [];
  for (const [i, provider] of providers.entries()) {
    try {
      // One provider per attempt, so we know which one the session actually got.
      const session = await InferenceSession.create(spec.path, {
        executionProviders: [provider],
        intraOpNumThreads: spec.intraOpThreads,
        interOpNumThreads: 1,
      });
      return { session, provider };
    } catch (err) {
      failures.push(`${provider}: ${errorMessage(err)}`);
      const next = providers[i + 1];
      if (next !== undefined) {
        post({
          kind: "log",
          level: "warn",
          msg: `execution provider "${provider}" unavailable for ${model}, falling back to "${next}"`,
          fields: { provider, fallback: next, reason: errorMessage(err) },
        });
      }
    }
  }
  throw new AimassError("MODEL_LOAD_FAILED", `${model}: cannot load ${spec.path}: ${failures.join("; ")}`);
}

function mismatch(message: string): AimassError {
  return new AimassError("MODEL_SIGNATURE_MISMATCH", `${model}: ${message}`);
}

function checkNames(kind: string, configured: ModelIoSpec[], actual: readonly string[]): void {
  for (const io of configured) {
    if (!actual.includes(io.name)) {
      throw mismatch(
        `${kind} "${io.name}" is configured but the model has none (model ${kind}s: ${actual.join(", ")})`,
      );
    }
  }
}

function checkMetadata(
  kind: string,
  io: ModelIoSpec,
  metadata: readonly InferenceSession.ValueMetadata[] | undefined,
) {
  // Older runtimes expose names only; then the warm-up run below is the remaining check.
  const meta = metadata?.find((m) => m.name === io.name);
  if (meta === undefined) return;
  if (!meta.isTensor)
    throw mismatch(`${kind} "${io.name}": expected a ${io.type} tensor, got a non-tensor value`);
  if (meta.type !== io.type)
    throw mismatch(`${kind} "${io.name}": expected type ${io.type}, got ${meta.type}`);
  if (meta.shape.length === 0) return; // shape not declared in the model
  const last = meta.shape[meta.shape.length - 1];
  const fixedWidthDiffers = typeof last === "number" && last >= 0 && last !== io.width;
  if (meta.shape.length !== 2 || fixedWidthDiffers) {
    throw mismatch(
      `${kind} "${io.name}": expected shape [batch, ${io.width}], got [${meta.shape.join(", ")}]`,
    );
  }
}

function checkSignature(session: InferenceSession): void {
  checkNames("input", spec.inputs, session.inputNames);
  checkNames("output", spec.outputs, session.outputNames);
  const configured = new Set(spec.inputs.map((io) => io.name));
  for (const name of session.inputNames) {
    if (!configured.has(name))
      throw mismatch(`model input "${name}" is not configured, and ORT cannot run without it`);
  }
  // Typed as always present, but only newer onnxruntime-node builds fill these in.
  const inputMetadata: readonly InferenceSession.ValueMetadata[] | undefined = session.inputMetadata;
  const outputMetadata: readonly InferenceSession.ValueMetadata[] | undefined = session.outputMetadata;
  for (const io of spec.inputs) checkMetadata("input", io, inputMetadata);
  for (const io of spec.outputs) checkMetadata("output", io, outputMetadata);
}

function toOrtTensor(name: string, t: TensorData): Tensor {
  if (t.type === "float32" && t.data instanceof Float32Array) return new Tensor("float32", t.data, t.dims);
  if (t.type === "int64" && t.data instanceof BigInt64Array) return new Tensor("int64", t.data, t.dims);
  throw new AimassError(
    "INFERENCE_FAILED",
    `input "${name}": type ${t.type} does not match ${t.data.constructor.name}`,
  );
}

// Copied into a fresh array so the buffer is ours alone and can be transferred, whatever ORT's
// output tensor is backed by.
function copyOut(name: string, value: Tensor | undefined): TensorData {
  if (value === undefined)
    throw new AimassError("INFERENCE_FAILED", `output "${name}" is missing from the result`);
  const dims = [...value.dims];
  if (value.data instanceof Float32Array)
    return { type: "float32", data: new Float32Array(value.data), dims };
  if (value.data instanceof BigInt64Array)
    return { type: "int64", data: new BigInt64Array(value.data), dims };
  throw new AimassError("INFERENCE_FAILED", `output "${name}" has unsupported type ${value.type}`);
}

async function infer(session: InferenceSession, inputs: NamedTensors): Promise<NamedTensors> {
  const feeds: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(inputs)) feeds[name] = toOrtTensor(name, t);
  const results = await session.run(feeds, outputNames, RUN_OPTIONS);
  const outputs: NamedTensors = {};
  for (const name of outputNames) outputs[name] = copyOut(name, results[name]);
  return outputs;
}

function zeros(io: ModelIoSpec, batch: number): TensorData {
  const n = batch * io.width;
  const data = io.type === "int64" ? new BigInt64Array(n) : new Float32Array(n);
  return { type: io.type, data, dims: [batch, io.width] };
}

async function warmUp(session: InferenceSession): Promise<void> {
  for (const batch of WARMUP_BATCHES) {
    const inputs: NamedTensors = {};
    for (const io of spec.inputs) inputs[io.name] = zeros(io, batch);
    let outputs: NamedTensors;
    try {
      outputs = await infer(session, inputs);
    } catch (err) {
      throw new AimassError(
        "MODEL_LOAD_FAILED",
        `${model}: warm-up run (batch ${batch}) failed: ${errorMessage(err)}`,
      );
    }
    // Catches what metadata cannot: symbolic widths, and runtimes without metadata.
    for (const io of spec.outputs) {
      const out = outputs[io.name];
      const dims = out?.dims ?? [];
      if (out?.type !== io.type || dims.length !== 2 || dims[0] !== batch || dims[1] !== io.width) {
        throw mismatch(
          `output "${io.name}": expected ${io.type} [${batch}, ${io.width}] for a batch of ${batch}, ` +
            `got ${out?.type ?? "nothing"} [${dims.join(", ")}]`,
        );
      }
    }
  }
}

async function serve(session: InferenceSession, request: RunRequest): Promise<void> {
  try {
    const outputs = await infer(session, request.inputs);
    post(
      { kind: "result", id: request.id, outputs },
      Object.values(outputs).map((t) => t.data.buffer as ArrayBuffer),
    );
  } catch (err) {
    const { code, message } = toWire(err, "INFERENCE_FAILED");
    post({ kind: "result", id: request.id, error: { code, message: `${model}: ${message}` } });
  }
}

async function load(): Promise<void> {
  let sha256: string;
  try {
    sha256 = await sha256File(spec.path);
  } catch (err) {
    throw new AimassError(
      "MODEL_LOAD_FAILED",
      `${model}: cannot read ${resolve(spec.path)}: ${errorMessage(err)}`,
    );
  }
  const { session, provider } = await createSession();
  try {
    checkSignature(session);
    await warmUp(session);
  } catch (err) {
    await session.release();
    throw err;
  }
  // The pool sends one run at a time per worker, so runs never overlap here.
  let current: Promise<void> = Promise.resolve();
  port.on("message", (request: WorkerRequest) => {
    if (request.kind === "stop") {
      // Ends on its own once the run under way is done: a thread terminated from outside
      // while onnxruntime works natively aborts the whole process.
      void current
        .then(() => session.release())
        .catch(() => undefined)
        .finally(() => port.close());
      return;
    }
    current = serve(session, request);
  });
  post({
    kind: "ready",
    info: {
      name: spec.name,
      version: spec.version,
      sha256,
      executionProvider: provider,
      inputNames: [...session.inputNames],
      outputNames: [...session.outputNames],
    },
  });
}

// On failure nothing keeps this thread alive, so it exits after the message; Node delivers a
// worker's pending messages before its 'exit' event.
load().catch((err: unknown) => post({ kind: "load-failed", error: toWire(err, "MODEL_LOAD_FAILED") }));
