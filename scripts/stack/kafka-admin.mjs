#!/usr/bin/env node
// Answers the stack scripts' questions about a running Kafka cluster (up.sh's readiness,
// node.sh's leader and coordinator helpers) with the project's kafkajs; prints node ids.
// The cluster is reached through $KAFKA_BROKERS (host:port,...).
//   kafka-admin.mjs wait-brokers <timeout-ms> <node-id>...   exit 0 once the metadata lists every id
//   kafka-admin.mjs leader <topic> <partition>                the leader's id; exit 3 while there is none
//   kafka-admin.mjs coordinator transaction|group <key>       the coordinator's id
import console from "node:console";
import { createRequire } from "node:module";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";

const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require("kafkajs");

const NO_LEADER_EXIT = 3;
// Short timeouts: a paused (SIGSTOP) broker accepts connections but never answers, and a
// question asked during a chaos scenario should move on to another broker quickly.
const clientOptions = {
  brokers: (process.env.KAFKA_BROKERS ?? "").split(",").filter((b) => b !== ""),
  clientId: "aimass-stack",
  connectionTimeout: 1000,
  requestTimeout: 5000,
  retry: { retries: 5, initialRetryTime: 200 },
  logLevel: logLevel.NOTHING,
};

async function withAdmin(work, options = clientOptions) {
  const admin = new Kafka(options).admin();
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.disconnect();
  }
}

async function waitBrokers(timeoutMs, ids) {
  const deadline = Date.now() + timeoutMs;
  const once = { ...clientOptions, retry: { retries: 0 } };
  let seen = [];
  while (Date.now() < deadline) {
    try {
      const { brokers } = await withAdmin((admin) => admin.describeCluster(), once);
      seen = brokers.map((b) => b.nodeId);
      if (ids.every((id) => seen.includes(id))) return;
    } catch {
      // not answering yet
    }
    await sleep(500);
  }
  throw new Error(`metadata lists nodes [${seen.join(",")}], waiting for [${ids.join(",")}]`);
}

async function leader(topic, partition) {
  const { topics } = await withAdmin((admin) => admin.fetchTopicMetadata({ topics: [topic] }));
  const found = topics[0]?.partitions.find((p) => p.partitionId === partition);
  if (found === undefined) throw new Error(`${topic} has no partition ${partition}`);
  if (found.leader < 0) {
    console.error(`${topic}-${partition} has no leader right now`);
    process.exit(NO_LEADER_EXIT);
  }
  return found.leader;
}

// kafkajs has no public FindCoordinator call; its Cluster has (kafkajs is pinned at 2.2.4,
// its last release, see patches/kafkajs.mjs). Asking the broker, rather than hashing the key
// onto __transaction_state ourselves, also creates that topic on first use.
async function coordinator(type, key) {
  const Cluster = require("kafkajs/src/cluster");
  const { createLogger } = require("kafkajs/src/loggers");
  const LoggerConsole = require("kafkajs/src/loggers/console");
  const socketFactory = require("kafkajs/src/network/socketFactory");
  const COORDINATOR_TYPES = require("kafkajs/src/protocol/coordinatorTypes");
  const types = { transaction: COORDINATOR_TYPES.TRANSACTION, group: COORDINATOR_TYPES.GROUP };
  const coordinatorType = types[type];
  if (coordinatorType === undefined)
    throw new Error(`coordinator type must be transaction or group, not ${type}`);
  const cluster = new Cluster({
    ...clientOptions,
    logger: createLogger({ level: logLevel.NOTHING, logCreator: LoggerConsole }),
    socketFactory: socketFactory(),
  });
  await cluster.connect();
  try {
    await cluster.refreshMetadata();
    const { coordinator: node } = await cluster.findGroupCoordinatorMetadata({
      groupId: key,
      coordinatorType,
    });
    return node.nodeId;
  } finally {
    await cluster.disconnect();
  }
}

function int(text, what) {
  if (!/^\d+$/.test(text)) throw new Error(`${what} must be a whole number, not '${text}'`);
  return Number(text);
}

async function main([command, ...args]) {
  if (clientOptions.brokers.length === 0) throw new Error("KAFKA_BROKERS is not set");
  switch (command) {
    case "wait-brokers":
      if (args.length < 2) break;
      return waitBrokers(
        int(args[0], "timeout-ms"),
        args.slice(1).map((a) => int(a, "node-id")),
      );
    case "leader":
      if (args.length !== 2) break;
      return console.log(await leader(args[0], int(args[1], "partition")));
    case "coordinator":
      if (args.length !== 2) break;
      return console.log(await coordinator(args[0], args[1]));
  }
  throw new Error(
    "usage: kafka-admin.mjs wait-brokers <timeout-ms> <node-id>... | leader <topic> <partition> | coordinator transaction|group <key>",
  );
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err) => {
    console.error(`kafka-admin: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
