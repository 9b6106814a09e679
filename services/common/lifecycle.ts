// Small lifecycle pieces every long-running service needs the same way: an abortable sleep
// for retry backoff, a grace-time race for draining, and closing resources without letting
// one failed close skip the others.
import { errorMessage } from "./errors.js";
import type { Logger } from "./logger.js";

/** Sleeps `ms`, or less if `signal` aborts; never rejects. Removes its listener either way. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export const ABORTED: unique symbol = Symbol("aborted");

/** `work`'s value, or ABORTED as soon as `signal` aborts (work goes on unobserved). */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T | typeof ABORTED> {
  if (signal.aborted) return Promise.resolve(ABORTED);
  return new Promise<T | typeof ABORTED>((resolve, reject) => {
    const onAbort = () => resolve(ABORTED);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** Waits for `work` for at most `graceMs`; resolves true when the grace time ran out first. */
export async function exceedsGrace(work: Promise<unknown>, graceMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs each close in order; a failure is logged and the next close still runs. */
export async function closeAll(
  logger: Logger,
  steps: Array<[name: string, close: (() => Promise<unknown>) | undefined]>,
): Promise<void> {
  for (const [name, close] of steps) {
    if (!close) continue;
    try {
      await close();
    } catch (err) {
      logger.warn(`closing ${name} failed`, { error: errorMessage(err) });
    }
  }
}
