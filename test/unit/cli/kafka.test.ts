// A CLI command pointed at a broker that is not there fails with one line naming the brokers
// and the cause, exit 1 — not pages of kafkajs client logs. Real processes, a port that
// nothing listens on (found by binding it and letting it go), no Kafka needed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createServer } from "node:net";
import { promisify } from "node:util";
import { repoPath } from "../../helpers/pipeline.js";

const execFileAsync = promisify(execFile);

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  const { port } = address;
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  return port;
}

async function aimass(
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [repoPath("bin/aimass.js"), ...argv], {
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    assert.ok(err instanceof Error && "code" in err && "stderr" in err && "stdout" in err, String(err));
    return { code: Number(err.code), stdout: String(err.stdout), stderr: String(err.stderr) };
  }
}

test("models, topics and smoke: an unreachable broker is one clear line and exit 1", async () => {
  const brokers = `127.0.0.1:${await closedPort()}`;
  const config = repoPath("examples/shop/pipeline.yaml");
  for (const argv of [["models", "list", "-c", config], ["topics", "create", "-c", config], ["smoke"]]) {
    const r = await aimass(argv, { KAFKA_BROKERS: brokers, AIMASS_LOG_LEVEL: "info" });
    const what = `aimass ${argv.slice(0, 2).join(" ")}`;
    assert.equal(r.code, 1, `${what}: ${r.stderr}`);
    assert.equal(r.stdout, "", what);
    const lines = r.stderr.split("\n").filter((l) => l !== "");
    assert.equal(lines.length, 1, `${what} printed:\n${r.stderr}`);
    assert.match(
      lines[0] ?? "",
      new RegExp(
        `^aimass \\w+( \\w+)?: cannot reach Kafka at ${brokers} \\(KAFKA_BROKERS\\): .*ECONNREFUSED.* \\[KAFKA_TRANSIENT\\]$`,
      ),
    );
  }
});
