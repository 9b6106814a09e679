// The feature store's public data shapes: what a writer sends, what a lookup asks and finds.
// Re-exported by store.ts, which is where callers import them from.

export interface FeatureUpdate {
  view: string;
  /** The entity key (e.g. "u-7"). */
  key: string;
  /** Event time of the values, epoch ms (a positive integer). */
  ts: number;
  /** Feature name → value. Booleans are stored as 0/1. A subset of the view's features is allowed. */
  values: Record<string, number | boolean>;
}

export type LookupStatus = "hit" | "miss" | "stale";

/** What a lookup found for one view of one event. */
export interface FeatureLookup {
  /** Every feature of the view: the stored value, or the feature's default where absent/unparsable. */
  values: Record<string, number>;
  /** Event time of the stored values (epoch ms); null on a miss. */
  ts: number | null;
  /**
   * hit: stored and fresh. miss: no key on the event, no hash, or no `_ts:<view>` in it (values
   * = defaults). stale: stored but older than the view's maxAgeMs (values = the stored values;
   * the caller applies `onStale`).
   */
  status: LookupStatus;
  /** Features whose stored value could not be parsed as a finite number (served as the default). */
  invalid: number;
}

/** One event's lookups: view name → result, for the views named in its request. */
export type LookupResult = Record<string, FeatureLookup>;

/** One event's request: view name → that event's entity key for the view (undefined → miss). */
export type LookupRequest = Record<string, string | undefined>;
