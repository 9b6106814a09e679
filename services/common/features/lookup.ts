// The lookup path, without Redis: which hashes a micro-batch needs (each distinct one once, so
// the whole batch is one pipeline of HGETALLs), and what each event's views read from them.
import type { FeatureLookup, LookupRequest, LookupResult, LookupStatus } from "./types.js";
import type { ViewPlan, ViewPlans } from "./views.js";

/** A batch's lookups: the distinct hashes to fetch, and per request [view, slot in `keys` or -1]. */
export interface LookupPlan {
  keys: string[];
  requests: Array<Array<[ViewPlan, number]>>;
}

/** Plans a batch; FIELD_INVALID for a view the config does not have. */
export function planLookup(views: ViewPlans, requests: LookupRequest[]): LookupPlan {
  const slots = new Map<string, number>();
  const keys: string[] = [];
  const planned = requests.map((request) =>
    Object.entries(request).map(([view, key]): [ViewPlan, number] => {
      const plan = views.get(view);
      if (key === undefined || key === null || key === "") return [plan, -1];
      const hash = views.hashKey(plan, key);
      let slot = slots.get(hash);
      if (slot === undefined) {
        slot = keys.length;
        slots.set(hash, slot);
        keys.push(hash);
      }
      return [plan, slot];
    }),
  );
  return { keys, requests: planned };
}

/**
 * One LookupResult per planned request, from the fetched hashes (`null`: Redis refused to read
 * it, e.g. WRONGTYPE; served as a miss with every feature counted invalid).
 */
export function readLookups(
  plan: LookupPlan,
  hashes: Array<Record<string, string> | null>,
  nowMs: number,
): LookupResult[] {
  return plan.requests.map((views) => {
    const result: LookupResult = {};
    for (const [view, slot] of views) {
      const hash = slot < 0 ? {} : hashes[slot];
      result[view.config.name] =
        hash === null || hash === undefined
          ? { values: { ...view.defaults }, ts: null, status: "miss", invalid: view.features.length }
          : readView(view, hash, nowMs);
    }
    return result;
  });
}

function readView(plan: ViewPlan, hash: Record<string, string>, nowMs: number): FeatureLookup {
  const tsRaw = hash[plan.tsField];
  const ts = tsRaw === undefined ? NaN : Number(tsRaw);
  if (!Number.isFinite(ts)) {
    return { values: { ...plan.defaults }, ts: null, status: "miss", invalid: 0 };
  }
  const values: Record<string, number> = {};
  let invalid = 0;
  for (const [name, field, fallback] of plan.features) {
    const raw = hash[field];
    if (raw === undefined) {
      values[name] = fallback;
      continue;
    }
    const value = raw.trim() === "" ? NaN : Number(raw);
    if (Number.isFinite(value)) {
      values[name] = value;
    } else {
      values[name] = fallback;
      invalid += 1;
    }
  }
  const maxAge = plan.config.maxAgeMs;
  const status: LookupStatus = maxAge > 0 && nowMs - ts > maxAge ? "stale" : "hit";
  return { values, ts, status, invalid };
}
