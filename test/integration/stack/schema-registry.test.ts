// The Confluent wire format through @confluentinc/schemaregistry against the local registry.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AvroDeserializer,
  AvroSerializer,
  SerdeType,
  SubjectNameStrategyType,
} from "@confluentinc/schemaregistry";
import { testRegistry, uniqueName } from "../../helpers/stack.js";
import { avroCodec } from "../../../services/common/serde/codec.js";

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

test(
  "Avro register, serialize and deserialize round-trip through the registry",
  { timeout: 60_000 },
  async () => {
    const client = testRegistry();
    const topic = uniqueName("avro-topic");
    const id = await client.register(`${topic}-value`, {
      schemaType: "AVRO",
      schema: JSON.stringify(schema),
    });
    assert.ok(Number.isInteger(id) && id > 0, `registry returned schema id ${id}`);

    const topicStrategy = { subjectNameStrategyType: SubjectNameStrategyType.TOPIC };
    const serializer = new AvroSerializer(client, SerdeType.VALUE, {
      ...topicStrategy,
      useLatestVersion: true,
    });
    const value = { id: "e-1", price: 12.5, quantity: 3 };
    const bytes = await serializer.serialize(topic, value);

    // Confluent wire format: magic byte 0, then the 4-byte big-endian schema id.
    assert.equal(bytes[0], 0);
    assert.equal(bytes.readInt32BE(1), id);

    const deserializer = new AvroDeserializer(testRegistry(), SerdeType.VALUE, topicStrategy);
    // avsc returns instances of a generated record class: compare the plain fields.
    assert.deepEqual({ ...(await deserializer.deserialize(topic, bytes)) }, value);
  },
);

test("aimass' Avro codec round-trips and names an unknown schema id", { timeout: 60_000 }, async () => {
  const client = testRegistry();
  const topic = uniqueName("avro-codec");
  await client.register(`${topic}-value`, { schemaType: "AVRO", schema: JSON.stringify(schema) });
  const codec = avroCodec({ registry: client });
  const value = { id: "e-2", price: 1.25, quantity: 1 };
  assert.deepEqual(await codec.decode(topic, await codec.encode(topic, value)), value);

  const unknown = Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 2, 0x41]);
  await assert.rejects(codec.decode(topic, unknown), (err: Error & { code?: string }) => {
    assert.equal(err.code, "SCHEMA_UNKNOWN");
    assert.match(err.message, /2147483632/);
    return true;
  });
});
