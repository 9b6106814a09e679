// Redis from the local stack through ioredis.
import { test } from "node:test";
import assert from "node:assert/strict";
import { deferrer, testRedis, uniqueName } from "../../helpers/stack.js";

test("ioredis writes and reads a hash, and pipelines", async (t) => {
  const defer = deferrer(t);
  const redis = testRedis(defer);
  const key = uniqueName("test:user");
  defer(() => redis.del(key));
  await redis.hset(key, { clicks: "3", _ts: "1700000000000" });
  assert.deepEqual(await redis.hgetall(key), { clicks: "3", _ts: "1700000000000" });
  const results = await redis.pipeline().hget(key, "clicks").hincrby(key, "clicks", 2).exec();
  assert.deepEqual(
    results?.map(([err, v]) => [err, v]),
    [
      [null, "3"],
      [null, 5],
    ],
  );
});
