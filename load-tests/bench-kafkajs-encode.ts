// What patches/kafkajs.mjs buys: the CPU cost of kafkajs's produce path per record
// (grouping messages per partition + encoding the Produce request), for 500-record sends like
// the predictor's transactions, with and without aimass's five lineage headers. Both kafkajs
// states are measured in one run, each in a fresh child process: the patch is reverted, the
// unpatched code measured, the patch re-applied, the patched code measured (the patch state
// found at the start is restored at the end).
//   node dist/load-tests/bench-kafkajs-encode.js [--seconds 2]
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseOptions, usageText, wantsHelp, type OptionSpecs } from "./lib/args.js";
import { REPO } from "./lib/predictor-process.js";

const specs = {
  seconds: { type: "number", description: "measuring time per case (default 2)" },
  measure: { type: "boolean", description: "(internal) measure the installed kafkajs, print JSON" },
} satisfies OptionSpecs;

type Message = { key: Buffer; value: Buffer; headers: Record<string, string> };
type GroupFn = (o: {
  topic: string;
  partitionMetadata: Array<{ partitionId: number }>;
  messages: Message[];
  partitioner: (o: { message: Message }) => number;
}) => Record<string, Message[]>;
/** A kafkajs request; encode() resolves to its Encoder (`buffer`: the bytes written). */
type ProduceRequest = (o: object) => { encode: () => Promise<{ buffer: Buffer }> };

export interface EncodeCase {
  headers: number;
  usPerRecord: number;
}

/** µs per record to group and encode 500-record Produce requests with the installed kafkajs. */
async function measure(seconds: number): Promise<EncodeCase[]> {
  const require = createRequire(join(REPO, "package.json"));
  const group = require("kafkajs/src/producer/groupMessagesPerPartition.js") as GroupFn;
  const request = require("kafkajs/src/protocol/requests/produce/v3/request.js") as ProduceRequest;
  const partitionMetadata = Array.from({ length: 6 }, (_, partitionId) => ({ partitionId }));
  const out: EncodeCase[] = [];
  for (const headers of [0, 5]) {
    const messages = Array.from({ length: 500 }, (_, i): Message => ({
      key: Buffer.from(`u-${i % 1000}`),
      value: Buffer.from(JSON.stringify({ eventId: `run-${i}`, eventTs: Date.now(), propensity: 0.1234 })),
      headers:
        headers === 0
          ? {}
          : {
              "aimass.model.name": "shop",
              "aimass.model.version": "1",
              "aimass.source.topic": "shop.events",
              "aimass.source.partition": "3",
              "aimass.source.offset": String(100_000 + i),
            },
    }));
    const once = async () => {
      const grouped = group({ topic: "t", partitionMetadata, messages, partitioner: () => 3 });
      const r = request({
        acks: -1,
        timeout: 30_000,
        transactionalId: "bench",
        producerId: 1,
        producerEpoch: 0,
        compression: 0,
        topicData: [{ topic: "t", partitions: [{ partition: 3, firstSequence: 0, messages: grouped[3] }] }],
      });
      return (await r.encode()).buffer.length;
    };
    for (let i = 0; i < 50; i++) await once(); // warm-up: JIT and buffer pool
    let n = 0;
    const started = performance.now();
    while (performance.now() - started < seconds * 1000) {
      await once();
      n++;
    }
    out.push({ headers, usPerRecord: ((performance.now() - started) * 1000) / (n * 500) });
  }
  return out;
}

function patcher(arg?: string): string {
  const args = [join(REPO, "patches/kafkajs.mjs"), ...(arg ? [arg] : [])];
  try {
    return execFileSync(process.execPath, args, { encoding: "utf8" });
  } catch (err) {
    if (arg === "--check") return String((err as { stdout?: string }).stdout ?? "");
    throw err;
  }
}

function child(seconds: number): EncodeCase[] {
  const out = execFileSync(
    process.execPath,
    [fileURLToPath(import.meta.url), "--measure", "--seconds", String(seconds)],
    { encoding: "utf8" },
  );
  return JSON.parse(out) as EncodeCase[];
}

export function benchKafkajsEncode(
  seconds = 2,
): Array<EncodeCase & { unpatchedUs: number; speedup: number }> {
  const wasPatched = patcher("--check").includes(": patched");
  try {
    patcher("--revert");
    const unpatched = child(seconds);
    patcher();
    const patched = child(seconds);
    return patched.map((p, i) => {
      const u = unpatched[i] as EncodeCase;
      return { ...p, unpatchedUs: u.usPerRecord, speedup: u.usPerRecord / p.usPerRecord };
    });
  } finally {
    patcher(wasPatched ? undefined : "--revert");
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (wantsHelp(process.argv)) {
    process.stdout.write(usageText("bench-kafkajs-encode", specs));
    process.exit(0);
  }
  const options = parseOptions(process.argv.slice(2), specs);
  const seconds = options.number("seconds") ?? 2;
  if (options.flag("measure")) {
    process.stdout.write(JSON.stringify(await measure(seconds)));
  } else {
    const rows = benchKafkajsEncode(seconds);
    process.stdout.write(
      [
        "| headers per record | kafkajs 2.2.4 (µs/record) | patched (µs/record) | speed-up |",
        "|---|---|---|---|",
        ...rows.map(
          (r) =>
            `| ${r.headers} | ${r.unpatchedUs.toFixed(2)} | ${r.usPerRecord.toFixed(2)} | ${r.speedup.toFixed(2)}× |`,
        ),
        "",
      ].join("\n"),
    );
  }
}
