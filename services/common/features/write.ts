// The write path: a Lua compare-and-write per update (the newer event time wins, so replays
// and out-of-order updates are harmless), validated against the view before it is queued.
import type { ChainableCommander, Redis, Result } from "ioredis";
import { AimassError, errorMessage } from "../errors.js";
import type { FeatureUpdate } from "./types.js";
import type { ViewPlan, ViewPlans } from "./views.js";

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

/** Makes `aimassFeatureWrite` available on `redis` and its pipelines. */
export function defineWriteCommand(redis: Redis): void {
  redis.defineCommand("aimassFeatureWrite", { numberOfKeys: 1, lua: WRITE_LUA });
}

/** Queues one compare-and-write per update; FIELD_INVALID (nothing queued) for one that does not fit. */
export function queueWrites(pipeline: ChainableCommander, views: ViewPlans, updates: FeatureUpdate[]): void {
  const writes = updates.map((u) => {
    const plan = views.get(u.view);
    return [views.hashKey(plan, u.key), plan.tsField, String(u.ts), ...writeArgs(plan, u)] as const;
  });
  for (const [key, ...args] of writes) pipeline.aimassFeatureWrite(key, ...args);
}

/** Per update: 1 (written), 0 (stale), or FIELD_INVALID where Redis refused its data. */
export function settleWrites(
  replies: Array<[Error | null, unknown]>,
  updates: FeatureUpdate[],
): Array<0 | 1 | AimassError> {
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

/** ARGV after the ts: the view's TTL, then `<view>:<feature>`, value pairs. */
function writeArgs(plan: ViewPlan, u: FeatureUpdate): string[] {
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
      throw new AimassError("FIELD_INVALID", `view "${u.view}": feature "${feature}" is not a finite number`);
    }
    args.push(`${plan.config.name}:${feature}`, String(n));
  }
  return args;
}
