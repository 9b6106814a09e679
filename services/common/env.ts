// Endpoints of the services aimass talks to. Every service and test reads the same three
// variables, so pointing aimass at an existing cluster is a matter of exporting them.

export interface Endpoints {
  /** Kafka bootstrap brokers. @default ["127.0.0.1:9092"] */
  kafkaBrokers: string[];
  /** Confluent-compatible Schema Registry base URL. @default "http://127.0.0.1:8081/apis/ccompat/v7" */
  schemaRegistryUrl: string;
  /** Redis URL for the online feature store. @default "redis://127.0.0.1:6379" */
  redisUrl: string;
}

export const DEFAULT_ENDPOINTS: Readonly<Endpoints> = Object.freeze({
  kafkaBrokers: ["127.0.0.1:9092"],
  schemaRegistryUrl: "http://127.0.0.1:8081/apis/ccompat/v7",
  redisUrl: "redis://127.0.0.1:6379",
});

export function endpointsFromEnv(env: NodeJS.ProcessEnv = process.env): Endpoints {
  const brokers = (env.KAFKA_BROKERS ?? "")
    .split(",")
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
  return {
    kafkaBrokers: brokers.length > 0 ? brokers : [...DEFAULT_ENDPOINTS.kafkaBrokers],
    schemaRegistryUrl: nonEmpty(env.SCHEMA_REGISTRY_URL) ?? DEFAULT_ENDPOINTS.schemaRegistryUrl,
    redisUrl: nonEmpty(env.REDIS_URL) ?? DEFAULT_ENDPOINTS.redisUrl,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v ? v : undefined;
}
