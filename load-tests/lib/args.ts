// Typed command-line options for the load, benchmark and soak scripts (node:util parseArgs
// underneath): `--name value`, `--name=value` and boolean `--flag`. An unknown option, a stray
// argument, a missing or non-numeric value is a USAGE error, so a typo never silently falls
// back to a default. Values are read by name, each name checked against its type at compile time.
import { parseArgs } from "node:util";
import { AimassError } from "../../services/common/errors.js";

export interface OptionSpec {
  type: "string" | "number" | "boolean";
  description: string;
  required?: boolean;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The names of the options that may be of one type (all of them for specs built at run time). */
type NamesOf<S extends OptionSpecs, T extends OptionSpec["type"]> = {
  [K in keyof S]: T extends S[K]["type"] ? K : never;
}[keyof S] &
  string;

export interface ParsedOptions<S extends OptionSpecs> {
  string(name: NamesOf<S, "string">): string | undefined;
  number(name: NamesOf<S, "number">): number | undefined;
  flag(name: NamesOf<S, "boolean">): boolean;
  /** A `required` option's value (parsing already refused a command line without it). */
  requiredString(name: NamesOf<S, "string">): string;
  requiredNumber(name: NamesOf<S, "number">): number;
}

const usage = (message: string) => new AimassError("USAGE", message);

export function parseOptions<S extends OptionSpecs>(argv: string[], specs: S): ParsedOptions<S> {
  const options = Object.fromEntries(
    Object.entries(specs).map(([name, spec]): [string, { type: "string" | "boolean" }] => [
      name,
      { type: spec.type === "boolean" ? "boolean" : "string" },
    ]),
  );
  let given: Record<string, string | boolean | Array<string | boolean> | undefined>;
  try {
    given = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw usage(err instanceof Error ? err.message : String(err));
  }
  const values = new Map<string, string | number | boolean>();
  for (const [name, spec] of Object.entries(specs)) {
    const raw = given[name];
    if (raw === undefined || Array.isArray(raw)) {
      if (spec.required) throw usage(`option --${name} is required`);
      continue;
    }
    if (spec.type === "boolean" || typeof raw === "boolean") {
      values.set(name, raw === true);
      continue;
    }
    const text = raw.trim();
    if (spec.type === "number") {
      const n = Number(text);
      if (text === "" || !Number.isFinite(n)) throw usage(`option --${name} expects a number, got "${raw}"`);
      values.set(name, n);
    } else {
      values.set(name, text);
    }
  }
  const string = (name: string) => {
    const v = values.get(name);
    return typeof v === "string" ? v : undefined;
  };
  const number = (name: string) => {
    const v = values.get(name);
    return typeof v === "number" ? v : undefined;
  };
  const required = <T>(name: string, v: T | undefined): T => {
    if (v === undefined) throw usage(`option --${name} is required`);
    return v;
  };
  return {
    string,
    number,
    flag: (name) => values.get(name) === true,
    requiredString: (name) => required(name, string(name)),
    requiredNumber: (name) => required(name, number(name)),
  };
}

/** `--help` anywhere asks for the usage text instead of a run. */
export function wantsHelp(argv: string[]): boolean {
  return argv.includes("--help");
}

export function usageText(script: string, specs: OptionSpecs): string {
  return `Usage: ${script} [options]\n\n${formatOptions(specs)}\n`;
}

export function formatOptions(specs: OptionSpecs): string {
  return Object.entries(specs)
    .map(([name, s]) => {
      const flag = s.type === "boolean" ? `--${name}` : `--${name} <${s.type === "number" ? "n" : "value"}>`;
      return `  ${flag.padEnd(26)} ${s.description}${s.required ? " (required)" : ""}`;
    })
    .join("\n");
}
