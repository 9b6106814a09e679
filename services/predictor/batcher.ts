// A micro-batcher: items submitted one by one are grouped into batches that close at
// `maxBatchSize` items or `maxDelayMs` after the batch's first item, whichever comes
// first. At most `maxInFlightBatches` batches run at once; closed batches beyond that wait
// in order. Each item gets its own outcome, so one bad item never fails its neighbours.

export type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface BatcherOptions<T, R> {
  maxBatchSize: number;
  maxDelayMs: number;
  maxInFlightBatches: number;
  /** Runs one batch; returns one outcome per item, in order. A throw fails every item. */
  run: (items: T[]) => Promise<Outcome<R>[]>;
  /**
   * Observes each batch as it starts running (for metrics): its size, why it closed, and
   * how long its first item waited (batching delay plus waiting for a free slot).
   */
  onBatch?: (info: { size: number; reason: "size" | "delay" | "flush"; queueWaitMs: number }) => void;
}

interface Pending<T, R> {
  item: T;
  resolve: (o: Outcome<R>) => void;
}

interface ClosedBatch<T, R> {
  items: Pending<T, R>[];
  openedAt: number;
  reason: "size" | "delay" | "flush";
}

export class MicroBatcher<T, R> {
  private open: Pending<T, R>[] = [];
  private openedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly waiting: ClosedBatch<T, R>[] = [];
  private inFlight = 0;
  private closed = false;

  constructor(private readonly options: BatcherOptions<T, R>) {}

  /** Items waiting in the open batch or in closed batches not yet running. */
  get queued(): number {
    return this.open.length + this.waiting.reduce((n, b) => n + b.items.length, 0);
  }

  get inFlightBatches(): number {
    return this.inFlight;
  }

  submit(item: T): Promise<Outcome<R>> {
    if (this.closed) return Promise.resolve({ ok: false, error: new Error("batcher is closed") });
    return new Promise((resolve) => {
      if (this.open.length === 0) this.openedAt = performance.now();
      this.open.push({ item, resolve });
      if (this.open.length >= this.options.maxBatchSize) this.close("size");
      else if (this.open.length === 1) {
        this.timer = setTimeout(() => this.close("delay"), this.options.maxDelayMs);
      }
    });
  }

  /** Closes the open batch now (e.g. on shutdown, so nothing waits for the delay). */
  flush(): void {
    if (this.open.length > 0) this.close("flush");
  }

  /** Stops accepting items; already submitted items still complete. */
  stop(): void {
    this.flush();
    this.closed = true;
  }

  private close(reason: "size" | "delay" | "flush"): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const items = this.open;
    this.open = [];
    if (items.length === 0) return;
    this.waiting.push({ items, openedAt: this.openedAt, reason });
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlightBatches && this.waiting.length > 0) {
      const batch = this.waiting.shift() as ClosedBatch<T, R>;
      this.inFlight++;
      this.options.onBatch?.({
        size: batch.items.length,
        reason: batch.reason,
        queueWaitMs: performance.now() - batch.openedAt,
      });
      void this.execute(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async execute(batch: ClosedBatch<T, R>): Promise<void> {
    let outcomes: Outcome<R>[];
    try {
      outcomes = await this.options.run(batch.items.map((p) => p.item));
    } catch (error) {
      outcomes = batch.items.map(() => ({ ok: false, error }));
    }
    batch.items.forEach((p, i) =>
      p.resolve(outcomes[i] ?? { ok: false, error: new Error("no outcome for item") }),
    );
  }
}
