// Schema Registry client with bounded request time. The registry is on the hot path only
// until the serde caches warm up, but a registry that stops answering must turn into an
// error (and an aborted, retried transaction), never into a hung batch.
import { SchemaRegistryClient } from "@confluentinc/schemaregistry";

export interface RegistryOptions {
  url: string;
  /** Per-request timeout. @default 10000 */
  requestTimeoutMs?: number;
}

export function createSchemaRegistryClient(options: RegistryOptions): SchemaRegistryClient {
  return new SchemaRegistryClient({
    baseURLs: [options.url],
    createAxiosDefaults: { timeout: options.requestTimeoutMs ?? 10_000 },
    maxRetries: 2,
    retriesWaitMs: 200,
    retriesMaxWaitMs: 2_000,
  });
}
