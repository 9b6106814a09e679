// Sends a run's planned records at a steady rate, one batch at a time (so a key's records
// reach the broker in order), and remembers when each was acknowledged. Through a broker
// fault a send is retried by the client (idempotent: a retry never duplicates); a send that
// still fails is not repeated, because it may have been written: the input topic read back
// at the end says what went in.
// Each send holds one partition's records. Unpatched, kafkajs 2.2.4 retries a send that spans
// brokers only to the brokers that have not answered yet, and can skip a partition whose
// leader moved (patches/kafkajs fixes that); one partition per send keeps the input the same
// whether or not the patch is in.
import { Partitioners, type Kafka, type Message, type PartitionMetadata, type Producer } from "kafkajs";
import { sleep } from "../../services/common/lifecycle.js";
import type { PlannedRecord } from "./events.js";

export interface LoadOptions {
  kafka: Kafka;
  topic: string;
  /** The topic's partition count (the partitioner's modulus). */
  partitions: number;
  records: Iterable<PlannedRecord>;
  count: number;
  /** Records per second. */
  rate: number;
  signal: AbortSignal;
}

export class LoadGenerator {
  /** Acknowledgement time per id. */
  readonly ackedAt = new Map<string, number>();
  readonly failures: Array<{ at: number; records: number; error: string }> = [];
  sent = 0;
  startedAt = 0;
  finishedAt = 0;
  private readonly producer: Producer;
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  private finished = false;
  /** kafkajs' own partitioner: keyed records land where any kafkajs producer would put them. */
  private readonly partitioner = Partitioners.DefaultPartitioner();
  private readonly metadata: PartitionMetadata[];

  constructor(private readonly o: LoadOptions) {
    this.producer = o.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { retries: 60, initialRetryTime: 200, maxRetryTime: 2_000 },
    });
    this.metadata = Array.from({ length: o.partitions }, (_, partitionId) => ({
      partitionErrorCode: 0,
      partitionId,
      leader: 0,
      replicas: [],
      isr: [],
    }));
  }

  /** Resolves when every record was sent (or the run was aborted). */
  async run(): Promise<void> {
    await this.producer.connect();
    const batch = Math.max(1, Math.ceil(this.o.rate / 20));
    const it = this.o.records[Symbol.iterator]();
    this.startedAt = Date.now();
    try {
      while (this.sent < this.o.count && !this.o.signal.aborted) {
        const records: PlannedRecord[] = [];
        while (records.length < batch && this.sent + records.length < this.o.count) {
          const next = it.next();
          if (next.done) break;
          records.push(next.value);
        }
        if (records.length === 0) break;
        // Partitions in parallel (each on its leader), one request per partition.
        await Promise.all(
          [...this.byPartition(records)].map(async ([partition, part]) => {
            try {
              await this.producer.send({
                topic: this.o.topic,
                messages: part.map((r) => ({ key: r.key, value: r.value, headers: r.headers, partition })),
              });
              const now = Date.now();
              for (const r of part) this.ackedAt.set(r.id, now);
            } catch (err) {
              this.failures.push({ at: Date.now(), records: part.length, error: String(err) });
            }
          }),
        );
        this.sent += records.length;
        this.wake();
        // Paced from the start, so a send held up by a fault is followed by a catch-up burst
        // rather than a permanently shifted schedule.
        const due = this.startedAt + (this.sent / this.o.rate) * 1000 - Date.now();
        if (due > 0) await sleep(due, this.o.signal);
      }
    } finally {
      this.finishedAt = Date.now();
      this.finished = true;
      this.wake();
      await this.producer.disconnect().catch(() => undefined);
    }
  }

  private byPartition(records: PlannedRecord[]): Map<number, PlannedRecord[]> {
    const out = new Map<number, PlannedRecord[]>();
    for (const r of records) {
      const message: Message = { key: r.key, value: r.value };
      const p = this.partitioner({ topic: this.o.topic, partitionMetadata: this.metadata, message });
      const list = out.get(p) ?? [];
      list.push(r);
      out.set(p, list);
    }
    return out;
  }

  /** Resolves once `n` records were sent (or sending ended). */
  sentAtLeast(n: number): Promise<void> {
    if (this.sent >= n || this.finished) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  private wake(): void {
    const ready = this.waiters.filter((w) => this.sent >= w.n || this.finished);
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }
}
