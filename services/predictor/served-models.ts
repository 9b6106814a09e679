// The model versions this worker serves, and live changes to them. Each model has an
// active version, optionally a canary (a stable share of keys) and a shadow (sees every
// event, writes elsewhere). A chunk takes a snapshot when it starts and uses it throughout,
// so a change applies at a batch boundary; a version no snapshot holds any more is closed.
// A new version is loaded and warmed before it is swapped in; if it fails to load, the
// current versions keep serving and the failure is reported.
import type { Logger } from "../common/logger.js";
import type { ModelConfig } from "../common/config/schema.js";
import { errorMessage } from "../common/errors.js";
import { inCanary, type DesiredState } from "../common/control/desired-state.js";
import type { ModelRuntime } from "./model-runtime.js";

/** What ServedModels needs of a loaded version (ModelRuntime in production). */
export interface ServedRuntime {
  readonly config: ModelConfig;
  flush(): void;
  close(): Promise<void>;
}

interface Serving<R> {
  active: R;
  canary?: { runtime: R; percent: number };
  shadow?: R;
  revision: number;
}

export interface ModelSnapshot<R extends ServedRuntime = ModelRuntime> {
  /** The runtime for a record of this model: canary for keys in its share, else active. */
  select(model: string, key: Buffer | null): R | undefined;
  shadowFor(model: string): R | undefined;
  release(): void;
}

export interface ServedModelsOptions<R> {
  logger: Logger;
  /** Loads and warms a version. */
  load: (config: ModelConfig) => Promise<R>;
  /** Builds the config of a version (from the repository); throws when it cannot. */
  resolve: (model: string, version: string) => ModelConfig;
  onChange?: (model: string, serving: ApplyResult["serving"]) => void;
}

export interface ApplyResult {
  ok: boolean;
  /** The state was already applied (a re-read of the control topic): nothing changed. */
  replay?: boolean;
  serving: { active: string; canary?: string; shadow?: string };
  error?: string;
  loadMs: number;
}

export class ServedModels<R extends ServedRuntime = ModelRuntime> {
  private readonly serving = new Map<string, Serving<R>>();
  /** Loaded runtimes by "<model>@<version>", with the number of snapshots holding them. */
  private readonly loaded = new Map<string, { runtime: R; refs: number; retired: boolean }>();
  /** Versions a change in progress has loaded or picked but not swapped in yet: never closed. */
  private readonly pinned = new Set<string>();
  private applying: Promise<unknown> = Promise.resolve();
  private readonly logger: Logger;

  constructor(private readonly o: ServedModelsOptions<R>) {
    this.logger = o.logger;
  }

  /** Loads the initial versions (from the pipeline config) before the worker consumes. */
  async init(models: ModelConfig[]): Promise<void> {
    for (const config of models) {
      const runtime = await this.load(config);
      this.serving.set(config.name, { active: runtime, revision: 0 });
      this.o.onChange?.(config.name, { active: config.version });
    }
  }

  get models(): string[] {
    return [...this.serving.keys()];
  }

  runtimes(): R[] {
    return [...this.loaded.values()].filter((l) => !l.retired).map((l) => l.runtime);
  }

  servingOf(model: string): ApplyResult["serving"] | undefined {
    const s = this.serving.get(model);
    return s && describe(s);
  }

  snapshot(): ModelSnapshot<R> {
    const view = new Map(this.serving);
    const held = new Set<string>();
    for (const s of view.values()) {
      for (const r of [s.active, s.canary?.runtime, s.shadow]) if (r) held.add(id(r.config));
    }
    for (const k of held) (this.loaded.get(k) as { refs: number }).refs++;
    let released = false;
    return {
      select: (model, key) => {
        const s = view.get(model);
        if (!s) return undefined;
        return s.canary && inCanary(key, s.canary.percent) ? s.canary.runtime : s.active;
      },
      shadowFor: (model) => view.get(model)?.shadow,
      release: () => {
        if (released) return;
        released = true;
        for (const k of held) {
          const entry = this.loaded.get(k);
          if (entry) entry.refs--;
        }
        this.collect();
      },
    };
  }

  /** Applies a desired state; serialized, so concurrent changes apply in order. */
  apply(state: DesiredState): Promise<ApplyResult> {
    const next = this.applying.then(() => this.applyNow(state));
    this.applying = next.catch(() => undefined);
    return next;
  }

  private async applyNow(state: DesiredState): Promise<ApplyResult> {
    const current = this.serving.get(state.model);
    const started = performance.now();
    if (!current) {
      return {
        ok: false,
        serving: { active: "" },
        error: `model "${state.model}" is not served by this pipeline`,
        loadMs: 0,
      };
    }
    if (state.revision <= current.revision) {
      return { ok: true, replay: true, serving: describe(current), loadMs: 0 };
    }
    try {
      const base = current.active.config;
      const get = async (version: string) => this.ensure(this.o.resolve(state.model, version), base);
      const active = await get(state.active);
      const canary = state.canary
        ? { runtime: await get(state.canary.version), percent: state.canary.percent }
        : undefined;
      const shadow = state.shadow ? await get(state.shadow) : undefined;
      const next: Serving<R> = {
        active,
        revision: state.revision,
        ...(canary ? { canary } : {}),
        ...(shadow ? { shadow } : {}),
      };
      this.serving.set(state.model, next);
      this.pinned.clear();
      this.collect();
      const serving = describe(next);
      this.o.onChange?.(state.model, serving);
      this.logger.info("model versions applied", {
        model: state.model,
        revision: state.revision,
        ...serving,
      });
      return { ok: true, serving, loadMs: performance.now() - started };
    } catch (err) {
      this.pinned.clear();
      this.collect();
      this.logger.error("model change refused: the current versions keep serving", {
        model: state.model,
        revision: state.revision,
        error: errorMessage(err),
      });
      return {
        ok: false,
        serving: describe(current),
        error: errorMessage(err),
        loadMs: performance.now() - started,
      };
    }
  }

  /** The loaded runtime for a version, loading and warming it if needed. */
  private async ensure(config: ModelConfig, base: ModelConfig): Promise<R> {
    // Pinned before any await: a chunk releasing its snapshot meanwhile runs collect(), which
    // must not close a version this change is about to serve.
    this.pinned.add(id(config));
    const existing = this.loaded.get(id(config));
    if (existing) {
      // Still loaded (perhaps draining after a previous change): serve it again as it is.
      existing.retired = false;
      return existing.runtime;
    }
    return this.load({ ...config, poolSize: base.poolSize, intraOpThreads: base.intraOpThreads });
  }

  private async load(config: ModelConfig): Promise<R> {
    const runtime = await this.o.load(config);
    this.loaded.set(id(config), { runtime, refs: 0, retired: false });
    return runtime;
  }

  /** Closes versions nothing serves and no snapshot holds. */
  private collect(): void {
    const inUse = new Set<string>(this.pinned);
    for (const s of this.serving.values()) {
      for (const r of [s.active, s.canary?.runtime, s.shadow]) if (r) inUse.add(id(r.config));
    }
    for (const [k, entry] of this.loaded) {
      if (inUse.has(k)) continue;
      entry.retired = true;
      if (entry.refs > 0) continue;
      this.loaded.delete(k);
      entry.runtime.flush();
      void entry.runtime.close().then(
        () =>
          this.logger.info("model version unloaded", {
            model: entry.runtime.config.name,
            version: entry.runtime.config.version,
          }),
        (err: unknown) => this.logger.warn("closing a model version failed", { error: errorMessage(err) }),
      );
    }
  }

  async close(): Promise<void> {
    await this.applying;
    const all = [...this.loaded.values()];
    this.loaded.clear();
    this.serving.clear();
    await Promise.all(all.map((l) => l.runtime.close()));
  }

  flush(): void {
    for (const l of this.loaded.values()) l.runtime.flush();
  }
}

const id = (c: ModelConfig) => `${c.name}@${c.version}`;

function describe(s: Serving<ServedRuntime>): ApplyResult["serving"] {
  return {
    active: s.active.config.version,
    ...(s.canary ? { canary: `${s.canary.runtime.config.version}@${s.canary.percent}%` } : {}),
    ...(s.shadow ? { shadow: s.shadow.config.version } : {}),
  };
}
