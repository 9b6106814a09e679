// The model repository: `<root>/<name>/<version>/model.onnx`, with the model's tensor
// mapping, batching and providers in `<root>/<name>/model.yaml`; a version directory may
// carry its own model.yaml whose keys override the model's. Versions are directory names.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { AimassError, errorMessage } from "../errors.js";
import { modelSchema, type ModelConfig } from "../config/schema.js";

export const MODEL_FILE = "model.onnx";
export const MODEL_CONFIG = "model.yaml";

export function listModels(root: string): string[] {
  if (!existsSync(root)) throw new AimassError("CONFIG_INVALID", `model repository ${root} does not exist`);
  return readdirSync(root)
    .filter((name) => existsSync(join(root, name, MODEL_CONFIG)))
    .sort();
}

/** Versions of a model: subdirectories holding a model.onnx, numeric ones in numeric order. */
export function listVersions(root: string, name: string): string[] {
  const dir = join(root, name);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((v) => statSync(join(dir, v)).isDirectory() && existsSync(join(dir, v, MODEL_FILE)))
    .sort((a, b) => (/^\d+$/.test(a) && /^\d+$/.test(b) ? Number(a) - Number(b) : a.localeCompare(b)));
}

function readYaml(path: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, "utf8"));
  } catch (err) {
    throw new AimassError("CONFIG_INVALID", `${path}: ${errorMessage(err)}`, { cause: err });
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new AimassError("CONFIG_INVALID", `${path}: expected a mapping`);
  }
  return raw as Record<string, unknown>;
}

/**
 * The raw (unvalidated) model entry for one version: model.yaml, the version's overrides,
 * then `overrides` from the pipeline config, with name, version and path filled in.
 */
export function repositoryEntry(
  root: string,
  name: string,
  version: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const modelYaml = join(root, name, MODEL_CONFIG);
  if (!existsSync(modelYaml)) {
    throw new AimassError("CONFIG_INVALID", `model "${name}" is not in the repository (no ${modelYaml})`);
  }
  const versionDir = join(root, name, version);
  if (!existsSync(join(versionDir, MODEL_FILE))) {
    const known = listVersions(root, name);
    throw new AimassError(
      "CONFIG_INVALID",
      `model "${name}" has no version "${version}" (no ${join(versionDir, MODEL_FILE)}; versions: ${known.join(", ") || "none"})`,
    );
  }
  const versionYaml = join(versionDir, MODEL_CONFIG);
  return {
    ...readYaml(modelYaml),
    ...(existsSync(versionYaml) ? readYaml(versionYaml) : {}),
    ...overrides,
    name,
    version,
    path: join(versionDir, MODEL_FILE),
  };
}

/** A validated ModelConfig for a repository version (used for live deploys). */
export function resolveVersion(root: string, name: string, version: string, base?: ModelConfig): ModelConfig {
  const entry = repositoryEntry(root, name, version);
  const parsed = modelSchema.safeParse(entry);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new AimassError("CONFIG_INVALID", `model ${name} version ${version}: ${issues}`);
  }
  // Pool sizing stays what the running pipeline chose for this model.
  return base ? { ...parsed.data, poolSize: base.poolSize, intraOpThreads: base.intraOpThreads } : parsed.data;
}
