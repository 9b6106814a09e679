// The choice between the real deploy tools and the in-repo ones (test/helpers/deploy/tools.ts),
// on machines without the tools too: stand-in executables on a PATH of their own take the
// place of kustomize and kubeconform, so the real-tool branches run everywhere with the
// arguments and the output formats of the real tools (kubeconform's report as its
// pkg/output/json.go writes it).
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { at, obj, type Json, type JsonObject } from "../../helpers/deploy/kustomize.js";
import {
  kubeconformArgs,
  objectFile,
  pickRenderer,
  pickValidator,
  readKubeconformReport,
  schemaFileOf,
  writeStrimziSchemas,
} from "../../helpers/deploy/tools.js";

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "aimass-deploy-tools-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An executable `name` in `dir` running `body` (JavaScript) with this Node. */
function standIn(dir: string, name: string, body: string): void {
  const file = join(dir, name);
  writeFileSync(file, `#!${process.execPath}\n${body}\n`);
  chmodSync(file, 0o755);
}

const configMap = (name: string): JsonObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "aimass" },
  data: { a: "b" },
});
const topic: JsonObject = {
  apiVersion: "kafka.strimzi.io/v1",
  kind: "KafkaTopic",
  metadata: { name: "t", namespace: "aimass" },
  spec: { partitions: 1 },
};
const widget: JsonObject = { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } };

test("without kustomize, kubectl or kubeconform on PATH, the in-repo renderer and validator run", (t) => {
  const env = { PATH: tempDir(t) };
  assert.equal(pickRenderer(env).real, false);
  assert.match(pickRenderer(env).label, /in-repo renderer/);
  const validator = pickValidator(env);
  assert.equal(validator.real, false);
  const v = validator.validate([configMap("x"), widget]);
  assert.deepEqual(v.problems[0], []);
  assert.match(v.problems[1]?.join("\n") ?? "", /no schema for this kind/);
  assert.match(v.summary, /in-repo validator/);
});

test("a kustomize on PATH renders with `kustomize build <dir>`, and its label gives the version", (t) => {
  const bin = tempDir(t);
  const calls = join(bin, "calls");
  standIn(
    bin,
    "kustomize",
    `const args = process.argv.slice(2);
require("node:fs").appendFileSync(${JSON.stringify(calls)}, args.join(" ") + "\\n");
if (args[0] === "version") console.log("v5.7.1");
else console.log("apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: a}\\n---\\n---\\napiVersion: v1\\nkind: Secret\\nmetadata: {name: b}");`,
  );
  const renderer = pickRenderer({ PATH: bin });
  assert.equal(renderer.real, true);
  assert.equal(renderer.label, "kustomize v5.7.1 (`kustomize build`)");
  const objects = renderer.build("/some/overlay");
  assert.deepEqual(
    objects.map((o) => o.kind),
    ["ConfigMap", "Secret"],
  );
  assert.deepEqual(readFileSync(calls, "utf8").trim().split("\n"), ["version", "build /some/overlay"]);
});

test("without kustomize, kubectl's embedded kustomize renders with `kubectl kustomize <dir>`", (t) => {
  const bin = tempDir(t);
  standIn(
    bin,
    "kubectl",
    `const args = process.argv.slice(2);
if (args.join(" ") === "version --client") console.log("Client Version: v1.32.4\\nKustomize Version: v5.5.0");
else if (args[0] === "kustomize") console.log("apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: " + args[1].replace(/\\W/g, "") + "}");
else process.exit(2);`,
  );
  const renderer = pickRenderer({ PATH: bin });
  assert.equal(renderer.label, "kustomize v5.5.0 (`kubectl kustomize`; no kustomize on PATH)");
  assert.deepEqual(renderer.build("/k8s/overlays/cpu"), [
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "k8soverlayscpu" } },
  ]);
});

test("a kustomize that fails fails the render with its message", (t) => {
  const bin = tempDir(t);
  standIn(
    bin,
    "kustomize",
    `if (process.argv[2] === "version") console.log("v5.7.1");
else { console.error("accumulating resources: missing.yaml"); process.exit(1); }`,
  );
  assert.throws(
    () => pickRenderer({ PATH: bin }).build("/x"),
    /exited 1: accumulating resources: missing\.yaml/,
  );
});

test("kubeconform runs -strict -summary, Strimzi schemas first, extra locations, then the default", () => {
  const env = { AIMASS_KUBECONFORM_SCHEMA_LOCATION: "/crds/{{.Group}}/{{.ResourceKind}}.json, /more" };
  assert.deepEqual(kubeconformArgs("/w/objects", "/w/schemas", env), [
    "-strict",
    "-summary",
    "-output",
    "json",
    "-verbose",
    "-ignore-missing-schemas",
    "-schema-location",
    "/w/schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json",
    "-schema-location",
    "/crds/{{.Group}}/{{.ResourceKind}}.json",
    "-schema-location",
    "/more",
    "-schema-location",
    "default",
    "/w/objects",
  ]);
});

test("the Strimzi schemas lie where kubeconform's template looks, and reject unknown fields", (t) => {
  const dir = tempDir(t);
  assert.equal(
    schemaFileOf("kafka.strimzi.io/v1", "KafkaNodePool"),
    "kafka.strimzi.io/kafkanodepool_v1.json",
  );
  const files = writeStrimziSchemas(dir).map((f) => f.slice(dir.length + 1));
  assert.deepEqual(files.sort(), [
    "kafka.strimzi.io/kafka_v1.json",
    "kafka.strimzi.io/kafkanodepool_v1.json",
    "kafka.strimzi.io/kafkatopic_v1.json",
    "kafka.strimzi.io/kafkauser_v1.json",
  ]);
  const file = join(dir, "kafka.strimzi.io/kafkatopic_v1.json");
  const root = obj(JSON.parse(readFileSync(file, "utf8")) as Json, file);
  assert.equal(root.additionalProperties, false);
  assert.deepEqual(root.required, ["apiVersion", "kind", "metadata", "spec"]);
  assert.equal(at(root, "properties.spec.additionalProperties"), false, "spec is strict");
  assert.equal(at(root, "properties.metadata.additionalProperties"), false, "metadata is strict");
});

/** A report in kubeconform's `-output json -summary -verbose` format. */
const report = (resources: object[], summary: object): string =>
  JSON.stringify({ resources, summary }, null, 2);

test("kubeconform's report maps back to each object; schema-less ones are validated in-repo", () => {
  const objects = [configMap("ok"), configMap("bad"), topic, widget, configMap("offline"), configMap("dup")];
  const stdout = report(
    [
      {
        filename: `/w/objects/${objectFile(0)}`,
        kind: "ConfigMap",
        name: "ok",
        version: "v1",
        status: "statusValid",
        msg: "",
      },
      {
        filename: `/w/objects/${objectFile(1)}`,
        kind: "ConfigMap",
        name: "bad",
        version: "v1",
        status: "statusInvalid",
        msg: "problem validating schema. Check JSON formatting: …",
        validationErrors: [{ path: "/datta", msg: "additional properties 'datta' not allowed" }],
      },
      {
        filename: `/w/objects/${objectFile(2)}`,
        kind: "KafkaTopic",
        name: "t",
        version: "kafka.strimzi.io/v1",
        status: "statusValid",
        msg: "",
      },
      {
        filename: `/w/objects/${objectFile(3)}`,
        kind: "Widget",
        name: "w",
        version: "example.com/v1",
        status: "statusSkipped",
        msg: "",
      },
      {
        filename: `/w/objects/${objectFile(4)}`,
        kind: "ConfigMap",
        name: "offline",
        version: "v1",
        status: "statusError",
        msg: "failed downloading schema at https://example.invalid/configmap-v1.json: no such host",
      },
      {
        filename: `/w/objects/${objectFile(5)}`,
        kind: "ConfigMap",
        name: "dup",
        version: "v1",
        status: "statusError",
        msg: 'error unmarshalling resource: key "data" already set in map',
      },
    ],
    { valid: 2, invalid: 1, errors: 2, skipped: 1 },
  );
  const v = readKubeconformReport(objects, stdout, "v0.7.0");
  assert.deepEqual(v.problems, [
    [],
    ["/datta: additional properties 'datta' not allowed"],
    [],
    ["example.com/v1/Widget: no schema for this kind (add it to test/helpers/deploy/schemas.ts)"],
    [],
    ['error unmarshalling resource: key "data" already set in map'],
  ]);
  assert.equal(
    v.summary,
    "kubeconform v0.7.0 -strict: 6 object(s), 2 valid, 1 invalid, 2 error(s), 1 skipped; " +
      "kubeconform had no schema for example.com/v1/Widget, v1/ConfigMap: validated in-repo",
  );
  const missing = readKubeconformReport(
    [configMap("x")],
    report([], { valid: 0, invalid: 0, errors: 0, skipped: 0 }),
    "v0.7.0",
  );
  assert.deepEqual(missing.problems, [["kubeconform reported nothing for this object"]]);
  assert.throws(() => readKubeconformReport([], "Summary: 0 resources found", "v0.7.0"), SyntaxError);
});

test("a kubeconform on PATH validates one file per object with the Strimzi schemas beside them", (t) => {
  const bin = tempDir(t);
  // Reports each object file valid when the schema location holds a schema for its kind,
  // skipped otherwise, as kubeconform -ignore-missing-schemas does.
  standIn(
    bin,
    "kubeconform",
    `const fs = require("node:fs"), path = require("node:path");
const args = process.argv.slice(2);
if (args[0] === "-v") { console.log("v0.7.0"); process.exit(0); }
for (const flag of ["-strict", "-summary", "-verbose", "-ignore-missing-schemas"]) if (!args.includes(flag)) process.exit(3);
const template = args[args.indexOf("-schema-location") + 1];
const dir = args[args.length - 1];
const resources = fs.readdirSync(dir).sort().map((f) => {
  const o = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
  const parts = o.apiVersion.split("/"), group = parts[0], version = parts[parts.length - 1];
  const schema = template.replace("{{.Group}}", group).replace("{{.ResourceKind}}", o.kind.toLowerCase()).replace("{{.ResourceAPIVersion}}", version);
  const status = fs.existsSync(schema) ? "statusValid" : "statusSkipped";
  return { filename: path.join(dir, f), kind: o.kind, name: o.metadata.name, version: o.apiVersion, status, msg: "" };
});
const count = (s) => resources.filter((r) => r.status === s).length;
console.log(JSON.stringify({ resources, summary: { valid: count("statusValid"), invalid: 0, errors: 0, skipped: count("statusSkipped") } }));
process.exit(0);`,
  );
  const validator = pickValidator({ PATH: bin });
  assert.equal(validator.real, true);
  assert.equal(validator.label, "kubeconform v0.7.0");
  const v = validator.validate([topic, configMap("c"), widget]);
  assert.deepEqual(v.problems[0], [], "the KafkaTopic is validated against the generated Strimzi schema");
  assert.deepEqual(v.problems[1], [], "the ConfigMap, without a schema there, is valid in-repo");
  assert.match(v.problems[2]?.join("\n") ?? "", /no schema for this kind/);
  assert.match(
    v.summary,
    /^kubeconform v0\.7\.0 -strict: 3 object\(s\), 1 valid, 0 invalid, 0 error\(s\), 2 skipped; /,
  );
  assert.match(v.summary, /had no schema for example\.com\/v1\/Widget, v1\/ConfigMap: validated in-repo$/);
});
