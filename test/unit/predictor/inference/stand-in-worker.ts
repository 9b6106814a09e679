// Stands in for inference/worker.ts in pool tests: speaks the same protocol without
// onnxruntime, so a test can make a thread crash or stop answering on purpose (stand-in.ts
// says how a run picks its behaviour).

import { spawnSync } from "node:child_process";
import { parentPort, workerData } from "node:worker_threads";
import type {
  ModelSpec,
  RunRequest,
  WorkerMessage,
  WorkerRequest,
} from "../../../../services/predictor/inference/types.js";
import { Behaviour, STUCK_LOG } from "./stand-in.js";

if (parentPort === null) throw new Error("stand-in-worker.js must be started as a worker_thread");
const port = parentPort;
const spec = workerData as ModelSpec;

// Polls for the release file, removes it, and exits: the test creates it after close() returns.
const WAIT_FOR_RELEASE = `
const fs = require("node:fs");
const path = process.argv[1];
setInterval(() => { if (fs.existsSync(path)) { fs.rmSync(path, { force: true }); process.exit(0); } }, 20);
`;

function post(message: WorkerMessage): void {
  port.postMessage(message);
}

let unanswered = false;

function serve(request: RunRequest): void {
  const behaviour = Number(request.inputs.x?.data[0] ?? Behaviour.echo);
  if (behaviour === Behaviour.crash) process.exit(7);
  if (behaviour === Behaviour.echo) {
    post({ kind: "result", id: request.id, outputs: request.inputs });
    return;
  }
  unanswered = true;
  post({ kind: "log", level: "info", msg: STUCK_LOG, fields: {} });
  // spawnSync holds this thread in native code, where terminate() cannot reach it.
  if (behaviour === Behaviour.blockNatively) {
    spawnSync(process.execPath, ["-e", WAIT_FOR_RELEASE, spec.path], { timeout: 120_000 });
  }
}

port.on("message", (request: WorkerRequest) => {
  if (request.kind === "run") return serve(request);
  if (!unanswered) port.close();
});

post({
  kind: "ready",
  info: {
    name: spec.name,
    version: spec.version,
    sha256: "stand-in",
    executionProvider: "cpu",
    inputNames: ["x"],
    outputNames: ["x"],
  },
});
