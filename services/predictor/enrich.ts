// Feature enrichment for one chunk: one pipelined Redis round trip for every event and
// view the chunk needs, then the views' policies — miss → defaults; stale → defaults or the
// DLQ; store unavailable → fail the chunk (retried) or serve defaults, flagged.
import { AimassError, isAimassError } from "../common/errors.js";
import type { FeaturesConfig, ModelConfig } from "../common/config/schema.js";
import type { FeatureStore, LookupRequest, LookupStatus } from "../common/features/store.js";
import type { FeatureValues } from "./tensorize.js";

export interface Enrichment {
  values: FeatureValues;
  /** Event time of each view's values (null on a miss), written to the prediction as featureTs. */
  ts: Record<string, number | null>;
  /** The store was unavailable and onUnavailable is "defaults": every view is its defaults. */
  fallback: boolean;
  /** Set when a stale view's policy is "dlq". */
  staleError?: AimassError;
}

export interface EnrichStats {
  lookups: Array<{ view: string; status: LookupStatus }>;
  ms: number;
  fallback: boolean;
  error: boolean;
}

const viewsOfModel = new WeakMap<ModelConfig, string[]>();

/** The feature views a model's tensor mapping reads (cached per model config). */
export function viewsOf(model: ModelConfig): string[] {
  let views = viewsOfModel.get(model);
  if (!views) {
    const set = new Set<string>();
    for (const input of model.inputs) {
      for (const c of input.columns) if ("feature" in c) set.add(c.feature.split(".")[0] as string);
    }
    views = [...set];
    viewsOfModel.set(model, views);
  }
  return views;
}

export class Enricher {
  private readonly byName: Map<string, FeaturesConfig["views"][number]>;

  constructor(
    private readonly store: FeatureStore,
    private readonly config: FeaturesConfig,
    private readonly onStats?: (stats: EnrichStats) => void,
  ) {
    this.byName = new Map(config.views.map((v) => [v.name, v]));
  }

  /**
   * Enriches the events that need features (entries with no views get undefined) with a
   * single lookup. Throws FEATURE_STORE_UNAVAILABLE (retryable) under onUnavailable "fail".
   */
  async enrich(
    items: Array<{ event: Record<string, unknown>; views: string[] } | undefined>,
  ): Promise<Array<Enrichment | undefined>> {
    const wanted = items.map((it) => (it && it.views.length > 0 ? it : undefined));
    const indexes = wanted.flatMap((it, i) => (it ? [i] : []));
    if (indexes.length === 0) return items.map(() => undefined);
    const requests: LookupRequest[] = indexes.map((i) => {
      const it = wanted[i] as { event: Record<string, unknown>; views: string[] };
      return this.store.entityKeys(it.event, it.views);
    });
    const started = performance.now();
    const out: Array<Enrichment | undefined> = items.map(() => undefined);
    try {
      const results = await this.store.lookup(requests, Date.now());
      const stats: EnrichStats["lookups"] = [];
      results.forEach((result, k) => {
        const enrichment: Enrichment = { values: {}, ts: {}, fallback: false };
        for (const [view, r] of Object.entries(result)) {
          stats.push({ view, status: r.status });
          const cfg = this.byName.get(view);
          if (r.status === "stale" && cfg?.onStale === "dlq") {
            enrichment.staleError ??= new AimassError(
              "FEATURE_STALE",
              `view "${view}" is stale: values from ${new Date(r.ts ?? 0).toISOString()}, maxAgeMs ${cfg.maxAgeMs}`,
            );
          }
          // A stale view is served as its defaults, so its lineage is "no stored values" (null).
          enrichment.values[view] = r.status === "stale" ? this.store.defaultsFor(view) : r.values;
          enrichment.ts[view] = r.status === "stale" ? null : r.ts;
        }
        out[indexes[k] as number] = enrichment;
      });
      this.onStats?.({ lookups: stats, ms: performance.now() - started, fallback: false, error: false });
      return out;
    } catch (err) {
      if (!isAimassError(err, "FEATURE_STORE_UNAVAILABLE")) throw err;
      this.onStats?.({
        lookups: [],
        ms: performance.now() - started,
        fallback: this.config.onUnavailable === "defaults",
        error: true,
      });
      if (this.config.onUnavailable === "fail") throw err;
      for (const i of indexes) {
        const views = (wanted[i] as { views: string[] }).views;
        const values: FeatureValues = {};
        const ts: Record<string, null> = {};
        for (const v of views) {
          values[v] = this.store.defaultsFor(v);
          ts[v] = null;
        }
        out[i] = { values, ts, fallback: true };
      }
      return out;
    }
  }
}
