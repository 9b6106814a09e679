// The Redis online feature store (docs/feature-store.md). One hash per entity,
// `<keyPrefix>:<entity>:<entity key>`, holding `<view>:<feature>` = value (decimal string) and
// `_ts:<view>` = the event time (epoch ms) of the values stored for that view; views of the
// same entity share the hash.
//
// Writes go through a Lua compare-and-write (newer event time wins, so replays and
// out-of-order updates are harmless). Lookups fetch a whole micro-batch with ONE pipeline of
// one HGETALL per distinct hash: one round trip per batch, never one per event.
//
// The client is tuned for a latency-critical reader: a per-command timeout, no offline queue
// (a command issued while disconnected fails at once instead of waiting), bounded reconnect
// backoff. Connection errors and timeouts surface as AimassError FEATURE_STORE_UNAVAILABLE
// (retryable); the caller decides the policy (features.onUnavailable, view.onStale).
import { Redis, type Result } from "ioredis";
import { AimassError, errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import type { FeaturesConfig, FeatureViewConfig } from "../config/schema.js";

declare module "ioredis" {
  interface RedisCommander<Context> {
    /** KEYS[1] = hash; ARGV = tsField, ts, ttlSeconds, field1, value1, field2, value2... */
    aimassFeatureWrite(key: string, ...args: string[]): Result<number, Context>;
  }
}

/**
 * The compare-and-write. Returns 0 (nothing changed) when the stored event time of the view is
 * the same or newer: a duplicate or an out-of-order (stale) update. Otherwise writes the given
 * fields and the view's `_ts:` field, refreshes the hash's TTL when one is configured, and
 * returns 1. Lua numbers are doubles: epoch-ms values compare exactly (< 2^53).
 */
const WRITE_LUA = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and tonumber(current) and tonumber(current) >= tonumber(ARGV[2]) then
  return 0
end
local args = {}
for i = 4, #ARGV do
  args[#args + 1] = ARGV[i]
end
args[#args + 1] = ARGV[1]
args[#args + 1] = ARGV[2]
redis.call('HSET', KEYS[1], unpack(args))
local ttl = tonumber(ARGV[3])
if ttl and ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return 1
`;

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

interface ViewPlan {
  config: FeatureViewConfig;
  entity: string;
  tsField: string;
  /** [feature name, hash field, default] */
  features: Array<[string, string, number]>;
  featureNames: ReadonlySet<string>;
  defaults: Readonly<Record<string, number>>;
}

/** Server replies that mean "not now" rather than "this data is wrong". */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|OOM|NOSCRIPT|NOREPLICAS)\b/;

/** A reply error about the data (e.g. WRONGTYPE: the key is not a hash), not about Redis being down. */
function isDataError(err: unknown): boolean {
  return err instanceof Error && err.name === "ReplyError" && !TRANSIENT_REPLY.test(err.message);
}

export class FeatureStore {
  private readonly views: ReadonlyMap<string, ViewPlan>;
  private readonly log: Logger;
  private roundTripCount = 0;
  private closing: Promise<void> | undefined;
  private wasReady = false;

  private constructor(
    private readonly redis: Redis,
    private readonly config: FeaturesConfig,
    logger: Logger,
  ) {
    this.log = logger.child({ component: "feature-store" });
    this.views = new Map(
      config.views.map((v) => {
        const features = v.features.map((f): [string, string, number] => [
          f.name,
          `${v.name}:${f.name}`,
          f.default,
        ]);
        return [
          v.name,
          {
            config: v,
            entity: v.entity ?? v.name,
            tsField: `_ts:${v.name}`,
            features,
            featureNames: new Set(v.features.map((f) => f.name)),
            defaults: Object.freeze(Object.fromEntries(v.features.map((f) => [f.name, f.default]))),
          },
        ];
      }),
    );
    redis.defineCommand("aimassFeatureWrite", { numberOfKeys: 1, lua: WRITE_LUA });
    // Without a listener ioredis prints every connection error; log transitions instead.
    redis.on("error", (err: unknown) => {
      if (this.wasReady) this.log.warn("redis connection error", { error: errorMessage(err) });
      this.wasReady = false;
    });
    redis.on("ready", () => {
      this.wasReady = true;
      this.log.info("redis ready");
    });
  }

  /**
   * Creates the store and starts connecting (it does not wait: see `waitReady`). Until the
   * connection is up, commands fail fast with FEATURE_STORE_UNAVAILABLE.
   */
  static connect(url: string, config: FeaturesConfig, logger: Logger): FeatureStore {
    const redis = new Redis(url, {
      commandTimeout: config.commandTimeoutMs,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: Math.max(1_000, config.commandTimeoutMs * 10),
      retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
      // A command that was written before a disconnect is not re-sent after the reconnect:
      // its caller has already seen a timeout and retries the whole batch.
      autoResendUnfulfilledCommands: false,
      lazyConnect: false,
    });
    return new FeatureStore(redis, config, logger);
  }

  /** Pipelines executed so far (lookups and writes): one per `lookup`/`write` call that had work. */
  get roundTrips(): number {
    return this.roundTripCount;
  }

  /** Connected and ready for commands. */
  get available(): boolean {
    return this.redis.status === "ready";
  }

  /** Resolves once connected; rejects with FEATURE_STORE_UNAVAILABLE after `timeoutMs`. */
  async waitReady(timeoutMs: number): Promise<void> {
    if (this.redis.status === "ready") return;
    await new Promise<void>((resolve, reject) => {
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.redis.off("ready", onReady);
        reject(
          new AimassError(
            "FEATURE_STORE_UNAVAILABLE",
            `redis not ready within ${timeoutMs} ms (status ${this.redis.status})`,
          ),
        );
      }, timeoutMs);
      this.redis.once("ready", onReady);
    });
  }

  /** The view's defaults (what a miss serves), e.g. for `onUnavailable: defaults`. */
  defaultsFor(view: string): Record<string, number> {
    return { ...this.plan(view).defaults };
  }

  /** The Redis key of an entity's hash. */
  hashKey(view: string, entityKey: string): string {
    return `${this.config.keyPrefix}:${this.plan(view).entity}:${entityKey}`;
  }

  /**
   * An event's lookup request: for each view (all configured views by default), the value of
   * the view's `key` field — strings as they are, finite numbers and bigints as decimal
   * strings, anything else (missing, null, empty string, objects) → undefined (a miss).
   */
  entityKeys(event: Record<string, unknown>, views: Iterable<string> = this.views.keys()): LookupRequest {
    const request: LookupRequest = {};
    for (const view of views) {
      const raw = event[this.plan(view).config.key];
      request[view] =
        typeof raw === "string" && raw !== ""
          ? raw
          : (typeof raw === "number" && Number.isFinite(raw)) || typeof raw === "bigint"
            ? String(raw)
            : undefined;
    }
    return request;
  }

  /**
   * Applies updates, each with the compare-and-write script, in one pipeline. Resolves with
   * 1 (written) or 0 (skipped: the stored event time is the same or newer) per update.
   * Rejects with FEATURE_STORE_UNAVAILABLE when Redis cannot be reached or times out (some
   * updates may have been applied: retrying them is harmless), and with FIELD_INVALID for an
   * update that does not fit the config or that Redis refused (e.g. WRONGTYPE).
   */
  async write(updates: FeatureUpdate[]): Promise<number[]> {
    const results = await this.writeSettled(updates);
    return results.map((r) => {
      if (r instanceof AimassError) throw r;
      return r;
    });
  }

  /**
   * `write`, but an update Redis refuses for its data (e.g. its key holds a non-hash) comes
   * back as a FIELD_INVALID AimassError in its slot instead of failing the call, so a writer
   * can dead-letter that update and still apply the others. Unavailability still rejects.
   */
  async writeSettled(updates: FeatureUpdate[]): Promise<Array<0 | 1 | AimassError>> {
    if (updates.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const u of updates) {
      const plan = this.plan(u.view);
      const args = this.writeArgs(plan, u);
      pipeline.aimassFeatureWrite(this.hashKey(u.view, u.key), plan.tsField, String(u.ts), ...args);
    }
    const replies = await this.exec(pipeline, "write");
    return replies.map(([err, reply], i) => {
      if (err) {
        return new AimassError("FIELD_INVALID", `redis refused the update: ${errorMessage(err)}`, {
          cause: err,
          details: { index: i, view: updates[i]?.view, key: updates[i]?.key },
        });
      }
      return Number(reply) === 1 ? 1 : 0;
    });
  }

  /**
   * Looks up a micro-batch: one HGETALL per distinct entity hash over all events and views,
   * in ONE pipeline (one round trip; none when no event has a key). Resolves with one
   * LookupResult per request, in order, holding a FeatureLookup for each view it names.
   *
   * Stale values are returned as stored with status "stale": the caller applies the view's
   * `onStale` policy (serve defaults, or dead-letter the event). A hash Redis refuses to read
   * (WRONGTYPE: the key is not a hash) is treated as a miss with every feature counted invalid.
   * Rejects with FEATURE_STORE_UNAVAILABLE when Redis cannot be reached or times out.
   */
  async lookup(requests: LookupRequest[], nowMs: number = Date.now()): Promise<LookupResult[]> {
    const slots = new Map<string, number>();
    const keys: string[] = [];
    const plans = requests.map((request) =>
      Object.entries(request).map(([view, key]): [ViewPlan, number] => {
        const plan = this.plan(view);
        if (key === undefined || key === null || key === "") return [plan, -1];
        const hash = `${this.config.keyPrefix}:${plan.entity}:${key}`;
        let slot = slots.get(hash);
        if (slot === undefined) {
          slot = keys.length;
          slots.set(hash, slot);
          keys.push(hash);
        }
        return [plan, slot];
      }),
    );

    let hashes: Array<Record<string, string> | null> = [];
    if (keys.length > 0) {
      const pipeline = this.redis.pipeline();
      for (const key of keys) pipeline.hgetall(key);
      const replies = await this.exec(pipeline, "lookup");
      hashes = replies.map(([err, reply], i) => {
        if (err) {
          this.log.warn("feature hash unreadable; serving defaults", {
            key: keys[i],
            error: errorMessage(err),
          });
          return null;
        }
        return reply as Record<string, string>;
      });
    }

    return plans.map((views) => {
      const result: LookupResult = {};
      for (const [plan, slot] of views) {
        const hash = slot < 0 ? {} : hashes[slot];
        result[plan.config.name] =
          hash === null || hash === undefined
            ? { values: { ...plan.defaults }, ts: null, status: "miss", invalid: plan.features.length }
            : this.read(plan, hash, nowMs);
      }
      return result;
    });
  }

  /** Quits gracefully (waiting for replies in flight), or disconnects. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.redis.status === "end") return;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          this.redis.quit(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error("quit timed out")), 1_000);
          }),
        ]);
      } catch {
        this.redis.disconnect();
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.closing;
  }

  private read(plan: ViewPlan, hash: Record<string, string>, nowMs: number): FeatureLookup {
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

  private writeArgs(plan: ViewPlan, u: FeatureUpdate): string[] {
    if (typeof u.key !== "string" || u.key === "") {
      throw new AimassError("FIELD_INVALID", `view "${u.view}": key must be a non-empty string`);
    }
    if (!Number.isSafeInteger(u.ts) || u.ts <= 0) {
      throw new AimassError("FIELD_INVALID", `view "${u.view}": ts must be a positive integer (epoch ms)`);
    }
    const entries = Object.entries(u.values);
    if (entries.length === 0) {
      throw new AimassError("FIELD_INVALID", `view "${u.view}": values is empty`);
    }
    const args = [String(plan.config.ttlSeconds)];
    for (const [feature, value] of entries) {
      if (!plan.featureNames.has(feature)) {
        throw new AimassError("FIELD_INVALID", `view "${u.view}" has no feature "${feature}"`);
      }
      const n = typeof value === "boolean" ? (value ? 1 : 0) : value;
      if (typeof n !== "number" || !Number.isFinite(n)) {
        throw new AimassError(
          "FIELD_INVALID",
          `view "${u.view}": feature "${feature}" is not a finite number`,
        );
      }
      args.push(`${plan.config.name}:${feature}`, String(n));
    }
    return args;
  }

  private plan(view: string): ViewPlan {
    const plan = this.views.get(view);
    if (!plan) {
      throw new AimassError(
        "FIELD_INVALID",
        `unknown feature view "${view}" (known: ${[...this.views.keys()].join(", ")})`,
      );
    }
    return plan;
  }

  /**
   * Runs a pipeline: one round trip. Any connection-level failure (refused, closed, not
   * writable, timed out, a transient server state like LOADING) rejects the whole call with
   * FEATURE_STORE_UNAVAILABLE; data errors stay in their slot for the caller.
   */
  private async exec(
    pipeline: ReturnType<Redis["pipeline"]>,
    what: "lookup" | "write",
  ): Promise<Array<[Error | null, unknown]>> {
    this.roundTripCount += 1;
    let replies: Array<[Error | null, unknown]> | null;
    try {
      replies = await pipeline.exec();
    } catch (err) {
      throw this.unavailable(what, err);
    }
    if (!replies) throw this.unavailable(what, new Error("pipeline returned no replies"));
    const down = replies.find(([err]) => err && !isDataError(err));
    if (down) throw this.unavailable(what, down[0]);
    return replies;
  }

  private unavailable(what: string, err: unknown): AimassError {
    return new AimassError(
      "FEATURE_STORE_UNAVAILABLE",
      `feature store ${what} failed: ${errorMessage(err)}`,
      {
        cause: err,
        details: { status: this.redis.status },
      },
    );
  }
}
