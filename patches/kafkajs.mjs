#!/usr/bin/env node
// Two performance fixes and one correctness fix to kafkajs 2.2.4 (its last release; the
// project is unmaintained, so they cannot go upstream). All are on the produce path every
// prediction takes:
//
// 1. protocol/encoder.js allocates every Encoder's buffer with Buffer.alloc (zero-filled,
//    never pooled): one 512-byte buffer per record and per header. Buffer.allocUnsafe is safe
//    here because the Encoder only exposes buf.slice(0, offset) and every write advances
//    `offset` by exactly the bytes it wrote, so no uninitialised byte is ever sent.
// 2. producer/groupMessagesPerPartition.js copies the partition's array for every message
//    ([...current, message]): O(n²) per send. Replaced by an O(n) push, same grouping and order.
// 3. producer/sendMessages.js loses and duplicates records of a send that spans several
//    brokers when one of them fails (a leader move, a broker restart). The file is replaced by
//    patches/kafkajs/send-messages.js, whose header says what changed; the original is kept
//    next to it as sendMessages.js.orig for --revert.
//
// 1 and 2 are measured in load-tests/bench-kafkajs-encode.ts: encoding a 500-record produce request
// with aimass's five lineage headers, per record, before and after (BENCHMARKS.md).
// The patch is idempotent; `--check` exits 1 when kafkajs is installed unpatched. A kafkajs
// other than 2.2.4 is left alone (correct, just slower) with a notice. `--revert` restores
// the original files (the benchmark measures both).
//   node patches/kafkajs.mjs [--check | --revert]
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const VERSION = "2.2.4";
const MARK = "/* aimass-patch */";

const patches = [
  {
    file: "src/protocol/encoder.js",
    replace: [
      [
        "this.buf = Buffer.alloc(Encoder.nextPowerOfTwo(initialSize))",
        `this.buf = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(initialSize)) ${MARK}`,
      ],
      [
        "const newBuffer = Buffer.alloc(newLength)",
        `const newBuffer = Buffer.allocUnsafe(newLength) ${MARK}`,
      ],
    ],
  },
  {
    file: "src/producer/groupMessagesPerPartition.js",
    replace: [
      [
        `  return messages.reduce((result, message) => {
    const partition = partitioner({ topic, partitionMetadata, message })
    const current = result[partition] || []
    return Object.assign(result, { [partition]: [...current, message] })
  }, {})`,
        `  ${MARK}
  const result = {}
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message })
    ;(result[partition] || (result[partition] = [])).push(message)
  }
  return result`,
      ],
    ],
  },
];

/** Whole files replaced: the original's sha256 and the replacement next to this script. */
const replacements = [
  {
    file: "src/producer/sendMessages.js",
    original: "8a120e6993955e040a13014cccebd79b8d41e7355d6eda1065fa83fea2fbbcdb",
    with: join(dirname(fileURLToPath(import.meta.url)), "kafkajs/send-messages.js"),
  },
];
const sha256 = (text) => createHash("sha256").update(text).digest("hex");
/** The original kept at install (`<file>.orig`) is kafkajs' own. */
const hasOriginal = (dir, r) => {
  const backup = join(dir, `${r.file}.orig`);
  return existsSync(backup) && sha256(readFileSync(backup, "utf8")) === r.original;
};

function kafkajsDir() {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve("kafkajs/package.json"));
}

/** "patched", "unpatched", or "other" (a kafkajs version or file content this script doesn't know). */
export function patchState(dir = kafkajsDir()) {
  const version = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version;
  if (version !== VERSION)
    return { state: "other", detail: `kafkajs ${version}, patches are for ${VERSION}` };
  let patched = 0;
  let total = 0;
  for (const p of patches) {
    const text = readFileSync(join(dir, p.file), "utf8");
    for (const [from, to] of p.replace) {
      total++;
      if (text.includes(to)) patched++;
      else if (!text.includes(from))
        return { state: "other", detail: `${p.file} differs from kafkajs ${VERSION}` };
    }
  }
  for (const r of replacements) {
    total++;
    const text = readFileSync(join(dir, r.file), "utf8");
    if (text === readFileSync(r.with, "utf8")) patched++;
    // An older replacement over a kept original (the patch changed since install) is re-applied.
    else if (sha256(text) !== r.original && !hasOriginal(dir, r))
      return { state: "other", detail: `${r.file} differs from kafkajs ${VERSION}` };
  }
  return { state: patched === total ? "patched" : "unpatched", detail: `${patched}/${total} applied` };
}

function apply(dir, revert = false) {
  for (const p of patches) {
    const path = join(dir, p.file);
    let text = readFileSync(path, "utf8");
    for (const [from, to] of p.replace) {
      if (revert) text = text.replace(to, from);
      else if (!text.includes(to)) text = text.replace(from, to);
    }
    writeFileSync(path, text);
  }
  for (const r of replacements) {
    const path = join(dir, r.file);
    const backup = `${path}.orig`;
    const text = readFileSync(path, "utf8");
    if (revert) {
      if (sha256(text) === r.original) continue;
      if (!hasOriginal(dir, r)) throw new Error(`patch-kafkajs: cannot revert ${r.file}: no ${backup}`);
      writeFileSync(path, readFileSync(backup));
    } else if (text !== readFileSync(r.with, "utf8")) {
      if (sha256(text) === r.original) writeFileSync(backup, text);
      else if (!hasOriginal(dir, r)) throw new Error(`patch-kafkajs: ${r.file} is not kafkajs ${VERSION}'s`);
      writeFileSync(path, readFileSync(r.with));
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = kafkajsDir();
  const before = patchState(dir);
  if (process.argv.includes("--check")) {
    process.stdout.write(`kafkajs: ${before.state} (${before.detail})\n`);
    process.exitCode = before.state === "patched" ? 0 : 1;
  } else if (process.argv.includes("--revert")) {
    if (before.state !== "other") apply(dir, true);
  } else if (before.state === "other") {
    process.stderr.write(
      `patch-kafkajs: left alone: ${before.detail} (slower to produce, and a send across brokers that fails can lose or duplicate records)\n`,
    );
  } else if (before.state === "unpatched") {
    apply(dir);
    const after = patchState(dir);
    if (after.state !== "patched") throw new Error(`patch-kafkajs: failed: ${after.detail}`);
  }
}
