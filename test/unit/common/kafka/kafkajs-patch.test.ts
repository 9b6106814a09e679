// patches/kafkajs.mjs: installed by `npm ci` (postinstall), and harmless: messages are grouped
// per partition in order, and encoded requests never carry uninitialised memory even though
// the Encoder now uses Buffer.allocUnsafe (pooled, not zero-filled).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { repoRoot as REPO } from "../../../helpers/pipeline.js";
import {
  assertKafkajsPatched,
  kafkajsSendIsPatched,
} from "../../../../services/common/kafka/kafkajs-patched.js";
const require = createRequire(join(REPO, "package.json"));

type Message = { key: string; value: string; headers?: Record<string, string> };
type GroupFn = (o: {
  topic: string;
  partitionMetadata: Array<{ partitionId: number }>;
  messages: Message[];
  partitioner: (o: { message: Message }) => number;
}) => Record<string, Message[]>;
/** A kafkajs request; encode() resolves to its Encoder (`buffer`: the bytes written). */
type ProduceRequest = (o: object) => { encode: () => Promise<{ buffer: Buffer }> };

test("npm ci left kafkajs patched", () => {
  const out = execFileSync(process.execPath, [join(REPO, "patches/kafkajs.mjs"), "--check"], {
    encoding: "utf8",
  });
  assert.match(out, /kafkajs: patched \(4\/4 applied\)/);
});

test("messages are grouped per partition, in their original order", () => {
  const group = require("kafkajs/src/producer/groupMessagesPerPartition.js") as GroupFn;
  const messages = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i}`, value: String(i) }));
  const grouped = group({
    topic: "t",
    partitionMetadata: [0, 1, 2].map((partitionId) => ({ partitionId })),
    messages,
    partitioner: ({ message }) => Number(message.value) % 3,
  });
  assert.deepEqual(Object.keys(grouped).sort(), ["0", "1", "2"]);
  for (const p of [0, 1, 2]) {
    assert.deepEqual(
      grouped[String(p)],
      messages.filter((m) => Number(m.value) % 3 === p),
    );
  }
  assert.deepEqual(
    group({ topic: "t", partitionMetadata: [], messages, partitioner: () => 0 }),
    {},
    "no partitions known: nothing grouped (kafkajs' own behaviour)",
  );
});

test("an encoded produce request is the same whatever garbage the buffer pool held", async () => {
  const request = require("kafkajs/src/protocol/requests/produce/v3/request.js") as ProduceRequest;
  const messages: Message[] = Array.from({ length: 300 }, (_, i) => ({
    key: `u-${i}`,
    value: JSON.stringify({ eventId: `e-${i}`, score: i / 300, text: "ü€".repeat(i % 7) }),
    headers: { "aimass.model.name": "shop", "aimass.source.offset": String(i) },
  }));
  const encode = async (junk: number) => {
    // Dirty the pool Buffer.allocUnsafe draws from: a byte the encoder failed to write
    // would differ between the two encodings.
    for (let i = 0; i < 64; i++) Buffer.allocUnsafe(2048).fill(junk);
    return request({
      acks: -1,
      timeout: 30_000,
      transactionalId: "t",
      producerId: 7,
      producerEpoch: 1,
      compression: 0,
      topicData: [
        {
          topic: "t",
          partitions: [
            { partition: 0, firstSequence: 0, messages: messages.map((m) => ({ ...m, timestamp: 1 })) },
          ],
        },
      ],
    })
      .encode()
      .then((e) => e.buffer);
  };
  const a = await encode(0xaa);
  const b = await encode(0x55);
  assert.ok(a.length > 300 * 20);
  assert.ok(a.equals(b), "encodings differ: uninitialised bytes reached the wire");
});

test("the predictor refuses to start on a kafkajs without the send patch", () => {
  const run = (args: string[]) =>
    execFileSync(process.execPath, [join(REPO, "patches/kafkajs.mjs"), ...args], { encoding: "utf8" });
  assert.equal(kafkajsSendIsPatched(), true);
  assert.doesNotThrow(() => assertKafkajsPatched());
  run(["--revert"]);
  try {
    assert.equal(kafkajsSendIsPatched(), false);
    assert.throws(() => assertKafkajsPatched(), /patches\/kafkajs\.mjs/);
  } finally {
    run([]);
  }
  assert.equal(kafkajsSendIsPatched(), true);
});
