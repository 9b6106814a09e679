// A predictor worker as a real OS process (`aimass predict`), for benchmarks, chaos runs and
// tests that kill -9, SIGSTOP/SIGCONT or SIGTERM it like an orchestrator would.
import { spawn, type ChildProcess } from "node:child_process";
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dirname, "../../..");

export class PredictorProcess {
  readonly child: ChildProcess;
  private output = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    configPath: string,
    readonly name: string,
    extraArgs: string[] = [],
    env: Record<string, string> = {},
  ) {
    const args = [join(REPO, "bin/aimass.js"), "predict", "--config", configPath, ...extraArgs];
    this.child = spawn(process.execPath, args, {
      cwd: REPO,
      env: { ...process.env, AIMASS_LOG_LEVEL: process.env.AIMASS_TEST_WORKER_LOG_LEVEL ?? "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const collect = (b: Buffer) => {
      this.output += b.toString();
      if (process.env.AIMASS_TEST_ECHO_WORKERS) process.stderr.write(`[${name}] ${b.toString()}`);
    };
    this.child.stdout?.on("data", collect);
    this.child.stderr?.on("data", collect);
    this.exited = new Promise((r) => this.child.once("exit", (code, signal) => r({ code, signal })));
  }

  get log(): string {
    return this.output;
  }

  /** Resolves once the worker has joined the group with partitions (log line). */
  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.output)) {
      if (this.child.exitCode !== null)
        throw new Error(`${this.name} exited early:\n${this.output.slice(-3000)}`);
      if (Date.now() > deadline)
        throw new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms:\n${this.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }
}
