// Builds kafkajs clients with aimass' logger and sane defaults for a local or remote cluster.
import { Kafka, logLevel as KafkaLogLevel, type KafkaConfig, type LogEntry } from "kafkajs";
import type { Logger } from "../logger.js";

export interface KafkaClientOptions {
  brokers: string[];
  clientId: string;
  logger: Logger;
  /**
   * CLI commands: every kafkajs log entry goes to debug, so a failure reads as the one error
   * the command reports, not as pages of connection retries. @default false
   */
  quiet?: boolean;
  /** Passed through to kafkajs (ssl, sasl, timeouts) for clusters beyond the local stack. */
  extra?: Omit<KafkaConfig, "brokers" | "clientId" | "logCreator">;
}

// kafkajs logs at ERROR every error response it is about to retry (coordinator loading,
// leader moved...). Those are routine during start-up and rebalances: log them at debug and
// let the caller see the error if retries run out.
const RETRIED_RESPONSE = /^Response \w+\(key: \d+, version: \d+\)$/;
// Right after a commit the coordinator answers CONCURRENT_TRANSACTIONS until the markers are
// written; kafkajs retries the send, but logs each attempt as an error first.
const RETRIED_CONCURRENT = /concurrent operation on the same transaction/;

// aimass always uses kafkajs' default (Java-compatible murmur2) partitioner: same key, same
// partition as Java and librdkafka producers, so the v2 partitioner warning is noise.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= "1";

export function createKafka(options: KafkaClientOptions): Kafka {
  const log = options.logger.child({ component: "kafkajs" });
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    connectionTimeout: 5_000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 100, retries: 8 },
    ...options.extra,
    logLevel: KafkaLogLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...fields } = entry;
        const msg = String(message);
        const retried = RETRIED_RESPONSE.test(msg) || RETRIED_CONCURRENT.test(String(fields.error ?? msg));
        if (options.quiet) log.debug(msg, fields);
        else if (level <= KafkaLogLevel.ERROR && !retried) log.error(msg, fields);
        else if (level === KafkaLogLevel.WARN && !msg.startsWith("Limiting retries")) log.warn(msg, fields);
        else log.debug(msg, fields);
      },
  });
}
