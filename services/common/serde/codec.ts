// Value codecs for events and predictions: plain JSON, or Avro in the Confluent wire format
// (magic byte 0, 4-byte schema id, Avro binary) through @confluentinc/schemaregistry.
// Decoding failures surface as AimassError codes so the pipeline can DLQ them by stage.
import { isUtf8 } from "node:buffer";
import {
  AvroDeserializer,
  AvroSerializer,
  SerdeType,
  SubjectNameStrategyType,
  type Client,
} from "@confluentinc/schemaregistry";
import { AimassError, errorMessage } from "../errors.js";
import { installAvroBounds } from "./avro-bounds.js";

// Before any schema is parsed: a corrupt block count must fail, not loop (avro-bounds.ts).
installAvroBounds();

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
      // toString would turn invalid bytes into U+FFFD and a wrong id or category would be scored.
      if (!isUtf8(bytes)) throw new AimassError("DECODE_FAILED", "not valid JSON: the bytes are not UTF-8");
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
  registry: Client;
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
        throw classifyRegistryError(err, {
          notFound: () =>
            new AimassError("SCHEMA_UNKNOWN", `schema id ${schemaId} is unknown to the registry`, {
              cause: err,
            }),
          other: () =>
            new AimassError(
              "DECODE_FAILED",
              `Avro decode with schema id ${schemaId} failed: ${errorMessage(err)}`,
              {
                cause: err,
              },
            ),
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
        const encodeFailed = () =>
          new AimassError("ENCODE_FAILED", `Avro encode for ${topic} failed: ${errorMessage(err)}`, {
            cause: err,
          });
        throw classifyRegistryError(err, { notFound: encodeFailed, other: encodeFailed });
      }
    },
  };
}

/**
 * Decides once whether a serde error is the record's fault or the registry's. The registry
 * answering 404 (Confluent error 404xx) means the id or subject does not exist; any other
 * 4xx is a bad request about this record. No HTTP status at all (refused, reset, timed out,
 * DNS) or a 5xx/408/429 means the registry is unavailable: retry the batch, don't DLQ it.
 */
export function classifyRegistryError(
  err: unknown,
  cases: { notFound: () => AimassError; other: () => AimassError },
): AimassError {
  const status = httpStatus(err);
  if (status === 404) return cases.notFound();
  const unavailable =
    status === undefined ? isNetworkError(err) : status >= 500 || status === 408 || status === 429;
  if (unavailable) {
    return new AimassError("REGISTRY_UNAVAILABLE", `schema registry unavailable: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  return cases.other();
}

function httpStatus(err: unknown): number | undefined {
  if (err && typeof err === "object") {
    const e = err as { status?: unknown; response?: { status?: unknown } };
    if (typeof e.status === "number" && e.status > 0) return e.status;
    if (typeof e.response?.status === "number") return e.response.status;
  }
  return undefined;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ERR_NETWORK",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
]);

/** Only transport failures count: a corrupt payload's RangeError must stay the record's fault. */
function isNetworkError(err: unknown): boolean {
  const code = err && typeof err === "object" ? (err as { code?: unknown }).code : undefined;
  if (typeof code === "string" && NETWORK_CODES.has(code)) return true;
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|socket hang up|timeout of \d+ms exceeded/i.test(
    errorMessage(err),
  );
}
