// A chaos run's own Kafka (1 or 3 nodes), registry and Redis: started with scripts/stack/up.sh
// in a folder and on ports of its own (never the shared stack on 9092/8081/6379), its
// endpoints read from $AIMASS_STACK_DIR/endpoints.env, faults injected through
// scripts/stack/node.sh, stopped with down.sh (also after a failed start).
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import type { Endpoints } from "../../services/common/env.js";
import { REPO } from "../lib/predictor-process.js";

export type NodeAction = "kill" | "stop" | "start" | "pause" | "resume" | "status" | "pid";

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export interface StackPorts {
  kafka: number;
  controller: number;
  registry: number;
  registryMgmt: number;
  redis: number;
}

/** Ports from a base, spaced so a 3-node stack's consecutive broker and controller ports fit. */
export function portsFrom(base: number): StackPorts {
  return {
    kafka: base + 92,
    controller: base + 192,
    registry: base + 81,
    registryMgmt: base + 1,
    redis: base + 379,
  };
}

export interface StackOptions {
  dir: string;
  nodes: 1 | 3;
  ports: StackPorts;
  /** Stack script output goes here (appended). */
  logFile: string;
}

const SCRIPTS = join(REPO, "scripts", "stack");

/** KEY=VALUE lines (`export`, quotes and comments allowed) → a map. */
export function parseEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim().replace(/^export\s+/, "");
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m || line.startsWith("#")) continue;
    out.set(m[1] as string, (m[2] as string).replace(/^(['"])(.*)\1$/, "$2"));
  }
  return out;
}

export class ChaosStack {
  private stopped = false;

  private constructor(
    readonly options: StackOptions,
    readonly endpoints: Endpoints,
  ) {}

  /** The variables that point up.sh, down.sh and node.sh at this stack. */
  static scriptEnv(o: StackOptions): Record<string, string> {
    return {
      AIMASS_STACK_DIR: o.dir,
      AIMASS_KAFKA_PORT: String(o.ports.kafka),
      AIMASS_KAFKA_CONTROLLER_PORT: String(o.ports.controller),
      AIMASS_REGISTRY_PORT: String(o.ports.registry),
      AIMASS_REGISTRY_MGMT_PORT: String(o.ports.registryMgmt),
      AIMASS_REDIS_PORT: String(o.ports.redis),
      ...(o.nodes === 3 ? { AIMASS_KAFKA_NODES: "3" } : {}),
    };
  }

  /**
   * Stops whatever an earlier run left in this folder (down.sh only touches its own pid
   * files), starts afresh with empty data, and reads the endpoints.
   */
  static async up(o: StackOptions): Promise<ChaosStack> {
    mkdirSync(o.dir, { recursive: true });
    await runScript(o, "down.sh", []);
    for (const sub of ["data", "run", "logs"]) rmSync(join(o.dir, sub), { recursive: true, force: true });
    rmSync(join(o.dir, "endpoints.env"), { force: true });
    for (const [name, port] of Object.entries(o.ports)) {
      if (await portOpen(port))
        throw new Error(`port ${port} (${name}) is already taken; pick another --port-base`);
    }
    const printed = await runScript(o, "up.sh", []);
    const file = join(o.dir, "endpoints.env");
    const vars = parseEnvFile(existsSync(file) ? readFileSync(file, "utf8") : printed);
    const brokers = vars.get("KAFKA_BROKERS");
    const registry = vars.get("SCHEMA_REGISTRY_URL");
    const redis = vars.get("REDIS_URL");
    if (!brokers || !registry || !redis) throw new Error(`up.sh gave no endpoints (${file})`);
    return new ChaosStack(o, {
      kafkaBrokers: brokers.split(",").map((b) => b.trim()),
      schemaRegistryUrl: registry,
      redisUrl: redis,
    });
  }

  /** Variables for processes that talk to this stack (workers, the CLI). */
  get clientEnv(): Record<string, string> {
    return {
      KAFKA_BROKERS: this.endpoints.kafkaBrokers.join(","),
      SCHEMA_REGISTRY_URL: this.endpoints.schemaRegistryUrl,
      REDIS_URL: this.endpoints.redisUrl,
    };
  }

  /** `kafka` on one node, `kafka-1`..`kafka-3` on three. */
  get brokers(): string[] {
    return this.options.nodes === 1 ? ["kafka"] : ["kafka-1", "kafka-2", "kafka-3"];
  }

  /** `node.sh <name> <action>`: its stdout (e.g. `running 1234` for status). */
  async node(name: string, action: NodeAction): Promise<string> {
    return (await runScript(this.options, "node.sh", [name, action])).trim();
  }

  /** The node leading a partition, e.g. "kafka-2". */
  async leaderOf(topic: string, partition: number): Promise<string> {
    return lastLine(await runScript(this.options, "node.sh", ["kafka-leader", topic, String(partition)]));
  }

  /** The node coordinating a transactional id. */
  async coordinatorOf(transactionalId: string): Promise<string> {
    return lastLine(await runScript(this.options, "node.sh", ["kafka-coordinator", transactionalId]));
  }

  /** Resumes every paused node (a stopped process ignores SIGTERM until resumed). */
  async resumeAll(): Promise<void> {
    for (const name of [...this.brokers, "redis", "registry"]) {
      await this.node(name, "resume").catch(() => undefined);
    }
  }

  /** Makes sure every node runs and none is paused (after a scenario that left one down). */
  async heal(): Promise<void> {
    await this.resumeAll();
    for (const name of [...this.brokers, "redis"]) await this.node(name, "start");
  }

  /** Idempotent; also safe after a failed start. */
  async down(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.resumeAll();
    await runScript(this.options, "down.sh", []);
  }

  /** down.sh for a stack that failed before it was up (or whose object is gone). */
  static async downQuiet(o: StackOptions): Promise<void> {
    await runScript(o, "down.sh", []).catch(() => undefined);
  }
}

function lastLine(text: string): string {
  return text.trim().split("\n").pop()?.trim() ?? "";
}

/** Runs a stack script with the stack's env; its stderr goes to the log, stdout is returned. */
function runScript(o: StackOptions, script: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [join(SCRIPTS, script), ...args], {
      cwd: REPO,
      env: { ...process.env, ...ChaosStack.scriptEnv(o) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => {
      err += b.toString();
      appendFileSync(o.logFile, b);
    });
    child.once("error", reject);
    child.once("exit", (code) => {
      appendFileSync(o.logFile, `[${new Date().toISOString()}] ${script} ${args.join(" ")} → ${code}\n`);
      if (code === 0) resolve(out);
      else
        reject(
          new Error(
            `${script} ${args.join(" ")} exited ${code}: ${err.trim().split("\n").slice(-5).join(" | ")}`,
          ),
        );
    });
  });
}
