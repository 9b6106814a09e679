// The published JSON Schema of the pipeline config: the committed file is what the zod schema
// generates (so it cannot go stale), the example config is valid under both, and the JSON
// Schema refuses what the zod schema refuses field by field.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse as parseYaml } from "yaml";
import { pipelineJsonSchema } from "../../../../services/common/config/json-schema.js";
import { pipelineFileSchema } from "../../../../services/common/config/schema.js";
import { repoPath } from "../../../helpers/pipeline.js";

const COMMITTED = "schemas/pipeline-config.schema.json";
const REFRESH = `node bin/aimass.js config schema > ${COMMITTED} && npx prettier --write ${COMMITTED}`;

const exampleYaml = (): unknown => parseYaml(readFileSync(repoPath("examples/shop/pipeline.yaml"), "utf8"));
const committed = (): unknown => JSON.parse(readFileSync(repoPath(COMMITTED), "utf8"));

function jsonSchemaValidator() {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  return ajv.compile(pipelineJsonSchema());
}

test("the committed schemas/pipeline-config.schema.json is what the zod schema generates", () => {
  assert.deepEqual(committed(), pipelineJsonSchema(), `${COMMITTED} is stale; refresh it: ${REFRESH}`);
});

test("examples/shop/pipeline.yaml is valid as a config file, under the zod schema and the JSON Schema", () => {
  const raw = exampleYaml();
  const parsed = pipelineFileSchema.safeParse(raw);
  assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
  const validate = jsonSchemaValidator();
  assert.ok(validate(raw), JSON.stringify(validate.errors));
});

test("an unquoted YAML version (a whole number) is a valid version in both schemas", () => {
  const raw = parseYaml(
    readFileSync(repoPath("examples/shop/pipeline.yaml"), "utf8").replace('version: "3"', "version: 3"),
  );
  assert.equal(pipelineFileSchema.safeParse(raw).success, true);
  assert.equal(jsonSchemaValidator()(raw), true);
});

test("the JSON Schema refuses what the zod schema refuses: unknown keys, bad names, out-of-range values", () => {
  const validate = jsonSchemaValidator();
  const cases: Array<[string, (c: Record<string, unknown>) => void]> = [
    ["an unknown top-level key", (c) => (c.extra = 1)],
    ["a topic name with a space", (c) => (c.input = { topic: "shop events" })],
    ["partitions 0", (c) => (c.dlq = { topic: "d", partitions: 0 })],
    ["a fractional version", (c) => (c.models = [{ name: "m", version: 3.5 }])],
    ["no models", (c) => (c.models = [])],
    [
      "a model entry with a path but no tensors",
      (c) => (c.models = [{ name: "m", version: "1", path: "x" }]),
    ],
  ];
  for (const [what, change] of cases) {
    const raw = exampleYaml();
    assert.ok(raw !== null && typeof raw === "object" && !Array.isArray(raw));
    const config: Record<string, unknown> = { ...raw };
    change(config);
    assert.equal(pipelineFileSchema.safeParse(config).success, false, `zod accepts ${what}`);
    assert.equal(validate(config), false, `the JSON Schema accepts ${what}`);
  }
});
