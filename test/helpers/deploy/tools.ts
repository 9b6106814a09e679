// Which renderer and validator the deploy tests use: the real tools where they are on PATH,
// the in-repo ones otherwise, each with a one-line label for the test output.
//
// Rendering: `kustomize build <overlay>`, else `kubectl kustomize <overlay>` (kubectl embeds
// the same kustomize library), else kustomizeBuild (./kustomize.ts).
//
// Validation: `kubeconform -strict -summary` over one file per object, given the Strimzi
// schemas as JSON Schema (generated from the strict zod schemas in ./schemas.ts), then
// AIMASS_KUBECONFORM_SCHEMA_LOCATION (comma-separated kubeconform -schema-location values, e.g.
// a local CRD catalogue for KEDA and the Prometheus Operator), then kubeconform's default
// location for the built-in kinds. An object kubeconform finds no schema for, or cannot
// download one for, is validated in-repo instead (./schemas.ts), and the summary names its kind.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseAllDocuments } from "yaml";
import { z } from "zod";
import { kustomizeBuild, obj, type Json, type JsonObject } from "./kustomize.js";
import { STRIMZI, validateObject } from "./schemas.js";

export type Env = Record<string, string | undefined>;

export interface Renderer {
  /** What renders, for the test output. */
  readonly label: string;
  /** true for a real kustomize, false for the in-repo renderer. */
  readonly real: boolean;
  build(dir: string): JsonObject[];
}

export interface Validation {
  /** Problems of each object, in the order given; [] where it is valid. */
  problems: string[][];
  /** One line for the test output: what validated, and how many objects it covered. */
  summary: string;
}

export interface Validator {
  readonly label: string;
  /** true for kubeconform, false for the in-repo validator. */
  readonly real: boolean;
  validate(objects: JsonObject[]): Validation;
}

const MAX_OUTPUT_BYTES = 64 << 20;

/** stdout of `command args` when it exits 0; undefined when it is not on PATH or fails. */
function probe(command: string, args: string[], env: Env): string | undefined {
  const r = spawnSync(command, args, { encoding: "utf8", env });
  return r.error === undefined && r.status === 0 ? r.stdout : undefined;
}

function run(command: string, args: string[], env: Env): string {
  const r = spawnSync(command, args, { encoding: "utf8", env, maxBuffer: MAX_OUTPUT_BYTES });
  if (r.error !== undefined) throw new Error(`${command} ${args.join(" ")}: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(`${command} ${args.join(" ")} exited ${String(r.status)}: ${r.stderr.trim()}`);
  return r.stdout;
}

const versionIn = (text: string): string => /v\d+\.\d+\.\d+/.exec(text)?.[0] ?? text.trim();

/** A YAML stream of objects, as `kustomize build` prints it. */
export function parseObjects(yaml: string, what: string): JsonObject[] {
  return parseAllDocuments(yaml)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`${what}: ${d.errors[0]?.message}`);
      return d.toJS() as Json;
    })
    .filter((o) => o !== null)
    .map((o) => obj(o, what));
}

export const IN_REPO_RENDERER: Renderer = {
  label: "the in-repo renderer (test/helpers/deploy/kustomize.ts): neither kustomize nor kubectl is on PATH",
  real: false,
  build: kustomizeBuild,
};

/** kustomize, else kubectl's kustomize, where either is on PATH. */
export function realRenderer(env: Env = process.env): Renderer | undefined {
  const own = probe("kustomize", ["version"], env);
  if (own !== undefined) {
    return {
      label: `kustomize ${versionIn(own)} (\`kustomize build\`)`,
      real: true,
      build: (dir) => parseObjects(run("kustomize", ["build", dir], env), `kustomize build ${dir}`),
    };
  }
  const kubectl = probe("kubectl", ["version", "--client"], env);
  const embedded = kubectl === undefined ? undefined : /Kustomize Version: (\S+)/.exec(kubectl)?.[1];
  if (embedded === undefined) return undefined;
  return {
    label: `kustomize ${embedded} (\`kubectl kustomize\`; no kustomize on PATH)`,
    real: true,
    build: (dir) => parseObjects(run("kubectl", ["kustomize", dir], env), `kubectl kustomize ${dir}`),
  };
}

export const pickRenderer = (env: Env = process.env): Renderer => realRenderer(env) ?? IN_REPO_RENDERER;

export const IN_REPO_VALIDATOR: Validator = {
  label: "the in-repo validator (test/helpers/deploy/schemas.ts): kubeconform is not on PATH",
  real: false,
  validate: (objects) => ({
    problems: objects.map(validateObject),
    summary: `the in-repo validator (test/helpers/deploy/schemas.ts), ${objects.length} objects: kubeconform is not on PATH`,
  }),
};

/**
 * Where kubeconform's `{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json` template looks
 * for a kind's schema (its pkg/registry: the apiVersion's first and last parts around "/", the
 * kind in lower case).
 */
export function schemaFileOf(apiVersion: string, kind: string): string {
  const parts = apiVersion.split("/");
  return join(parts[0] ?? "", `${kind.toLowerCase()}_${parts[parts.length - 1] ?? ""}.json`);
}

export const SCHEMA_TEMPLATE = "{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json";

/** Writes the Strimzi zod schemas as JSON Schema files under `dir`, laid out for SCHEMA_TEMPLATE. */
export function writeStrimziSchemas(dir: string): string[] {
  return Object.entries(STRIMZI).map(([gvk, schema]) => {
    const kindAt = gvk.lastIndexOf("/");
    const file = join(dir, schemaFileOf(gvk.slice(0, kindAt), gvk.slice(kindAt + 1)));
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, JSON.stringify(z.toJSONSchema(schema, { target: "draft-7" }), null, 2));
    return file;
  });
}

/** The kubeconform arguments: schema locations in the order the file header gives. */
export function kubeconformArgs(objectsDir: string, schemasDir: string, env: Env): string[] {
  const extra = (env.AIMASS_KUBECONFORM_SCHEMA_LOCATION ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const locations = [join(schemasDir, SCHEMA_TEMPLATE), ...extra, "default"];
  return [
    "-strict",
    "-summary",
    "-output",
    "json",
    "-verbose",
    "-ignore-missing-schemas",
    ...locations.flatMap((l) => ["-schema-location", l]),
    objectsDir,
  ];
}

const reportSchema = z.object({
  resources: z.array(
    z.object({
      filename: z.string(),
      kind: z.string(),
      name: z.string(),
      status: z.enum(["statusValid", "statusInvalid", "statusError", "statusSkipped"]),
      msg: z.string(),
      validationErrors: z.array(z.object({ path: z.string(), msg: z.string() })).optional(),
    }),
  ),
  summary: z.object({ valid: z.int(), invalid: z.int(), errors: z.int(), skipped: z.int() }),
});

/** The name of the file the i-th object is written to for kubeconform. */
export const objectFile = (i: number): string => `${String(i).padStart(4, "0")}.json`;

/** kubeconform's errors for a schema it could not load (download, HTTP status, parse). */
const NO_SCHEMA_HERE = /\bschema (at|from) /;

/**
 * Reads kubeconform's `-output json -summary -verbose` report on objects written as
 * objectFile(i): problems per object, the schema-less ones validated in-repo.
 */
export function readKubeconformReport(objects: JsonObject[], stdout: string, version: string): Validation {
  const report = reportSchema.parse(JSON.parse(stdout));
  const byFile = new Map(report.resources.map((r) => [basename(r.filename), r]));
  const inRepo = new Set<string>();
  const problems = objects.map((o, i) => {
    const r = byFile.get(objectFile(i));
    if (r === undefined) return ["kubeconform reported nothing for this object"];
    if (r.status === "statusValid") return [];
    if (r.status === "statusInvalid")
      return r.validationErrors?.length ? r.validationErrors.map((e) => `${e.path}: ${e.msg}`) : [r.msg];
    if (r.status === "statusError" && !NO_SCHEMA_HERE.test(r.msg)) return [r.msg];
    // Skipped (no schema in any location) or a schema that could not be loaded on this machine.
    inRepo.add(`${String(o.apiVersion)}/${String(o.kind)}`);
    return validateObject(o);
  });
  const s = report.summary;
  const fallback =
    inRepo.size === 0
      ? ""
      : `; kubeconform had no schema for ${[...inRepo].sort().join(", ")}: validated in-repo`;
  return {
    problems,
    summary:
      `kubeconform ${version} -strict: ${objects.length} object(s), ${s.valid} valid, ${s.invalid} invalid, ` +
      `${s.errors} error(s), ${s.skipped} skipped${fallback}`,
  };
}

/** kubeconform, where it is on PATH. */
export function realValidator(env: Env = process.env): Validator | undefined {
  const out = probe("kubeconform", ["-v"], env);
  if (out === undefined) return undefined;
  const version = out.trim();
  return {
    label: `kubeconform ${version}`,
    real: true,
    validate(objects) {
      const work = mkdtempSync(join(tmpdir(), "aimass-kubeconform-"));
      try {
        const objectsDir = join(work, "objects");
        mkdirSync(objectsDir);
        objects.forEach((o, i) => writeFileSync(join(objectsDir, objectFile(i)), JSON.stringify(o)));
        writeStrimziSchemas(join(work, "schemas"));
        // Exit 1 means "something is invalid"; the report says what.
        const r = spawnSync("kubeconform", kubeconformArgs(objectsDir, join(work, "schemas"), env), {
          encoding: "utf8",
          env,
          maxBuffer: MAX_OUTPUT_BYTES,
        });
        if (r.error !== undefined) throw r.error;
        if (r.stdout.trim() === "")
          throw new Error(`kubeconform exited ${String(r.status)} with no report: ${r.stderr.trim()}`);
        return readKubeconformReport(objects, r.stdout, version);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
  };
}

export const pickValidator = (env: Env = process.env): Validator => realValidator(env) ?? IN_REPO_VALIDATOR;
