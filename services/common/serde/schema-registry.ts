// Schema Registry client with bounded request time. The registry is on the hot path only
// until the serde caches warm up, but a registry that stops answering must turn into an
// error (and an aborted, retried transaction), never into a hung batch.
import { SchemaRegistryClient } from "@confluentinc/schemaregistry";
import { TUNING } from "../tuning.js";

export interface RegistryOptions {
  url: string;
}

export function createSchemaRegistryClient(options: RegistryOptions): SchemaRegistryClient {
  const t = TUNING.schemaRegistry;
  return new SchemaRegistryClient({
    baseURLs: [options.url],
    createAxiosDefaults: { timeout: t.requestTimeoutMs },
    maxRetries: t.retries,
    retriesWaitMs: t.retriesWaitMs,
    retriesMaxWaitMs: t.retriesMaxWaitMs,
  });
}
