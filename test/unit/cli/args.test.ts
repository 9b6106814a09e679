// The CLI's argument parser: value syntaxes, types, and USAGE errors for anything off.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isAimassError } from "../../../services/common/errors.js";
import { formatOptions, parseArgs, type OptionSpec } from "../../../services/cli/args.js";

const SPECS: OptionSpec[] = [
  { name: "config", type: "string", description: "pipeline config", required: true },
  { name: "count", type: "number", description: "how many" },
  { name: "rate", type: "number", description: "per second" },
  { name: "dry-run", type: "boolean", description: "do nothing" },
  { name: "label", type: "string", description: "a label" },
];

function usage(argv: string[], message: RegExp, specs = SPECS): void {
  assert.throws(
    () => parseArgs(argv, specs),
    (err: unknown) => {
      assert.ok(isAimassError(err), `expected an AimassError, got ${String(err)}`);
      assert.equal(err.code, "USAGE");
      assert.match(err.message, message);
      return true;
    },
  );
}

test("--name value and --name=value both work, with positionals kept in order", () => {
  const { options, positional } = parseArgs(
    ["run", "--config", "p.yaml", "--count=5", "extra", "--label", "a=b", "--rate=2.5"],
    SPECS,
  );
  assert.deepEqual(options, { config: "p.yaml", count: 5, label: "a=b", rate: 2.5 });
  assert.deepEqual(positional, ["run", "extra"]);
});

test("values are trimmed; '=' inside a value and negative numbers are kept", () => {
  const { options } = parseArgs(
    ["--config= p.yaml ", "--label=x=y", "--count", "-3", "--rate", " 1e3 "],
    SPECS,
  );
  assert.deepEqual(options, { config: "p.yaml", label: "x=y", count: -3, rate: 1000 });
});

test("booleans: bare flag is true, =false is false, absent is undefined", () => {
  assert.equal(parseArgs(["--config", "c", "--dry-run"], SPECS).options["dry-run"], true);
  assert.equal(parseArgs(["--config", "c", "--dry-run=false"], SPECS).options["dry-run"], false);
  assert.equal(parseArgs(["--config", "c", "--dry-run=true"], SPECS).options["dry-run"], true);
  assert.equal(parseArgs(["--config", "c"], SPECS).options["dry-run"], undefined);
  // A boolean never swallows the next argument.
  const { options, positional } = parseArgs(["--dry-run", "next", "--config", "c"], SPECS);
  assert.equal(options["dry-run"], true);
  assert.deepEqual(positional, ["next"]);
});

test("the last occurrence of an option wins", () => {
  assert.equal(parseArgs(["--config", "a", "--config=b"], SPECS).options.config, "b");
});

test("an unknown option is a USAGE error naming it", () => {
  usage(["--config", "c", "--cuont", "3"], /unknown option --cuont/);
  usage(["--config", "c", "--verbose=1"], /unknown option --verbose/);
});

test("a missing value is a USAGE error", () => {
  usage(["--config"], /--config needs a value/);
  usage(["--count", "--config", "c"], /--count needs a value/);
  usage(["--config", "c", "--label"], /--label needs a value/);
});

test("a required option that is absent is a USAGE error", () => {
  usage([], /--config is required/);
  usage(["--count", "3"], /--config is required/);
});

test("a non-numeric number is a USAGE error", () => {
  usage(["--config", "c", "--count", "ten"], /--count expects a number, got "ten"/);
  usage(["--config", "c", "--count=12abc"], /expects a number/);
  usage(["--config", "c", "--rate", "Infinity"], /expects a number/);
  usage(["--config", "c", "--rate=NaN"], /expects a number/);
});

test("an empty or blank number is a USAGE error, not 0", () => {
  usage(["--config", "c", "--count="], /--count expects a number/);
  usage(["--config", "c", "--count", "  "], /--count expects a number/);
});

test("formatOptions lists every option with its placeholder and required marker", () => {
  const text = formatOptions(SPECS);
  const lines = text.split("\n");
  assert.equal(lines.length, SPECS.length);
  assert.match(lines[0] ?? "", /^ {2}--config <value>\s+pipeline config \(required\)$/);
  assert.match(lines[1] ?? "", /^ {2}--count <n>\s+how many$/);
  assert.match(lines[3] ?? "", /^ {2}--dry-run\s+do nothing$/);
});
