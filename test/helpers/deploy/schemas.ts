// Schema validation of rendered Kubernetes objects, without a cluster.
//
// Built-in kinds, KEDA and Prometheus Operator objects: the kubernetes-models packages, whose
// `.validate()` checks types, required fields, enums and formats against the OpenAPI schema —
// but, like the API server's schemas, accepts fields it does not know, so a misspelled field
// passes. StrictFields closes that gap: it walks each object against the TypeScript interfaces
// those packages generate from the same schemas (read with the TypeScript compiler API) and
// reports every key the interface does not declare.
//
// Strimzi has no kubernetes-models package: STRIMZI holds strict zod schemas for the parts of
// Kafka, KafkaNodePool, KafkaTopic and KafkaUser (kafka.strimzi.io/v1) that k8s/ uses, written
// from Strimzi's CRDs. A valid Strimzi field missing here is rejected too: add it.
import { join } from "node:path";
import ts from "typescript";
import { z } from "zod";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { REPO, type Json, type JsonObject } from "./kustomize.js";

interface ModelKind {
  /** Builds the kubernetes-models object and runs its OpenAPI validation (throws). */
  validate(o: JsonObject): void;
  /** The generated interface, for StrictFields. */
  module: string;
  type: string;
}

function model<T>(Ctor: new (data: T) => { validate(): void }): (o: JsonObject) => void {
  return (o) => new Ctor(o as unknown as T).validate();
}

/** "<apiVersion>/<kind>" → how to validate it. */
export const MODEL_KINDS: Record<string, ModelKind> = {
  "apps/v1/Deployment": {
    validate: model(Deployment),
    module: "kubernetes-models/apps/v1/Deployment",
    type: "IDeployment",
  },
  "apps/v1/StatefulSet": {
    validate: model(StatefulSet),
    module: "kubernetes-models/apps/v1/StatefulSet",
    type: "IStatefulSet",
  },
  "v1/ConfigMap": {
    validate: model(ConfigMap),
    module: "kubernetes-models/v1/ConfigMap",
    type: "IConfigMap",
  },
  "v1/Secret": { validate: model(Secret), module: "kubernetes-models/v1/Secret", type: "ISecret" },
  "v1/Service": { validate: model(Service), module: "kubernetes-models/v1/Service", type: "IService" },
  "policy/v1/PodDisruptionBudget": {
    validate: model(PodDisruptionBudget),
    module: "kubernetes-models/policy/v1/PodDisruptionBudget",
    type: "IPodDisruptionBudget",
  },
  "keda.sh/v1alpha1/ScaledObject": {
    validate: model(ScaledObject),
    module: "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject",
    type: "IScaledObject",
  },
  "monitoring.coreos.com/v1/ServiceMonitor": {
    validate: model(ServiceMonitor),
    module: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
    type: "IServiceMonitor",
  },
  "monitoring.coreos.com/v1/PrometheusRule": {
    validate: model(PrometheusRule),
    module: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
    type: "IPrometheusRule",
  },
};

/** Unknown-field detection from the kubernetes-models TypeScript interfaces. */
export class StrictFields {
  private readonly checker: ts.TypeChecker;
  private readonly roots = new Map<string, ts.Type>();

  constructor(kinds: Record<string, { module: string; type: string }>) {
    // A virtual module at the repository root (an ES module there, package.json "type":
    // "module"), so "kubernetes-models/…" resolves through node_modules and the exports maps.
    const file = join(REPO, "__aimass_deploy_types__.ts");
    const keys = Object.keys(kinds);
    const text = [
      ...keys.map((k, i) => `import type { ${kinds[k]?.type} as T${i} } from "${kinds[k]?.module}";`),
      "export interface Kinds {",
      ...keys.map((k, i) => `  ${JSON.stringify(k)}: T${i};`),
      "}",
      "",
    ].join("\n");
    const options: ts.CompilerOptions = {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: [],
    };
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile.bind(host);
    const fileExists = host.fileExists.bind(host);
    const readFile = host.readFile.bind(host);
    host.getSourceFile = (name, language, onError, create) =>
      name === file
        ? ts.createSourceFile(name, text, language)
        : getSourceFile(name, language, onError, create);
    host.fileExists = (name) => name === file || fileExists(name);
    host.readFile = (name) => (name === file ? text : readFile(name));
    const program = ts.createProgram([file], options, host);
    const source = program.getSourceFile(file);
    if (!source) throw new Error("StrictFields: the virtual module did not load");
    const problems = ts.getPreEmitDiagnostics(program, source);
    if (problems.length > 0) {
      const msg = problems.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")).join("; ");
      throw new Error(`StrictFields: cannot load the model types: ${msg}`);
    }
    this.checker = program.getTypeChecker();
    const decl = source.statements.find(ts.isInterfaceDeclaration);
    if (!decl) throw new Error("StrictFields: no Kinds interface");
    const kindsType = this.checker.getTypeAtLocation(decl.name);
    for (const prop of this.checker.getPropertiesOfType(kindsType)) {
      this.roots.set(prop.name, this.checker.getTypeOfSymbol(prop));
    }
  }

  /** "path: unknown field …" for every key of `value` that the kind's interface lacks. */
  unknownFields(kind: string, value: Json): string[] {
    const type = this.roots.get(kind);
    if (!type) throw new Error(`StrictFields: no type for ${kind}`);
    const errors: string[] = [];
    this.walk(value, type, "", errors);
    return errors;
  }

  private walk(value: Json, type: ts.Type, path: string, errors: string[]): void {
    if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return;
    if (value === null || typeof value !== "object") return; // types of scalars: validate()
    if (type.isUnion()) {
      const fits = type.types.filter((t) => (Array.isArray(value) ? this.isArray(t) : this.isObject(t)));
      let best: string[] | undefined;
      for (const t of fits) {
        const e: string[] = [];
        this.walk(value, t, path, e);
        if (e.length === 0) return;
        if (best === undefined || e.length < best.length) best = e;
      }
      errors.push(...(best ?? []));
      return;
    }
    if (Array.isArray(value)) {
      if (!this.isArray(type)) return;
      const [element] = this.checker.getTypeArguments(type as ts.TypeReference);
      if (element) value.forEach((v, i) => this.walk(v, element, `${path}[${i}]`, errors));
      return;
    }
    if (!this.isObject(type)) return;
    const props = this.checker.getPropertiesOfType(type);
    const index = this.checker.getIndexInfoOfType(type, ts.IndexKind.String);
    if (props.length === 0 && !index) return; // an open object ({} / object)
    for (const [key, v] of Object.entries(value)) {
      const prop = this.checker.getPropertyOfType(type, key);
      if (prop) this.walk(v, this.checker.getTypeOfSymbol(prop), `${path}.${key}`, errors);
      else if (index) this.walk(v, index.type, `${path}.${key}`, errors);
      else
        errors.push(
          `${path}.${key}: unknown field${suggest(
            key,
            props.map((p) => p.name),
          )}`,
        );
    }
  }

  private isArray(t: ts.Type): boolean {
    return this.checker.isArrayType(t) || this.checker.isTupleType(t);
  }

  private isObject(t: ts.Type): boolean {
    return ((t.flags & ts.TypeFlags.Object) !== 0 || t.isIntersection()) && !this.isArray(t);
  }
}

function suggest(key: string, known: string[]): string {
  const near = known
    .map((k) => ({ k, d: distance(key.toLowerCase(), k.toLowerCase()) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(key.length / 4)))
    .sort((a, b) => a.d - b.d)[0];
  return near ? ` (did you mean "${near.k}"?)` : "";
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[];
      const prev = d[i - 1] as number[];
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

// ---------------------------------------------------------------------------------------------
// Strimzi, kafka.strimzi.io/v1 (Strimzi 0.49+). Subsets of the CRDs' openAPIV3Schema, strict.

const dnsSubdomain = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, "not a valid Kubernetes name");
const stringMap = z.record(z.string(), z.string());
const metadata = z.strictObject({
  name: dnsSubdomain,
  namespace: z.string().optional(),
  labels: stringMap.optional(),
  annotations: stringMap.optional(),
});
const quantity = z.union([
  z.number(),
  z
    .string()
    .regex(
      /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/,
    ),
]);
const resources = z.strictObject({
  requests: z.record(z.string(), quantity).optional(),
  limits: z.record(z.string(), quantity).optional(),
});
const labelSelector = z.strictObject({
  matchLabels: stringMap.optional(),
  matchExpressions: z
    .array(
      z.strictObject({
        key: z.string(),
        operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});
const networkPolicyPeer = z.strictObject({
  podSelector: labelSelector.optional(),
  namespaceSelector: labelSelector.optional(),
  ipBlock: z.strictObject({ cidr: z.string(), except: z.array(z.string()).optional() }).optional(),
});
const configValue = z.union([z.string(), z.number(), z.boolean()]);
const jvmOptions = z.strictObject({
  "-Xms": z
    .string()
    .regex(/^[0-9]+[mMgG]?$/)
    .optional(),
  "-Xmx": z
    .string()
    .regex(/^[0-9]+[mMgG]?$/)
    .optional(),
  gcLoggingEnabled: z.boolean().optional(),
});

const listener = z.strictObject({
  name: z.string().regex(/^[a-z0-9]{1,11}$/, "1-11 lower-case letters or digits"),
  port: z
    .int()
    .min(9092)
    .max(65535)
    .refine((p) => p !== 9404 && p !== 9999, "9404 and 9999 are reserved by Strimzi"),
  type: z.enum(["internal", "route", "loadbalancer", "nodeport", "ingress", "cluster-ip"]),
  tls: z.boolean(),
  authentication: z.strictObject({ type: z.enum(["tls", "scram-sha-512", "oauth", "custom"]) }).optional(),
  networkPolicyPeers: z.array(networkPolicyPeer).optional(),
  configuration: z.record(z.string(), z.unknown()).optional(),
});

const operatorSpec = z.strictObject({
  watchedNamespace: z.string().optional(),
  reconciliationIntervalMs: z.int().min(0).optional(),
  resources: resources.optional(),
});

const kafka = z.strictObject({
  apiVersion: z.literal("kafka.strimzi.io/v1"),
  kind: z.literal("Kafka"),
  metadata,
  spec: z.strictObject({
    kafka: z.strictObject({
      version: z.string().regex(/^\d+\.\d+\.\d+$/),
      metadataVersion: z.string().optional(),
      listeners: z.array(listener).min(1),
      authorization: z
        .strictObject({ type: z.literal("simple"), superUsers: z.array(z.string()).optional() })
        .optional(),
      config: z.record(z.string(), configValue).optional(),
      resources: resources.optional(),
      jvmOptions: jvmOptions.optional(),
    }),
    entityOperator: z
      .strictObject({ topicOperator: operatorSpec.optional(), userOperator: operatorSpec.optional() })
      .optional(),
  }),
});

const volume = z.strictObject({
  id: z.int().min(0).optional(),
  type: z.enum(["ephemeral", "persistent-claim"]),
  size: z.string().optional(),
  sizeLimit: z.string().optional(),
  class: z.string().optional(),
  deleteClaim: z.boolean().optional(),
  kraftMetadata: z.literal("shared").optional(),
  selector: stringMap.optional(),
});

const kafkaNodePool = z.strictObject({
  apiVersion: z.literal("kafka.strimzi.io/v1"),
  kind: z.literal("KafkaNodePool"),
  metadata,
  spec: z.strictObject({
    replicas: z.int().min(0),
    roles: z.array(z.enum(["controller", "broker"])).min(1),
    storage: z.union([
      z.strictObject({ type: z.literal("jbod"), volumes: z.array(volume).min(1) }),
      volume.omit({ id: true }),
    ]),
    resources: resources.optional(),
    jvmOptions: jvmOptions.optional(),
  }),
});

const kafkaTopic = z.strictObject({
  apiVersion: z.literal("kafka.strimzi.io/v1"),
  kind: z.literal("KafkaTopic"),
  metadata,
  spec: z.strictObject({
    topicName: z.string().optional(),
    partitions: z.int().min(1).optional(),
    replicas: z.int().min(1).max(32767).optional(),
    config: z.record(z.string(), configValue).optional(),
  }),
});

export const ACL_OPERATIONS = [
  "Read",
  "Write",
  "Create",
  "Delete",
  "Alter",
  "Describe",
  "ClusterAction",
  "AlterConfigs",
  "DescribeConfigs",
  "IdempotentWrite",
  "All",
] as const;

const acl = z.strictObject({
  type: z.enum(["allow", "deny"]).optional(),
  resource: z.strictObject({
    type: z.enum(["topic", "group", "cluster", "transactionalId"]),
    name: z.string().optional(),
    patternType: z.enum(["literal", "prefix"]).optional(),
  }),
  host: z.string().optional(),
  operations: z.array(z.enum(ACL_OPERATIONS)).min(1),
});

const kafkaUser = z.strictObject({
  apiVersion: z.literal("kafka.strimzi.io/v1"),
  kind: z.literal("KafkaUser"),
  metadata,
  spec: z.strictObject({
    userName: z.string().optional(),
    authentication: z.strictObject({ type: z.enum(["tls", "tls-external", "scram-sha-512"]) }).optional(),
    authorization: z.strictObject({ type: z.literal("simple"), acls: z.array(acl) }).optional(),
    quotas: z
      .strictObject({
        producerByteRate: z.int().min(0).optional(),
        consumerByteRate: z.int().min(0).optional(),
        requestPercentage: z.int().min(0).optional(),
        controllerMutationRate: z.number().min(0).optional(),
      })
      .optional(),
  }),
});

export const STRIMZI: Record<string, z.ZodType> = {
  "kafka.strimzi.io/v1/Kafka": kafka,
  "kafka.strimzi.io/v1/KafkaNodePool": kafkaNodePool,
  "kafka.strimzi.io/v1/KafkaTopic": kafkaTopic,
  "kafka.strimzi.io/v1/KafkaUser": kafkaUser,
};

export type StrimziAcl = z.infer<typeof acl>;

// ---------------------------------------------------------------------------------------------

let strict: StrictFields | undefined;

/** Every schema problem of one object, as readable lines; [] when it is valid. */
export function validateObject(o: JsonObject): string[] {
  const kind = `${String(o.apiVersion)}/${String(o.kind)}`;
  const m = MODEL_KINDS[kind];
  if (m) {
    const problems: string[] = [];
    try {
      m.validate(o);
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
    strict ??= new StrictFields(MODEL_KINDS);
    problems.push(...strict.unknownFields(kind, o));
    return problems;
  }
  const s = STRIMZI[kind];
  if (s) {
    const r = s.safeParse(o);
    return r.success ? [] : r.error.issues.map((i) => `.${i.path.join(".")}: ${i.message}`);
  }
  return [`${kind}: no schema for this kind (add it to test/helpers/deploy/schemas.ts)`];
}
