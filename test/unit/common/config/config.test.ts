// The pipeline config loader: the example's defaults, every error naming the field path and
// the problem, file and syntax errors, path resolution and endpoint env vars.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { isAimassError } from "../../../../services/common/errors.js";
import {
  checkPipelineConfig,
  loadPipelineConfig,
  parsePipelineConfig,
} from "../../../../services/common/config/load.js";
import { repoPath, testPipelineRaw, writeTempConfig } from "../../../helpers/pipeline.js";
import { repositoryEntry } from "../../../../services/common/models/repository.js";

const EXAMPLE = repoPath("examples/shop/pipeline.yaml");

/** A fresh, mutable copy of the example config as its YAML holds it. */
function exampleRaw(): Record<string, unknown> & {
  models: Array<Record<string, unknown> & { batching: Record<string, unknown> }>;
  routing: { routes: Record<string, string> } & Record<string, unknown>;
  processing: Record<string, unknown>;
  input: Record<string, unknown>;
  output: Record<string, unknown>;
  pipeline: Record<string, unknown>;
} {
  const raw = parseYaml(readFileSync(EXAMPLE, "utf8"));
  // The example names its model by repository version; inline the repository entry so the
  // tests can edit the model's keys and parse the config from any path.
  const root = repoPath("models");
  raw.modelRepository = root;
  raw.models = raw.models.map((m: { name: string; version: string }) =>
    repositoryEntry(root, m.name, m.version),
  );
  return raw;
}

interface Issue {
  path: string;
  message: string;
}

/** Parses, expects CONFIG_INVALID, and returns the issues it reported. */
function invalid(raw: unknown): { message: string; issues: Issue[] } {
  try {
    parsePipelineConfig(raw, "/cfg/pipeline.yaml", {});
  } catch (err) {
    assert.ok(isAimassError(err), `expected an AimassError, got ${String(err)}`);
    assert.equal(err.code, "CONFIG_INVALID");
    assert.match(err.message, /^\/cfg\/pipeline\.yaml: invalid pipeline config/);
    return { message: err.message, issues: err.details.issues as Issue[] };
  }
  assert.fail("config was accepted");
}

function assertIssue(raw: unknown, path: string, message: RegExp): void {
  const { message: text, issues } = invalid(raw);
  const issue = issues.find((i) => i.path === path);
  assert.ok(issue, `no issue at ${path}: ${JSON.stringify(issues)}`);
  assert.match(issue.message, message);
  // The thrown message names the path and the problem on one line.
  assert.ok(text.includes(`  - ${path === "" ? "(root)" : path}: ${issue.message}`), text);
}

test("the example pipeline loads with its values and the schema's defaults", async () => {
  const cfg = await loadPipelineConfig(EXAMPLE, {});
  assert.equal(cfg.source, EXAMPLE);
  assert.deepEqual(cfg.pipeline, {
    name: "shop",
    groupId: "aimass-shop",
    transactionalIdPrefix: "aimass-shop",
  });
  assert.deepEqual(cfg.input, {
    topic: "shop.events",
    partitions: 6,
    replicationFactor: 1,
    config: {},
    format: "json",
    maxRecordBytes: 65_536,
    maxHeaders: 64,
    maxHeaderBytes: 16_384,
    idField: "id",
    timeField: "ts",
  });
  assert.equal(cfg.output.topic, "shop.predictions");
  assert.equal(cfg.output.format, "json");
  assert.equal(cfg.output.schemaFile, undefined);
  assert.equal(cfg.output.lineageHeaders, true);
  assert.deepEqual(cfg.dlq, {
    topic: "shop.events.dlq",
    partitions: 6,
    replicationFactor: 1,
    config: {},
    maxRecordBytes: 900_000,
  });
  assert.deepEqual(cfg.routing, {
    field: "type",
    routes: { view: "shop-propensity", cart: "shop-propensity", purchase: "shop-propensity" },
  });

  assert.equal(cfg.models.length, 1);
  const model = cfg.models[0];
  assert.ok(model);
  // The example serves version 3 from the repository: event columns plus online features.
  assert.equal(model.path, repoPath("models/shop-propensity/3/model.onnx"));
  assert.match(model.path, /^\/.*\/models\/shop-propensity\/3\/model\.onnx$/);
  assert.equal(model.version, "3");
  assert.equal(cfg.modelRepository, repoPath("models"));
  assert.deepEqual(model.inputs[0]?.columns[6], { feature: "user.clicks_7d", transform: "log1p" });
  assert.deepEqual(
    cfg.features?.views.map((v) => v.name),
    ["user", "item"],
  );
  assert.deepEqual(model.executionProviders, ["cpu"]);
  assert.equal(model.poolSize, 1);
  assert.equal(model.intraOpThreads, 1);
  assert.deepEqual(model.batching, { maxBatchSize: 128, maxDelayMs: 5 });
  assert.equal(model.inputs[0]?.type, "float32");
  assert.deepEqual(model.inputs[0]?.columns[0], { field: "price", transform: "log1p" });
  assert.deepEqual(model.outputs, [{ name: "propensity", field: "propensity", width: 1 }]);

  assert.deepEqual(cfg.processing, {
    maxInFlightRecords: 10_000,
    maxRecordsPerTransaction: 1_000,
    maxRequestBytes: 900_000,
    transactionTimeoutMs: 60_000,
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1_000,
    shutdownGraceMs: 30_000,
    retryInitialMs: 100,
    retryMaxMs: 5_000,
    stallTimeoutMs: 300_000,
  });
  assert.deepEqual(cfg.endpoints, {
    kafkaBrokers: ["127.0.0.1:9092"],
    schemaRegistryUrl: "http://127.0.0.1:8081/apis/ccompat/v7",
    redisUrl: "redis://127.0.0.1:6379",
  });
});

test("a minimal config gets every default", () => {
  const cfg = parsePipelineConfig(
    {
      pipeline: { name: "mini" },
      input: { topic: "in" },
      output: { topic: "out" },
      dlq: { topic: "dead" },
      routing: { default: "m" },
      models: [
        {
          name: "m",
          version: "1",
          path: "m.onnx",
          inputs: [{ name: "x", columns: [{ field: "a" }] }],
          outputs: [{ name: "y", field: "y" }],
        },
      ],
    },
    "/etc/aimass/pipeline.yaml",
    {},
  );
  assert.equal(cfg.pipeline.groupId, "aimass-mini");
  assert.equal(cfg.pipeline.transactionalIdPrefix, "aimass-mini");
  assert.equal(cfg.input.partitions, 6);
  assert.equal(cfg.input.maxRecordBytes, 1_048_576);
  assert.equal(cfg.input.maxHeaders, 64);
  assert.equal(cfg.input.maxHeaderBytes, 16_384);
  assert.equal(cfg.dlq.maxRecordBytes, 900_000);
  assert.equal(cfg.input.format, "json");
  assert.equal(cfg.output.format, "json");
  assert.deepEqual(cfg.routing.routes, {});
  const model = cfg.models[0];
  assert.ok(model);
  assert.equal(model.path, "/etc/aimass/m.onnx");
  assert.deepEqual(model.batching, { maxBatchSize: 64, maxDelayMs: 5 });
  assert.deepEqual(model.executionProviders, ["cpu"]);
  assert.deepEqual(model.inputs[0], {
    name: "x",
    type: "float32",
    columns: [{ field: "a", transform: "identity" }],
  });
  assert.equal(cfg.processing.sessionTimeoutMs, 10_000);
  assert.equal(cfg.processing.shutdownGraceMs, 30_000);
});

test("an explicit group id is the default transactional id prefix; an explicit prefix wins", () => {
  const raw = exampleRaw();
  raw.pipeline.groupId = "g1";
  let cfg = parsePipelineConfig(raw, "/cfg/p.yaml", {});
  assert.equal(cfg.pipeline.groupId, "g1");
  assert.equal(cfg.pipeline.transactionalIdPrefix, "g1");
  raw.pipeline.transactionalIdPrefix = "tx";
  cfg = parsePipelineConfig(raw, "/cfg/p.yaml", {});
  assert.equal(cfg.pipeline.transactionalIdPrefix, "tx");
});

test("a negative maxBatchSize names models.0.batching.maxBatchSize", () => {
  const raw = exampleRaw();
  raw.models[0]!.batching.maxBatchSize = -1;
  assertIssue(raw, "models.0.batching.maxBatchSize", />=\s*1/);
});

test("the record size limits are validated: header count and size, and a DLQ budget with room for its headers", () => {
  const raw = exampleRaw();
  raw.input.maxHeaders = -1;
  assertIssue(raw, "input.maxHeaders", />=\s*0/);
  raw.input.maxHeaders = 1.5;
  assertIssue(raw, "input.maxHeaders", /int/i);
  raw.input.maxHeaders = 0;
  raw.input.maxHeaderBytes = 0;
  assertIssue(raw, "input.maxHeaderBytes", />=\s*1/);
  raw.input.maxHeaderBytes = 100;
  Object.assign(raw, { dlq: { topic: "shop.events.dlq", maxRecordBytes: 1_000 } });
  assertIssue(raw, "dlq.maxRecordBytes", />=\s*8192/);
  Object.assign(raw, { dlq: { topic: "shop.events.dlq", maxRecordBytes: 8_192 } });
  const cfg = parsePipelineConfig(raw, "/cfg/p.yaml", {});
  assert.equal(cfg.input.maxHeaders, 0);
  assert.equal(cfg.input.maxHeaderBytes, 100);
  assert.equal(cfg.dlq.maxRecordBytes, 8_192);
});

test("a non-integer maxBatchSize is rejected", () => {
  const raw = exampleRaw();
  raw.models[0]!.batching.maxBatchSize = 2.5;
  assertIssue(raw, "models.0.batching.maxBatchSize", /int/i);
});

test("an unknown key is rejected by the strict objects, naming the key", () => {
  const raw = exampleRaw();
  raw.models[0]!.batching.maxBatchSzie = 10;
  assertIssue(raw, "models.0.batching", /maxBatchSzie/);
  const top = exampleRaw();
  top.extra = true;
  assertIssue(top, "", /extra/);
});

test("a route to a missing model names routing.routes.<value>", () => {
  const raw = exampleRaw();
  raw.routing.routes.view = "nope";
  assertIssue(raw, "routing.routes.view", /no model named "nope"/);
});

test("routing.default must name a model", () => {
  const raw = exampleRaw();
  (raw.routing as Record<string, unknown>).default = "ghost";
  assertIssue(raw, "routing.default", /no model named "ghost"/);
});

test("duplicate model names are rejected", () => {
  const raw = exampleRaw();
  raw.models.push({ ...structuredClone(raw.models[0]!) });
  assertIssue(raw, "models.1.name", /duplicate model "shop-propensity"/);
});

test("several models need routing.field or routing.default", () => {
  const raw = exampleRaw();
  const second = structuredClone(raw.models[0]!);
  second.name = "other";
  raw.models.push(second);
  delete (raw.routing as Record<string, unknown>).field;
  raw.routing.routes = {};
  assertIssue(raw, "routing", /routing\.field or routing\.default/);
});

test("heartbeatIntervalMs above a third of sessionTimeoutMs is rejected", () => {
  const raw = exampleRaw();
  raw.processing.sessionTimeoutMs = 6_000;
  raw.processing.heartbeatIntervalMs = 2_001;
  assertIssue(raw, "processing.heartbeatIntervalMs", /third of sessionTimeoutMs/);
  raw.processing.heartbeatIntervalMs = 2_000;
  assert.equal(parsePipelineConfig(raw, "/cfg/p.yaml", {}).processing.heartbeatIntervalMs, 2_000);
});

test("the same topic for input and output (or dlq) is rejected", () => {
  const raw = exampleRaw();
  raw.output.topic = raw.input.topic;
  assertIssue(raw, "output.topic", /must differ/);
  const dlq = exampleRaw();
  (dlq.dlq as Record<string, unknown>).topic = dlq.output.topic;
  assertIssue(dlq, "output.topic", /must differ/);
  const shadow = exampleRaw();
  (shadow.output as Record<string, unknown>).shadowTopic = shadow.output.topic;
  assertIssue(shadow, "output.shadowTopic", /must differ/);
});

test("bad names, enums and missing sections name their fields; all issues are reported at once", () => {
  const raw = exampleRaw();
  raw.input.topic = "bad topic!";
  raw.input.format = "xml";
  raw.models[0]!.executionProviders = ["tpu"];
  delete (raw as Record<string, unknown>).dlq;
  const { issues } = invalid(raw);
  const paths = issues.map((i) => i.path);
  for (const p of ["input.topic", "input.format", "models.0.executionProviders.0", "dlq"]) {
    assert.ok(paths.includes(p), `${p} missing from ${JSON.stringify(paths)}`);
  }
  assert.match(issues.find((i) => i.path === "input.topic")?.message ?? "", /letters, digits/);
});

test("a config that is not an object at all is CONFIG_INVALID at (root)", () => {
  const { message } = invalid("just a string");
  assert.match(message, /\(root\)/);
  invalid(null);
});

test("a missing file is CONFIG_NOT_FOUND naming the path", async () => {
  const path = join(repoPath("examples"), "no-such-pipeline.yaml");
  await assert.rejects(loadPipelineConfig(path, {}), (err: unknown) => {
    assert.ok(isAimassError(err));
    assert.equal(err.code, "CONFIG_NOT_FOUND");
    assert.ok(err.message.includes(path), err.message);
    return true;
  });
});

test("malformed YAML or JSON is CONFIG_INVALID", async (t) => {
  const yamlPath = writeTempConfig(t, "pipeline:\n  name: [unclosed\n  x: {\n");
  await assert.rejects(loadPipelineConfig(yamlPath, {}), (err: unknown) => {
    assert.ok(isAimassError(err));
    assert.equal(err.code, "CONFIG_INVALID");
    assert.match(err.message, /not valid YAML/);
    assert.ok(err.message.includes(yamlPath));
    return true;
  });
  const jsonPath = writeTempConfig(t, '{"pipeline": ', { fileName: "pipeline.json" });
  await assert.rejects(loadPipelineConfig(jsonPath, {}), (err: unknown) => {
    assert.ok(isAimassError(err));
    assert.equal(err.code, "CONFIG_INVALID");
    assert.match(err.message, /not valid JSON/);
    return true;
  });
});

test("a file that parses but fails the schema is CONFIG_INVALID naming the file", async (t) => {
  const raw = exampleRaw();
  raw.models[0]!.batching.maxBatchSize = 0;
  const path = writeTempConfig(t, raw);
  await assert.rejects(loadPipelineConfig(path, {}), (err: unknown) => {
    assert.ok(isAimassError(err));
    assert.equal(err.code, "CONFIG_INVALID");
    assert.ok(err.message.startsWith(`${path}: invalid pipeline config`), err.message);
    assert.match(err.message, /models\.0\.batching\.maxBatchSize/);
    return true;
  });
});

test("relative model and schema paths resolve against the config file's folder; JSON works too", async (t) => {
  const raw = testPipelineRaw({ input: "in", output: "out", dlq: "dead", group: "g" });
  raw.models[0]!.path = "models/m.onnx";
  raw.output.schemaFile = "../schemas/prediction.avsc";
  const path = writeTempConfig(t, raw, { fileName: "p.json" });
  const cfg = await loadPipelineConfig(path, {});
  const dir = join(path, "..");
  assert.equal(cfg.models[0]?.path, join(dir, "models/m.onnx"));
  assert.equal(cfg.output.schemaFile, join(dir, "../schemas/prediction.avsc"));
  assert.equal(cfg.source, path);
  // Absolute paths stay as they are.
  const abs = await loadPipelineConfig(
    writeTempConfig(t, testPipelineRaw({ input: "i", output: "o", dlq: "d", group: "g" })),
    {},
  );
  assert.equal(abs.models[0]?.path, repoPath("models/shop-propensity/1/model.onnx"));
});

test("KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL override the endpoints", async () => {
  const env = {
    KAFKA_BROKERS: " kafka-1:9092, kafka-2:9093 ,,",
    SCHEMA_REGISTRY_URL: "http://registry:8081",
    REDIS_URL: "redis://cache:6380/2",
  };
  const cfg = parsePipelineConfig(exampleRaw(), EXAMPLE, env);
  assert.deepEqual(cfg.endpoints, {
    kafkaBrokers: ["kafka-1:9092", "kafka-2:9093"],
    schemaRegistryUrl: "http://registry:8081",
    redisUrl: "redis://cache:6380/2",
  });
  const loaded = await loadPipelineConfig(EXAMPLE, { KAFKA_BROKERS: "b:1" });
  assert.deepEqual(loaded.endpoints.kafkaBrokers, ["b:1"]);
  // Empty values fall back to the defaults.
  const blank = parsePipelineConfig(exampleRaw(), EXAMPLE, { KAFKA_BROKERS: " ", REDIS_URL: "" });
  assert.deepEqual(blank.endpoints.kafkaBrokers, ["127.0.0.1:9092"]);
  assert.equal(blank.endpoints.redisUrl, "redis://127.0.0.1:6379");
});

test("one model and no routing section: every event routes to that model", () => {
  const cfg = parsePipelineConfig(
    {
      pipeline: { name: "solo" },
      input: { topic: "in" },
      output: { topic: "out" },
      dlq: { topic: "dead" },
      models: [
        {
          name: "only",
          version: "1",
          path: "m.onnx",
          inputs: [{ name: "x", columns: [{ field: "a" }] }],
          outputs: [{ name: "y", field: "y" }],
        },
      ],
    },
    "/etc/aimass/pipeline.yaml",
    {},
  );
  assert.equal(cfg.routing.default, "only");
  assert.equal(cfg.routing.field, undefined);
});

/** The example as its YAML holds it (repository references), the version written unquoted. */
function exampleYamlWithVersion(version: string): string {
  return readFileSync(EXAMPLE, "utf8")
    .replace('version: "3"', `version: ${version}`)
    .replace("modelRepository: ../../models", `modelRepository: ${repoPath("models")}`);
}

test('an unquoted `version: 3` is the version "3", from the repository and inline alike', async (t) => {
  const cfg = await loadPipelineConfig(writeTempConfig(t, exampleYamlWithVersion("3")), {});
  assert.equal(cfg.models[0]?.version, "3");
  assert.equal(cfg.models[0]?.path, repoPath("models/shop-propensity/3/model.onnx"));
  const raw = exampleRaw();
  raw.models[0]!.version = 3;
  assert.equal(parsePipelineConfig(raw, EXAMPLE, {}).models[0]?.version, "3");
});

test("a version YAML reads as a fraction is one error naming the field and saying to quote it", async (t) => {
  for (const source of [exampleYamlWithVersion("3.10"), exampleYamlWithVersion("-1")]) {
    const result = await checkPipelineConfig(writeTempConfig(t, source), {});
    assert.equal(result.valid, false);
    assert.ok(!result.valid);
    assert.deepEqual(
      result.errors.map((e) => e.path),
      ["models.0.version"],
      JSON.stringify(result.errors),
    );
    assert.match(result.errors[0]?.message ?? "", /version name such as "3".*quote it in YAML/);
  }
  const raw = exampleRaw();
  raw.models[0]!.version = 3.5;
  assertIssue(raw, "models.0.version", /quote it in YAML\), got 3\.5/);
});

test("a repository reference the repository lacks is one error at that entry, not its missing keys", async (t) => {
  const result = await checkPipelineConfig(writeTempConfig(t, exampleYamlWithVersion('"9"')), {});
  assert.ok(!result.valid);
  assert.deepEqual(
    result.errors.map((e) => e.path),
    ["models.0"],
  );
  assert.match(result.errors[0]?.message ?? "", /has no version "9".*versions: 1, 2, 3/);
  // The thrown form names it the same way.
  await assert.rejects(loadPipelineConfig(writeTempConfig(t, exampleYamlWithVersion('"9"')), {}), (err) => {
    assert.ok(isAimassError(err, "CONFIG_INVALID"));
    assert.match(err.message, /\n {2}- models\.0: model "shop-propensity" has no version "9"/);
    return true;
  });
});

test("checkPipelineConfig returns the loaded config, or every problem as data", async (t) => {
  const ok = await checkPipelineConfig(EXAMPLE, {});
  assert.ok(ok.valid);
  assert.equal(ok.config.pipeline.name, "shop");
  const raw = exampleRaw();
  raw.models[0]!.batching.maxBatchSize = 0;
  raw.input.topic = "bad topic";
  const bad = await checkPipelineConfig(writeTempConfig(t, raw), {});
  assert.ok(!bad.valid);
  assert.deepEqual(bad.errors.map((e) => e.path).sort(), ["input.topic", "models.0.batching.maxBatchSize"]);
  const missing = await checkPipelineConfig(join(repoPath("examples"), "no-such-pipeline.yaml"), {});
  assert.ok(!missing.valid);
  assert.deepEqual(
    missing.errors.map((e) => e.path),
    [""],
  );
  assert.match(missing.errors[0]?.message ?? "", /cannot read config .*no-such-pipeline\.yaml/);
});
