// The `aimass` command line on commander: parses argv against the command tree (commands.ts)
// and turns the outcome into an exit code — 0 ok (help and --version included), 1 the command
// failed, 2 a usage error (unknown command or option, stray argument, bad or missing value,
// a group named without its sub-command).
import { readFile } from "node:fs/promises";
import { CommanderError } from "commander";
import { errorMessage } from "../common/errors.js";
import { buildProgram, defaultRunners, type CliIo, type Runners } from "./commands.js";

export interface MainOptions extends Partial<CliIo> {
  /** What the commands run; tests pass their own. */
  runners?: Runners;
}

export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const io: CliIo = {
    out: options.out ?? ((s) => process.stdout.write(s)),
    err: options.err ?? ((s) => process.stderr.write(s)),
  };
  const { program, exitCode } = buildProgram(options.runners ?? defaultRunners, io, await packageVersion());
  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCode();
  } catch (err) {
    // commander has already printed its message (or the help) through io.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    io.err(`aimass: ${errorMessage(err)}\n`);
    return 1;
  }
}

async function packageVersion(): Promise<string> {
  const text = await readFile(new URL("../../../package.json", import.meta.url), "utf8");
  const pkg: unknown = JSON.parse(text);
  return pkg !== null && typeof pkg === "object" && "version" in pkg && typeof pkg.version === "string"
    ? pkg.version
    : "unknown";
}
