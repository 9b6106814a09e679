// The real `aimass` command line with recording runners: which command a command line runs,
// with which typed options, its exit code and what it printed — without starting a worker or
// reaching Kafka. `config validate` and `config schema` run for real (they only read files).
import type { Command } from "commander";
import { main } from "../../../services/cli/cli.js";
import {
  buildProgram,
  defaultRunners,
  type Runners,
  type WorkerOptions,
} from "../../../services/cli/commands.js";
import type { ModelsAction, ModelsOptions } from "../../../services/cli/models.js";

export type Call =
  | { command: "predict" | "features"; options: WorkerOptions }
  | { command: "topics create"; options: { config: string } }
  | { command: "models"; action: ModelsAction; options: ModelsOptions }
  | { command: "smoke"; options: { timeoutMs: number } };

export interface CliRun {
  code: number;
  out: string;
  err: string;
  calls: Call[];
}

/** Runs argv; each recorded command returns `exitCode` (or throws `fail`, when given). */
export async function runCli(argv: string[], o: { exitCode?: number; fail?: Error } = {}): Promise<CliRun> {
  const calls: Call[] = [];
  const record = async (call: Call): Promise<number> => {
    calls.push(call);
    if (o.fail) throw o.fail;
    return o.exitCode ?? 0;
  };
  const runners: Runners = {
    predict: (options) => record({ command: "predict", options }),
    features: (options) => record({ command: "features", options }),
    topicsCreate: (options) => record({ command: "topics create", options }),
    models: (action, options) => record({ command: "models", action, options }),
    smoke: (options) => record({ command: "smoke", options }),
    configValidate: defaultRunners.configValidate,
    configSchema: defaultRunners.configSchema,
  };
  let out = "";
  let err = "";
  const code = await main(argv, { runners, out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err, calls };
}

/** The command tree as the CLI builds it, to look commands and options up by name. */
export function commandTree(): Command {
  const ignore = () => undefined;
  return buildProgram(defaultRunners, { out: ignore, err: ignore }, "0.0.0").program;
}

/** The command at a path of names ("models", "deploy"), or undefined. */
export function findCommand(root: Command, path: string[]): Command | undefined {
  let command: Command | undefined = root;
  for (const name of path) command = command?.commands.find((c) => c.name() === name);
  return command;
}
