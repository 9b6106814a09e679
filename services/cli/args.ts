// A small, strict argument parser: `--name value`, `--name=value` and boolean `--flag`.
// Unknown options are errors, so a typo never silently falls back to a default.
import { AimassError } from "../common/errors.js";

export interface OptionSpec {
  name: string;
  type: "string" | "number" | "boolean";
  description: string;
  required?: boolean;
}

export type ParsedOptions = Record<string, string | number | boolean | undefined>;

export function parseArgs(
  argv: string[],
  specs: OptionSpec[],
): { options: ParsedOptions; positional: string[] } {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const options: ParsedOptions = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const spec = byName.get(name);
    if (!spec) throw new AimassError("USAGE", `unknown option --${name}`);
    if (spec.type === "boolean") {
      options[name] = eq === -1 ? true : arg.slice(eq + 1) !== "false";
      continue;
    }
    let raw: string | undefined = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (raw === undefined || (eq === -1 && raw.startsWith("--"))) {
      throw new AimassError("USAGE", `option --${name} needs a value`);
    }
    raw = raw.trim();
    if (spec.type === "number") {
      const n = Number(raw);
      if (raw === "" || !Number.isFinite(n))
        throw new AimassError("USAGE", `option --${name} expects a number, got "${raw}"`);
      options[name] = n;
    } else {
      options[name] = raw;
    }
  }
  for (const spec of specs) {
    if (spec.required && options[spec.name] === undefined) {
      throw new AimassError("USAGE", `option --${spec.name} is required`);
    }
  }
  return { options, positional };
}

export function formatOptions(specs: OptionSpec[]): string {
  return specs
    .map((s) => {
      const flag =
        s.type === "boolean" ? `--${s.name}` : `--${s.name} <${s.type === "number" ? "n" : "value"}>`;
      return `  ${flag.padEnd(26)} ${s.description}${s.required ? " (required)" : ""}`;
    })
    .join("\n");
}
