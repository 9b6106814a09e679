// The load scripts' argument parser: value syntaxes, typed reads, and USAGE errors for an
// unknown option, a stray argument, a missing or non-numeric value, an absent required one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isAimassError } from "../../../services/common/errors.js";
import { formatOptions, parseOptions, usageText, type OptionSpecs } from "../../../load-tests/lib/args.js";

const SPECS = {
  config: { type: "string", description: "pipeline config", required: true },
  count: { type: "number", description: "how many" },
  rate: { type: "number", description: "per second" },
  "dry-run": { type: "boolean", description: "do nothing" },
  label: { type: "string", description: "a label" },
} satisfies OptionSpecs;

function usage(argv: string[], message: RegExp): void {
  assert.throws(
    () => parseOptions(argv, SPECS),
    (err: unknown) => {
      assert.ok(isAimassError(err, "USAGE"), `expected a USAGE error, got ${String(err)}`);
      assert.match(err.message, message);
      return true;
    },
  );
}

test("--name value and --name=value both work; values are typed and trimmed", () => {
  const o = parseOptions(
    ["--config", " p.yaml ", "--count=5", "--label", "a=b", "--rate= 2.5", "--dry-run"],
    SPECS,
  );
  assert.equal(o.requiredString("config"), "p.yaml");
  assert.equal(o.number("count"), 5);
  assert.equal(o.number("rate"), 2.5);
  assert.equal(o.string("label"), "a=b");
  assert.equal(o.flag("dry-run"), true);
  const bare = parseOptions(["--config", "c"], SPECS);
  assert.equal(bare.number("count"), undefined);
  assert.equal(bare.string("label"), undefined);
  assert.equal(bare.flag("dry-run"), false);
  assert.equal(
    parseOptions(["--config", "a", "--config=b"], SPECS).string("config"),
    "b",
    "the last one wins",
  );
  assert.equal(parseOptions(["--config", "c", "--count=-3"], SPECS).number("count"), -3);
});

test("unknown options and stray arguments are USAGE errors", () => {
  usage(["--config", "c", "--cuont", "3"], /Unknown option '--cuont'/);
  usage(["--config", "c", "extra"], /Unexpected argument 'extra'/);
  usage(["--config", "c", "--dry-run=false"], /--dry-run' does not take an argument/);
});

test("a missing value, a non-number or an absent required option is a USAGE error", () => {
  usage(["--config"], /--config <value>' argument missing/);
  usage(["--config", "c", "--count", "ten"], /option --count expects a number, got "ten"/);
  usage(["--config", "c", "--count="], /option --count expects a number/);
  usage(["--config", "c", "--rate", "Infinity"], /expects a number/);
  usage([], /option --config is required/);
});

test("the usage text lists every option with its placeholder and required marker", () => {
  const lines = formatOptions(SPECS).split("\n");
  assert.equal(lines.length, Object.keys(SPECS).length);
  assert.match(lines[0] ?? "", /^ {2}--config <value>\s+pipeline config \(required\)$/);
  assert.match(lines[1] ?? "", /^ {2}--count <n>\s+how many$/);
  assert.match(lines[3] ?? "", /^ {2}--dry-run\s+do nothing$/);
  assert.match(usageText("bench", SPECS), /^Usage: bench \[options\]\n\n {2}--config/);
});
