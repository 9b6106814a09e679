// The one small interface bench-clients.ts drives every Kafka client through: an exactly-once
// passthrough (consume read_committed → produce the same bytes + the consumed offsets in one
// transaction → commit) that runs until stop().
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { OptionSpecs } from "../lib/args.js";
import { REPO } from "../lib/predictor-process.js";

/** The internal options of a bench that spawns itself as passthrough processes (`--serve`). */
export const SERVE_SPECS = {
  serve: { type: "boolean", description: "(internal) run a passthrough until SIGTERM" },
  input: { type: "string", description: "(internal, --serve) input topic" },
  output: { type: "string", description: "(internal, --serve) output topic" },
  group: { type: "string", description: "(internal, --serve) consumer group" },
} satisfies OptionSpecs;

export interface PassthroughOptions {
  brokers: string[];
  input: string;
  output: string;
  group: string;
  /** Records per transaction at most. */
  maxPerTxn: number;
  /** Consumer group session timeout and heartbeat interval (classic protocol; see each adapter). */
  sessionTimeoutMs: number;
  heartbeatMs: number;
  /** Diagnostics on stderr (errors, rebalances); never per record. */
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface Passthrough {
  /** Leaves the group cleanly and closes every client. */
  stop(): Promise<void>;
}

export interface ClientVariant {
  /** Name used on the command line (`--clients`). */
  name: string;
  /** Which package this variant runs on. */
  client: "kafkajs" | "confluent" | "platformatic";
  /** The exactly-once model and group protocol, for the report. */
  eosModel: string;
  protocol: string;
  /** True when the session timeout / heartbeat options could not be applied (reported). */
  brokerSideSessionTimeout?: boolean;
  start(o: PassthroughOptions): Promise<Passthrough>;
}

/** The private sub-package holding the clients that are not dependencies of aimass. */
export const CLIENTS_PACKAGE = join(REPO, "load-tests", "kafka-clients");
export const INSTALL_HINT = "run `bash scripts/bench/install-kafka-clients.sh` first";

/**
 * Imports a package installed in load-tests/kafka-clients (not in the root package.json, so
 * CI never builds librdkafka). The module's shape is described by the caller's minimal
 * interface `T`: only the few members the adapter uses.
 */
export async function importFromClientsPackage<T>(name: string): Promise<T> {
  let resolved: string;
  try {
    resolved = createRequire(join(CLIENTS_PACKAGE, "package.json")).resolve(name);
  } catch {
    throw new Error(`${name} is not installed in load-tests/kafka-clients: ${INSTALL_HINT}`);
  }
  return (await import(pathToFileURL(resolved).href)) as T;
}

/** An error's message with its nested causes / errors (clients wrap the broker's error code). */
export function errorText(err: unknown, depth = 0): string {
  if (!(err instanceof Error)) return String(err);
  const inner: unknown[] = [];
  const nested = (err as { errors?: unknown }).errors;
  if (Array.isArray(nested)) inner.push(...nested.slice(0, 3));
  if (err.cause !== undefined) inner.push(err.cause);
  const more = depth < 3 ? inner.map((e) => errorText(e, depth + 1)).filter((t) => t !== err.message) : [];
  return more.length > 0 ? `${err.message} [${more.join("; ")}]` : err.message;
}
