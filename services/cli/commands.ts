// The command table. Each command parses its own options and returns an exit code.
import { parseArgs, type OptionSpec } from "./args.js";
import { runSmoke } from "./smoke.js";
import { runPredict } from "./predict.js";
import { runTopicsCreate } from "./topics.js";
import { runModels, type ModelsAction } from "./models.js";
import { runFeatures } from "./features.js";

export interface Command {
  name: string;
  summary: string;
  options: OptionSpec[];
  run(argv: string[]): Promise<number>;
}

const smokeOptions: OptionSpec[] = [
  { name: "timeout-ms", type: "number", description: "give up after this long (default 60000)" },
];
const predictOptions: OptionSpec[] = [
  { name: "config", type: "string", description: "pipeline config (YAML or JSON)", required: true },
  { name: "metrics-port", type: "number", description: "serve /metrics, /healthz and /readyz on this port" },
];
const configOnly: OptionSpec[] = [
  { name: "config", type: "string", description: "pipeline config (YAML or JSON)", required: true },
];

const modelOptions: Record<ModelsAction, OptionSpec[]> = {
  list: [...configOnly],
  deploy: [
    ...configOnly,
    { name: "model", type: "string", description: "model name", required: true },
    { name: "version", type: "string", description: "version to make active", required: true },
  ],
  rollback: [
    ...configOnly,
    { name: "model", type: "string", description: "model name", required: true },
    { name: "to", type: "string", description: "version to go back to (default: the previous active one)" },
  ],
  canary: [
    ...configOnly,
    { name: "model", type: "string", description: "model name", required: true },
    { name: "version", type: "string", description: "candidate version (not needed with --percent 0)" },
    {
      name: "percent",
      type: "number",
      description: "share of keys, 0-100 (0 ends the canary)",
      required: true,
    },
  ],
  shadow: [
    ...configOnly,
    { name: "model", type: "string", description: "model name", required: true },
    {
      name: "version",
      type: "string",
      description: "version that sees every event and writes to the shadow topic",
    },
    { name: "off", type: "boolean", description: "stop shadowing" },
  ],
};
const changeOptions: OptionSpec[] = [
  { name: "reason", type: "string", description: "why (kept in the audit trail)" },
  { name: "by", type: "string", description: "who (default: user@host)" },
  {
    name: "wait-ms",
    type: "number",
    description:
      "wait for the workers' apply results; a refusal reverts the change (default 10000, 0: don't wait)",
  },
];

const modelCommands: Command[] = (Object.keys(modelOptions) as ModelsAction[]).map((action) => {
  const options = action === "list" ? modelOptions[action] : [...modelOptions[action], ...changeOptions];
  return {
    name: `models ${action}`,
    summary:
      action === "list"
        ? "list model versions in the repository and what serves now"
        : `${action} a model version live (written to the control topic)`,
    options,
    run: async (argv: string[]) => {
      const { options: o } = parseArgs(argv, options);
      const str = (k: string) => o[k] as string | undefined;
      return runModels(action, {
        config: o.config as string,
        ...(str("model") !== undefined ? { model: str("model") } : {}),
        ...(str("version") !== undefined ? { version: str("version") } : {}),
        ...(o.percent !== undefined ? { percent: o.percent as number } : {}),
        ...(o.off !== undefined ? { off: o.off as boolean } : {}),
        ...(str("to") !== undefined ? { to: str("to") } : {}),
        ...(str("reason") !== undefined ? { reason: str("reason") } : {}),
        ...(str("by") !== undefined ? { by: str("by") } : {}),
        ...(o["wait-ms"] !== undefined ? { waitMs: o["wait-ms"] as number } : {}),
      });
    },
  };
});

export const commands: Command[] = [
  {
    name: "predict",
    summary: "run one predictor worker (start several to form a consumer group)",
    options: predictOptions,
    run: async (argv) => {
      const { options } = parseArgs(argv, predictOptions);
      const port = options["metrics-port"] as number | undefined;
      return runPredict({
        config: options.config as string,
        ...(port === undefined ? {} : { metricsPort: port }),
      });
    },
  },
  {
    name: "topics create",
    summary: "create the topics a pipeline config names (idempotent)",
    options: configOnly,
    run: async (argv) => runTopicsCreate({ config: parseArgs(argv, configOnly).options.config as string }),
  },
  {
    name: "features",
    summary: "run one feature writer (feature updates topic → Redis online store)",
    options: predictOptions,
    run: async (argv) => {
      const { options } = parseArgs(argv, predictOptions);
      const port = options["metrics-port"] as number | undefined;
      return runFeatures({
        config: options.config as string,
        ...(port === undefined ? {} : { metricsPort: port }),
      });
    },
  },
  ...modelCommands,
  {
    name: "smoke",
    summary: "check that Kafka (transactions), the schema registry and Redis answer",
    options: smokeOptions,
    run: async (argv) => {
      const { options } = parseArgs(argv, smokeOptions);
      return runSmoke({ timeoutMs: (options["timeout-ms"] as number | undefined) ?? 60_000 });
    },
  },
];
