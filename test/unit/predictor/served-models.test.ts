// ServedModels without ONNX: fake runtimes that record when they are closed, so snapshot
// refcounts, load-before-swap and refused changes are checked directly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadPipelineConfig } from "../../../services/common/config/load.js";
import type { ModelConfig } from "../../../services/common/config/schema.js";
import type { DesiredState } from "../../../services/common/control/desired-state.js";
import { silentLogger } from "../../../services/common/logger.js";
import { ServedModels, type ServedRuntime } from "../../../services/predictor/served-models.js";
import { repoRoot } from "../../helpers/pipeline.js";

class FakeRuntime implements ServedRuntime {
  closed = false;
  constructor(readonly config: ModelConfig) {}
  flush(): void {}
  async close(): Promise<void> {
    this.closed = true;
  }
}

async function fixture(options: { loadGate?: (version: string) => Promise<void>; failing?: string[] } = {}) {
  const config = await loadPipelineConfig(join(repoRoot, "examples/shop/pipeline.yaml"));
  const base = config.models[0] as ModelConfig;
  const loaded: FakeRuntime[] = [];
  const served = new ServedModels<FakeRuntime>({
    logger: silentLogger,
    load: async (c) => {
      await options.loadGate?.(c.version);
      if (options.failing?.includes(c.version)) throw new Error(`version ${c.version} does not load`);
      const r = new FakeRuntime(c);
      loaded.push(r);
      return r;
    },
    resolve: (model, version) => ({ ...base, name: model, version }),
  });
  await served.init([base]);
  const state = (revision: number, s: Partial<DesiredState>): DesiredState => ({
    model: base.name,
    active: base.version,
    revision,
    updatedBy: "test",
    updatedAt: 0,
    reason: "",
    ...s,
  });
  const byVersion = (v: string) => loaded.find((r) => r.config.version === v);
  return { served, base, state, byVersion };
}

test("a version a snapshot holds is closed only when the snapshot is released", async () => {
  const { served, base, state, byVersion } = await fixture();
  const snap = served.snapshot();
  assert.equal((await served.apply(state(1, { active: "9" }))).ok, true);
  const old = byVersion(base.version);
  assert.equal(old?.closed, false, "held by the snapshot");
  assert.equal(snap.select(base.name, null)?.config.version, base.version, "the snapshot keeps its versions");
  assert.equal(served.snapshot().select(base.name, null)?.config.version, "9");
  snap.release();
  snap.release(); // idempotent: refcounts do not go negative
  assert.equal(old?.closed, true);
  assert.equal(byVersion("9")?.closed, false);
});

test("a change never closes the version it is about to serve while it loads another", async () => {
  let releaseCanary = (): void => undefined;
  const canaryLoading = new Promise<void>((r) => (releaseCanary = r));
  const { served, state, byVersion } = await fixture({
    loadGate: (v) => (v === "8" ? canaryLoading : Promise.resolve()),
  });
  const applying = served.apply(state(1, { active: "7", canary: { version: "8", percent: 10 } }));
  // While the canary loads, chunks come and go: each release collects unused versions.
  await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 3; i++) served.snapshot().release();
  releaseCanary();
  const result = await applying;
  assert.equal(result.ok, true);
  assert.equal(byVersion("7")?.closed, false, "the new active version is open when it starts serving");
  assert.equal(served.snapshot().select("shop-propensity", null)?.closed, false);
});

test("a version that fails to load never replaces a working one", async () => {
  const { served, base, state, byVersion } = await fixture({ failing: ["5"] });
  const result = await served.apply(state(1, { active: "4", shadow: "5" }));
  assert.equal(result.ok, false);
  assert.match(result.error ?? "", /does not load/);
  assert.equal(served.snapshot().select(base.name, null)?.config.version, base.version);
  assert.equal(byVersion(base.version)?.closed, false);
  assert.equal(byVersion("4")?.closed, true, "the half-applied change's other version is unloaded");
});

test("changes apply in revision order; a replayed revision changes nothing", async () => {
  const { served, base, state } = await fixture();
  await Promise.all([served.apply(state(1, { active: "2" })), served.apply(state(2, { active: "3" }))]);
  assert.equal(served.servingOf(base.name)?.active, "3");
  const replay = await served.apply(state(1, { active: "2" }));
  assert.equal(replay.replay, true);
  assert.equal(served.servingOf(base.name)?.active, "3");
});
