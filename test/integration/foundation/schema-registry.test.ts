// The Confluent wire format through @confluentinc/schemaregistry against the local registry.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AvroDeserializer, AvroSerializer, SerdeType } from "@confluentinc/schemaregistry";
import { testRegistry, uniqueName } from "../../helpers/stack.js";

const schema = {
  type: "record",
  name: "ShopEvent",
  namespace: "dev.aimass.test",
  fields: [
    { name: "id", type: "string" },
    { name: "price", type: "double" },
    { name: "quantity", type: "int" },
  ],
};

test("Avro register, serialize and deserialize round-trip through the registry", async () => {
  const client = testRegistry();
  const topic = uniqueName("avro-topic");
  const id = await client.register(`${topic}-value`, { schemaType: "AVRO", schema: JSON.stringify(schema) });
  assert.ok(Number.isInteger(id) && id > 0, `registry returned schema id ${id}`);

  const serializer = new AvroSerializer(client, SerdeType.VALUE, { useLatestVersion: true });
  const value = { id: "e-1", price: 12.5, quantity: 3 };
  const bytes = await serializer.serialize(topic, value);

  // Confluent wire format: magic byte 0, then the 4-byte big-endian schema id.
  assert.equal(bytes[0], 0);
  assert.equal(bytes.readInt32BE(1), id);

  const deserializer = new AvroDeserializer(testRegistry(), SerdeType.VALUE, {});
  // avsc returns instances of a generated record class: compare the plain fields.
  assert.deepEqual({ ...(await deserializer.deserialize(topic, bytes)) }, value);
});
