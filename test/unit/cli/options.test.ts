// The CLI's value parsers: what counts as an integer or a number on the command line, and
// commander's InvalidArgumentError (exit 2, naming the option) for everything else.
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "commander";
import { parseDecimal, parseInteger } from "../../../services/cli/options.js";

const refused = (fn: () => number, message: RegExp) =>
  assert.throws(fn, (err: unknown) => err instanceof InvalidArgumentError && message.test(err.message));

test("integers: digits with an optional sign, trimmed, within the range", () => {
  assert.equal(parseInteger("9464", { min: 0, max: 65_535 }), 9464);
  assert.equal(parseInteger(" 0 ", { min: 0, max: 65_535 }), 0);
  assert.equal(parseInteger("+7", { min: 1 }), 7);
  assert.equal(parseInteger("-3", { min: -5 }), -3);
  for (const bad of ["", " ", "1.0", "1e3", "0x10", "12abc", "Infinity", "NaN", "9007199254740993"])
    refused(() => parseInteger(bad, { min: 0 }), /^Expected an integer of at least 0\.$/);
  refused(() => parseInteger("65536", { min: 0, max: 65_535 }), /^Expected an integer from 0 to 65535\.$/);
  refused(() => parseInteger("-1", { min: 0, max: 65_535 }), /from 0 to 65535/);
});

test("decimals: finite numbers written plainly, within the range when one is given", () => {
  assert.equal(parseDecimal("12.5", { min: 0, max: 100 }), 12.5);
  assert.equal(parseDecimal(".5", { min: 0, max: 100 }), 0.5);
  assert.equal(parseDecimal("150", { min: -Number.MAX_VALUE }), 150);
  for (const bad of ["", "abc", "NaN", "Infinity", "1e2", "0x10", "1.2.3"])
    refused(() => parseDecimal(bad, { min: 0, max: 100 }), /^Expected a number from 0 to 100\.$/);
  refused(() => parseDecimal("abc", { min: -Number.MAX_VALUE }), /^Expected a number\.$/);
});
