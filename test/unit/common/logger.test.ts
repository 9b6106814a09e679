// The JSON logger: one object per line, levels, child fields, how Errors and bigints are
// written, and that secrets (by field name, and as URL userinfo in any string) never reach a line.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { AimassError } from "../../../services/common/errors.js";
import { createLogger, parseLogLevel, type Logger, type LogLevel } from "../../../services/common/logger.js";

type Line = Record<string, unknown>;

function capture(level: LogLevel = "debug", base?: Record<string, unknown>) {
  const raw: string[] = [];
  const logger = createLogger({ level, ...(base === undefined ? {} : { base }), write: (l) => raw.push(l) });
  const lines = (): Line[] => raw.map((l) => JSON.parse(l) as Line);
  return { logger, raw, lines };
}

function only(lines: Line[]): Line {
  assert.equal(lines.length, 1, JSON.stringify(lines));
  const [line] = lines;
  assert.ok(line !== undefined);
  return line;
}

test("each call is one JSON object on one line with time, level label, msg and fields", () => {
  const { logger, raw, lines } = capture();
  logger.info("partitions assigned", { partitions: [0, 1], note: "a\nb" });
  logger.warn("second");
  assert.equal(raw.length, 2);
  for (const line of raw) assert.ok(!line.includes("\n"), line);
  const [first, second] = lines();
  assert.equal(first?.level, "info");
  assert.equal(first?.msg, "partitions assigned");
  assert.deepEqual(first?.partitions, [0, 1]);
  assert.equal(first?.note, "a\nb");
  assert.equal(new Date(String(first?.time)).toISOString(), first?.time);
  assert.equal(second?.level, "warn");
  // Worker-log consumers match the message followed by the line's fields.
  assert.match(raw[0] ?? "", /"msg":"partitions assigned"[^\n]*"partitions":\[0/);
});

test("lines below the level are dropped; parseLogLevel falls back on unknown values", () => {
  const { logger, lines } = capture("warn");
  logger.debug("d");
  logger.info("i");
  logger.warn("w");
  logger.error("e");
  assert.deepEqual(
    lines().map((l) => l.level),
    ["warn", "error"],
  );
  assert.equal(parseLogLevel("debug"), "debug");
  assert.equal(parseLogLevel("verbose"), "info");
  assert.equal(parseLogLevel(undefined, "error"), "error");
  assert.equal(parseLogLevel("toString"), "info");
});

test("AIMASS_LOG_LEVEL sets the level when none is given", () => {
  const script = [
    `import { createLogger } from ${JSON.stringify(new URL("../../../services/common/logger.js", import.meta.url).href)};`,
    `const log = createLogger({ base: { service: "probe" } });`,
    `log.info("hidden"); log.warn("shown", { n: 1 });`,
  ].join("\n");
  const out = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    env: { ...process.env, AIMASS_LOG_LEVEL: "warn" },
    encoding: "utf8",
  });
  assert.equal(out.status, 0, out.stderr);
  assert.equal(out.stdout, "");
  const lines = out.stderr.trimEnd().split("\n");
  const line = only(lines.map((l) => JSON.parse(l) as Line));
  assert.equal(line.msg, "shown");
  assert.equal(line.service, "probe");
});

test("child loggers add their fields to the parent's base fields; call fields win", () => {
  const { logger, lines } = capture("debug", { service: "predictor" });
  const child: Logger = logger.child({ model: "m", version: "1" });
  child.child({ partition: 3 }).info("hello", { version: "2" });
  const line = only(lines());
  assert.equal(line.service, "predictor");
  assert.equal(line.model, "m");
  assert.equal(line.partition, 3);
  assert.equal(line.version, "2");
  assert.equal(line.msg, "hello");
});

test("Errors are {name, message, code} at any depth; bigints are strings", () => {
  const { logger, lines } = capture();
  const plain = Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
  logger.error("failed", {
    err: new AimassError("MODEL_UNAVAILABLE", "no worker"),
    error: new TypeError("bad"),
    nested: { causes: [plain] },
    offset: 12345678901234567890n,
  });
  const line = only(lines());
  assert.deepEqual(line.err, { name: "AimassError", message: "no worker", code: "MODEL_UNAVAILABLE" });
  assert.deepEqual(line.error, { name: "TypeError", message: "bad" });
  assert.deepEqual(line.nested, { causes: [{ name: "Error", message: "refused", code: "ECONNREFUSED" }] });
  assert.equal(line.offset, "12345678901234567890");
});

test("a circular field does not throw and is marked", () => {
  const { logger, lines } = capture();
  const loop: Record<string, unknown> = { id: 1 };
  loop.self = loop;
  logger.info("loop", { loop });
  assert.deepEqual(only(lines()).loop, { id: 1, self: "[circular]" });
});

test("secret-named fields are redacted at the top level, nested, in arrays and in base fields", () => {
  const { logger, raw, lines } = capture("debug", { credentials: { user: "svc", pass: "b" } });
  logger.child({ sasl: { mechanism: "plain", username: "u", password: "p1" } }).info("connect", {
    password: "p2",
    config: { redis: { password: "p3" }, registry: { auth: { token: "t1" } } },
    headers: { authorization: "Bearer t2", "set-cookie": "c1" },
    ssl: { key: "-----BEGIN PRIVATE KEY-----", cert: "public cert" },
    peers: [{ apiKey: "k1" }, { api_key: "k2" }],
    secret: "s1",
    // Record keys are ids, not secrets.
    key: "user-42",
  });
  const line = only(lines());
  assert.equal(line.credentials, "[redacted]");
  assert.equal(line.sasl, "[redacted]");
  assert.equal(line.password, "[redacted]");
  assert.deepEqual(line.config, {
    redis: { password: "[redacted]" },
    registry: { auth: { token: "[redacted]" } },
  });
  assert.deepEqual(line.headers, { authorization: "[redacted]", "set-cookie": "[redacted]" });
  assert.deepEqual(line.ssl, { key: "[redacted]", cert: "public cert" });
  assert.deepEqual(line.peers, [{ apiKey: "[redacted]" }, { api_key: "[redacted]" }]);
  assert.equal(line.secret, "[redacted]");
  assert.equal(line.key, "user-42");
  for (const secret of ["p1", "p2", "p3", "t1", "t2", "c1", "PRIVATE KEY", "k1", "k2", "s1", '"b"']) {
    assert.ok(!raw[0]?.includes(secret), `${secret} leaked: ${raw[0]}`);
  }
});

test("URL userinfo is masked in the message, in fields, in base fields and in Error messages", () => {
  const { logger, raw, lines } = capture("debug", { registry: "https://ci:hunter2@registry.example/apis" });
  logger.warn("cannot reach redis://default:s3cr3t@10.0.0.5:6379/0, retrying", {
    brokers: ["kafka://svc:pa@ss@broker-1:9092", "broker-2:9092"],
    nested: { deeper: { url: "https://ghp_tokenvalue@github.com/org/repo.git" } },
    err: new Error("GET https://u:p4ss@host/x failed"),
    plain: "https://example.com/path?q=1 user@example.com",
  });
  const line = only(lines());
  assert.equal(line.msg, "cannot reach redis://default:[redacted]@10.0.0.5:6379/0, retrying");
  assert.equal(line.registry, "https://ci:[redacted]@registry.example/apis");
  assert.deepEqual(line.brokers, ["kafka://svc:[redacted]@broker-1:9092", "broker-2:9092"]);
  assert.deepEqual(line.nested, { deeper: { url: "https://[redacted]@github.com/org/repo.git" } });
  assert.deepEqual(line.err, { name: "Error", message: "GET https://u:[redacted]@host/x failed" });
  assert.equal(line.plain, "https://example.com/path?q=1 user@example.com");
  for (const secret of ["hunter2", "s3cr3t", "pa@ss", "ghp_tokenvalue", "p4ss"]) {
    assert.ok(!raw[0]?.includes(secret), `${secret} leaked: ${raw[0]}`);
  }
});

test("logging does not change the caller's objects", () => {
  const { logger } = capture();
  const fields = { config: { password: "p", url: "redis://u:p@h" }, n: 1n };
  logger.info("x", fields);
  assert.deepEqual(fields, { config: { password: "p", url: "redis://u:p@h" }, n: 1n });
});
