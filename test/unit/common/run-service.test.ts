// runService drives any Service the same way: the HTTP endpoints answer from the service, the
// first signal drains it and later ones change nothing, a failure stops it with its code, and
// a start failure closes everything and rethrows. Signals come from an emitter, not the
// process, so the test process never receives one.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { Counter, Registry } from "prom-client";
import { runService, type RunServiceOptions } from "../../../services/common/run-service.js";
import { createLogger, type Logger } from "../../../services/common/logger.js";
import type { Service, ServiceState } from "../../../services/common/service.js";

/** A Service whose every step the test controls. */
class FakeService implements Service {
  state: ServiceState = "starting";
  ready = false;
  notReadyReason: string | undefined = "state starting";
  alive = true;
  readonly events: string[] = [];
  stopCalls = 0;
  startError: Error | undefined;
  private finishDrain: (code: number) => void = () => undefined;
  private readonly drained = new Promise<number>((r) => (this.finishDrain = r));
  private reportFailed: (err: unknown) => void = () => undefined;
  readonly failed = new Promise<unknown>((r) => (this.reportFailed = r));
  private stopping: Promise<number> | undefined;

  start(): Promise<void> {
    this.events.push("start");
    if (this.startError) {
      this.state = "failed";
      return Promise.reject(this.startError);
    }
    this.state = "running";
    return Promise.resolve();
  }

  stop(): Promise<number> {
    this.stopCalls += 1;
    this.stopping ??= (async () => {
      this.events.push("stop");
      this.state = "draining";
      const code = await this.drained;
      this.state = "stopped";
      this.events.push("stopped");
      return code;
    })();
    return this.stopping;
  }

  /** Lets the drain under way finish with `code`. */
  drain(code: number): void {
    this.finishDrain(code);
  }

  fail(err: unknown): void {
    this.state = "failed";
    this.alive = false;
    this.reportFailed(err);
  }
}

function capture(): { logger: Logger; lines: Array<{ level: string; msg: string }> } {
  const lines: Array<{ level: string; msg: string }> = [];
  const logger = createLogger({
    level: "debug",
    write: (line) => lines.push(JSON.parse(line) as { level: string; msg: string }),
  });
  return { logger, lines };
}

async function until(what: string, cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Lets every callback already due run: enough for a wrongly resolved promise to settle. */
const settle = () => new Promise((r) => setImmediate(r));

interface Run {
  service: FakeService;
  signals: EventEmitter;
  lines: Array<{ level: string; msg: string }>;
  result: Promise<number>;
  settled: () => boolean;
  /** The bound port, once listening. */
  port: () => number | undefined;
}

function run(t: TestContext, service: FakeService, extra: Partial<RunServiceOptions> = {}): Run {
  const signals = new EventEmitter();
  const { logger, lines } = capture();
  let port: number | undefined;
  let done = false;
  const result = runService(service, logger, {
    metricsPort: 0,
    host: "127.0.0.1",
    prometheus: new Registry(),
    signals,
    onListening: (p) => (port = p),
    ...extra,
  });
  result.then(
    () => (done = true),
    () => (done = true),
  );
  // A failed assertion must not leave the run (and its server) behind.
  t.after(async () => {
    signals.emit("SIGTERM", "SIGTERM");
    service.drain(1);
    await result.catch(() => undefined);
  });
  return { service, signals, lines, result, settled: () => done, port: () => port };
}

const logged = (r: Run, msg: string) => r.lines.some((l) => l.msg === msg);

test("a second signal during a slow drain neither ends the run early nor stops twice", async (t) => {
  const hooks: string[] = [];
  const r = run(t, new FakeService(), { onStopped: [["hook", async () => hooks.push("hook")]] });
  await until("the service to run", () => r.service.state === "running");
  assert.equal(r.signals.listenerCount("SIGTERM"), 1);
  assert.equal(r.signals.listenerCount("SIGINT"), 1);

  r.signals.emit("SIGTERM", "SIGTERM");
  await until("the drain to start", () => r.service.state === "draining");
  r.signals.emit("SIGINT", "SIGINT");
  r.signals.emit("SIGTERM", "SIGTERM");
  await until("the second signal to be logged", () =>
    logged(r, "already draining; send SIGKILL to stop at once"),
  );
  await settle();
  assert.equal(r.settled(), false, "still draining");
  assert.equal(r.service.stopCalls, 1);
  assert.deepEqual(hooks, [], "cleanup waits for the drain");
  assert.equal(r.signals.listenerCount("SIGTERM"), 1, "still listening: a signal must not kill the drain");

  r.service.drain(0);
  assert.equal(await r.result, 0);
  assert.deepEqual(r.service.events, ["start", "stop", "stopped"]);
  assert.deepEqual(hooks, ["hook"]);
  assert.equal(r.signals.listenerCount("SIGTERM"), 0, "listeners removed at the end");
  assert.equal(r.signals.listenerCount("SIGINT"), 0);
});

test("a service that fails on its own is stopped and its exit code returned", async (t) => {
  const hooks: string[] = [];
  const r = run(t, new FakeService(), { onStopped: [["hook", async () => hooks.push("after stop")]] });
  await until("the service to run", () => r.service.state === "running");
  r.service.fail(new Error("consumer crashed"));
  await until("stop to be called", () => r.service.stopCalls === 1);
  r.service.drain(1);
  assert.equal(await r.result, 1);
  assert.deepEqual(hooks, ["after stop"]);
  assert.equal(r.service.stopCalls, 1);
  assert.equal(r.signals.listenerCount("SIGTERM"), 0);
});

test("a start failure closes the endpoints, runs the hooks and rethrows", async (t) => {
  const service = new FakeService();
  service.startError = new Error("models do not fit");
  const hooks: string[] = [];
  const r = run(t, service, { onStopped: [["hook", async () => hooks.push("hook")]] });
  await assert.rejects(r.result, (err: unknown) => err === service.startError);
  assert.equal(service.stopCalls, 0);
  assert.deepEqual(hooks, ["hook"]);
  const port = r.port();
  assert.ok(port !== undefined, "the endpoints were listening before the start");
  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), "the server is closed");
  assert.equal(r.signals.listenerCount("SIGTERM"), 0);
  assert.equal(r.signals.listenerCount("SIGINT"), 0);
});

test("/healthz, /readyz and /metrics answer from the service and its registry", async (t) => {
  const prometheus = new Registry();
  new Counter({ name: "fake_service_things_total", help: "things", registers: [prometheus] }).inc(3);
  const r = run(t, new FakeService(), { prometheus });
  await until("the service to run", () => r.service.state === "running" && r.port() !== undefined);
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${r.port()}${path}`);
    return { status: res.status, body: await res.text() };
  };

  r.service.notReadyReason = "no partitions assigned";
  assert.deepEqual(await get("/readyz"), { status: 503, body: "no partitions assigned\n" });
  r.service.ready = true;
  r.service.notReadyReason = undefined;
  assert.equal((await get("/readyz")).status, 200);
  assert.equal((await get("/healthz")).status, 200);
  r.service.alive = false;
  assert.equal((await get("/healthz")).status, 503);
  assert.match((await get("/metrics")).body, /fake_service_things_total 3/);

  r.signals.emit("SIGTERM", "SIGTERM");
  r.service.drain(0);
  assert.equal(await r.result, 0);
  await assert.rejects(fetch(`http://127.0.0.1:${r.port()}/healthz`), "closed after the stop");
});

test("without a metrics port nothing listens and the run still stops on a signal", async (t) => {
  const r = run(t, new FakeService(), { metricsPort: undefined });
  await until("the service to run", () => r.service.state === "running");
  assert.equal(r.port(), undefined);
  r.signals.emit("SIGINT", "SIGINT");
  r.service.drain(0);
  assert.equal(await r.result, 0);
});
