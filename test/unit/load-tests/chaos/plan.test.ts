// The chaos runner's command line: scenario names beside typed options, the CI subset and its
// sizes, one group per node count, and USAGE errors for what it cannot run. Also the
// endpoints.env reader the runner points its clients with.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isAimassError } from "../../../../services/common/errors.js";
import { planFrom, splitArgs } from "../../../../load-tests/chaos/plan.js";
import { CI_SUBSET, SCENARIOS } from "../../../../load-tests/chaos/scenarios.js";
import { parseEnvFile } from "../../../../load-tests/chaos/stack.js";

const names = (argv: string[]) =>
  planFrom(argv).groups.flatMap((g) => g.scenarios.map((p) => `${p.scenario.name}@${p.nodes}`));

function usage(argv: string[], message: RegExp): void {
  assert.throws(
    () => planFrom(argv),
    (err: unknown) => isAimassError(err, "USAGE") && message.test(err.message),
  );
}

test("names and options mix in any order; an option's value is never taken for a name", () => {
  assert.deepEqual(splitArgs(["zombie", "--runs", "3", "poison", "--ci", "--out=x"]), {
    names: ["zombie", "poison"],
    options: ["--runs", "3", "--ci", "--out=x"],
  });
  const plan = planFrom(["--runs", "3", "broker-kill-restart", "--seed", "9"]);
  assert.equal(plan.runs, 3);
  assert.equal(plan.seed, 9);
  assert.deepEqual(names(["--runs", "3", "broker-kill-restart"]), ["broker-kill-restart@1"]);
});

test("no names: every scenario but the on-demand soak, grouped by node count", () => {
  const plan = planFrom([]);
  assert.deepEqual(
    plan.groups.map((g) => g.nodes),
    [1, 3],
  );
  const all = names([]);
  assert.equal(all.length, SCENARIOS.length - 1);
  assert.ok(!all.some((n) => n.startsWith("soak@")));
  assert.ok(all.includes("leader-kill@3"));
  assert.deepEqual(names(["soak"]), ["soak@1"]);
});

test("--ci runs the CI subset at its CI sizes; --events and --rate override a size", () => {
  const plan = planFrom(["--ci"]);
  const ci = plan.groups.flatMap((g) => g.scenarios);
  assert.deepEqual(
    ci.map((p) => p.scenario.name),
    [...CI_SUBSET],
  );
  for (const p of ci) assert.deepEqual(p.sizing, p.scenario.ci);
  const sized = planFrom(["zombie", "--events", "100", "--rate", "50"]).groups[0]?.scenarios[0];
  assert.deepEqual(sized?.sizing, { events: 100, rate: 50 });
});

test("--nodes 3 moves scenarios that work on any cluster, not those whose fault needs one node", () => {
  assert.deepEqual(names(["zombie", "broker-kill-restart", "leader-kill", "--nodes", "3"]), [
    "broker-kill-restart@1",
    "zombie@3",
    "leader-kill@3",
  ]);
});

test("an unknown scenario, names with --ci, or a bad number are USAGE errors", () => {
  usage(["bogus"], /unknown scenario "bogus"/);
  usage(["zombie", "--ci"], /either names or --ci/);
  usage(["--nodes", "2"], /--nodes must be 1 or 3/);
  usage(["--runs", "0"], /--runs must be a positive integer/);
  usage(["--runs"], /argument missing/);
  usage(["--rnus", "2"], /Unknown option '--rnus'/);
});

test("endpoints.env: export lines, quoted values and comments", () => {
  const env = parseEnvFile(
    "# written by up.sh\nexport KAFKA_BROKERS=127.0.0.1:19092,127.0.0.1:19094\nexport REDIS_URL='redis://127.0.0.1:19379'\nPLAIN=1\n",
  );
  assert.equal(env.get("KAFKA_BROKERS"), "127.0.0.1:19092,127.0.0.1:19094");
  assert.equal(env.get("REDIS_URL"), "redis://127.0.0.1:19379");
  assert.equal(env.get("PLAIN"), "1");
  assert.equal(env.size, 3);
});
