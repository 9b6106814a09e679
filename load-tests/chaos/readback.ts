// Reads a finished run back: the input topic (what really went in), the follower's
// predictions and DLQ records as the checks see them, the group's committed offsets against
// the input's end offsets, and the output partitions' last stable offsets and high watermarks
// (a reader with read_uncommitted finds the latter).
import type { Admin, Kafka } from "kafkajs";
import { sleep } from "../../services/common/lifecycle.js";
import type { InputRecord, OutputRecord, PartitionOffsets } from "./checks.js";
import { expectationOf, HEADER } from "./events.js";
import { PARTITIONS, type RunPipeline } from "./pipeline.js";
import { headerString, TopicReader, type ReadRecord } from "./reader.js";

const partitions = Array.from({ length: PARTITIONS }, (_, p) => p);

/** The input topic read to its end offsets: one InputRecord per record in it. */
export async function readInputs(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  groupId: string,
): Promise<InputRecord[]> {
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
  const reader = new TopicReader({ kafka, groupId, topics: [topic], readUncommitted: true });
  try {
    await reader.start();
    const complete = await reader.until(
      () => [...ends].every(([p, end]) => reader.position(topic, p) >= end),
      120_000,
    );
    if (!complete) throw new Error(`could not read ${topic} to its end offsets`);
    return reader.all().map((r) => {
      const kind = headerString(r.headers, HEADER.kind) ?? "foreign";
      return {
        id: headerString(r.headers, HEADER.id) ?? `${r.partition}@${r.offset}`,
        key: r.key?.toString() ?? null,
        partition: r.partition,
        offset: r.offset,
        kind,
        expect: expectationOf(kind),
      };
    });
  } finally {
    await reader.stop();
  }
}

/**
 * Predictions and DLQ records as the checks see them (shadow predictions are not outputs).
 * An output's input is named by the chaos id header it carries; a DLQ record cut to its byte
 * budget has lost the input's headers, and is matched by the source partition and offset
 * headers the predictor always writes (on predictions too, as lineage headers).
 */
export function toOutputs(records: ReadRecord[], p: RunPipeline, inputs: InputRecord[]): OutputRecord[] {
  const byOffset = new Map(inputs.map((r) => [`${r.partition}@${r.offset}`, r.id]));
  const source = (r: ReadRecord, prefix: string) => {
    if (headerString(r.headers, `${prefix}.topic`) !== p.input) return undefined;
    const at = `${headerString(r.headers, `${prefix}.partition`)}@${headerString(r.headers, `${prefix}.offset`)}`;
    return byOffset.get(at);
  };
  const out: OutputRecord[] = [];
  for (const r of records) {
    if (r.topic !== p.output && r.topic !== p.dlq) continue;
    const stream = r.topic === p.output ? "prediction" : "dlq";
    out.push({
      id:
        headerString(r.headers, HEADER.id) ??
        source(r, stream === "dlq" ? "aimass.dlq.source" : "aimass.source"),
      stream,
      key: r.key?.toString() ?? null,
      partition: r.partition,
      offset: r.offset,
      ...(stream === "prediction" ? { eventId: eventIdOf(r.value) } : { reason: dlqReason(r) }),
      seenAt: r.seenAt,
    });
  }
  return out;
}

/** `<stage>/<code>: <message>` from a DLQ record's headers (docs/dlq.md). */
function dlqReason(r: ReadRecord): string {
  const h = (name: string) => headerString(r.headers, `aimass.dlq.${name}`) ?? "?";
  return `${h("stage")}/${h("error.code")}: ${h("error.message")}`;
}

export function parse(value: Buffer | null): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(value?.toString() ?? "null");
    return v !== null && typeof v === "object" ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function eventIdOf(value: Buffer | null): string | null {
  const id = parse(value)?.eventId;
  return typeof id === "string" ? id : null;
}

export interface RunOffsets {
  input: PartitionOffsets[];
  outputs: PartitionOffsets[];
}

/**
 * Committed offsets against end offsets (given a few seconds for the last commit to show),
 * and per output partition: how far the read_committed follower got, the last stable offset
 * (ListOffsets read_committed, what kafkajs' fetchTopicOffsets asks for) and the high
 * watermark (what a read_uncommitted reader reaches).
 */
export async function readOffsets(
  kafka: Kafka,
  admin: Admin,
  p: RunPipeline,
  follower: TopicReader,
  groupId: string,
): Promise<RunOffsets> {
  const inputOffsets = async (): Promise<PartitionOffsets[]> => {
    const ends = new Map((await admin.fetchTopicOffsets(p.input)).map((x) => [x.partition, Number(x.high)]));
    const [committed] = await admin.fetchOffsets({ groupId: p.group, topics: [p.input] });
    const at = new Map((committed?.partitions ?? []).map((x) => [x.partition, Number(x.offset)]));
    return partitions.map((partition) => ({
      topic: p.input,
      partition,
      position: at.get(partition) ?? -1,
      end: ends.get(partition) ?? 0,
    }));
  };
  let input = await inputOffsets();
  for (let i = 0; i < 30 && input.some((x) => x.position !== x.end && x.end > 0); i++) {
    await sleep(500);
    input = await inputOffsets();
  }

  const hw = new TopicReader({ kafka, groupId, topics: p.transactional, readUncommitted: true });
  try {
    await hw.start();
    const caughtUp = () =>
      p.transactional.every((t) => partitions.every((x) => hw.position(t, x) >= hw.highWatermark(t, x)));
    await hw.until(caughtUp, 60_000);
    await hw.quiet(2_000, 20_000);
    const end = (t: string, x: number) => Math.max(hw.position(t, x), hw.highWatermark(t, x));
    await follower.until(
      () => p.transactional.every((t) => partitions.every((x) => follower.position(t, x) >= end(t, x))),
      30_000,
    );
    const outputs: PartitionOffsets[] = [];
    for (const t of p.transactional) {
      const stable = new Map((await admin.fetchTopicOffsets(t)).map((x) => [x.partition, Number(x.offset)]));
      for (const x of partitions) {
        outputs.push({
          topic: t,
          partition: x,
          position: follower.position(t, x),
          end: end(t, x),
          lastStable: stable.get(x) ?? 0,
        });
      }
    }
    return { input, outputs };
  } finally {
    await hw.stop();
  }
}
