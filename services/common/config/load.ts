// Loads a pipeline config (YAML or JSON), validates it, resolves paths against the config
// file's folder and fills derived defaults. Every error names the field and the problem.
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { AimassError, errorMessage, isAimassError } from "../errors.js";
import { endpointsFromEnv, type Endpoints } from "../env.js";
import { pipelineSchema, type ParsedPipelineConfig } from "./schema.js";
import { versionName } from "./sections/names.js";
import { repositoryEntry } from "../models/repository.js";

export interface PipelineConfig extends ParsedPipelineConfig {
  pipeline: ParsedPipelineConfig["pipeline"] & { groupId: string; transactionalIdPrefix: string };
  output: ParsedPipelineConfig["output"] & { shadowTopic: string };
  control: { topic: string; auditTopic: string };
  endpoints: Endpoints;
  /** The file it came from (absolute), for messages. */
  source: string;
}

/** One problem with a config: the field's dotted path ("" for the file itself) and what is wrong. */
export interface ConfigIssue {
  path: string;
  message: string;
}

export type ConfigCheck = { valid: true; config: PipelineConfig } | { valid: false; errors: ConfigIssue[] };

export async function loadPipelineConfig(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PipelineConfig> {
  const source = resolve(path);
  return parsePipelineConfig(await readConfigFile(source), source, env);
}

/** Like loadPipelineConfig, but every problem comes back as data instead of an error. */
export async function checkPipelineConfig(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ConfigCheck> {
  const source = resolve(path);
  let raw: unknown;
  try {
    raw = await readConfigFile(source);
  } catch (err) {
    if (isAimassError(err)) return { valid: false, errors: [{ path: "", message: err.message }] };
    throw err;
  }
  return checkRaw(raw, source, env);
}

export function parsePipelineConfig(
  raw: unknown,
  source: string,
  env: NodeJS.ProcessEnv = process.env,
): PipelineConfig {
  const result = checkRaw(raw, source, env);
  if (result.valid) return result.config;
  throw new AimassError(
    "CONFIG_INVALID",
    `${source}: invalid pipeline config\n${formatIssues(result.errors)}`,
    {
      details: { issues: result.errors },
    },
  );
}

async function readConfigFile(source: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(source, "utf8");
  } catch (err) {
    throw new AimassError("CONFIG_NOT_FOUND", `cannot read config ${source}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  try {
    return /\.json$/i.test(source) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new AimassError(
      "CONFIG_INVALID",
      `${source}: not valid ${/\.json$/i.test(source) ? "JSON" : "YAML"}: ${errorMessage(err)}`,
    );
  }
}

function checkRaw(raw: unknown, source: string, env: NodeJS.ProcessEnv): ConfigCheck {
  const expanded = withRepositoryModels(raw, dirname(source));
  const result = pipelineSchema.safeParse(expanded.raw);
  if (!result.success || expanded.issues.length > 0) {
    // A model the repository could not expand is reported once, as that problem, not as the
    // keys its entry lacks because it was not expanded.
    const schemaIssues = (result.error?.issues ?? [])
      .map((i) => ({ path: i.path.map(String).join("."), message: i.message }))
      .filter((i) => !expanded.unexpanded.some((p) => i.path === p || i.path.startsWith(`${p}.`)));
    return { valid: false, errors: [...expanded.issues, ...schemaIssues] };
  }
  const cfg = result.data;
  const base = dirname(source);
  const groupId = cfg.pipeline.groupId ?? `aimass-${cfg.pipeline.name}`;
  const controlTopic = cfg.control.topic ?? `${cfg.pipeline.name}.control`;
  // One model and no routing: every event goes to it (the schema rejects several models
  // without routing, so this is never a guess).
  const only = cfg.models.length === 1 ? cfg.models[0]?.name : undefined;
  const routing =
    cfg.routing.field === undefined && cfg.routing.default === undefined && only !== undefined
      ? { ...cfg.routing, default: only }
      : cfg.routing;
  const config: PipelineConfig = {
    ...cfg,
    pipeline: {
      ...cfg.pipeline,
      groupId,
      transactionalIdPrefix: cfg.pipeline.transactionalIdPrefix ?? groupId,
    },
    routing,
    output: {
      ...cfg.output,
      shadowTopic: cfg.output.shadowTopic ?? `${cfg.output.topic}.shadow`,
      schemaFile: cfg.output.schemaFile && resolvePath(base, cfg.output.schemaFile),
    },
    modelRepository: cfg.modelRepository && resolvePath(base, cfg.modelRepository),
    control: { topic: controlTopic, auditTopic: cfg.control.auditTopic ?? `${controlTopic}.audit` },
    models: cfg.models.map((m) => ({ ...m, path: resolvePath(base, m.path) })),
    endpoints: endpointsFromEnv(env),
    source,
  };
  return { valid: true, config };
}

/**
 * With a modelRepository, a models entry may name just a model and a version: fill in the
 * rest from the repository (the entry's own keys win), so validation sees whole models. An
 * entry the repository cannot expand is left as it is, with the reason; `unexpanded` lists
 * those entries' paths, whose missing keys are then not reported as well.
 */
function withRepositoryModels(
  raw: unknown,
  base: string,
): { raw: unknown; issues: ConfigIssue[]; unexpanded: string[] } {
  const issues: ConfigIssue[] = [];
  const unexpanded: string[] = [];
  if (raw === null || typeof raw !== "object") return { raw, issues, unexpanded };
  const cfg = raw as { modelRepository?: unknown; models?: unknown };
  if (typeof cfg.modelRepository !== "string" || !Array.isArray(cfg.models))
    return { raw, issues, unexpanded };
  const root = resolvePath(base, cfg.modelRepository);
  const models = cfg.models.map((m: unknown, i) => {
    if (m === null || typeof m !== "object") return m;
    const entry = m as Record<string, unknown>;
    if (entry.path !== undefined || typeof entry.name !== "string") return m;
    // The schema's reading of a version (an unquoted `version: 3` is "3"), so the repository
    // looks up the directory the schema will name.
    const version = versionName.safeParse(entry.version);
    if (version.success) {
      const { name, version: _raw, ...overrides } = entry;
      try {
        return repositoryEntry(root, name, version.data, overrides);
      } catch (err) {
        if (!isAimassError(err, "CONFIG_INVALID")) throw err;
        issues.push({ path: `models.${i}`, message: err.message });
      }
    } else {
      const message = version.error.issues[0]?.message ?? "invalid version";
      issues.push({ path: `models.${i}.version`, message });
    }
    unexpanded.push(`models.${i}`);
    return m;
  });
  return { raw: { ...cfg, models }, issues, unexpanded };
}

function resolvePath(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

function formatIssues(issues: ConfigIssue[]): string {
  return issues.map((i) => `  - ${i.path === "" ? "(root)" : i.path}: ${i.message}`).join("\n");
}
