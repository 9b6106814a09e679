// Avro input for a chaos run: registers AVRO_EVENT_SCHEMA under `<input>-value` on the run's
// registry and encodes the planned records in the Confluent wire format, with the same client
// library the predictor decodes with; the Avro bad kinds (events.ts) change an event before
// it is encoded, or its bytes after.
import { AvroSerializer, SerdeType, SubjectNameStrategyType } from "@confluentinc/schemaregistry";
import { createSchemaRegistryClient } from "../../services/common/serde/schema-registry.js";
import type { ShopEvent } from "../lib/shop-events.js";
import { AVRO_EVENT_SCHEMA, AVRO_KINDS, type AvroEvent, type PlannedRecord } from "./events.js";

export interface AvroPlanOptions {
  registryUrl: string;
  topic: string;
}

/** Registers the schema and returns the records with Avro values (bad kinds as they say). */
export async function avroRecords(
  plan: Iterable<PlannedRecord>,
  o: AvroPlanOptions,
): Promise<PlannedRecord[]> {
  const registry = createSchemaRegistryClient({ url: o.registryUrl });
  try {
    await registry.register(`${o.topic}-value`, {
      schemaType: "AVRO",
      schema: JSON.stringify(AVRO_EVENT_SCHEMA),
    });
    const serializer = new AvroSerializer(registry, SerdeType.VALUE, {
      subjectNameStrategyType: SubjectNameStrategyType.TOPIC,
      useLatestVersion: true,
      autoRegisterSchemas: false,
    });
    const kinds = new Map(AVRO_KINDS.map((k) => [k.kind, k]));
    const out: PlannedRecord[] = [];
    for (const r of plan) {
      // The plan's values are the good events' JSON (AVRO_PLAN_KINDS change keys only).
      const e = JSON.parse(r.value?.toString() ?? "null") as ShopEvent;
      const k = kinds.get(r.kind);
      if (k?.plain) {
        out.push({ ...r, value: k.plain(e) });
        continue;
      }
      const good: AvroEvent = { ...e, vec: [], tags: {} };
      const encoded = await serializer.serialize(o.topic, k?.event ? k.event(good) : good);
      out.push({ ...r, value: k?.finish ? k.finish(encoded) : encoded });
    }
    return out;
  } finally {
    await registry.close();
  }
}
