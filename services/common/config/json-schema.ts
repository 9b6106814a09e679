// The pipeline config as a JSON Schema, for editors and other tools: generated from the zod
// schema of a config file, so it cannot say anything the loader does not. Committed as
// schemas/pipeline-config.schema.json (a unit test keeps the two equal).
import { z } from "zod";
import { pipelineFileSchema } from "./schema.js";

export function pipelineJsonSchema(): Record<string, unknown> {
  // "input": what a file may hold (defaults make keys optional), not what the loader returns.
  const { $schema, ...rest } = z.toJSONSchema(pipelineFileSchema, { io: "input", target: "draft-2020-12" });
  return {
    $schema,
    title: "aimass pipeline config",
    description:
      "A pipeline config file (YAML or JSON). Checks that span sections (model names unique, routes naming " +
      "existing models, timeouts that must exceed others) are made by the loader: run `aimass config validate`.",
    ...rest,
  };
}
