// The configured feature views, resolved once into what the read and write paths need: the
// hash key layout `<keyPrefix>:<entity>:<entity key>`, the `<view>:<feature>` field names,
// the `_ts:<view>` field and the defaults a miss serves.
import { AimassError } from "../errors.js";
import type { FeaturesConfig, FeatureViewConfig } from "../config/schema.js";

export interface ViewPlan {
  config: FeatureViewConfig;
  entity: string;
  tsField: string;
  /** [feature name, hash field, default] */
  features: Array<[string, string, number]>;
  featureNames: ReadonlySet<string>;
  defaults: Readonly<Record<string, number>>;
}

export class ViewPlans {
  private readonly plans: ReadonlyMap<string, ViewPlan>;

  constructor(private readonly config: FeaturesConfig) {
    this.plans = new Map(config.views.map((v) => [v.name, planView(v)]));
  }

  /** The configured view names, in config order. */
  names(): IterableIterator<string> {
    return this.plans.keys();
  }

  /** The view's plan; FIELD_INVALID for a view the config does not have. */
  get(view: string): ViewPlan {
    const plan = this.plans.get(view);
    if (!plan) {
      throw new AimassError(
        "FIELD_INVALID",
        `unknown feature view "${view}" (known: ${[...this.plans.keys()].join(", ")})`,
      );
    }
    return plan;
  }

  /** The Redis key of the hash holding `plan`'s entity `entityKey`. */
  hashKey(plan: ViewPlan, entityKey: string): string {
    return `${this.config.keyPrefix}:${plan.entity}:${entityKey}`;
  }
}

function planView(v: FeatureViewConfig): ViewPlan {
  return {
    config: v,
    entity: v.entity ?? v.name,
    tsField: `_ts:${v.name}`,
    features: v.features.map((f): [string, string, number] => [f.name, `${v.name}:${f.name}`, f.default]),
    featureNames: new Set(v.features.map((f) => f.name)),
    defaults: Object.freeze(Object.fromEntries(v.features.map((f) => [f.name, f.default]))),
  };
}
