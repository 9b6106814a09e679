// The `aimass` command line: one entry per sub-command, each a small module.
import { AimassError, errorMessage, isAimassError } from "../common/errors.js";
import { formatOptions, type OptionSpec } from "./args.js";
import { commands, type Command } from "./commands.js";

export async function main(argv: string[]): Promise<number> {
  const [first, second] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    process.stdout.write(usage());
    return 0;
  }
  if (first === "--version") {
    process.stdout.write(`${await version()}\n`);
    return 0;
  }
  const twoWord = second !== undefined ? commands.find((c) => c.name === `${first} ${second}`) : undefined;
  const command: Command | undefined = twoWord ?? commands.find((c) => c.name === first);
  if (!command) {
    process.stderr.write(`aimass: unknown command "${first}"\n\n${usage()}`);
    return 2;
  }
  const rest = argv.slice(command.name.split(" ").length);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(commandUsage(command));
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (isAimassError(err, "USAGE")) {
      process.stderr.write(`aimass ${command.name}: ${err.message}\n\n${commandUsage(command)}`);
      return 2;
    }
    const code = err instanceof AimassError ? ` [${err.code}]` : "";
    process.stderr.write(`aimass ${command.name}: ${errorMessage(err)}${code}\n`);
    return 1;
  }
}

function usage(): string {
  const lines = commands.map((c) => `  ${c.name.padEnd(18)} ${c.summary}`);
  return [
    "aimass — large models as a service on Kafka",
    "",
    "Usage: aimass <command> [options]",
    "",
    "Commands:",
    ...lines,
    "",
    "Endpoints come from KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL",
    "(defaults: the local stack started by `npm run stack:up`).",
    "Run `aimass <command> --help` for a command's options.",
    "",
  ].join("\n");
}

function commandUsage(command: Command): string {
  const opts: OptionSpec[] = command.options;
  return `Usage: aimass ${command.name} [options]\n\n${command.summary}\n\nOptions:\n${formatOptions(opts)}\n`;
}

async function version(): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  const pkg = JSON.parse(await readFile(new URL("../../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}
