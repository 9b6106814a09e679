// The command table. Each command parses its own options and returns an exit code.
import { parseArgs, type OptionSpec } from "./args.js";
import { runSmoke } from "./smoke.js";
import { runPredict } from "./predict.js";
import { runTopicsCreate } from "./topics.js";

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
    name: "smoke",
    summary: "check that Kafka (transactions), the schema registry and Redis answer",
    options: smokeOptions,
    run: async (argv) => {
      const { options } = parseArgs(argv, smokeOptions);
      return runSmoke({ timeoutMs: (options["timeout-ms"] as number | undefined) ?? 60_000 });
    },
  },
];
