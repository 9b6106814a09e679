// @confluentinc/kafka-javascript (librdkafka) passthrough through its KafkaJS-compatible API
// (`KafkaJS` namespace), loaded from load-tests/kafka-clients.
// EOS models:
// - "kip447" (default): one transactional producer per process (transactionalId
//   `<group>.<pid>.<random>`) for all assigned partitions, offsets sent with
//   sendOffsets({consumer}) so the TxnOffsetCommit carries the group generation / member id
//   (KIP-447 fencing: a zombie's offset commit fails once the group has moved on). Batches of
//   the concurrently consumed partitions are merged into one transaction of ≤ maxPerTxn
//   records (one producer has one transaction open at a time). A process killed mid-transaction
//   leaves it open until transaction.timeout.ms: it is set to 10 s (as Kafka Streams does
//   under EOS); the broker checks for expired transactions every 10 s.
// - "per-partition": the kafkajs model (one producer per input partition, transactionalId
//   `<group>.<input>.<partition>`), still with sendOffsets({consumer}).
// Producer settings: retry.backoff.ms 10 (see newProducer), linger.ms 1; more librdkafka
// producer properties can be tried with BENCH_CONFLUENT_PRODUCER_CONFIG='{"linger.ms":0}'.
// Group protocols: classic with the cooperative-sticky assignor (session timeout and heartbeat
// set like kafkajs), or KIP-848 (`group.protocol=consumer`), where session timeout and
// heartbeat interval are broker-side (group.consumer.session.timeout.ms, minimum 45 s by
// default) and the client refuses sessionTimeout / heartbeatInterval.
import { randomBytes } from "node:crypto";
import {
  errorText,
  importFromClientsPackage,
  type ClientVariant,
  type Passthrough,
  type PassthroughOptions,
} from "./types.js";

// The small part of the KafkaJS-compatible API used here.
type Headers = Record<string, Buffer | string | (Buffer | string)[] | undefined>;
interface CkMessage {
  key: Buffer | null;
  value: Buffer | null;
  offset: string;
  headers?: Headers;
}
interface CkEachBatchPayload {
  batch: { topic: string; partition: number; messages: CkMessage[] };
  resolveOffset(offset: string): void;
  isRunning(): boolean;
  isStale(): boolean;
}
interface CkConsumer {
  connect(): Promise<void>;
  subscribe(s: { topics: string[] }): Promise<void>;
  run(c: {
    eachBatchAutoResolve: boolean;
    partitionsConsumedConcurrently: number;
    eachBatch: (p: CkEachBatchPayload) => Promise<void>;
  }): Promise<void>;
  disconnect(): Promise<void>;
}
interface CkTopicOffsets {
  topic: string;
  partitions: { partition: number; offset: string }[];
}
interface CkProducer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  transaction(): Promise<CkProducer>;
  send(r: {
    topic: string;
    messages: { key: Buffer | null; value: Buffer | null; headers?: Headers; partition: number }[];
  }): Promise<unknown>;
  sendOffsets(a: { consumer: CkConsumer; topics: CkTopicOffsets[] }): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}
interface CkKafka {
  producer(config: Record<string, unknown>): CkProducer;
  consumer(config: Record<string, unknown>): CkConsumer;
}
interface CkModule {
  KafkaJS: { Kafka: new (config: Record<string, unknown>) => CkKafka };
  librdkafkaVersion: string;
}

export async function loadConfluent(): Promise<CkModule> {
  const mod = await importFromClientsPackage<{ default: CkModule }>("@confluentinc/kafka-javascript");
  return mod.default;
}

const WARN = 2; // KafkaJS logLevel.WARN

/** librdkafka producer properties to try without editing the adapter, e.g. '{"linger.ms":5}'. */
function extraProducerConfig(): Record<string, unknown> {
  const raw = process.env.BENCH_CONFLUENT_PRODUCER_CONFIG;
  return raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
}

interface Chunk {
  partition: number;
  messages: CkMessage[];
  done: { resolve: () => void; reject: (err: unknown) => void };
}

/** One transactional producer; queued chunks of any partitions go out ≤ maxRecords per transaction. */
class MergingTransactions {
  #queue: Chunk[] = [];
  #draining = false;
  #producer: Promise<CkProducer>;

  constructor(
    private readonly newProducer: () => Promise<CkProducer>,
    private readonly consumer: CkConsumer,
    private readonly o: PassthroughOptions,
  ) {
    this.#producer = newProducer();
  }

  submit(partition: number, messages: CkMessage[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ partition, messages, done: { resolve, reject } });
      if (!this.#draining) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    while (this.#queue.length > 0) {
      const taken: Chunk[] = [];
      let records = 0;
      while (this.#queue.length > 0) {
        const next = this.#queue[0] as Chunk;
        if (taken.length > 0 && records + next.messages.length > this.o.maxPerTxn) break;
        taken.push(next);
        records += next.messages.length;
        this.#queue.shift();
      }
      try {
        await this.#transaction(taken);
        for (const c of taken) c.done.resolve();
      } catch (err) {
        for (const c of taken) c.done.reject(err);
      }
    }
    this.#draining = false;
  }

  async #transaction(chunks: Chunk[]): Promise<void> {
    const producer = await this.#producer;
    const txn = await producer.transaction();
    try {
      const offsets = new Map<number, string>();
      const messages = [];
      for (const c of chunks) {
        for (const m of c.messages) {
          messages.push({ key: m.key, value: m.value, headers: m.headers ?? {}, partition: c.partition });
        }
        offsets.set(
          c.partition,
          (BigInt((c.messages[c.messages.length - 1] as CkMessage).offset) + 1n).toString(),
        );
      }
      await txn.send({ topic: this.o.output, messages });
      await txn.sendOffsets({
        consumer: this.consumer,
        topics: [
          {
            topic: this.o.input,
            partitions: [...offsets].map(([partition, offset]) => ({ partition, offset })),
          },
        ],
      });
      await txn.commit();
    } catch (err) {
      this.o.log("transaction failed", { error: errorText(err) });
      try {
        await txn.abort();
      } catch (abortErr) {
        // Fatal (fenced, or an abort that cannot complete): start over with a new producer.
        this.o.log("abort failed, new producer", { error: errorText(abortErr) });
        await producer.disconnect().catch(() => undefined);
        this.#producer = this.newProducer();
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    await (await this.#producer).disconnect();
  }
}

function variant(name: string, protocol: "cooperative" | "consumer", eos: "kip447" | "per-partition") {
  const start = async (o: PassthroughOptions): Promise<Passthrough> => {
    const { KafkaJS } = await loadConfluent();
    // The client's default logger prints multi-line objects: one JSON line per warning/error.
    const line = (level: string) => (message: string, extra?: Record<string, unknown>) =>
      o.log(`client ${level}: ${String(message).split("\n")[0]?.slice(0, 300)}`, { fac: extra?.fac });
    const logger = {
      info: () => undefined,
      debug: () => undefined,
      warn: line("warn"),
      error: line("error"),
      namespace: () => logger,
      setLogLevel: () => undefined,
    };
    const kafka = new KafkaJS.Kafka({
      kafkaJS: { brokers: o.brokers, clientId: "aimass-passthrough", logLevel: WARN, logger },
    });
    const newProducer = async (transactionalId: string): Promise<CkProducer> => {
      const producer = kafka.producer({
        kafkaJS: { transactionalId, idempotent: true, transactionTimeout: 10_000, logLevel: WARN },
        // librdkafka retries CONCURRENT_TRANSACTIONS (the next transaction's AddPartitionsToTxn
        // right after a commit) after retry.backoff.ms, 100 ms by default: 10 ms like kafkajs.
        "retry.backoff.ms": 10,
        "linger.ms": 1,
        ...extraProducerConfig(),
      });
      await producer.connect();
      return producer;
    };
    const consumer = kafka.consumer({
      kafkaJS: {
        groupId: o.group,
        fromBeginning: true,
        autoCommit: false,
        readUncommitted: false,
        maxWaitTimeInMs: 100,
        logLevel: WARN,
        ...(protocol === "cooperative"
          ? {
              sessionTimeout: o.sessionTimeoutMs,
              heartbeatInterval: o.heartbeatMs,
              partitionAssigners: ["cooperative-sticky"],
            }
          : {}),
      },
      ...(protocol === "consumer" ? { "group.protocol": "consumer" } : {}),
      "js.consumer.max.batch.size": o.maxPerTxn,
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [o.input] });

    const merged =
      eos === "kip447"
        ? new MergingTransactions(
            () => newProducer(`${o.group}.${process.pid}.${randomBytes(4).toString("hex")}`),
            consumer,
            o,
          )
        : undefined;
    const perPartition = new Map<number, Promise<CkProducer>>();
    const producerFor = (partition: number): Promise<CkProducer> => {
      let p = perPartition.get(partition);
      if (p === undefined) {
        p = newProducer(`${o.group}.${o.input}.${partition}`);
        perPartition.set(partition, p);
      }
      return p;
    };
    const ownTransaction = async (partition: number, chunk: CkMessage[]): Promise<void> => {
      const producer = await producerFor(partition);
      const txn = await producer.transaction();
      try {
        await txn.send({
          topic: o.output,
          messages: chunk.map((m) => ({ key: m.key, value: m.value, headers: m.headers ?? {}, partition })),
        });
        const last = (chunk[chunk.length - 1] as CkMessage).offset;
        await txn.sendOffsets({
          consumer,
          topics: [{ topic: o.input, partitions: [{ partition, offset: (BigInt(last) + 1n).toString() }] }],
        });
        await txn.commit();
      } catch (err) {
        o.log("transaction failed", { partition, error: errorText(err) });
        await txn.abort().catch(() => {
          perPartition.delete(partition); // fatal: the next chunk starts a new producer
          void producer.disconnect().catch(() => undefined);
        });
        throw err;
      }
    };

    await consumer.run({
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 64,
      eachBatch: async ({ batch, resolveOffset, isRunning, isStale }) => {
        for (let i = 0; i < batch.messages.length && isRunning() && !isStale(); i += o.maxPerTxn) {
          const chunk = batch.messages.slice(i, i + o.maxPerTxn);
          if (merged) await merged.submit(batch.partition, chunk);
          else await ownTransaction(batch.partition, chunk);
          resolveOffset((chunk[chunk.length - 1] as CkMessage).offset);
        }
      },
    });
    return {
      stop: async () => {
        await consumer.disconnect();
        await merged?.close();
        for (const p of perPartition.values()) await (await p).disconnect();
      },
    };
  };
  const v: ClientVariant = {
    name,
    client: "confluent",
    eosModel:
      eos === "kip447"
        ? "one producer per process, KIP-447 sendOffsets({consumer}), partitions merged per txn"
        : "producer per input partition (transactionalId fencing), sendOffsets({consumer})",
    protocol:
      protocol === "cooperative" ? "classic, cooperative-sticky" : "KIP-848 (group.protocol=consumer)",
    brokerSideSessionTimeout: protocol === "consumer",
    start,
  };
  return v;
}

export const confluentVariants: ClientVariant[] = [
  variant("confluent", "cooperative", "kip447"),
  variant("confluent-848", "consumer", "kip447"),
  variant("confluent-pp", "cooperative", "per-partition"),
  variant("confluent-pp-848", "consumer", "per-partition"),
];
