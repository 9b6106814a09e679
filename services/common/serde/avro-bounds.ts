// Bounds Avro block counts before they are trusted. avsc 5.7.9 (the copy that
// @confluentinc/schemaregistry decodes with) reads an array's or a map's block count and
// loops that many times before it checks the buffer's end: a 13-byte record declaring 2^52
// map entries spins the event loop for years, heartbeats stop, and every next owner of the
// partition hangs on the same record. Forking avsc or pinning a patched copy would have to
// follow every release of the registry client; replacing the four methods on the prototypes
// of the copy the client really resolves keeps the fix here, in one idempotent step.
//
// A block of n items needs at least n bytes when its item type can never be encoded in zero
// bytes (every type but null, fixed(0) and records made only of those): a larger count is
// corrupt. Items that may take no bytes are bounded by a budget per decoded buffer instead.
// Reading also stops as soon as the position passes the buffer's end (avsc then reports a
// truncated buffer). Bytes and string lengths need nothing: avsc checks them against the
// buffer before it copies or allocates.
import { createRequire } from "node:module";

/** Items that take no bytes (arrays of null and the like) one decoded buffer may declare. */
export const MAX_EMPTY_ITEMS = 1_000_000;

/** The avsc version the replaced methods were written against (its Tap and type layout). */
const AVSC_MAJOR = "5.";

const MARK = Symbol.for("aimass.avro-bounds");

interface Tap {
  buf: Uint8Array;
  pos: number;
  readLong(): number;
  skipLong(): void;
  readString(): string;
  skipString(): void;
}

interface Reader {
  _read(tap: Tap): unknown;
  _skip(tap: Tap): void;
}

type Width = "some" | "maybe-none" | "unknown";

const widths = new WeakMap<object, Width>();
const emptyBudget = new WeakMap<Tap, number>();

function prop(value: unknown, key: string): unknown {
  const holds = (typeof value === "object" && value !== null) || typeof value === "function";
  return holds ? (value as Record<string, unknown>)[key] : undefined;
}

/** Whether a value of this avsc type (or resolver) can take zero bytes; "unknown" for resolvers. */
function widthOf(type: unknown, seen = new Set<unknown>()): Width {
  if (typeof type !== "object" || type === null) return "unknown";
  const cached = widths.get(type);
  if (cached) return cached;
  const name = prop(type, "typeName");
  let width: Width;
  if (typeof name !== "string") width = "unknown";
  else if (name === "null") width = "maybe-none";
  else if (name === "fixed") width = prop(type, "size") === 0 ? "maybe-none" : "some";
  else if (name.startsWith("logical:")) width = widthOf(prop(type, "underlyingType"), seen);
  else if (name === "record" || name === "error") {
    // A record that holds itself directly has no finite encoding; any answer will do.
    if (seen.has(type)) return "some";
    seen.add(type);
    const fields = prop(type, "fields");
    const each = Array.isArray(fields) ? fields.map((f) => widthOf(prop(f, "type"), seen)) : ["unknown"];
    width = each.includes("some") ? "some" : each.every((w) => w === "maybe-none") ? "maybe-none" : "unknown";
  } else width = "some";
  widths.set(type, width);
  return width;
}

/** The next block's item count, after checking it against what the buffer can still hold. */
function blockCount(tap: Tap, width: Width): number {
  let n = tap.readLong();
  if (n < 0) {
    n = -n;
    tap.skipLong(); // the block's size in bytes
  }
  if (n === 0) return 0;
  const left = tap.buf.length - tap.pos;
  if (width === "some") {
    if (n > left) throw new Error(`corrupt Avro block: ${n} items declared with ${left} bytes left`);
    return n;
  }
  // Items that may take no bytes (or, behind a resolver, whose writer type is not at hand).
  if (width === "unknown" && n <= left) return n;
  const budget = emptyBudget.get(tap) ?? MAX_EMPTY_ITEMS;
  if (n > budget) {
    throw new Error(`corrupt Avro block: more than ${MAX_EMPTY_ITEMS} items that take no bytes declared`);
  }
  emptyBudget.set(tap, budget - n);
  return n;
}

function readArray(this: { itemsType: Reader }, tap: Tap): unknown[] {
  const items = this.itemsType;
  const width = widthOf(items);
  let val: unknown[] | undefined;
  let i = 0;
  let n: number;
  while ((n = blockCount(tap, width))) {
    val ??= new Array<unknown>(n);
    while (n--) {
      val[i++] = items._read(tap);
      if (tap.pos > tap.buf.length) return val;
    }
  }
  return val ?? [];
}

function skipArray(this: { itemsType: Reader }, tap: Tap): void {
  const items = this.itemsType;
  const width = widthOf(items);
  let n: number;
  while ((n = blockCount(tap, width))) {
    while (n--) {
      items._skip(tap);
      if (tap.pos > tap.buf.length) return;
    }
  }
}

// A map entry always takes at least one byte: its key's length.
function readMap(this: { valuesType: Reader }, tap: Tap): Record<string, unknown> {
  const values = this.valuesType;
  const val: Record<string, unknown> = {};
  let n: number;
  while ((n = blockCount(tap, "some"))) {
    while (n--) {
      const key = tap.readString();
      val[key] = values._read(tap);
      if (tap.pos > tap.buf.length) return val;
    }
  }
  return val;
}

function skipMap(this: { valuesType: Reader }, tap: Tap): void {
  const values = this.valuesType;
  let n: number;
  while ((n = blockCount(tap, "some"))) {
    while (n--) {
      tap.skipString();
      values._skip(tap);
      if (tap.pos > tap.buf.length) return;
    }
  }
}

function prototypeOf(avsc: unknown, className: string): Record<PropertyKey, unknown> {
  const proto = prop(prop(prop(avsc, "types"), className), "prototype");
  if (typeof proto !== "object" || proto === null || typeof prop(proto, "_read") !== "function") {
    throw new Error(`avsc has no ${className}.prototype._read: the Avro block bounds cannot be installed`);
  }
  return proto as Record<PropertyKey, unknown>;
}

/**
 * Replaces ArrayType/MapType `_read` and `_skip` of the avsc copy that
 * @confluentinc/schemaregistry resolves. Idempotent; throws when that copy is not avsc 5
 * (the replacements follow its internals). Must run before any schema is parsed: a resolver
 * copies `_read` when it is built.
 */
export function installAvroBounds(): void {
  const fromHere = createRequire(import.meta.url);
  const fromRegistry = createRequire(fromHere.resolve("@confluentinc/schemaregistry"));
  const version = prop(fromRegistry("avsc/package.json"), "version");
  if (typeof version !== "string" || !version.startsWith(AVSC_MAJOR)) {
    throw new Error(`avsc ${String(version)} is not 5.x: re-check services/common/serde/avro-bounds.ts`);
  }
  const avsc: unknown = fromRegistry("avsc");
  const array = prototypeOf(avsc, "ArrayType");
  const map = prototypeOf(avsc, "MapType");
  if (array[MARK] === true && map[MARK] === true) return;
  Object.assign(array, { _read: readArray, _skip: skipArray, [MARK]: true });
  Object.assign(map, { _read: readMap, _skip: skipMap, [MARK]: true });
}
