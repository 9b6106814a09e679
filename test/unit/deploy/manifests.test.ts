// Renders every kustomize overlay under k8s/overlays and validates every object against its
// schema, with the real tools where they are on PATH (test/helpers/deploy/tools.ts: `kustomize
// build` or `kubectl kustomize`; `kubeconform -strict -summary`), else with the in-repo renderer
// (test/helpers/deploy/kustomize.ts) and validator (test/helpers/deploy/schemas.ts:
// kubernetes-models' OpenAPI validation plus unknown-field detection, strict zod schemas for
// Strimzi). Each test that renders or validates says in a diagnostic line which one ran. The
// in-repo renderer is compared with the real kustomize object by object where one is installed;
// the negative tests prove a misspelled field fails, in-repo and, where installed, in kubeconform.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import {
  arr,
  at,
  clone,
  isObject,
  keyOf,
  kindOf,
  kustomizeBuild,
  nameOf,
  obj,
  overlays,
  type Json,
  type JsonObject,
} from "../../helpers/deploy/kustomize.js";
import { MODEL_KINDS, validateObject } from "../../helpers/deploy/schemas.js";
import { pickRenderer, pickValidator, realRenderer, type Renderer } from "../../helpers/deploy/tools.js";

const renderer = pickRenderer();
const validator = pickValidator();
const rendered = new Map(overlays().map((dir) => [basename(dir), renderer.build(dir)]));

function find(objects: JsonObject[], kind: string, name: string): JsonObject {
  const o = objects.find((x) => kindOf(x) === kind && nameOf(x) === name);
  assert.ok(o, `no ${kind} ${name}`);
  return o;
}

const cpu = (): JsonObject[] => {
  const objects = rendered.get("cpu");
  assert.ok(objects, "k8s/overlays/cpu is missing");
  return objects;
};

test("the overlays are cpu and gpu, and each renders the same kinds of objects", (t) => {
  t.diagnostic(`rendered with ${renderer.label}`);
  assert.deepEqual([...rendered.keys()], ["cpu", "gpu"]);
  for (const [name, objects] of rendered) {
    const kinds = objects.map((o) => kindOf(o)).sort();
    for (const kind of [
      "ConfigMap",
      "Deployment",
      "Kafka",
      "KafkaNodePool",
      "KafkaTopic",
      "KafkaUser",
      "PodDisruptionBudget",
      "PrometheusRule",
      "ScaledObject",
      "Secret",
      "Service",
      "ServiceMonitor",
      "StatefulSet",
    ]) {
      assert.ok(kinds.includes(kind), `${name}: no ${kind}`);
    }
    const keys = objects.map(keyOf);
    assert.equal(new Set(keys).size, keys.length, `${name}: duplicate objects`);
    for (const o of objects) assert.equal(at(o, "metadata.namespace"), "aimass", `${keyOf(o)}: namespace`);
  }
});

for (const [overlay, objects] of rendered) {
  test(`${overlay}: every object is valid against its schema`, (t) => {
    const validation = validator.validate(objects);
    t.diagnostic(`rendered with ${renderer.label}; validated with ${validation.summary}`);
    const problems = objects.flatMap((o, i) =>
      (validation.problems[i] ?? ["not validated"]).map((p) => `${keyOf(o)}: ${p}`),
    );
    assert.deepEqual(problems, []);
  });
}

const real: Renderer | undefined = renderer.real ? renderer : realRenderer();
test(
  "the in-repo renderer agrees with the real kustomize on every overlay",
  { skip: real ? false : "neither kustomize nor kubectl is on PATH" },
  (t) => {
    assert.ok(real);
    const tool: Renderer = real;
    t.diagnostic(`compared with ${tool.label}`);
    for (const dir of overlays()) {
      const theirs = new Map(tool.build(dir).map((o) => [keyOf(o), o] as const));
      const mine = new Map(kustomizeBuild(dir).map((o) => [keyOf(o), o] as const));
      assert.deepEqual([...mine.keys()].sort(), [...theirs.keys()].sort(), `${dir}: object set`);
      for (const [key, o] of mine) assert.deepStrictEqual(o, theirs.get(key), `${dir}: ${key}`);
    }
  },
);

test("workloads run restricted: non-root 10001, read-only root, no privilege escalation, no capabilities", () => {
  for (const [overlay, objects] of rendered) {
    for (const w of objects.filter((o) => ["Deployment", "StatefulSet"].includes(kindOf(o)))) {
      const where = `${overlay} ${keyOf(w)}`;
      const pod = obj(at(w, "spec.template.spec"), where);
      assert.equal(at(pod, "securityContext.runAsNonRoot"), true, `${where}: runAsNonRoot`);
      assert.equal(at(pod, "securityContext.seccompProfile.type"), "RuntimeDefault", `${where}: seccomp`);
      assert.equal(pod.automountServiceAccountToken, false, `${where}: service account token`);
      for (const c of arr(pod.containers, where).map((c) => obj(c, where))) {
        const sc = obj(c.securityContext, `${where} ${String(c.name)}: securityContext`);
        assert.equal(sc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
        assert.equal(sc.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
        assert.equal(sc.runAsNonRoot, true, `${where}: runAsNonRoot`);
        assert.deepEqual(at(sc, "capabilities.drop"), ["ALL"], `${where}: capabilities`);
        assert.equal(at(sc, "seccompProfile.type"), "RuntimeDefault", `${where}: seccomp`);
        for (const side of ["requests", "limits"]) {
          const r = at(c, `resources.${side}`);
          assert.ok(isObject(r) && r.memory !== undefined, `${where}: resources.${side}.memory`);
        }
        const mounts = arr(c.volumeMounts ?? [], where).map((m) => obj(m, where));
        const tmp = mounts.find((m) => m.mountPath === "/tmp");
        assert.ok(tmp, `${where}: /tmp must be writable (emptyDir) with a read-only root`);
        const volume = arr(pod.volumes, where).find((v) => isObject(v) && v.name === tmp.name);
        assert.ok(isObject(at(volume, "emptyDir")), `${where}: /tmp is an emptyDir`);
      }
      if (obj(at(w, "metadata.labels"), where)["app.kubernetes.io/name"] === "aimass") {
        assert.equal(at(pod, "securityContext.runAsUser"), 10001, `${where}: runAsUser (the image's USER)`);
        assert.equal(
          at(pod, "containers.0.securityContext.runAsUser"),
          10001,
          `${where}: container runAsUser`,
        );
      }
    }
  }
});

test("the GPU overlay requests one GPU, lands on GPU nodes and runs the CUDA image", () => {
  const gpu = rendered.get("gpu");
  assert.ok(gpu);
  const predictor = find(gpu, "Deployment", "aimass-predictor");
  const c = obj(at(predictor, "spec.template.spec.containers.0"), "container");
  const requests = obj(at(c, "resources.requests"), "requests");
  const limits = obj(at(c, "resources.limits"), "limits");
  assert.equal(requests["nvidia.com/gpu"], "1");
  assert.equal(limits["nvidia.com/gpu"], "1");
  assert.equal(
    obj(at(predictor, "spec.template.spec.nodeSelector"), "nodeSelector")["nvidia.com/gpu.present"],
    "true",
  );
  const tolerations = arr(at(predictor, "spec.template.spec.tolerations"), "tolerations");
  assert.ok(tolerations.some((t) => isObject(t) && t.key === "nvidia.com/gpu" && t.operator === "Exists"));
  assert.match(String(c.image), /-cuda12$/);
  const cpuPredictor = find(cpu(), "Deployment", "aimass-predictor");
  const cpuRequests = obj(at(cpuPredictor, "spec.template.spec.containers.0.resources.requests"), "requests");
  assert.equal(cpuRequests["nvidia.com/gpu"], undefined, "the CPU overlay asks for no GPU");
  assert.doesNotMatch(String(at(cpuPredictor, "spec.template.spec.containers.0.image")), /cuda/);
});

// ---------------------------------------------------------------------------------------------
// Negative tests: one wrong field name (or value) in an otherwise valid rendered object.

/** Moves obj[path…][from] to [to], keeping the value. */
function rename(o: JsonObject, path: string, from: string, to: string): JsonObject {
  const copy = clone(o);
  const parent = path === "" ? copy : at(copy, path);
  assert.ok(isObject(parent) && from in parent, `${path}.${from} exists`);
  parent[to] = parent[from] as Json;
  delete parent[from];
  return copy;
}

function set(o: JsonObject, path: string, field: string, value: Json): JsonObject {
  const copy = clone(o);
  const parent = at(copy, path);
  assert.ok(isObject(parent), `${path} exists`);
  parent[field] = value;
  return copy;
}

/** Where kubeconform validates, it must reject each of these wrong objects too. */
function rejectedByKubeconform(t: TestContext, wrong: JsonObject[]): void {
  if (!validator.real) return;
  const validation = validator.validate(wrong);
  t.diagnostic(`also validated with ${validation.summary}`);
  wrong.forEach((o, i) =>
    assert.notDeepEqual(validation.problems[i], [], `${validator.label} accepts a wrong ${keyOf(o)}`),
  );
}

test("a misspelled field fails validation: Deployment container imagePullPolicy → imagePullPolicyy", (t) => {
  const good = find(cpu(), "Deployment", "aimass-predictor");
  assert.deepEqual(validateObject(good), []);
  const bad = rename(good, "spec.template.spec.containers.0", "imagePullPolicy", "imagePullPolicyy");
  // kubernetes-models alone (the OpenAPI schema) lets the unknown field through...
  assert.doesNotThrow(() => MODEL_KINDS["apps/v1/Deployment"]?.validate(bad));
  // ...the unknown-field walk does not.
  assert.deepEqual(validateObject(bad), [
    '.spec.template.spec.containers[0].imagePullPolicyy: unknown field (did you mean "imagePullPolicy"?)',
  ]);
  rejectedByKubeconform(t, [bad]);
});

test("a misspelled field fails validation: pod securityContext, probe, volume", (t) => {
  const good = find(cpu(), "Deployment", "aimass-predictor");
  const cases: Array<[JsonObject, RegExp]> = [
    [
      rename(good, "spec.template.spec.securityContext", "runAsNonRoot", "runAsNonRot"),
      /runAsNonRot: unknown/,
    ],
    [
      rename(good, "spec.template.spec.containers.0.readinessProbe", "httpGet", "httpget"),
      /httpget: unknown/,
    ],
    [
      rename(good, "spec.template.spec", "terminationGracePeriodSeconds", "terminationGracePeriod"),
      /unknown/,
    ],
    [rename(good, "spec.template.spec.volumes.1", "emptyDir", "emptydir"), /volumes\[1\]\.emptydir: unknown/],
  ];
  for (const [bad, expected] of cases) {
    const problems = validateObject(bad);
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(problems[0] ?? "", expected);
  }
  rejectedByKubeconform(
    t,
    cases.map(([bad]) => bad),
  );
});

test("a wrong type or enum fails validation (kubernetes-models' OpenAPI check)", (t) => {
  const good = find(cpu(), "Deployment", "aimass-predictor");
  const port = set(good, "spec.template.spec.containers.0.ports.0", "containerPort", "metrics");
  assert.match(validateObject(port).join("\n"), /containerPort must be integer/);
  const service = find(cpu(), "Service", "aimass-predictor");
  const protocol = set(service, "spec.ports.0", "protocol", "TCPP");
  assert.match(validateObject(protocol).join("\n"), /protocol must be equal to one of the allowed values/);
  rejectedByKubeconform(t, [port, protocol]);
});

test("a misspelled field fails validation: KEDA ScaledObject and Prometheus Operator objects", (t) => {
  const so = find(cpu(), "ScaledObject", "aimass-predictor");
  assert.deepEqual(validateObject(so), []);
  const replicas = rename(so, "spec", "maxReplicaCount", "maxReplicaCountt");
  assert.match(
    validateObject(replicas).join("\n"),
    /spec\.maxReplicaCountt: unknown field \(did you mean "maxReplicaCount"\?\)/,
  );
  const sm = find(cpu(), "ServiceMonitor", "aimass");
  const port = rename(sm, "spec.endpoints.0", "port", "portName");
  assert.match(validateObject(port).join("\n"), /portName: unknown/);
  const rule = find(cpu(), "PrometheusRule", "aimass");
  const expr = rename(rule, "spec.groups.0.rules.0", "expr", "expression");
  assert.match(validateObject(expr).join("\n"), /rules\[0\]\.expression: unknown field/);
  rejectedByKubeconform(t, [replicas, port, expr]);
});

test("a misspelled or outdated field fails validation: Strimzi objects", (t) => {
  const user = find(cpu(), "KafkaUser", "aimass-shop-predictor");
  assert.deepEqual(validateObject(user), []);
  // v1beta2's singular `operation` is gone in kafka.strimzi.io/v1.
  const singular = rename(user, "spec.authorization.acls.0", "operations", "operation");
  assert.match(validateObject(singular).join("\n"), /acls\.0: Unrecognized key: "operation"/);
  const kafka = find(cpu(), "Kafka", "aimass");
  const listener = set(kafka, "spec.kafka.listeners.0", "type", "internall");
  assert.match(validateObject(listener).join("\n"), /listeners\.0\.type/);
  const topic = find(cpu(), "KafkaTopic", "shop.events");
  const partition = rename(topic, "spec", "partitions", "partition");
  assert.match(validateObject(partition).join("\n"), /"partition"/);
  const pool = find(cpu(), "KafkaNodePool", "dual-role");
  const roles = set(pool, "spec", "roles", ["broker", "controler"]);
  assert.match(validateObject(roles).join("\n"), /roles\.1/);
  rejectedByKubeconform(t, [singular, listener, partition, roles]);
});

test("an object of a kind without a schema is rejected", (t) => {
  const cm = find(cpu(), "ConfigMap", "aimass-dashboard-overview");
  const unknown = { ...clone(cm), apiVersion: "example.com/v1", kind: "Widget" };
  assert.match(validateObject(unknown).join("\n"), /no schema for this kind/);
  rejectedByKubeconform(t, [unknown]);
});

test("the renderer refuses kustomization features it does not implement, and files outside the root", () => {
  const dir = mkdtempSync(join(tmpdir(), "aimass-kustomize-"));
  try {
    writeFileSync(
      join(dir, "cm.yaml"),
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n",
    );
    writeFileSync(join(dir, "kustomization.yaml"), "resources: [cm.yaml]\ncommonLabels: {a: b}\n");
    assert.throws(() => kustomizeBuild(dir), /"commonLabels" is not supported/);
    mkdirSync(join(dir, "sub"));
    writeFileSync(
      join(dir, "sub", "kustomization.yaml"),
      "configMapGenerator:\n  - name: y\n    files: [../cm.yaml]\n",
    );
    assert.throws(() => kustomizeBuild(join(dir, "sub")), /not in or below/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
