// Decodes Avro payloads through the real Avro codec in a worker thread, so a decode that
// never returns (the block-count bomb without its bound) fails its test by timing out
// instead of blocking the test process's event loop forever. Not a test file itself.
import { parentPort, workerData } from "node:worker_threads";
import { MockClient } from "@confluentinc/schemaregistry";
import { avroCodec } from "../../../../services/common/serde/codec.js";
import { isAimassError } from "../../../../services/common/errors.js";

export interface DecodeJob {
  schema: string;
  /** Avro binary bodies, without the wire-format prefix (added here with the registered id). */
  bodies: Uint8Array[];
}

export interface DecodeResult {
  ok: boolean;
  code?: string;
  message: string;
}

const job = workerData as DecodeJob;
const registry = new MockClient();
const id = await registry.register("bomb-value", { schemaType: "AVRO", schema: job.schema });
const codec = avroCodec({ registry });
const results: DecodeResult[] = [];
for (const body of job.bodies) {
  const prefix = Buffer.alloc(5);
  prefix.writeInt32BE(id, 1);
  try {
    const value = await codec.decode("bomb", Buffer.concat([prefix, body]));
    results.push({ ok: true, message: JSON.stringify(value) });
  } catch (err) {
    results.push({ ok: false, message: String(err), ...(isAimassError(err) ? { code: err.code } : {}) });
  }
}
parentPort?.postMessage(results);
