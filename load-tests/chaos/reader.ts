// A consumer that follows topics from their beginning and keeps, per partition, every record
// once (by offset), the position it reached (control records included: a commit marker moves
// it too) and the high watermark its fetches reported. No offset commits. When a broker fault
// crashes the consumer, a new one starts in a new group and reads from the beginning again:
// rejoining the old group would wait out the crashed member's session first, and the reader
// would see outputs late, blurring the recovery times measured from it.
import type { Consumer, IHeaders, Kafka } from "kafkajs";
import { sleep } from "../../services/common/lifecycle.js";

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
  /** When this reader first saw it (epoch ms). */
  seenAt: number;
}

export interface TopicReaderOptions {
  kafka: Kafka;
  groupId: string;
  topics: string[];
  /** Read past open transactions (to find the high watermark); default read_committed. */
  readUncommitted?: boolean;
}

const coordinates = (topic: string, partition: number) => `${topic}:${partition}`;

export class TopicReader {
  private consumer: Consumer | undefined;
  private generation = 0;
  private readonly records = new Map<string, ReadRecord>();
  private readonly reached = new Map<string, number>();
  private readonly watermarks = new Map<string, number>();
  private lastChange = Date.now();
  private stopped = false;
  /** Consumers replaced after a crash. */
  restarts = 0;

  constructor(private readonly o: TopicReaderOptions) {}

  async start(): Promise<void> {
    const c = this.o.kafka.consumer({
      groupId: `${this.o.groupId}-${this.generation++}`,
      readUncommitted: this.o.readUncommitted ?? false,
      maxWaitTimeInMs: 100,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      retry: { retries: 5, maxRetryTime: 2_000, restartOnFailure: async () => false },
    });
    this.consumer = c;
    c.on(c.events.CRASH, () => void this.replace(c));
    c.on(c.events.END_BATCH_PROCESS, ({ payload }) => {
      const k = coordinates(payload.topic, payload.partition);
      const next = Number(payload.lastOffset) + 1;
      if (next > (this.reached.get(k) ?? 0)) {
        this.reached.set(k, next);
        this.lastChange = Date.now();
      }
      const hw = Number(payload.highWatermark);
      if (hw > (this.watermarks.get(k) ?? 0)) this.watermarks.set(k, hw);
    });
    await c.connect();
    await c.subscribe({ topics: this.o.topics, fromBeginning: true });
    await c.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        const offset = Number(message.offset);
        const k = `${coordinates(topic, partition)}:${offset}`;
        if (this.records.has(k)) return;
        this.records.set(k, {
          topic,
          partition,
          offset,
          key: message.key,
          value: message.value,
          headers: message.headers ?? {},
          seenAt: Date.now(),
        });
        this.lastChange = Date.now();
      },
    });
  }

  /** A crashed consumer is dropped for a new one, retried until it starts (or the reader stops). */
  private async replace(crashed: Consumer): Promise<void> {
    if (this.stopped || this.consumer !== crashed) return;
    this.restarts++;
    await crashed.disconnect().catch(() => undefined);
    while (!this.stopped) {
      try {
        await this.start();
        return;
      } catch {
        await this.consumer?.disconnect().catch(() => undefined);
        await sleep(500);
      }
    }
  }

  /** Every record read so far, once each. */
  all(): ReadRecord[] {
    return [...this.records.values()];
  }

  get size(): number {
    return this.records.size;
  }

  /** The next offset after what was read (commit and abort markers included); 0 if nothing. */
  position(topic: string, partition: number): number {
    return this.reached.get(coordinates(topic, partition)) ?? 0;
  }

  /** The highest high watermark a fetch reported for a partition (0 if none came). */
  highWatermark(topic: string, partition: number): number {
    return this.watermarks.get(coordinates(topic, partition)) ?? 0;
  }

  /** Resolves once nothing new was read for `quietMs` (or `timeoutMs` passed). */
  async quiet(quietMs: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() - this.lastChange < quietMs && Date.now() < deadline) await sleep(200);
  }

  /** Resolves true once `done()` holds, false if `timeoutMs` passed first. */
  async until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) return false;
      await sleep(200);
    }
    return true;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.consumer?.disconnect().catch(() => undefined);
  }
}

/** A header's value as a string (the first, if repeated). */
export function headerString(headers: IHeaders, name: string): string | undefined {
  const h = headers[name];
  const v = Array.isArray(h) ? h[0] : h;
  return v === undefined ? undefined : v.toString();
}
