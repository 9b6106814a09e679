// Admin calls in tests, retried while the broker answers with a retriable error (a group
// coordinator that is loading or moving answers NOT_COORDINATOR for a moment): a check that
// polls a condition must not fail on a moment the broker itself says will pass.
import { setTimeout as sleep } from "node:timers/promises";

export async function retrying<T>(call: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      const retriable = (err as { retriable?: unknown }).retriable === true;
      if (!retriable || Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}
