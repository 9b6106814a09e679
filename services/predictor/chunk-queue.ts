// One partition's uncommitted records, as chunks in offset order, each prepared (turned into
// its transaction's messages) as soon as it is queued. It drops records already accepted,
// cuts what is below a committed offset, and hands out the head together with the ready
// chunks behind it. Preparation always restarts from a chunk to the end of the queue, so a
// later chunk never holds an older model snapshot than an earlier one.
import type { SourceRecord } from "../common/records.js";
import type { ChunkPreparer, ProcessedChunk } from "./chunk.js";

interface Chunk {
  records: SourceRecord[];
  prepared?: Promise<ProcessedChunk> | undefined;
  /** Set once `prepared` has resolved, so a commit can take ready chunks without waiting. */
  result?: ProcessedChunk | undefined;
}

export interface CommitGroup {
  records: SourceRecord[][];
  prepared: ProcessedChunk[];
  /** The offset after the group's last record: what its transaction commits. */
  nextOffset: bigint;
}

export class ChunkQueue {
  private readonly chunks: Chunk[] = [];
  private count = 0;
  private nextOffset: bigint | undefined;

  constructor(
    private readonly preparer: ChunkPreparer,
    /** The number of queued records changed. */
    private readonly onChange: () => void,
  ) {}

  get length(): number {
    return this.chunks.length;
  }

  /** Queued (uncommitted) records. */
  get records(): number {
    return this.count;
  }

  get firstOffset(): string | undefined {
    return this.chunks[0]?.records[0]?.offset;
  }

  /** Queues fetched records, dropping any already queued; returns false when nothing was new. */
  push(records: SourceRecord[], prepare: boolean): boolean {
    const from = this.nextOffset;
    const fresh = from === undefined ? records : records.filter((r) => BigInt(r.offset) >= from);
    const last = fresh[fresh.length - 1];
    if (!last) return false;
    this.nextOffset = BigInt(last.offset) + 1n;
    const chunk: Chunk = { records: fresh };
    this.chunks.push(chunk);
    this.add(fresh.length);
    if (prepare) this.startPrepare(chunk);
    return true;
  }

  /**
   * Drops records below the committed offset, and records arriving later below it too.
   * Returns how many were dropped; a chunk cut part-way is prepared again from there on.
   */
  applyFloor(floor: bigint, prepare: boolean): number {
    if (this.nextOffset === undefined || this.nextOffset < floor) this.nextOffset = floor;
    let skipped = 0;
    let cut = -1;
    for (let i = 0; i < this.chunks.length; i++) {
      const chunk = this.chunks[i] as Chunk;
      const kept = chunk.records.filter((r) => BigInt(r.offset) >= floor);
      if (kept.length === chunk.records.length) continue;
      skipped += chunk.records.length - kept.length;
      chunk.records = kept;
      // Its prepared messages include records below the floor: never commit them.
      chunk.prepared = undefined;
      chunk.result = undefined;
      if (kept.length > 0 && cut < 0) cut = i;
    }
    if (skipped === 0) return 0;
    for (let i = this.chunks.length - 1; i >= 0; i--)
      if (this.chunks[i]?.records.length === 0) this.chunks.splice(i, 1);
    this.add(-skipped);
    if (cut >= 0 && prepare) this.prepareAll();
    return skipped;
  }

  /** Starts (again) the preparation of every queued chunk, in offset order. */
  prepareAll(): void {
    for (const chunk of this.chunks) this.startPrepare(chunk);
  }

  /**
   * The head chunk, prepared, with the chunks behind it that are already prepared, up to
   * `maxRecords` records. Rejects with the head's preparation error.
   */
  async group(maxRecords: number): Promise<CommitGroup> {
    const head = this.chunks[0];
    if (!head) throw new Error("group() on an empty queue");
    head.prepared ??= this.preparer.prepare(head.records);
    const prepared = [await head.prepared];
    const records = [head.records];
    let n = head.records.length;
    for (let i = 1; i < this.chunks.length; i++) {
      const next = this.chunks[i] as Chunk;
      if (!next.result || n + next.records.length > maxRecords) break;
      prepared.push(next.result);
      records.push(next.records);
      n += next.records.length;
    }
    const tail = records[records.length - 1] as SourceRecord[];
    return { records, prepared, nextOffset: BigInt((tail[tail.length - 1] as SourceRecord).offset) + 1n };
  }

  /** Removes the first `chunks` chunks (committed). */
  shift(chunks: number): void {
    const done = this.chunks.splice(0, chunks);
    this.add(-done.reduce((n, c) => n + c.records.length, 0));
  }

  /** Removes shadow records from every prepared chunk; returns how many. */
  dropShadow(): number {
    let dropped = 0;
    for (const chunk of this.chunks) {
      if (chunk.result && chunk.result.shadow.length > 0) {
        dropped += chunk.result.shadow.length;
        chunk.result.shadowFailures += chunk.result.shadow.length;
        chunk.result.shadow = [];
      }
    }
    return dropped;
  }

  /** Empties the queue; the stream starts again at `offset` (records below it are dropped). */
  restartAt(offset: bigint): void {
    this.clear();
    this.nextOffset = offset;
  }

  clear(): void {
    this.chunks.length = 0;
    if (this.count !== 0) this.add(-this.count);
  }

  private startPrepare(chunk: Chunk): void {
    chunk.result = undefined;
    const prepared = this.preparer.prepare(chunk.records);
    chunk.prepared = prepared;
    prepared.then(
      (r) => {
        if (chunk.prepared === prepared) chunk.result = r;
      },
      () => undefined, // observed by group()
    );
  }

  private add(delta: number): void {
    this.count += delta;
    this.onChange();
  }
}
