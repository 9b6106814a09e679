// `aimass config validate --config <file> [--json]`: the loader's verdict on a pipeline config,
// every problem with its field path (exit 0 valid, 1 invalid). `aimass config schema`: the
// config's JSON Schema, for editors (the committed copy is schemas/pipeline-config.schema.json).
import { checkPipelineConfig, type PipelineConfig } from "../common/config/load.js";
import { pipelineJsonSchema } from "../common/config/json-schema.js";

export async function runConfigValidate(
  options: { config: string; json: boolean },
  out: (text: string) => void,
): Promise<number> {
  const result = await checkPipelineConfig(options.config);
  if (options.json) {
    const body = result.valid
      ? { valid: true, errors: [], config: result.config }
      : { valid: false, errors: result.errors };
    out(`${JSON.stringify(body, null, 2)}\n`);
  } else if (result.valid) {
    out(`ok: ${options.config}\n${summary(result.config)}`);
  } else {
    const lines = result.errors.map((e) => `  - ${e.path === "" ? "(file)" : e.path}: ${e.message}`);
    out(`invalid: ${options.config}\n${lines.join("\n")}\n`);
  }
  return result.valid ? 0 : 1;
}

export function runConfigSchema(out: (text: string) => void): number {
  out(`${JSON.stringify(pipelineJsonSchema(), null, 2)}\n`);
  return 0;
}

function summary(c: PipelineConfig): string {
  const topics: Array<[string, string | undefined]> = [
    ["input", c.input.topic],
    ["output", c.output.topic],
    ["dlq", c.dlq.topic],
    ["shadow", c.output.shadowTopic],
    ["control", c.control.topic],
    ["audit", c.control.auditTopic],
    ["feature updates", c.features?.updates?.topic],
    ["feature dlq", c.features?.dlq?.topic],
  ];
  const models = c.models.map((m) => `${m.name} version ${m.version}`);
  return [
    `  pipeline  ${c.pipeline.name} (group ${c.pipeline.groupId})`,
    `  topics    ${topics.flatMap(([role, t]) => (t === undefined ? [] : [`${t} (${role})`])).join(", ")}`,
    `  models    ${models.join(", ")}${c.modelRepository ? ` (repository ${c.modelRepository})` : ""}`,
    "",
  ].join("\n");
}
