// One feature update record: decoded (JSON or Avro, schemas/feature-update.avsc) and
// validated against the configured views. The shape, in both formats:
//   {"view": "user", "key": "u-7", "ts": 1764480000000, "values": {"clicks_7d": 12, "purchases_30d": 1}}
// Every problem with a record is named in one FIELD_INVALID error; bytes that are not a
// record at all fail with DECODE_FAILED (or SCHEMA_UNKNOWN) from the codec.
import { AimassError } from "../common/errors.js";
import type { FeaturesConfig } from "../common/config/schema.js";
import type { Decoded, ValueCodec } from "../common/serde/codec.js";
import type { FeatureUpdate } from "../common/features/store.js";

/** A validated update: values are finite numbers (bools already turned into 0/1). */
export interface ValidUpdate extends FeatureUpdate {
  values: Record<string, number>;
}

/** Decodes a record's value and validates it. Throws AimassError (DECODE_FAILED, SCHEMA_UNKNOWN, FIELD_INVALID, or KAFKA_TRANSIENT when the registry is down). */
export async function decodeUpdate(
  codec: ValueCodec,
  topic: string,
  value: Buffer | null,
  features: FeaturesConfig,
): Promise<ValidUpdate> {
  if (value === null) throw new AimassError("DECODE_FAILED", "record has no value (tombstone)");
  return validateUpdate(await codec.decode(topic, value), features);
}

/** Validates a decoded update against the views. Unknown top-level fields are ignored. */
export function validateUpdate(raw: Decoded, features: FeaturesConfig): ValidUpdate {
  const problems: string[] = [];
  const { view: viewName, key, ts: rawTs, values: rawValues } = raw;

  const view = typeof viewName === "string" ? features.views.find((v) => v.name === viewName) : undefined;
  if (viewName === undefined) problems.push('"view" is missing');
  else if (typeof viewName !== "string") problems.push('"view" is not a string');
  else if (!view) {
    problems.push(`unknown view "${viewName}" (known: ${features.views.map((v) => v.name).join(", ")})`);
  }

  if (typeof key !== "string" || key === "") problems.push('"key" must be a non-empty string');

  // Avro longs may decode as bigint; accept those that fit.
  const ts =
    typeof rawTs === "bigint" && rawTs <= BigInt(Number.MAX_SAFE_INTEGER) && rawTs >= 0n
      ? Number(rawTs)
      : rawTs;
  if (typeof ts !== "number" || !Number.isSafeInteger(ts) || ts <= 0) {
    problems.push('"ts" must be a positive integer (epoch ms)');
  }

  const values: Record<string, number> = {};
  if (rawValues === null || typeof rawValues !== "object" || Array.isArray(rawValues)) {
    problems.push('"values" must be an object of feature name → number');
  } else {
    const entries = rawValues instanceof Map ? [...rawValues.entries()] : Object.entries(rawValues);
    if (entries.length === 0) problems.push('"values" is empty');
    for (const [name, value] of entries) {
      const feature = view?.features.find((f) => f.name === name);
      if (view && !feature) {
        problems.push(`view "${view.name}" has no feature "${String(name)}"`);
        continue;
      }
      const n = typeof value === "boolean" ? (value ? 1 : 0) : value;
      if (typeof n !== "number" || !Number.isFinite(n)) {
        problems.push(`feature "${String(name)}" is not a finite number or boolean`);
      } else if (feature?.type === "int" && !Number.isInteger(n)) {
        problems.push(`feature "${String(name)}" is an int feature, got ${n}`);
      } else if (feature?.type === "bool" && n !== 0 && n !== 1) {
        problems.push(`feature "${String(name)}" is a bool feature, got ${n}`);
      } else {
        values[String(name)] = n;
      }
    }
  }

  if (problems.length > 0) {
    throw new AimassError(
      "FIELD_INVALID",
      `invalid feature update${typeof viewName === "string" ? ` for view "${viewName}"` : ""}: ${problems.join("; ")}`,
      { details: { problems } },
    );
  }
  return { view: viewName as string, key: key as string, ts: ts as number, values };
}
