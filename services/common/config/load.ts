// Loads a pipeline config (YAML or JSON), validates it, resolves paths against the config
// file's folder and fills derived defaults. Every error names the field and the problem.
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { AimassError, errorMessage } from "../errors.js";
import { endpointsFromEnv, type Endpoints } from "../env.js";
import { pipelineSchema, type ParsedPipelineConfig } from "./schema.js";
import { repositoryEntry } from "../models/repository.js";

export interface PipelineConfig extends ParsedPipelineConfig {
  pipeline: ParsedPipelineConfig["pipeline"] & { groupId: string; transactionalIdPrefix: string };
  output: ParsedPipelineConfig["output"] & { shadowTopic: string };
  control: { topic: string; auditTopic: string };
  endpoints: Endpoints;
  /** The file it came from (absolute), for messages. */
  source: string;
}

export async function loadPipelineConfig(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PipelineConfig> {
  const source = resolve(path);
  let text: string;
  try {
    text = await readFile(source, "utf8");
  } catch (err) {
    throw new AimassError("CONFIG_NOT_FOUND", `cannot read config ${source}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = /\.json$/i.test(source) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new AimassError(
      "CONFIG_INVALID",
      `${source}: not valid ${/\.json$/i.test(source) ? "JSON" : "YAML"}: ${errorMessage(err)}`,
    );
  }
  return parsePipelineConfig(raw, source, env);
}

export function parsePipelineConfig(
  raw: unknown,
  source: string,
  env: NodeJS.ProcessEnv = process.env,
): PipelineConfig {
  const result = pipelineSchema.safeParse(withRepositoryModels(raw, dirname(source)));
  if (!result.success) {
    throw new AimassError(
      "CONFIG_INVALID",
      `${source}: invalid pipeline config\n${formatIssues(result.error.issues)}`,
      {
        details: { issues: result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) },
      },
    );
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
  return {
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
}

/**
 * With a modelRepository, a models entry may name just a model and a version: fill in the
 * rest from the repository (the entry's own keys win), so validation sees whole models.
 */
function withRepositoryModels(raw: unknown, base: string): unknown {
  if (raw === null || typeof raw !== "object") return raw;
  const cfg = raw as { modelRepository?: unknown; models?: unknown };
  if (typeof cfg.modelRepository !== "string" || !Array.isArray(cfg.models)) return raw;
  const root = resolvePath(base, cfg.modelRepository);
  const models = cfg.models.map((m: unknown) => {
    if (m === null || typeof m !== "object") return m;
    const entry = m as Record<string, unknown>;
    if (entry.path !== undefined || typeof entry.name !== "string" || typeof entry.version !== "string")
      return m;
    const { name, version, ...overrides } = entry;
    return repositoryEntry(root, name, version, overrides);
  });
  return { ...cfg, models };
}

function resolvePath(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

function formatIssues(issues: z.core.$ZodIssue[]): string {
  return issues.map((i) => `  - ${i.path.length > 0 ? i.path.join(".") : "(root)"}: ${i.message}`).join("\n");
}
