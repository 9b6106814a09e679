// The partition worker's commit logic without a broker: a fake sink that keeps a "log" and a
// committed offset the way a broker would, and can fail any call, including the ambiguous
// case of a commit that landed but answered with an error.
import { test } from "node:test";
import type { IHeaders, Message } from "kafkajs";
import assert from "node:assert/strict";
import { AimassError } from "../../../services/common/errors.js";
import type { SinkWrite, TransactionalSink } from "../../../services/common/kafka/transactional-sink.js";
import type { SourceRecord } from "../../../services/common/records.js";
import { silentLogger } from "../../../services/common/logger.js";
import type { ChunkPreparer, ProcessedChunk } from "../../../services/predictor/chunk.js";
import {
  PartitionWorker,
  type PartitionWorkerOptions,
} from "../../../services/predictor/partition-worker.js";

type Fault = "fail" | "fenced" | "ambiguous";

/** What a broker holds for one partition: the committed offset, the output, the current epoch. */
class FakeBroker {
  committed: bigint | undefined;
  readonly output: Array<{ topic: string; value: string; headers: IHeaders }> = [];
  epoch = 0;
  sinks = 0;
  fences = 0;
  commits = 0;
  /** Faults for the next fence() / commit() calls, in order. */
  readonly fenceFaults: Fault[] = [];
  readonly commitFaults: Fault[] = [];
  /** Messages the broker refuses whatever the request (over max.message.bytes, say). */
  refuse: (topic: string, m: Message) => boolean = () => false;

  newSink = (): TransactionalSink => {
    this.sinks++;
    let mine = -1;
    return {
      fence: async () => {
        this.fences++;
        const fault = this.fenceFaults.shift();
        if (fault === "fenced") throw new AimassError("KAFKA_FENCED", "a newer producer owns the id");
        if (fault) throw new AimassError("KAFKA_TRANSIENT", "coordinator not available");
        mine = ++this.epoch;
      },
      commit: async (w: SinkWrite) => {
        this.commits++;
        if (mine !== this.epoch) throw new AimassError("KAFKA_FENCED", "producer epoch is stale");
        const fault = this.commitFaults.shift();
        if (fault === "fenced") throw new AimassError("KAFKA_FENCED", "fenced");
        if (fault === "fail") throw new AimassError("KAFKA_TRANSIENT", "request timed out");
        const refused = w.topicMessages.flatMap((t) =>
          t.messages.flatMap((m, index) => (this.refuse(t.topic, m) ? [{ topic: t.topic, index }] : [])),
        );
        if (refused.length > 0) {
          const tooLarge = Object.assign(new Error("too large"), { type: "MESSAGE_TOO_LARGE" });
          if (!w.isolate) throw new AimassError("KAFKA_TRANSIENT", "transaction failed", { cause: tooLarge });
          throw new AimassError("KAFKA_RECORD_REJECTED", "refused", {
            cause: tooLarge,
            details: { refused },
          });
        }
        for (const t of w.topicMessages)
          for (const m of t.messages)
            this.output.push({ topic: t.topic, value: String(m.value), headers: m.headers ?? {} });
        this.committed = w.offset.offset;
        if (fault === "ambiguous") throw new AimassError("KAFKA_TRANSIENT", "EndTxn: no answer");
      },
      close: async () => undefined,
    };
  };
}

function records(from: number, n: number): SourceRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    topic: "in",
    partition: 0,
    offset: String(from + i),
    timestamp: "0",
    key: null,
    value: Buffer.from(String(from + i)),
    headers: {},
  }));
}

const chunkOf = (rs: SourceRecord[], tag = "p", shadow = false): ProcessedChunk => ({
  predictions: rs.map((r) => ({ key: null, value: `${tag}:${r.offset}` })),
  predictionSources: rs.map((_, i) => i),
  dlq: [],
  shadow: shadow ? rs.map((r) => ({ key: null, value: `s:${r.offset}` })) : [],
  dlqByStage: {},
  shadowFailures: 0,
});

const echo: ChunkPreparer = { prepare: async (rs) => chunkOf(rs) };

async function until(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function worker(broker: FakeBroker, over: Partial<PartitionWorkerOptions> = {}) {
  const events = { committed: 0, aborts: 0, fenced: 0, queueChanges: 0 };
  const w = new PartitionWorker({
    topic: "in",
    partition: 0,
    groupId: "g",
    outputTopic: "out",
    dlqTopic: "dlq",
    shadowTopic: "shadow",
    dlq: { pipeline: "test" },
    maxRecordsPerTransaction: 100,
    retryInitialMs: 1,
    retryMaxMs: 4,
    preparer: echo,
    startAfter: Promise.resolve(),
    newSink: broker.newSink,
    startOffset: async () => broker.committed ?? 0n,
    rewind: async () => undefined,
    logger: silentLogger,
    onQueueChange: () => events.queueChanges++,
    onCommitted: () => events.committed++,
    onAbort: () => events.aborts++,
    onLost: () => events.fenced++,
    ...over,
  });
  return { w, events };
}

const values = (b: FakeBroker, topic = "out") =>
  b.output.filter((o) => o.topic === topic).map((o) => o.value);
const expected = (n: number, tag = "p") => Array.from({ length: n }, (_, i) => `${tag}:${i}`);

test("chunks commit in offset order with the next offset, ready chunks grouped up to the limit", async () => {
  const broker = new FakeBroker();
  const { w, events } = worker(broker, { maxRecordsPerTransaction: 20 });
  for (let i = 0; i < 50; i += 10) w.enqueue(records(i, 10), BigInt(i));
  await w.stop("drain");
  assert.deepEqual(values(broker), expected(50));
  assert.equal(broker.committed, 50n);
  assert.ok(broker.commits < 5, `ready chunks share transactions (${broker.commits} commits)`);
  assert.ok(events.committed === broker.commits);
  assert.equal(w.queuedRecords, 0);
});

test("records already accepted are dropped when kafkajs delivers them again", async () => {
  const broker = new FakeBroker();
  const { w } = worker(broker);
  w.enqueue(records(0, 10), 0n);
  w.enqueue(records(5, 10), BigInt(5));
  await w.stop("drain");
  assert.deepEqual(values(broker), expected(15));
});

test("a failed commit is retried on a new producer, fenced first, and lands once", async () => {
  const broker = new FakeBroker();
  broker.commitFaults.push("fail", "fail");
  const { w, events } = worker(broker);
  w.enqueue(records(0, 10), 0n);
  await w.stop("drain");
  assert.deepEqual(values(broker), expected(10));
  assert.equal(events.aborts, 2);
  assert.equal(broker.sinks, 3, "one producer per epoch: the first and one after each failure");
  assert.equal(broker.fences, 3);
});

test("a commit that landed but answered with an error is not committed twice", async () => {
  const broker = new FakeBroker();
  broker.commitFaults.push("ambiguous");
  const { w } = worker(broker);
  w.enqueue(records(0, 10), 0n);
  await until(() => broker.commits >= 1, "the ambiguous commit");
  w.enqueue(records(10, 5), BigInt(10));
  await w.stop("drain");
  assert.deepEqual(values(broker), expected(15), "the new epoch reads the committed offset and skips 0..9");
  assert.equal(broker.committed, 15n);
});

test("a worker told to stop never fences again (it would fence the new owner)", async () => {
  const broker = new FakeBroker();
  broker.commitFaults.push("fail");
  let release = (): void => undefined;
  const stuck = new Promise<void>((r) => (release = r));
  const { w } = worker(broker, {
    retryInitialMs: 50,
    retryMaxMs: 50,
    // The second epoch's committed-offset read blocks, so the stop lands during the retry.
    startOffset: async () =>
      broker.sinks > 1 ? stuck.then(() => broker.committed ?? 0n) : (broker.committed ?? 0n),
  });
  w.enqueue(records(0, 10), 0n);
  await until(() => broker.commits === 1, "the failed commit");
  const stopped = w.stop("discard");
  release();
  await stopped;
  assert.ok(broker.fences <= 2, `fences after the stop: ${broker.fences}`);
  const fences = broker.fences;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(broker.fences, fences, "no fence after stop resolved");
  assert.equal(w.state, "stopped");
  assert.equal(w.queuedRecords, 0, "the discarded records are released");
});

test("a stop during the retry backoff ends the worker without another producer", async () => {
  const broker = new FakeBroker();
  broker.commitFaults.push("fail");
  const { w } = worker(broker, { retryInitialMs: 60_000, retryMaxMs: 60_000 });
  w.enqueue(records(0, 10), 0n);
  await until(() => broker.commits === 1, "the failed commit");
  await w.stop("discard");
  assert.equal(broker.sinks, 1);
  assert.deepEqual(values(broker), []);
});

test("fenced: the worker stops, reports it once, and commits nothing more", async () => {
  const broker = new FakeBroker();
  const { w, events } = worker(broker);
  w.enqueue(records(0, 5), 0n);
  await until(() => broker.committed === 5n, "the first commit");
  broker.epoch++; // a newer producer took the transactional id
  w.enqueue(records(5, 5), BigInt(5));
  await until(() => w.state === "fenced", "the fence");
  assert.equal(events.fenced, 1);
  assert.deepEqual(values(broker), expected(5));
  assert.equal(w.queuedRecords, 0);
});

test("a fence refused at start (a newer owner) ends the worker as fenced", async () => {
  const broker = new FakeBroker();
  broker.fenceFaults.push("fenced");
  const { w, events } = worker(broker);
  w.enqueue(records(0, 5), 0n);
  await until(() => w.state === "fenced", "the fence");
  assert.equal(events.fenced, 1);
  assert.equal(broker.commits, 0);
});

test("a transient fence failure at start is retried with a new producer", async () => {
  const broker = new FakeBroker();
  broker.fenceFaults.push("fail", "fail");
  const { w } = worker(broker);
  w.enqueue(records(0, 5), 0n);
  await w.stop("drain");
  assert.deepEqual(values(broker), expected(5));
  assert.equal(broker.sinks, 3);
});

test("records the previous owner committed are skipped", async () => {
  const broker = new FakeBroker();
  broker.committed = 6n;
  const { w } = worker(broker);
  w.enqueue(records(0, 10), 0n);
  await w.stop("drain");
  assert.deepEqual(values(broker), ["p:6", "p:7", "p:8", "p:9"]);
});

test("a failed preparation is redone with every chunk behind it, so versions never go backwards", async () => {
  const broker = new FakeBroker();
  let version = 1;
  let failFirst = true;
  const preparer: ChunkPreparer = {
    prepare: async (rs) => {
      const v = version;
      if (failFirst && rs[0]?.offset === "0") {
        failFirst = false;
        await new Promise((r) => setTimeout(r, 5)); // the chunk behind is prepared meanwhile, with v1
        version = 2; // a deploy lands while the head is being retried
        throw new AimassError("FEATURE_STORE_UNAVAILABLE", "redis down");
      }
      return chunkOf(rs, `v${v}`);
    },
  };
  const { w } = worker(broker, { preparer });
  w.enqueue(records(0, 5), 0n);
  w.enqueue(records(5, 5), BigInt(5));
  await w.stop("drain");
  const versions = values(broker).map((v) => Number(v.slice(1, v.indexOf(":"))));
  assert.equal(versions.length, 10);
  for (let i = 1; i < versions.length; i++)
    assert.ok((versions[i] as number) >= (versions[i - 1] as number), `version order: ${versions.join(",")}`);
});

test("shadow predictions are dropped from a retried transaction; the primary output lands", async () => {
  const broker = new FakeBroker();
  broker.commitFaults.push("fail");
  const { w } = worker(broker, { preparer: { prepare: async (rs) => chunkOf(rs, "p", true) } });
  w.enqueue(records(0, 5), 0n);
  await w.stop("drain");
  assert.deepEqual(values(broker), expected(5));
  assert.deepEqual(values(broker, "shadow"), []);
});

test("a partition with work and no commit reports how long it has stalled; idle reports 0", async () => {
  const broker = new FakeBroker();
  for (let i = 0; i < 1000; i++) broker.commitFaults.push("fail");
  const { w } = worker(broker, { retryInitialMs: 5, retryMaxMs: 5 });
  assert.equal(w.stalledMs(), 0);
  w.enqueue(records(0, 5), 0n);
  await until(() => w.stalledMs() >= 50, "a stall");
  broker.commitFaults.length = 0;
  await until(() => broker.committed === 5n, "recovery");
  assert.equal(w.stalledMs(), 0);
  await w.stop("drain");
});

test("the worker waits for the previous worker of its partition before it fences", async () => {
  const broker = new FakeBroker();
  let release = (): void => undefined;
  const { w } = worker(broker, { startAfter: new Promise<void>((r) => (release = r)) });
  w.enqueue(records(0, 5), 0n);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(broker.fences, 0);
  release();
  await w.stop("drain");
  assert.deepEqual(values(broker), expected(5));
});

test("a stream handed over from above the committed offset is rewound, and nothing is skipped", async () => {
  const broker = new FakeBroker();
  broker.committed = 10n;
  const rewinds: bigint[] = [];
  const handle: { w?: PartitionWorker } = {};
  const { w } = worker(broker, {
    // The consumer is pointed back at the committed offset and delivers from there again.
    rewind: async (offset) => {
      rewinds.push(offset);
      setImmediate(() => handle.w?.enqueue(records(10, 20), 10n));
    },
  });
  handle.w = w;
  // A fetch sent before a rejoin and answered after it: kafkajs' position had moved to 20.
  w.enqueue(records(20, 10), 20n);
  await until(() => broker.committed === 30n, "the re-read stream committed");
  await w.stop("drain");
  assert.deepEqual(rewinds, [10n]);
  assert.deepEqual(
    values(broker),
    Array.from({ length: 20 }, (_, i) => `p:${10 + i}`),
  );
});

test("kill returns even while a preparation never settles", async () => {
  const broker = new FakeBroker();
  const { w } = worker(broker, { preparer: { prepare: () => new Promise<ProcessedChunk>(() => undefined) } });
  w.enqueue(records(0, 5), 0n);
  await until(() => w.state === "running", "running");
  await w.kill();
  assert.equal(w.state, "stopped");
});

test("a discarded worker starts no new transaction once its preparation resolves", async () => {
  const broker = new FakeBroker();
  let release = (): void => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const { w } = worker(broker, {
    preparer: {
      prepare: async (rs) => {
        await gate;
        return chunkOf(rs);
      },
    },
  });
  w.enqueue(records(0, 5), 0n);
  await until(() => w.state === "running", "running");
  const stopped = w.stop("discard");
  release();
  await stopped;
  assert.equal(broker.commits, 0);
});

test(
  "a prediction the broker refuses goes to the DLQ; the rest of its chunk commits",
  { timeout: 10_000 },
  async (t) => {
    const broker = new FakeBroker();
    broker.refuse = (topic, m) => topic === "out" && (m.value === "p:7" || m.value === "p:19");
    const { w, events } = worker(broker);
    t.after(() => w.kill());
    w.enqueue(records(0, 30), 0n);
    await until(() => broker.committed === 30n, "the chunk to commit");
    assert.deepEqual(
      values(broker),
      expected(30).filter((v) => v !== "p:7" && v !== "p:19"),
    );
    const dlq = broker.output.filter((o) => o.topic === "dlq");
    assert.deepEqual(
      dlq.map((d) => d.value),
      ["7", "19"],
      "the input records, once each",
    );
    for (const d of dlq) assert.equal(String(d.headers["aimass.dlq.stage"]), "produce");
    assert.equal(broker.committed, 30n);
    assert.equal(events.fenced, 0);
    // One failure to find out, one isolated attempt that names both, then the commit.
    assert.ok(broker.commits <= 3, `${broker.commits} commits`);
  },
);

test("a DLQ record the broker refuses is cut to its aimass headers", { timeout: 10_000 }, async (t) => {
  const broker = new FakeBroker();
  const dlqOne: ChunkPreparer = {
    prepare: async (rs) => ({
      ...chunkOf(rs.filter((r) => r.offset !== "3")),
      predictionSources: rs.flatMap((r, i) => (r.offset === "3" ? [] : [i])),
      dlq: rs
        .filter((r) => r.offset === "3")
        .map((r) => ({ key: null, value: r.value, headers: { "aimass.dlq.source.offset": r.offset } })),
    }),
  };
  broker.refuse = (topic, m) => topic === "dlq" && m.value !== null && String(m.value).length > 0;
  const { w } = worker(broker, { preparer: dlqOne });
  t.after(() => w.kill());
  w.enqueue(records(0, 6), 0n);
  await until(() => broker.committed === 6n, "the chunk to commit");
  const dlq = broker.output.filter((o) => o.topic === "dlq");
  assert.equal(dlq.length, 1);
  assert.equal(dlq[0]?.value, "");
  assert.equal(String(dlq[0]?.headers["aimass.dlq.source.offset"]), "3");
  assert.equal(String(dlq[0]?.headers["aimass.dlq.stage"]), "produce");
  assert.equal(broker.committed, 6n);
});

test(
  "a DLQ topic that refuses even bare records: retried, nothing committed past them, until it takes them",
  { timeout: 10_000 },
  async (t) => {
    const broker = new FakeBroker();
    const allDlq: ChunkPreparer = {
      prepare: async (rs) => ({
        ...chunkOf([]),
        dlq: rs.map((r) => ({
          key: null,
          value: r.value,
          headers: { "aimass.dlq.source.offset": r.offset },
        })),
      }),
    };
    broker.refuse = (topic) => topic === "dlq";
    let lost: unknown;
    const { w } = worker(broker, { preparer: allDlq, onLost: (e) => (lost = e) });
    t.after(() => w.kill());
    w.enqueue(records(0, 2), 0n);
    await until(() => broker.commits >= 6, "several retries");
    assert.equal(broker.committed, undefined);
    assert.equal(lost, undefined, "the worker keeps its partition");
    assert.ok(w.stalledMs() > 0, "the stall shows");
    broker.refuse = () => false; // the operator fixes the DLQ topic
    await until(() => broker.committed === 2n, "the chunk to commit");
    assert.deepEqual(
      broker.output.filter((o) => o.topic === "dlq").map((o) => o.value),
      ["", ""],
      "bare copies, once each",
    );
  },
);
