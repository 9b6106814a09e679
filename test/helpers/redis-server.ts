// A redis-server of the test's own on a free port, for tests that stop, kill or restart Redis
// (or count its commands) without touching the shared one. It runs in a private temp folder;
// stopping it and removing the folder are registered with `defer` when it starts.
//
// Persistence: off by default (`--save ""`, no AOF): a restart comes back empty. With
// `persist: true` it has an RDB save point, so `stop("SIGTERM")` saves before exiting and
// `restart()` loads the data again; `stop("SIGKILL")` (a crash) always loses it.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { defer } from "./stack.js";

export interface OwnRedisOptions {
  /** Save an RDB on SIGTERM (and load it on restart). @default false */
  persist?: boolean;
  /** More redis-server arguments, e.g. ["--maxmemory", "10mb"]. */
  args?: string[];
}

export class OwnRedis {
  private child: ChildProcess | undefined;
  private readonly dir: string;

  private constructor(
    readonly port: number,
    private readonly options: OwnRedisOptions,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), "aimass-redis-"));
  }

  /** Starts a redis-server on a free port; it is killed (and its folder removed) when the test ends. */
  static async start(t: Pick<TestContext, "after">, options: OwnRedisOptions = {}): Promise<OwnRedis> {
    const own = new OwnRedis(await freePort(), options);
    defer(t, async () => {
      await own.stop("SIGKILL");
      rmSync(own.dir, { recursive: true, force: true });
    });
    await own.restart();
    return own;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** A redis-server process is running (started and not stopped). */
  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts the server again on the same port (after `stop`) and waits until it answers PING. */
  async restart(): Promise<void> {
    if (this.child) throw new Error(`redis-server on ${this.port} is already running`);
    const args = [
      "--port",
      String(this.port),
      "--bind",
      "127.0.0.1",
      "--save",
      ...(this.options.persist ? ["3600", "1"] : [""]),
      "--appendonly",
      "no",
      "--dir",
      this.dir,
      "--dbfilename",
      "dump.rdb",
      "--enable-debug-command",
      "local",
      "--loglevel",
      "warning",
      ...(this.options.args ?? []),
    ];
    const child = spawn("redis-server", args, { stdio: "ignore" });
    this.child = child;
    const deadline = Date.now() + 10_000;
    while (!(await ping(this.port))) {
      if (child.exitCode !== null || child.signalCode !== null) {
        this.child = undefined;
        throw new Error(
          `redis-server on ${this.port} exited at start (${child.exitCode ?? child.signalCode})`,
        );
      }
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not start`);
      await sleep(50);
    }
  }

  /**
   * Stops the server and waits for the process to exit. SIGKILL (default) is a crash:
   * connections drop, nothing is saved. SIGTERM is a clean shutdown: it saves first when
   * started with `persist`. Does nothing when it is not running.
   */
  async stop(signal: "SIGKILL" | "SIGTERM" = "SIGKILL"): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill(signal);
    await exited;
  }

  /** `stop("SIGKILL")`. */
  kill(): Promise<void> {
    return this.stop("SIGKILL");
  }
}

/** A TCP port nothing listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      srv.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/** PING over a raw socket: true when a Redis answers +PONG on the port. */
export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => (socket.destroy(), resolve(ok));
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.once("data", (d) => done(d.toString().startsWith("+PONG")));
    socket.connect(port, "127.0.0.1", () => socket.write("PING\r\n"));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
