// Kafka for a CLI command: a quiet client (kafkajs' own logs at debug), reached first through
// a short-lived probe with a short retrier, so a wrong KAFKA_BROKERS ends the command within
// seconds with one line naming the brokers and the cause. The command's own requests then
// run with the usual retrier (kafkajs binds the retrier to the client, not to one call).
import type { Admin, Kafka } from "kafkajs";
import { AimassError, errorMessage } from "../common/errors.js";
import { createKafka } from "../common/kafka/client.js";
import type { Logger } from "../common/logger.js";
import { TUNING } from "../common/tuning.js";

export interface CliKafka {
  kafka: Kafka;
  /** Connected; the caller disconnects it. */
  admin: Admin;
}

export async function connectKafka(options: {
  brokers: string[];
  clientId: string;
  logger: Logger;
}): Promise<CliKafka> {
  const probe = createKafka({
    ...options,
    quiet: true,
    extra: { retry: { ...TUNING.cli.kafkaConnectRetry } },
  }).admin();
  try {
    await probe.connect();
  } catch (err) {
    throw new AimassError(
      "KAFKA_TRANSIENT",
      `cannot reach Kafka at ${options.brokers.join(",")} (KAFKA_BROKERS): ${errorMessage(err)}`,
      { cause: err },
    );
  } finally {
    await probe.disconnect().catch(() => undefined); // a probe that never connected
  }
  const kafka = createKafka({ ...options, quiet: true });
  const admin = kafka.admin();
  await admin.connect();
  return { kafka, admin };
}
