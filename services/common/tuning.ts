// Every internal timeout, interval and retry knob, in one frozen place. These are not user
// configuration (that is the pipeline config's zod schema, services/common/config/schema.ts):
// they are the values the code was measured and tested with. Components receive them as
// resolved options and keep no `??` defaults of their own; tests pass smaller ones.
//
// Units are in the names. Each value says why it is what it is.

export const TUNING = Object.freeze({
  kafka: Object.freeze({
    /** TCP connect to a broker: a wrong address fails within this, not after minutes. */
    connectionTimeoutMs: 5_000,
    /** One request's round trip; long enough for a transaction coordinator under load. */
    requestTimeoutMs: 30_000,
    /** kafkajs' client-level retrier for metadata and admin calls. */
    clientRetry: Object.freeze({ initialRetryTime: 100, retries: 8 }),
    /** How long a fetch waits for data on an idle partition; bounds idle latency. */
    fetchMaxWaitMs: 100,
    /** A consumer group member's retrier (kafkajs restarts the consumer past it). */
    consumerRetries: 10,
    /** The group waits this long (at least) for members to rejoin during a rebalance. */
    minRebalanceTimeoutMs: 60_000,
    /** A fetch request returns at least this much per partition when the records are there. */
    minFetchBytesPerPartition: 1_048_576,
  }),
  transactions: Object.freeze({
    /**
     * The transactional producer's retrier. A short first retry: CONCURRENT_TRANSACTIONS right
     * after the previous commit clears within milliseconds, and every transaction's first
     * send can hit it.
     */
    producerRetry: Object.freeze({ retries: 12, initialRetryTime: 10, maxRetryTime: 2_000 }),
    /** AddOffsetsToTxn answered CONCURRENT_TRANSACTIONS (kafkajs #430 does not retry it). */
    sendOffsetsAttempts: 20,
    sendOffsetsInitialBackoffMs: 20,
    sendOffsetsMaxBackoffMs: 500,
  }),
  predictor: Object.freeze({
    /** Consumer lag is re-read from the broker this often, so a stalled worker shows lag growing. */
    lagRefreshMs: 5_000,
    /** At start the feature store gets this long to answer; past it chunks fail and retry. */
    featureStoreReadyMs: 5_000,
    /** A killed partition worker is waited for this long at most (its producer's disconnect can hang). */
    killWaitMs: 5_000,
  }),
  control: Object.freeze({
    /** A worker (or the CLI) reads the control topic to its end within this, or fails. */
    catchUpTimeoutMs: 30_000,
    /** The control listener's fetch wait: a change applies within about this. */
    fetchMaxWaitMs: 200,
    /** `aimass models … --wait-ms` default: how long to collect workers' apply results. */
    cliWaitMs: 10_000,
  }),
  features: Object.freeze({
    /** Redis connect timeout = commandTimeoutMs × this, at least minConnectTimeoutMs. */
    connectTimeoutFactor: 10,
    minConnectTimeoutMs: 1_000,
    /**
     * A connection with commands outstanding that has read nothing for commandTimeoutMs × this
     * (at least minSocketTimeoutMs) is dropped and reconnected. Redis answers in order, so that
     * silence means a stopped or vanished server: without the bound, commands that timed out
     * stay queued for as long as the TCP connection stays open, and memory grows at the lookup
     * rate. Ten command timeouts, so a server briefly blocked (a fork, a slow script) keeps its
     * connection; the queue then holds at most the lookup rate × this long of commands.
     */
    socketTimeoutFactor: 10,
    minSocketTimeoutMs: 1_000,
    /**
     * Past this many commands waiting for replies, a lookup or write fails at once with
     * FEATURE_STORE_UNAVAILABLE instead of queueing: the bound that holds when the server is
     * alive but slower than the lookups (replies trickle in, so the socket timeout never fires).
     * A queued command costs about 1.5 KB, so this is about 75 MB. Healthy, it is never
     * reached: a worker holds at most processing.maxInFlightRecords records (10,000 by default),
     * each needing one HGETALL per entity, and Redis answers pipelined HGETALLs at hundreds of
     * thousands a second.
     */
    maxPendingCommands: 50_000,
    /** Reconnect backoff: attempt × stepMs, at most maxMs. */
    reconnectStepMs: 100,
    reconnectMaxMs: 2_000,
    /**
     * ioredis' per-command reconnect retries. None: a caller that sees the failure retries its
     * whole batch (writes are idempotent), so retrying inside the client only adds latency; and
     * with none, a disconnect rejects and frees every command it was waiting for at once
     * (with one, ioredis keeps them until the next successful connect).
     */
    maxRetriesPerRequest: 0,
    /** QUIT at close gets this long before the socket is dropped. */
    quitTimeoutMs: 1_000,
    /** At start the feature writer gives Redis this long; past it, it runs and chunks wait for Redis. */
    writerStoreReadyMs: 5_000,
    /**
     * Draining, the writer's chunk under way may retry Redis for this share of the grace time;
     * the rest is for committing, leaving the group and closing.
     */
    drainRetryShareOfGrace: 0.5,
    /** A failing step of a chunk logs at warn on its first attempt and every this many after. */
    retryWarnEveryAttempts: 20,
  }),
  schemaRegistry: Object.freeze({
    /** One registry request; the registry is on the hot path until the serde caches warm. */
    requestTimeoutMs: 10_000,
    retries: 2,
    retriesWaitMs: 200,
    retriesMaxWaitMs: 2_000,
  }),
  inference: Object.freeze({
    /** A worker thread loads and warms its session within this, or the model fails to load. */
    startTimeoutMs: 60_000,
    /** Rows queued for a pool beyond this are refused (the batcher's bound normally holds first). */
    maxQueuedRuns: 10_000,
    /** A crashed inference thread is respawned with backoff up to this. */
    respawnMaxDelayMs: 30_000,
    /** close() waits this long for in-flight runs before terminating threads. */
    stopGraceMs: 10_000,
    /**
     * After terminate(), close() waits at most this for the thread to end. A thread inside a
     * native call (a stuck onnxruntime run) only ends when that call returns, so close() must
     * not wait for it; a thread that is merely idle or running JavaScript ends in milliseconds.
     */
    terminateWaitMs: 1_000,
  }),
  cli: Object.freeze({
    /** `aimass smoke` gives the three services this long in all. */
    smokeTimeoutMs: 60_000,
    /**
     * A command's first connection to Kafka: a wrong KAFKA_BROKERS fails after these few
     * attempts (about a second when refused, a few connect timeouts when nothing answers)
     * instead of the client retrier's eight. The command's own requests keep that retrier.
     */
    kafkaConnectRetry: Object.freeze({ retries: 2, initialRetryTime: 250, maxRetryTime: 1_000 }),
  }),
});

export type Tuning = typeof TUNING;
