// Value codecs for events and predictions: plain JSON, or Avro in the Confluent wire format
// (magic byte 0, 4-byte schema id, Avro binary) through @confluentinc/schemaregistry.
// Decoding failures surface as AimassError codes so the pipeline can DLQ them by stage.
import {
  AvroDeserializer,
  AvroSerializer,
  SerdeType,
  SubjectNameStrategyType,
  type SchemaRegistryClient,
} from "@confluentinc/schemaregistry";
import { AimassError, errorMessage } from "../errors.js";

export type Format = "json" | "avro";
export type Decoded = Record<string, unknown>;

export interface ValueCodec {
  readonly format: Format;
  decode(topic: string, bytes: Buffer): Promise<Decoded>;
  encode(topic: string, value: Decoded): Promise<Buffer>;
}

export function jsonCodec(): ValueCodec {
  return {
    format: "json",
    decode: async (_topic, bytes) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(bytes.toString("utf8"));
      } catch (err) {
        throw new AimassError("DECODE_FAILED", `not valid JSON: ${errorMessage(err)}`, { cause: err });
      }
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new AimassError("DECODE_FAILED", "JSON value is not an object");
      }
      return parsed as Decoded;
    },
    encode: async (_topic, value) => Buffer.from(JSON.stringify(value), "utf8"),
  };
}

export interface AvroCodecOptions {
  registry: SchemaRegistryClient;
  /**
   * Serialize with the latest schema registered under `<topic>-value` (TopicNameStrategy).
   * Producers of predictions register it up front (`aimass topics create`), so workers never
   * auto-register schemas at run time.
   */
  useLatestVersion?: boolean;
}

export function avroCodec(options: AvroCodecOptions): ValueCodec {
  // TOPIC strategy explicitly: the library's default (ASSOCIATED) asks the registry for
  // an association on every new topic, an API that Confluent-compatible registries lack.
  const conf = { subjectNameStrategyType: SubjectNameStrategyType.TOPIC };
  const serializer = new AvroSerializer(options.registry, SerdeType.VALUE, {
    ...conf,
    useLatestVersion: options.useLatestVersion ?? true,
    autoRegisterSchemas: false,
  });
  const deserializer = new AvroDeserializer(options.registry, SerdeType.VALUE, conf);
  return {
    format: "avro",
    decode: async (topic, bytes) => {
      if (bytes.length < 5 || bytes[0] !== 0) {
        throw new AimassError("DECODE_FAILED", "not in the Confluent wire format (magic byte 0 + schema id)");
      }
      const schemaId = bytes.readInt32BE(1);
      let value: unknown;
      try {
        value = await deserializer.deserialize(topic, bytes);
      } catch (err) {
        const msg = errorMessage(err);
        // The registry answers 404 (Confluent error 40403) for an id it does not know.
        if (/404|40403|not found/i.test(msg)) {
          throw new AimassError("SCHEMA_UNKNOWN", `schema id ${schemaId} is unknown to the registry`, {
            cause: err,
          });
        }
        if (/timeout|ECONNREFUSED|ECONNRESET|socket hang up|503|502/i.test(msg)) {
          // The registry being down is not the record's fault: retry the batch, don't DLQ.
          throw new AimassError("KAFKA_TRANSIENT", `schema registry unavailable: ${msg}`, { cause: err });
        }
        throw new AimassError("DECODE_FAILED", `Avro decode with schema id ${schemaId} failed: ${msg}`, {
          cause: err,
        });
      }
      if (value === null || typeof value !== "object") {
        throw new AimassError("DECODE_FAILED", "Avro value is not a record");
      }
      return { ...(value as Decoded) };
    },
    encode: async (topic, value) => {
      try {
        return await serializer.serialize(topic, value);
      } catch (err) {
        throw new AimassError("ENCODE_FAILED", `Avro encode for ${topic} failed: ${errorMessage(err)}`, {
          cause: err,
        });
      }
    },
  };
}
