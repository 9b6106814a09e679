// The `aimass` command line: help for the program and its groups, --version, typed options
// reaching the commands, and exit code 2 with commander's message (and its suggestions) for
// every usage error: unknown commands and options, stray arguments, bad or missing values.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { AimassError } from "../../../services/common/errors.js";
import { TUNING } from "../../../services/common/tuning.js";
import { repoPath } from "../../helpers/pipeline.js";
import { commandTree, runCli, type CliRun } from "./harness.js";

/** Exit 2, nothing run, and stderr says `message`. */
function assertUsage(run: CliRun, message: RegExp): void {
  assert.equal(run.code, 2, `exit code; stderr:\n${run.err}`);
  assert.deepEqual(run.calls, [], "a usage error runs nothing");
  assert.match(run.err, message);
}

test("aimass --help lists every command, group sub-commands spelled out, and exits 0", async () => {
  const run = await runCli(["--help"]);
  assert.equal(run.code, 0);
  const leaves = commandTree().commands.flatMap((c) =>
    c.commands.length === 0 ? [c.name()] : c.commands.map((s) => `${c.name()} ${s.name()}`),
  );
  assert.ok(leaves.length >= 11, leaves.join(", "));
  for (const name of leaves) assert.match(run.out, new RegExp(`^  ${name}\\b`, "m"), `--help lists ${name}`);
  for (const name of ["config validate", "config schema", "models deploy", "topics create"])
    assert.ok(leaves.includes(name), `${name} is a command`);
  assert.match(run.out, /KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL/);
  assert.equal(run.err, "");
});

test("aimass models --help prints the group's help, not 'unknown command'", async () => {
  const run = await runCli(["models", "--help"]);
  assert.equal(run.code, 0);
  assert.match(run.out, /^Usage: aimass models /m);
  for (const action of ["list", "deploy", "rollback", "canary", "shadow"])
    assert.match(run.out, new RegExp(`^  ${action} `, "m"));
  assert.doesNotMatch(run.out + run.err, /unknown command/);
  // The same through `help`, and for a command's own options.
  assert.equal((await runCli(["help", "models"])).out, run.out);
  const deploy = await runCli(["models", "deploy", "--help"]);
  assert.equal(deploy.code, 0);
  assert.match(deploy.out, /-c, --config <file>/);
  assert.match(deploy.out, /--wait-ms <ms>.*\(default: 10000\)/s);
});

test("a group without its sub-command prints the group's help and is a usage error", async () => {
  for (const group of ["topics", "models", "config"]) {
    const run = await runCli([group]);
    assertUsage(run, new RegExp(`^Usage: aimass ${group} `, "m"));
    assert.doesNotMatch(run.err, /unknown command/);
  }
  const bare = await runCli([]);
  assertUsage(bare, /^Usage: aimass /m);
});

test("aimass --version prints the package version", async () => {
  const pkg: unknown = JSON.parse(readFileSync(repoPath("package.json"), "utf8"));
  assert.ok(pkg !== null && typeof pkg === "object" && "version" in pkg);
  for (const flag of ["--version", "-V"]) {
    const run = await runCli([flag]);
    assert.equal(run.code, 0);
    assert.equal(run.out, `${String(pkg.version)}\n`);
  }
});

test("-c and --config (either syntax) reach predict and features; --metrics-port is a number", async () => {
  for (const argv of [
    ["predict", "-c", "p.yaml"],
    ["predict", "--config", "p.yaml"],
    ["predict", "--config=p.yaml"],
    ["predict", "-cp.yaml"],
  ]) {
    const run = await runCli(argv);
    assert.equal(run.code, 0, run.err);
    assert.deepEqual(run.calls, [{ command: "predict", options: { config: "p.yaml" } }], argv.join(" "));
  }
  const features = await runCli(["features", "-c", "f.yaml", "--metrics-port", "9466"]);
  assert.deepEqual(features.calls, [
    { command: "features", options: { config: "f.yaml", metricsPort: 9466 } },
  ]);
  const any = await runCli(["predict", "-c", "p.yaml", "--metrics-port=0"]);
  assert.deepEqual(any.calls, [{ command: "predict", options: { config: "p.yaml", metricsPort: 0 } }]);
});

test("stray arguments are usage errors, not ignored", async () => {
  assertUsage(await runCli(["predict", "-c", "x", "extra"]), /too many arguments for 'predict'/);
  assertUsage(await runCli(["models", "list", "-c", "x", "shop-propensity"]), /too many arguments/);
  assertUsage(await runCli(["config", "schema", "out.json"]), /too many arguments/);
});

test("--metrics-port must be an integer from 0 to 65535; the message names the option", async () => {
  for (const bad of ["99999", "65536", "-1", "1.5", "abc", "", "0x50", "1e3"]) {
    assertUsage(
      await runCli(["predict", "-c", "p.yaml", `--metrics-port=${bad}`]),
      /option '--metrics-port <port>' argument '.*' is invalid\. Expected an integer from 0 to 65535\./,
    );
  }
  assertUsage(
    await runCli(["predict", "-c", "p.yaml", "--metrics-port"]),
    /'--metrics-port <port>' argument missing/,
  );
});

test("unknown options and commands are usage errors with commander's suggestion", async () => {
  const option = await runCli(["predict", "-c", "p.yaml", "--metrcs-port", "1"]);
  assertUsage(option, /unknown option '--metrcs-port'\n\(Did you mean --metrics-port\?\)/);
  assertUsage(await runCli(["predct"]), /unknown command 'predct'\n\(Did you mean predict\?\)/);
  assertUsage(await runCli(["models", "deplyo"]), /unknown command 'deplyo'\n\(Did you mean deploy\?\)/);
  assertUsage(await runCli(["topics", "--config", "x"]), /unknown option '--config'/);
});

test("a missing required option is a usage error naming it", async () => {
  assertUsage(await runCli(["predict"]), /required option '-c, --config <file>' not specified/);
  assertUsage(
    await runCli(["models", "deploy", "-c", "p.yaml", "-m", "m"]),
    /required option '--version <version>' not specified/,
  );
  assertUsage(
    await runCli(["models", "canary", "-c", "p.yaml", "-m", "m", "--version", "2"]),
    /required option '--percent <0-100>' not specified/,
  );
});

test("models sub-commands get typed options; --version after the command is the model's", async () => {
  const deploy = await runCli([
    ...["models", "deploy", "-c", "p.yaml", "-m", "shop", "--version", "2"],
    ...["--reason", "retrained", "--by", "ci", "--wait-ms", "3000"],
  ]);
  assert.equal(deploy.code, 0, deploy.err);
  assert.deepEqual(deploy.calls, [
    {
      command: "models",
      action: "deploy",
      options: { config: "p.yaml", model: "shop", version: "2", reason: "retrained", by: "ci", waitMs: 3000 },
    },
  ]);
  const canary = await runCli(["models", "canary", "--config=p.yaml", "--model=shop", "--percent", "12.5"]);
  assert.deepEqual(canary.calls, [
    {
      command: "models",
      action: "canary",
      options: {
        config: "p.yaml",
        model: "shop",
        version: undefined,
        percent: 12.5,
        reason: undefined,
        by: undefined,
        waitMs: TUNING.control.cliWaitMs,
      },
    },
  ]);
  const shadow = await runCli(["models", "shadow", "-c", "p.yaml", "-m", "shop", "--off", "--wait-ms", "0"]);
  assert.equal(shadow.calls[0]?.command === "models" && shadow.calls[0].options.off, true);
  const list = await runCli(["models", "list", "-c", "p.yaml"]);
  assert.deepEqual(list.calls, [
    { command: "models", action: "list", options: { config: "p.yaml", waitMs: 0 } },
  ]);
  assertUsage(
    await runCli(["models", "canary", "-c", "p.yaml", "-m", "shop", "--percent", "ten"]),
    /option '--percent <0-100>' argument 'ten' is invalid\. Expected a number\./,
  );
  assertUsage(
    await runCli(["models", "deploy", "-c", "p.yaml", "-m", "shop", "--version", "2", "--wait-ms", "-5"]),
    /'--wait-ms <ms>' argument '-5' is invalid\. Expected an integer of at least 0\./,
  );
});

test("smoke and topics create get their options and defaults", async () => {
  const smoke = await runCli(["smoke"]);
  assert.deepEqual(smoke.calls, [{ command: "smoke", options: { timeoutMs: TUNING.cli.smokeTimeoutMs } }]);
  const short = await runCli(["smoke", "--timeout-ms", "5000"]);
  assert.deepEqual(short.calls, [{ command: "smoke", options: { timeoutMs: 5000 } }]);
  assertUsage(await runCli(["smoke", "--timeout-ms", "0"]), /Expected an integer of at least 1\./);
  const topics = await runCli(["topics", "create", "-c", "p.yaml"]);
  assert.deepEqual(topics.calls, [{ command: "topics create", options: { config: "p.yaml" } }]);
});

test("exit codes: the command's own, 1 when it throws, 2 for a USAGE error it raises", async () => {
  assert.equal((await runCli(["topics", "create", "-c", "p.yaml"], { exitCode: 1 })).code, 1);
  const failed = await runCli(["predict", "-c", "p.yaml"], {
    fail: new AimassError("CONFIG_NOT_FOUND", "cannot read config p.yaml"),
  });
  assert.equal(failed.code, 1);
  assert.equal(failed.err, "aimass predict: cannot read config p.yaml [CONFIG_NOT_FOUND]\n");
  const usage = await runCli(["models", "deploy", "-c", "p.yaml", "-m", "nope", "--version", "2"], {
    fail: new AimassError("USAGE", 'unknown model "nope"'),
  });
  assert.equal(usage.code, 2);
  assert.match(usage.err, /^aimass models deploy: unknown model "nope"\n/);
});
