// The command tree: every command's name, help and typed options, and the function it runs.
// The functions come in as `Runners`, so tests parse real command lines without starting
// workers or touching Kafka. An action records its exit code; a USAGE error from a runner is
// reported the way commander reports its own usage errors.
import { Command, Help } from "commander";
import { AimassError, errorMessage, isAimassError } from "../common/errors.js";
import { TUNING } from "../common/tuning.js";
import { runConfigSchema, runConfigValidate } from "./config.js";
import { runFeatures } from "./features.js";
import { runModels, type ModelsAction, type ModelsOptions } from "./models.js";
import {
  addOption,
  decimal,
  flag,
  integer,
  mandatory,
  optionalString,
  port,
  requiredString,
} from "./options.js";
import { runPredict } from "./predict.js";
import { runSmoke } from "./smoke.js";
import { runTopicsCreate } from "./topics.js";

export interface WorkerOptions {
  config: string;
  metricsPort?: number;
}

export interface Runners {
  predict(options: WorkerOptions): Promise<number>;
  features(options: WorkerOptions): Promise<number>;
  topicsCreate(options: { config: string }): Promise<number>;
  models(action: ModelsAction, options: ModelsOptions): Promise<number>;
  smoke(options: { timeoutMs: number }): Promise<number>;
  configValidate(options: { config: string; json: boolean }, out: (text: string) => void): Promise<number>;
  configSchema(out: (text: string) => void): number;
}

export const defaultRunners: Runners = {
  predict: runPredict,
  features: runFeatures,
  topicsCreate: runTopicsCreate,
  models: runModels,
  smoke: runSmoke,
  configValidate: runConfigValidate,
  configSchema: runConfigSchema,
};

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export interface Program {
  program: Command;
  /** The exit code of the action that ran (0 when none did: help, version). */
  exitCode(): number;
}

/** Adds a command's options and returns what its action runs, reading them when it does. */
type Define = (command: Command) => () => Promise<number> | number;

const configFile = (c: Command) =>
  addOption(c, requiredString("-c, --config <file>", "pipeline config (YAML or JSON)"));
const modelName = (c: Command) => addOption(c, requiredString("-m, --model <name>", "model name"));

function workerOptions(c: Command): () => WorkerOptions {
  const config = configFile(c);
  const metricsPort = addOption(
    c,
    port("--metrics-port <port>", "serve /metrics, /healthz and /readyz on this port"),
  );
  return () => {
    const p = metricsPort();
    return { config: config(), ...(p === undefined ? {} : { metricsPort: p }) };
  };
}

/** The options every change to the desired model state takes, after its own. */
function changeOptions(c: Command): () => Pick<ModelsOptions, "reason" | "by" | "waitMs"> {
  const reason = addOption(c, optionalString("--reason <text>", "why (kept in the audit trail)"));
  const by = addOption(c, optionalString("--by <who>", "who (default: user@host)"));
  const waitMs = addOption(
    c,
    integer(
      "--wait-ms <ms>",
      "wait this long for the workers' apply results; a refusal reverts the change (0: don't wait)",
      { min: 0 },
      TUNING.control.cliWaitMs,
    ),
  );
  return () => ({ reason: reason(), by: by(), waitMs: waitMs() });
}

function modelsCommands(run: Runners["models"]): Array<[ModelsAction, string, Define]> {
  return [
    [
      "list",
      "list model versions in the repository and what serves now",
      (c) => {
        const config = configFile(c);
        // `list` changes nothing, so it waits for nothing.
        return () => run("list", { config: config(), waitMs: 0 });
      },
    ],
    [
      "deploy",
      "make a model version the active one (written to the control topic)",
      (c) => {
        const [config, model] = [configFile(c), modelName(c)];
        const version = addOption(c, requiredString("--version <version>", "version to make active"));
        const change = changeOptions(c);
        return () => run("deploy", { config: config(), model: model(), version: version(), ...change() });
      },
    ],
    [
      "rollback",
      "go back to the previous active version, or to --to",
      (c) => {
        const [config, model] = [configFile(c), modelName(c)];
        const to = addOption(
          c,
          optionalString("--to <version>", "version to go back to (default: the previous one)"),
        );
        const change = changeOptions(c);
        return () => run("rollback", { config: config(), model: model(), to: to(), ...change() });
      },
    ],
    [
      "canary",
      "send a share of the keys to a candidate version",
      (c) => {
        const [config, model] = [configFile(c), modelName(c)];
        const version = addOption(
          c,
          optionalString("--version <version>", "candidate version (not needed with --percent 0)"),
        );
        const percent = addOption(
          c,
          mandatory(decimal("--percent <0-100>", "share of keys, 0 to 100 (0 ends the canary)")),
        );
        const change = changeOptions(c);
        return () =>
          run("canary", {
            config: config(),
            model: model(),
            version: version(),
            percent: percent(),
            ...change(),
          });
      },
    ],
    [
      "shadow",
      "run a version on every event too, writing to the shadow topic",
      (c) => {
        const [config, model] = [configFile(c), modelName(c)];
        const version = addOption(c, optionalString("--version <version>", "version to shadow (or --off)"));
        const off = addOption(c, flag("--off", "stop shadowing"));
        const change = changeOptions(c);
        return () =>
          run("shadow", { config: config(), model: model(), version: version(), off: off(), ...change() });
      },
    ],
  ];
}

export function buildProgram(runners: Runners, io: CliIo, version: string): Program {
  let exitCode = 0;
  const program = new Command("aimass")
    .description("aimass — large models as a service on Kafka")
    .version(version, "-V, --version", "print the package version")
    // These settings are copied to each sub-command as it is created, so they come first.
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError("(add --help for usage)")
    // Root options only before the command: in `models deploy --version 2` it is the model's.
    .enablePositionalOptions()
    .addHelpText(
      "after",
      "\nEndpoints come from KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL\n" +
        "(defaults: the local stack started by `npm run stack:up`).\n" +
        "Run `aimass <command> --help` for a command's options.",
    );

  const leaf = (parent: Command, name: string, summary: string, define: Define): void => {
    const command = parent.command(name).summary(summary).description(summary);
    const run = define(command);
    command.action(async () => {
      try {
        exitCode = await run();
      } catch (err) {
        if (isAimassError(err, "USAGE"))
          command.error(`aimass ${commandPath(command)}: ${err.message}`, { exitCode: 2 });
        const code = err instanceof AimassError ? ` [${err.code}]` : "";
        io.err(`aimass ${commandPath(command)}: ${errorMessage(err)}${code}\n`);
        exitCode = 1;
      }
    });
  };
  const group = (name: string, summary: string): Command =>
    program.command(name).summary(summary).description(summary);

  leaf(program, "predict", "run one predictor worker (start several to form a consumer group)", (c) => {
    const options = workerOptions(c);
    return () => runners.predict(options());
  });
  leaf(program, "features", "run one feature writer (feature updates topic → Redis online store)", (c) => {
    const options = workerOptions(c);
    return () => runners.features(options());
  });
  const topics = group("topics", "create the topics a pipeline config names");
  leaf(topics, "create", "create the topics a pipeline config names (idempotent)", (c) => {
    const config = configFile(c);
    return () => runners.topicsCreate({ config: config() });
  });
  const models = group("models", "show and change the served model versions live (the control topic)");
  for (const [action, summary, define] of modelsCommands(runners.models))
    leaf(models, action, summary, define);
  const config = group("config", "check a pipeline config, print its JSON Schema");
  leaf(config, "validate", "validate a pipeline config: ok and a summary, or every problem", (c) => {
    const file = configFile(c);
    const json = addOption(c, flag("--json", "print {valid, errors: [{path, message}], config?} as JSON"));
    return () => runners.configValidate({ config: file(), json: json() }, (s) => io.out(s));
  });
  leaf(
    config,
    "schema",
    "print the pipeline config's JSON Schema (for editors)",
    () => () => runners.configSchema((s) => io.out(s)),
  );
  leaf(program, "smoke", "check that Kafka (transactions), the schema registry and Redis answer", (c) => {
    const timeoutMs = addOption(
      c,
      integer("--timeout-ms <ms>", "give up after this long", { min: 1 }, TUNING.cli.smokeTimeoutMs),
    );
    return () => runners.smoke({ timeoutMs: timeoutMs() });
  });

  // The root's help lists every command that runs something, a group's sub-commands spelled
  // out; the groups' own help stays commander's (they copied the settings before this).
  program.configureHelp({
    visibleCommands: (cmd) => new Help().visibleCommands(cmd).flatMap(leaves),
    subcommandTerm: (cmd) => {
      const term = new Help().subcommandTerm(cmd);
      return cmd.parent ? term.replace(cmd.name(), commandPath(cmd)) : term; // `help` has no parent
    },
  });
  return { program, exitCode: () => exitCode };
}

function leaves(command: Command): Command[] {
  return command.commands.length === 0 ? [command] : command.commands.flatMap(leaves);
}

/** "models deploy" for `aimass models deploy`. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}
