// The predictor processes of a run, started, killed, paused and scaled like an orchestrator
// would, which also restarts a worker that exits on its own (and records that it did). Each
// worker's output is kept in <run dir>/workers/<name>.log.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sleep } from "../../services/common/lifecycle.js";
import { PredictorProcess } from "../lib/predictor-process.js";

export const JOINED = /"msg":"partitions assigned"[^\n]*"partitions":\[\d/;

export interface WorkerExit {
  name: string;
  at: number;
  code: number | null;
  signal: string | null;
}

export interface WorkerPoolOptions {
  configPath: string;
  env: Record<string, string>;
  logDir: string;
  /** Restart a worker that exits on its own after this long (like a restart policy). */
  restartDelayMs: number;
  log: (line: string) => void;
}

export class WorkerPool {
  /** Workers that exited without being told to. */
  readonly crashes: WorkerExit[] = [];
  private readonly all: PredictorProcess[] = [];
  private readonly expected = new Set<PredictorProcess>();
  private running = new Set<PredictorProcess>();
  private next = 1;
  private closing = false;

  constructor(private readonly o: WorkerPoolOptions) {
    mkdirSync(o.logDir, { recursive: true });
  }

  /** Workers that have not exited (paused ones included), oldest first. */
  get live(): PredictorProcess[] {
    return [...this.running];
  }

  start(): PredictorProcess {
    const w = new PredictorProcess(this.o.configPath, `w${this.next++}`, [], this.o.env);
    this.all.push(w);
    this.running.add(w);
    void w.exited.then((exit) => this.exited(w, exit));
    return w;
  }

  /** Starts `n` workers and waits until each has partitions. */
  async startJoined(n: number, timeoutMs = 90_000): Promise<PredictorProcess[]> {
    const started = Array.from({ length: n }, () => this.start());
    await Promise.all(started.map((w) => w.waitFor(JOINED, timeoutMs)));
    return started;
  }

  /** kill -9 (or SIGTERM with `graceful`) and wait for the exit. */
  async stop(w: PredictorProcess, how: "SIGKILL" | "SIGTERM"): Promise<void> {
    this.expected.add(w);
    w.signal("SIGCONT");
    w.signal(how);
    await w.exited;
  }

  pause(w: PredictorProcess): void {
    w.signal("SIGSTOP");
  }

  resume(w: PredictorProcess): void {
    w.signal("SIGCONT");
  }

  /** Starts or gracefully stops workers (newest first) until `n` run. */
  async scaleTo(n: number): Promise<void> {
    while (this.running.size < n) this.start();
    const extra = this.live.slice(n);
    await Promise.all(extra.map((w) => this.stop(w, "SIGTERM")));
  }

  /** SIGTERM everything, SIGKILL what is still there after `graceMs`; saves the logs. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const live = this.live;
    for (const w of live) {
      this.expected.add(w);
      w.signal("SIGCONT");
      w.signal("SIGTERM");
    }
    const done = Promise.all(live.map((w) => w.exited));
    const timedOut = await Promise.race([done.then(() => false), sleep(graceMs).then(() => true)]);
    if (timedOut) for (const w of this.live) w.signal("SIGKILL");
    await done;
    this.saveLogs();
  }

  saveLogs(): void {
    for (const w of this.all) writeFileSync(join(this.o.logDir, `${w.name}.log`), w.log);
  }

  private exited(w: PredictorProcess, exit: { code: number | null; signal: NodeJS.Signals | null }): void {
    this.running.delete(w);
    writeFileSync(join(this.o.logDir, `${w.name}.log`), w.log);
    if (this.expected.has(w) || this.closing) return;
    this.crashes.push({ name: w.name, at: Date.now(), code: exit.code, signal: exit.signal });
    this.o.log(
      `worker ${w.name} exited on its own (code ${exit.code}, signal ${exit.signal}); restarting it`,
    );
    void sleep(this.o.restartDelayMs).then(() => {
      if (!this.closing) this.start();
    });
  }
}
