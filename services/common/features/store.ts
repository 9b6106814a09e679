// The Redis online feature store (docs/feature-store.md). One hash per entity,
// `<keyPrefix>:<entity>:<entity key>`, holding `<view>:<feature>` = value (decimal string) and
// `_ts:<view>` = the event time (epoch ms) of the values stored for that view; views of the
// same entity share the hash.
//
// Writes go through a Lua compare-and-write (write.ts). Lookups fetch a whole micro-batch
// with ONE pipeline of one HGETALL per distinct hash (lookup.ts): one round trip per batch,
// never one per event. Connection errors and timeouts surface as AimassError
// FEATURE_STORE_UNAVAILABLE (client.ts); the caller decides the policy (features.onUnavailable,
// view.onStale).
import type { Redis } from "ioredis";
import { AimassError, errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import type { FeaturesConfig } from "../config/schema.js";
import { admit, connectRedis, execPipeline, pendingCommands, quit, waitReady } from "./client.js";
import { planLookup, readLookups } from "./lookup.js";
import type { FeatureUpdate, LookupRequest, LookupResult } from "./types.js";
import { ViewPlans } from "./views.js";
import { defineWriteCommand, queueWrites, settleWrites } from "./write.js";

export type { FeatureLookup, FeatureUpdate, LookupRequest, LookupResult, LookupStatus } from "./types.js";

export class FeatureStore {
  private readonly views: ViewPlans;
  private roundTripCount = 0;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly redis: Redis,
    config: FeaturesConfig,
    private readonly log: Logger,
  ) {
    this.views = new ViewPlans(config);
    defineWriteCommand(redis);
  }

  /**
   * Creates the store and starts connecting (it does not wait: see `waitReady`). Until the
   * connection is up, commands fail fast with FEATURE_STORE_UNAVAILABLE.
   */
  static connect(url: string, config: FeaturesConfig, logger: Logger): FeatureStore {
    const log = logger.child({ component: "feature-store" });
    return new FeatureStore(connectRedis(url, config, log), config, log);
  }

  /** Pipelines executed so far (lookups and writes): one per `lookup`/`write` call that had work. */
  get roundTrips(): number {
    return this.roundTripCount;
  }

  /**
   * Commands written to Redis and waiting for a reply (timed-out ones included until the
   * reply or a disconnect). Bounded: see client.ts.
   */
  get pendingCommands(): number {
    return pendingCommands(this.redis);
  }

  /** Connected and ready for commands. */
  get available(): boolean {
    return this.redis.status === "ready";
  }

  /** Resolves once connected; rejects with FEATURE_STORE_UNAVAILABLE after `timeoutMs`. */
  waitReady(timeoutMs: number): Promise<void> {
    return waitReady(this.redis, timeoutMs);
  }

  /** The view's defaults (what a miss serves), e.g. for `onUnavailable: defaults`. */
  defaultsFor(view: string): Record<string, number> {
    return { ...this.views.get(view).defaults };
  }

  /** The Redis key of an entity's hash. */
  hashKey(view: string, entityKey: string): string {
    return this.views.hashKey(this.views.get(view), entityKey);
  }

  /**
   * An event's lookup request: for each view (all configured views by default), the value of
   * the view's `key` field — strings as they are, finite numbers and bigints as decimal
   * strings, anything else (missing, null, empty string, objects) → undefined (a miss).
   */
  entityKeys(event: Record<string, unknown>, views: Iterable<string> = this.views.names()): LookupRequest {
    const request: LookupRequest = {};
    for (const view of views) {
      const raw = event[this.views.get(view).config.key];
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
   * Rejects with FEATURE_STORE_UNAVAILABLE when Redis cannot be reached, times out or has too
   * many commands waiting (some updates may have been applied: retrying them is harmless), and
   * with FIELD_INVALID for an update that does not fit the config or that Redis refused (e.g.
   * WRONGTYPE).
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
    queueWrites(pipeline, this.views, updates);
    return settleWrites(await this.exec(pipeline, "write"), updates);
  }

  /**
   * Looks up a micro-batch: one HGETALL per distinct entity hash over all events and views,
   * in ONE pipeline (one round trip; none when no event has a key). Resolves with one
   * LookupResult per request, in order, holding a FeatureLookup for each view it names.
   *
   * Stale values are returned as stored with status "stale": the caller applies the view's
   * `onStale` policy (serve defaults, or dead-letter the event). A hash Redis refuses to read
   * (WRONGTYPE: the key is not a hash) is treated as a miss with every feature counted invalid.
   * Rejects with FEATURE_STORE_UNAVAILABLE when Redis cannot be reached or times out, or at
   * once when too many commands already wait for it.
   */
  async lookup(requests: LookupRequest[], nowMs: number = Date.now()): Promise<LookupResult[]> {
    const plan = planLookup(this.views, requests);
    let hashes: Array<Record<string, string> | null> = [];
    if (plan.keys.length > 0) {
      const pipeline = this.redis.pipeline();
      for (const key of plan.keys) pipeline.hgetall(key);
      const replies = await this.exec(pipeline, "lookup");
      hashes = replies.map(([err, reply], i) => {
        if (!err) return reply as Record<string, string>;
        this.log.warn("feature hash unreadable; serving defaults", {
          key: plan.keys[i],
          error: errorMessage(err),
        });
        return null;
      });
    }
    return readLookups(plan, hashes, nowMs);
  }

  /** Quits gracefully (waiting for replies in flight), or disconnects. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= quit(this.redis);
    return this.closing;
  }

  private exec(pipeline: ReturnType<Redis["pipeline"]>, what: "lookup" | "write") {
    admit(this.redis, what);
    this.roundTripCount += 1;
    return execPipeline(this.redis, pipeline, what);
  }
}
