// Typed command-line options on commander. Each option is a commander Option whose parser
// gives the value its type (and rejects a bad one naming the option), plus a reader that
// returns that value with its static type, checked when read: commander's own option bag is
// untyped, and nothing here casts it.
import { InvalidArgumentError, Option, type Command } from "commander";

export interface TypedOption<T> {
  readonly option: Option;
  /** The value commander holds for the option, with its type; a mismatch is a bug, not a usage error. */
  readonly read: (value: unknown) => T;
}

/** Adds the option to the command; the returned function reads its value once parsed. */
export function addOption<T>(command: Command, typed: TypedOption<T>): () => T {
  command.addOption(typed.option);
  const key = typed.option.attributeName();
  return () => typed.read(command.getOptionValue(key));
}

function mismatch(option: Option, value: unknown): never {
  throw new Error(`option ${option.flags} holds a ${typeof value}`);
}

/** The option must be given: commander refuses the command line without it. */
export function mandatory<T>(typed: TypedOption<T | undefined>): TypedOption<T> {
  const option = typed.option.makeOptionMandatory();
  return {
    option,
    read: (v) => {
      const value = typed.read(v);
      return value === undefined ? mismatch(option, v) : value;
    },
  };
}

export function requiredString(flags: string, description: string): TypedOption<string> {
  return mandatory(optionalString(flags, description));
}

export function optionalString(flags: string, description: string): TypedOption<string | undefined> {
  const option = new Option(flags, description);
  return { option, read: (v) => (v === undefined || typeof v === "string" ? v : mismatch(option, v)) };
}

/** A boolean switch: present → true, absent → false. */
export function flag(flags: string, description: string): TypedOption<boolean> {
  const option = new Option(flags, description);
  return {
    option,
    read: (v) => (v === undefined || typeof v === "boolean" ? v === true : mismatch(option, v)),
  };
}

export interface Range {
  min: number;
  max?: number;
}

function rangeText({ min, max }: Range): string {
  if (min === -Number.MAX_VALUE) return "";
  return max === undefined ? ` of at least ${min}` : ` from ${min} to ${max}`;
}

/** `raw` as a whole number in the range; anything else (blank, "1.5", "12abc", "1e3") is refused. */
export function parseInteger(raw: string, range: Range): number {
  const text = raw.trim();
  const n = Number(text);
  if (!/^[+-]?\d+$/.test(text) || !Number.isSafeInteger(n) || n < range.min || n > (range.max ?? n)) {
    throw new InvalidArgumentError(`Expected an integer${rangeText(range)}.`);
  }
  return n;
}

/** `raw` as a decimal number in the range ("12.5"; not blank, "NaN", "Infinity" or "0x10"). */
export function parseDecimal(raw: string, range: Range): number {
  const text = raw.trim();
  const n = Number(text);
  if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(text) || n < range.min || n > (range.max ?? n)) {
    throw new InvalidArgumentError(`Expected a number${rangeText(range)}.`);
  }
  return n;
}

export function integer(flags: string, description: string, range: Range): TypedOption<number | undefined>;
export function integer(
  flags: string,
  description: string,
  range: Range,
  defaultValue: number,
): TypedOption<number>;
export function integer(
  flags: string,
  description: string,
  range: Range,
  defaultValue?: number,
): TypedOption<number | undefined> {
  const option = new Option(flags, description).argParser((raw: string) => parseInteger(raw, range));
  if (defaultValue === undefined) return { option, read: (v) => optionalNumber(option, v) };
  option.default(defaultValue);
  return { option, read: (v) => (typeof v === "number" ? v : mismatch(option, v)) };
}

/** A finite decimal number; a range the command checks itself, with its own words, is left out. */
export function decimal(
  flags: string,
  description: string,
  range: Range = { min: -Number.MAX_VALUE },
): TypedOption<number | undefined> {
  const option = new Option(flags, description).argParser((raw: string) => parseDecimal(raw, range));
  return { option, read: (v) => optionalNumber(option, v) };
}

/** A TCP port to listen on: 0 (any free port) to 65535. */
export function port(flags: string, description: string): TypedOption<number | undefined> {
  return integer(flags, description, { min: 0, max: 65_535 });
}

function optionalNumber(option: Option, v: unknown): number | undefined {
  return v === undefined || typeof v === "number" ? v : mismatch(option, v);
}
