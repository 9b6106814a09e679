// What a chaos scenario is: the stack and pipeline it needs, the load it runs under, and the
// nemesis that injects (and heals) its faults while events flow. The engine owns everything
// else (topics, workers, load, read-back, the checks), so a scenario is only its faults.
import type { PredictorProcess } from "../lib/predictor-process.js";
import type { PipelineShape, RunPipeline } from "./pipeline.js";
import type { ChaosStack } from "./stack.js";
import type { WorkerPool } from "./workers.js";

export interface Sizing {
  events: number;
  /** Records per second. */
  rate: number;
}

export interface ScenarioContext {
  stack: ChaosStack;
  workers: WorkerPool;
  pipeline: RunPipeline;
  sizing: Sizing;
  seed: number;
  signal: AbortSignal;
  /** Resolves once this share (0..1) of the run's records was sent, or sending ended. */
  atShare(share: number): Promise<void>;
  /** Resolves once every record was sent. */
  loadDone(): Promise<void>;
  /** Abortable: returns early when the run is interrupted. */
  sleep(ms: number): Promise<void>;
  /** Marks a fault now; call the returned function when it is healed. */
  fault(label: string): () => void;
  log(line: string): void;
  /** `aimass <args>` against the run's stack; resolves with its exit code and output. */
  cli(args: string[]): Promise<{ code: number | null; output: string }>;
  /** Extra facts for the run's result (e.g. whether a zombie noticed it was fenced). */
  note(key: string, value: unknown): void;
  /** The oldest live worker (throws when none runs). */
  oldestWorker(): PredictorProcess;
}

export interface Scenario {
  name: string;
  summary: string;
  nodes: 1 | 3;
  shape: PipelineShape;
  /** Workers started (and joined) before the load begins. */
  workers: number;
  sizing: Sizing;
  /** The short CI run's size (scenarios in the CI subset). */
  ci?: Sizing;
  /** The input's value format; Avro mixes in the Avro bad kinds (events.ts). @default "json" */
  format?: "json" | "avro";
  /** Share of records that are bad or edge-case kinds (events.ts). @default 0 */
  badShare?: number;
  /** Only run when named (not part of "all"). */
  onDemand?: boolean;
  sessionTimeoutMs?: number;
  /** How long after the load the outputs may take to all appear. @default 120000 */
  settleTimeoutMs?: number;
  nemesis(ctx: ScenarioContext): Promise<void>;
}
