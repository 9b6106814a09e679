// Deterministic shop events for the example pipeline: a seeded PRNG, users with a skewed
// activity distribution, a view → cart → purchase funnel. Same seed, same events.
// `pickUser` replaces the built-in skew with another user distribution (see keys.ts); the
// other fields stay the same sequence for a seed.

export interface ShopEvent {
  id: string;
  type: "view" | "cart" | "purchase";
  userId: string;
  itemId: string;
  ts: number;
  price: number;
  quantity: number;
}

/** mulberry32: tiny, fast, good enough for synthetic traffic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ShopEventOptions {
  seed: number;
  users: number;
  items: number;
  /** Prefix for event ids, so runs do not collide. */
  runId: string;
  /** The next user index in [0, users); default: squared-uniform skew towards low ids. */
  pickUser?: (() => number) | undefined;
}

export function* shopEvents(options: ShopEventOptions): Generator<ShopEvent> {
  const rand = prng(options.seed);
  for (let i = 0; ; i++) {
    // Squaring skews activity towards low user ids (a few heavy users, a long tail). The draw
    // is made even when `pickUser` decides, so the rest of the sequence does not shift.
    const skewed = Math.floor(rand() ** 2 * options.users);
    const user = options.pickUser ? options.pickUser() : skewed;
    const item = Math.floor(rand() * options.items);
    const r = rand();
    const type = r < 0.75 ? "view" : r < 0.93 ? "cart" : "purchase";
    yield {
      id: `${options.runId}-${i}`,
      type,
      userId: `u-${user}`,
      itemId: `i-${item}`,
      ts: Date.now(),
      price: Math.round((5 + rand() * 195) * 100) / 100,
      quantity: type === "view" ? 1 : 1 + Math.floor(rand() * 4),
    };
  }
}
