// @platformatic/kafka (pure JavaScript) passthrough, loaded from load-tests/kafka-clients.
// EOS model: one transactional producer per input partition (transactionalId
// `<group>.<input>.<partition>`, like kafkajs): a producer holds one transaction at a time,
// so per-partition producers are what lets partitions commit in parallel. Offsets go in the
// transaction with transaction.addConsumer(consumer) + addOffset(message), a TxnOffsetCommit
// that carries the group generation and member id.
// What the adapter has to add for exactly-once, because the client does not do it:
// - InitProducerId is sent with producerId 0 / epoch 0 by default, which the broker answers
//   with PRODUCER_FENCED for any transactionalId that already exists: a partition could never
//   move to another process. Every producer is created with producerId -1n / producerEpoch -1.
// - After a rebalance the messages stream re-reads committed offsets (OffsetFetch
//   requireStable=false) without waiting for the application's in-flight transactions, and a
//   fetch in flight across the rebalance is still pushed (and moves the fetch position), so
//   records can come twice, out of order or, if dropped, never again. The adapter therefore
//   keeps records by offset per partition and commits only the contiguous run from its own
//   position: on taking a partition, and after any failed transaction, it first initialises
//   the partition's producer (fencing the previous owner and finishing its open transaction),
//   then reads the committed offset itself and continues from exactly there. Records below the
//   position are dropped; a position the stream never delivers is logged as a gap after 5 s
//   and skipped (the bench then reports those records missing). The input topics here are
//   written without transactions, so their offsets are contiguous.
// - addOffset takes the group generation from the message's fetch: the adapter passes the
//   consumer's current generation / member id instead (records fetched before a rebalance
//   are still valid once the position has been resynchronised).
// - Partitions no longer in consumer.assignments are dropped before each transaction.
// Group protocols: classic (the client's own assigner, an eager rebalance: the consumer
// rejoins at once and every partition is re-read from its committed offset) with session
// timeout / heartbeat set like kafkajs, or KIP-848 (groupProtocol "consumer"; session timeout
// and heartbeat are broker-side there).
import {
  errorText,
  importFromClientsPackage,
  type ClientVariant,
  type Passthrough,
  type PassthroughOptions,
} from "./types.js";

// The small part of @platformatic/kafka's API used here.
interface PlGroupMetadata {
  groupId: string;
  generationId: number;
  memberId: string | null;
  coordinatorId: number | null;
}
interface PlMessage {
  key: Buffer | undefined;
  value: Buffer | undefined;
  headers: Map<Buffer, Buffer>;
  topic: string;
  partition: number;
  offset: bigint;
  metadata: { consumer?: PlGroupMetadata };
}
interface PlStream {
  on(event: "data", listener: (m: PlMessage) => void): PlStream;
  on(event: "error", listener: (err: Error) => void): PlStream;
  pause(): PlStream;
  resume(): PlStream;
  close(): Promise<void>;
}
interface PlConsumer {
  groupId: string;
  generationId: number;
  memberId: string | null;
  coordinatorId: number | null;
  assignments: { topic: string; partitions: number[] }[] | null;
  consume(options: Record<string, unknown>): Promise<PlStream>;
  listCommittedOffsets(o: {
    topics: { topic: string; partitions: number[] }[];
  }): Promise<Map<string, bigint[]>>;
  on(event: "consumer:group:join", listener: (p: { generationId?: number }) => void): PlConsumer;
  close(force?: boolean): Promise<void>;
}
interface PlTransaction {
  send(o: {
    messages: {
      topic: string;
      partition: number;
      key?: Buffer;
      value?: Buffer;
      headers?: Map<Buffer, Buffer>;
    }[];
  }): Promise<unknown>;
  addConsumer(consumer: PlConsumer): Promise<void>;
  addOffset(message: PlMessage): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
  cancel(): Promise<void>;
}
interface PlProducer {
  beginTransaction(): Promise<PlTransaction>;
  close(force?: boolean): Promise<void>;
}
interface PlModule {
  Consumer: new (options: Record<string, unknown>) => PlConsumer;
  Producer: new (options: Record<string, unknown>) => PlProducer;
  FetchIsolationLevels: { READ_COMMITTED: number };
  version?: string;
}

export function loadPlatformatic(): Promise<PlModule> {
  return importFromClientsPackage<PlModule>("@platformatic/kafka");
}

const HIGH_WATER = 10_000; // buffered records at which the stream is paused
const LOW_WATER = 2_000;
const GAP_AFTER_MS = 5_000;

interface PartitionState {
  /** Received, not yet committed records by offset. */
  pending: Map<bigint, PlMessage>;
  /** The next offset to commit; undefined until the first sync. */
  pos: bigint | undefined;
  needsSync: boolean;
  busy: boolean;
  producer: PlProducer | undefined;
  /** Since when records are pending but `pos` has not arrived. */
  waitingSince: number | undefined;
}

function variant(name: string, protocol: "classic" | "consumer"): ClientVariant {
  const start = async (o: PassthroughOptions): Promise<Passthrough> => {
    const { Consumer, Producer, FetchIsolationLevels } = await loadPlatformatic();
    const base = {
      clientId: "aimass-passthrough",
      bootstrapBrokers: o.brokers,
      retries: 12,
      retryDelay: 50,
    };
    const group =
      protocol === "classic"
        ? { sessionTimeout: o.sessionTimeoutMs, heartbeatInterval: o.heartbeatMs }
        : { groupProtocol: "consumer" };
    const consumer = new Consumer({
      ...base,
      ...group,
      groupId: o.group,
      autocommit: false,
      maxWaitTime: 100,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    });
    const states = new Map<number, PartitionState>();
    let buffered = 0;
    let paused = false;
    let stream: PlStream | undefined = undefined; // set once consume() resolved

    const owned = (partition: number): boolean =>
      consumer.assignments?.some((a) => a.topic === o.input && a.partitions.includes(partition)) ?? false;
    const newProducer = async (partition: number): Promise<PlProducer> => {
      const producer = new Producer({
        ...base,
        // CONCURRENT_TRANSACTIONS right after a commit is retried: after 10 ms like kafkajs, not 50.
        retryDelay: 10,
        transactionalId: `${o.group}.${o.input}.${partition}`,
        idempotent: true,
        // See the header: -1/-1 means "no current producer" (KIP-360), 0/0 gets PRODUCER_FENCED.
        producerId: -1n,
        producerEpoch: -1,
      });
      // InitProducerId happens in the first beginTransaction: do it now, so the previous
      // owner is fenced and its open transaction finished before the committed offset is read.
      const txn = await producer.beginTransaction();
      await txn.cancel();
      return producer;
    };
    const flow = (): void => {
      if (!stream) return;
      if (!paused && buffered > HIGH_WATER) {
        paused = true;
        stream.pause();
      } else if (paused && buffered < LOW_WATER) {
        paused = false;
        stream.resume();
      }
    };
    const forget = (st: PartitionState, below?: bigint): void => {
      for (const offset of [...st.pending.keys()]) {
        if (below === undefined || offset < below) {
          st.pending.delete(offset);
          buffered--;
        }
      }
      flow();
    };
    const drop = (partition: number, st: PartitionState): void => {
      if (states.get(partition) !== st) return;
      states.delete(partition);
      forget(st);
      void st.producer?.close(true).catch(() => undefined);
    };

    /** Fences the previous owner, then reads the committed offset: the position to go on from. */
    const sync = async (partition: number, st: PartitionState): Promise<void> => {
      void st.producer?.close(true).catch(() => undefined);
      st.producer = undefined;
      st.producer = await newProducer(partition);
      const committed = await consumer.listCommittedOffsets({
        topics: [{ topic: o.input, partitions: [partition] }],
      });
      const at = committed.get(o.input)?.[partition] ?? -1n;
      st.pos = at >= 0n ? at : 0n; // no commit yet: the log start (fresh topics start at 0)
      st.needsSync = false;
      st.waitingSince = undefined;
      forget(st, st.pos);
    };

    const kick = (partition: number, st: PartitionState): void => {
      if (st.busy) return;
      st.busy = true;
      void work(partition, st).finally(() => {
        st.busy = false;
        if (
          states.get(partition) === st &&
          (st.needsSync || (st.pos !== undefined && st.pending.has(st.pos)))
        )
          kick(partition, st);
      });
    };

    const work = async (partition: number, st: PartitionState): Promise<void> => {
      while (states.get(partition) === st) {
        if (!owned(partition)) {
          drop(partition, st);
          return;
        }
        if (st.needsSync) {
          try {
            await sync(partition, st);
          } catch (err) {
            o.log("partition sync failed", { partition, error: errorText(err) });
            await new Promise((r) => setTimeout(r, 200));
          }
          continue;
        }
        const chunk: PlMessage[] = [];
        for (let at = st.pos as bigint; chunk.length < o.maxPerTxn; at++) {
          const m = st.pending.get(at);
          if (!m) break;
          chunk.push(m);
        }
        if (chunk.length === 0) {
          if (st.pending.size > 0) st.waitingSince ??= Date.now();
          return;
        }
        st.waitingSince = undefined;
        const last = chunk[chunk.length - 1] as PlMessage;
        const producer = st.producer as PlProducer;
        let txn: PlTransaction | undefined;
        try {
          txn = await producer.beginTransaction();
          await txn.send({
            messages: chunk.map((m) => ({
              topic: o.output,
              partition,
              ...(m.key !== undefined ? { key: m.key } : {}),
              ...(m.value !== undefined ? { value: m.value } : {}),
              headers: m.headers,
            })),
          });
          await txn.addConsumer(consumer);
          // KIP-848: the client keeps the member epoch private (consumer.generationId stays 0,
          // which the broker rejects): send no generation / member (-1 / ""), the pre-KIP-447
          // form; the per-partition transactionalId fencing still protects the offsets.
          const current: PlGroupMetadata =
            protocol === "classic"
              ? {
                  groupId: consumer.groupId,
                  generationId: consumer.generationId,
                  memberId: consumer.memberId,
                  coordinatorId: consumer.coordinatorId,
                }
              : {
                  groupId: consumer.groupId,
                  generationId: -1,
                  memberId: "",
                  coordinatorId: consumer.coordinatorId,
                };
          await txn.addOffset({ ...last, metadata: { ...last.metadata, consumer: current } });
          await txn.commit();
        } catch (err) {
          o.log("transaction failed", { partition, error: errorText(err) });
          await txn?.abort().catch(() => txn?.cancel().catch(() => undefined));
          st.needsSync = true; // new producer (fences this one), position from the committed offset
          continue;
        }
        st.pos = last.offset + 1n;
        forget(st, st.pos);
      }
    };

    const onMessage = (m: PlMessage): void => {
      const partition = m.partition;
      let st = states.get(partition);
      if (!owned(partition)) {
        if (st) drop(partition, st);
        return;
      }
      if (!st) {
        st = {
          pending: new Map(),
          pos: undefined,
          needsSync: true,
          busy: false,
          producer: undefined,
          waitingSince: undefined,
        };
        states.set(partition, st);
      }
      if ((st.pos === undefined || m.offset >= st.pos) && !st.pending.has(m.offset)) {
        st.pending.set(m.offset, m);
        buffered++;
      }
      kick(partition, st);
      flow();
    };

    // A position the stream never delivers: log it as a gap and go on from the next record.
    const gapCheck = setInterval(() => {
      for (const [partition, st] of states) {
        if (st.busy || st.waitingSince === undefined || Date.now() - st.waitingSince < GAP_AFTER_MS) continue;
        const next = [...st.pending.keys()].reduce((a, b) => (b < a ? b : a));
        o.log("gap: the stream skipped records", { partition, expected: st.pos, next });
        st.pos = next;
        st.waitingSince = undefined;
        kick(partition, st);
      }
    }, 1_000);
    gapCheck.unref();

    consumer.on("consumer:group:join", (p) => {
      o.log("group join", { generation: p.generationId, assignments: consumer.assignments });
      for (const [partition, st] of [...states]) if (!owned(partition)) drop(partition, st);
    });
    stream = await consumer.consume({
      ...group,
      topics: [o.input],
      mode: "committed",
      fallbackMode: "earliest",
      autocommit: false,
      maxWaitTime: 100,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    });
    stream.on("data", onMessage);
    stream.on("error", (err) => o.log("stream error", { error: errorText(err) }));
    return {
      stop: async () => {
        clearInterval(gapCheck);
        await stream?.close().catch(() => undefined);
        await consumer.close(true).catch(() => undefined);
        for (const st of states.values()) await st.producer?.close(true).catch(() => undefined);
      },
    };
  };
  return {
    name,
    client: "platformatic",
    eosModel:
      protocol === "classic"
        ? "producer per input partition (transactionalId fencing), addOffset (TxnOffsetCommit w/ generation)"
        : "producer per input partition (transactionalId fencing), addOffset without generation (epoch not exposed)",
    protocol:
      protocol === "classic" ? "classic, eager (client-side assigner)" : "KIP-848 (groupProtocol=consumer)",
    brokerSideSessionTimeout: protocol === "consumer",
    start,
  };
}

export const platformaticVariants: ClientVariant[] = [
  variant("platformatic", "classic"),
  variant("platformatic-848", "consumer"),
];
