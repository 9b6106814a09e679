// Runs predictor workers as real OS processes (`aimass predict`), so tests can kill -9,
// SIGSTOP/SIGCONT and SIGTERM them like an orchestrator would.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { PredictorProcess } from "../../load-tests/lib/predictor-process.js";
import { defer } from "./stack.js";

export { PredictorProcess };
export { shopPipeline, type TopicsFixture } from "../../load-tests/lib/shop-pipeline.js";

export function writeConfig(t: Pick<TestContext, "after">, config: object): string {
  const dir = mkdtempSync(join(tmpdir(), "aimass-test-"));
  defer(t, () => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "pipeline.json");
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

/** Starts a worker and registers a kill -9 at test end, whatever happened. */
export function startPredictor(
  t: Pick<TestContext, "after">,
  configPath: string,
  name: string,
  options: { args?: string[]; env?: Record<string, string> } = {},
): PredictorProcess {
  const p = new PredictorProcess(configPath, name, options.args ?? [], options.env ?? {});
  defer(t, async () => {
    p.signal("SIGCONT");
    p.signal("SIGKILL");
    await p.exited;
  });
  return p;
}
