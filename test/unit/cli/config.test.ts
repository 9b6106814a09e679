// `aimass config validate` and `aimass config schema`: the loader's verdict as text or JSON
// with every problem's field path (exit 0 valid, 1 invalid), and the JSON Schema it publishes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { pipelineJsonSchema } from "../../../services/common/config/json-schema.js";
import { repoPath, writeTempConfig } from "../../helpers/pipeline.js";
import { runCli } from "./harness.js";

const EXAMPLE = repoPath("examples/shop/pipeline.yaml");

/** The example with edits to its text, its model repository made absolute. */
function exampleText(edit: (text: string) => string = (t) => t): string {
  return edit(readFileSync(EXAMPLE, "utf8")).replace(
    "modelRepository: ../../models",
    `modelRepository: ${repoPath("models")}`,
  );
}

/** The --json result's shape: exactly these keys (config only when valid, checked below). */
const jsonResult = z.strictObject({
  valid: z.boolean(),
  errors: z.array(z.strictObject({ path: z.string(), message: z.string() })),
  config: z
    .object({
      pipeline: z.object({ name: z.string(), groupId: z.string() }),
      models: z.array(z.object({ version: z.string() })),
    })
    .optional(),
});

const parseResult = (text: string) => jsonResult.parse(JSON.parse(text));

test("config validate: ok and a summary of the pipeline, its topics and models; exit 0", async () => {
  const run = await runCli(["config", "validate", "-c", EXAMPLE]);
  assert.equal(run.code, 0, run.err);
  const lines = run.out.split("\n");
  assert.equal(lines[0], `ok: ${EXAMPLE}`);
  assert.match(run.out, /^ {2}pipeline {2}shop \(group aimass-shop\)$/m);
  assert.match(
    run.out,
    /^ {2}topics {4}shop\.events \(input\), shop\.predictions \(output\), shop\.events\.dlq \(dlq\)/m,
  );
  assert.match(run.out, /shop\.features \(feature updates\)/);
  assert.match(run.out, /^ {2}models {4}shop-propensity version 3 \(repository .*models\)$/m);
  assert.equal(run.err, "");
});

test("config validate: every problem with its field path; exit 1", async (t) => {
  const path = writeTempConfig(
    t,
    exampleText((s) =>
      s
        .replace("topic: shop.events\n", "topic: shop events\n")
        .replace("maxInFlightRecords: 10000", "maxInFlightRecords: 0"),
    ),
  );
  const run = await runCli(["config", "validate", "--config", path]);
  assert.equal(run.code, 1);
  assert.equal(run.out.split("\n")[0], `invalid: ${path}`);
  assert.match(run.out, /^ {2}- input\.topic: use letters, digits/m);
  assert.match(run.out, /^ {2}- processing\.maxInFlightRecords: Too small/m);
  const missing = await runCli(["config", "validate", "-c", repoPath("examples/none.yaml")]);
  assert.equal(missing.code, 1);
  assert.match(missing.out, /^ {2}- \(file\): cannot read config/m);
});

test("config validate --json: {valid, errors: [{path, message}], config} for a valid config", async () => {
  const run = await runCli(["config", "validate", "-c", EXAMPLE, "--json"]);
  assert.equal(run.code, 0, run.err);
  const body = parseResult(run.out);
  assert.equal(body.valid, true);
  assert.deepEqual(body.errors, []);
  assert.equal(body.config?.pipeline.name, "shop");
  assert.equal(body.config?.pipeline.groupId, "aimass-shop", "the config as resolved");
});

test("config validate --json: valid false, each error's path and message, no config", async (t) => {
  const path = writeTempConfig(
    t,
    exampleText((s) => s.replace('version: "3"', "version: 3.10")),
  );
  const run = await runCli(["config", "validate", "-c", path, "--json"]);
  assert.equal(run.code, 1);
  const body = parseResult(run.out);
  assert.equal(body.valid, false);
  assert.equal(body.config, undefined);
  assert.deepEqual(
    body.errors.map((e) => e.path),
    ["models.0.version"],
    "one error for a version YAML read as a number",
  );
  assert.match(body.errors[0]?.message ?? "", /quote it in YAML/);
});

test("config validate accepts an unquoted whole-number version as that version", async (t) => {
  const path = writeTempConfig(
    t,
    exampleText((s) => s.replace('version: "3"', "version: 3")),
  );
  const run = await runCli(["config", "validate", "-c", path, "--json"]);
  assert.equal(run.code, 0, run.out);
  assert.equal(parseResult(run.out).config?.models[0]?.version, "3");
});

test("config schema prints the JSON Schema the code generates", async () => {
  const run = await runCli(["config", "schema"]);
  assert.equal(run.code, 0);
  assert.deepEqual(JSON.parse(run.out), pipelineJsonSchema());
});
