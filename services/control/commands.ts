// The command table. Each command parses its own options and returns an exit code.
import { parseArgs, type OptionSpec } from "./args.js";
import { runSmoke } from "./smoke.js";

export interface Command {
  name: string;
  summary: string;
  options: OptionSpec[];
  run(argv: string[]): Promise<number>;
}

const smokeOptions: OptionSpec[] = [
  { name: "timeout-ms", type: "number", description: "give up after this long (default 60000)" },
];

export const commands: Command[] = [
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
