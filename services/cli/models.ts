// `aimass models list|deploy|rollback|canary|shadow --config <file> ...`: the model
// repository's versions and the live desired state, and changes to it written to the
// control topic (with who, when and why). `--wait-ms` prints each worker's apply result.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Admin, Kafka } from "kafkajs";
import { AimassError } from "../common/errors.js";
import { loadPipelineConfig, type PipelineConfig } from "../common/config/load.js";
import { createLogger } from "../common/logger.js";
import { listVersions, MODEL_FILE } from "../common/models/repository.js";
import type { AuditRecord, DesiredState } from "../common/control/desired-state.js";
import { readControlState, whoAmI, writeControlState } from "../common/control/topic.js";
import { connectKafka } from "./kafka.js";

export type ModelsAction = "list" | "deploy" | "rollback" | "canary" | "shadow";

export interface ModelsOptions {
  config: string;
  model?: string | undefined;
  version?: string | undefined;
  percent?: number | undefined;
  off?: boolean | undefined;
  to?: string | undefined;
  reason?: string | undefined;
  by?: string | undefined;
  /** How long a change waits for the workers' apply results; 0: don't wait. */
  waitMs: number;
}

const out = (line = "") => process.stdout.write(line + "\n");

export async function runModels(action: ModelsAction, o: ModelsOptions): Promise<number> {
  const config = await loadPipelineConfig(o.config);
  const logger = createLogger({ base: { service: "control" }, level: "warn" });
  const { kafka, admin } = await connectKafka({
    brokers: config.endpoints.kafkaBrokers,
    clientId: "aimass-models",
    logger,
  });
  try {
    const states = await readControlState(kafka, admin, config.control.topic);
    if (action === "list") return list(config, states);
    const model = requireModel(config, o.model);
    const current = states.get(model) ?? initialState(config, model);
    const next = change(action, config, current, o);
    const state: DesiredState = {
      ...next,
      model,
      revision: current.revision + 1,
      updatedBy: o.by ?? whoAmI(),
      updatedAt: Date.now(),
      reason: o.reason ?? "",
    };
    // Where the audit topic ends now: the workers' apply results come after this offset.
    const auditFrom = o.waitMs > 0 ? await auditEnd(admin, config.control.auditTopic) : undefined;
    await writeControlState(kafka, config.control, state);
    out(`${model}: revision ${state.revision} written to ${config.control.topic}`);
    out(`  ${describe(state)}`);
    if (!auditFrom) return 0;
    const refusals = await printApplies(kafka, admin, config, state, auditFrom, o.waitMs);
    if (refusals.length === 0) return 0;
    // A worker refused the change and kept serving what it had: write the previous desired
    // state back, so the control topic says what is actually served (and a restarted worker
    // does not try the refused version again).
    const revert: DesiredState = {
      ...current,
      model,
      revision: state.revision + 1,
      updatedBy: o.by ?? whoAmI(),
      updatedAt: Date.now(),
      reason: `reverted revision ${state.revision}: ${refusals[0]}`,
    };
    if (current.revision === 0) delete revert.previous;
    await writeControlState(kafka, config.control, revert);
    out(`${model}: refused by a worker; revision ${revert.revision} restores ${describe(revert)}`);
    return 1;
  } finally {
    await admin.disconnect();
  }
}

function requireModel(config: PipelineConfig, model: string | undefined): string {
  if (!model) throw new AimassError("USAGE", "--model is required");
  if (!config.models.some((m) => m.name === model)) {
    throw new AimassError(
      "USAGE",
      `unknown model "${model}" (this pipeline serves: ${config.models.map((m) => m.name).join(", ")})`,
    );
  }
  if (!config.modelRepository) {
    throw new AimassError(
      "USAGE",
      `model "${model}" is configured inline; live versions need a modelRepository`,
    );
  }
  return model;
}

function requireVersion(config: PipelineConfig, model: string, version: string | undefined): string {
  if (!version) throw new AimassError("USAGE", "--version is required");
  const versions = listVersions(config.modelRepository as string, model);
  if (!versions.includes(version)) {
    throw new AimassError(
      "USAGE",
      `model "${model}" has no version "${version}" (repository has: ${versions.join(", ") || "none"})`,
    );
  }
  return version;
}

function initialState(config: PipelineConfig, model: string): DesiredState {
  const m = config.models.find((x) => x.name === model);
  return {
    model,
    active: m?.version ?? "",
    revision: 0,
    updatedBy: "config",
    updatedAt: 0,
    reason: "pipeline config",
  };
}

type Desired = Pick<DesiredState, "active" | "canary" | "shadow" | "previous">;

function change(
  action: Exclude<ModelsAction, "list">,
  config: PipelineConfig,
  cur: DesiredState,
  o: ModelsOptions,
): Desired {
  const keep: Desired = {
    active: cur.active,
    ...(cur.canary ? { canary: cur.canary } : {}),
    ...(cur.shadow ? { shadow: cur.shadow } : {}),
    ...(cur.previous ? { previous: cur.previous } : {}),
  };
  switch (action) {
    case "deploy": {
      const version = requireVersion(config, cur.model, o.version);
      const { canary, ...rest } = keep;
      // Deploying the canary's own version promotes it, which ends the canary.
      const keepCanary = canary && canary.version !== version ? { canary } : {};
      return { ...rest, ...keepCanary, active: version, previous: cur.active };
    }
    case "rollback": {
      const target = o.to ?? cur.previous;
      if (!target)
        throw new AimassError(
          "USAGE",
          `model "${cur.model}" has no previous version to roll back to; use --to`,
        );
      const version = requireVersion(config, cur.model, target);
      return { active: version, previous: cur.active, ...(cur.shadow ? { shadow: cur.shadow } : {}) };
    }
    case "canary": {
      const percent = o.percent;
      if (percent === undefined || !Number.isFinite(percent) || percent < 0 || percent > 100) {
        throw new AimassError("USAGE", "--percent must be a number from 0 to 100 (0 ends the canary)");
      }
      const { canary: _drop, ...rest } = keep;
      if (percent === 0) return rest;
      return { ...rest, canary: { version: requireVersion(config, cur.model, o.version), percent } };
    }
    case "shadow": {
      const { shadow: _drop, ...rest } = keep;
      if (o.off) return rest;
      return { ...rest, shadow: requireVersion(config, cur.model, o.version) };
    }
  }
}

function describe(s: Pick<DesiredState, "active" | "canary" | "shadow">): string {
  return [
    `active ${s.active}`,
    s.canary ? `canary ${s.canary.version} at ${s.canary.percent}%` : "no canary",
    s.shadow ? `shadow ${s.shadow}` : "no shadow",
  ].join(", ");
}

function list(config: PipelineConfig, states: Map<string, DesiredState>): number {
  for (const m of config.models) {
    const state = states.get(m.name);
    out(`${m.name}`);
    out(
      `  desired:  ${state ? describe(state) : `active ${m.version} (pipeline config; no control record yet)`}`,
    );
    if (state) {
      const when = new Date(state.updatedAt).toISOString();
      out(
        `  changed:  revision ${state.revision} by ${state.updatedBy} at ${when}${state.reason ? ` — ${state.reason}` : ""}`,
      );
    }
    if (config.modelRepository) {
      for (const v of listVersions(config.modelRepository, m.name)) {
        const sha = createHash("sha256")
          .update(readFileSync(join(config.modelRepository, m.name, v, MODEL_FILE)))
          .digest("hex");
        out(`  version ${v.padEnd(6)} sha256 ${sha.slice(0, 16)}…`);
      }
    } else {
      out(`  version ${m.version} (inline in the pipeline config)`);
    }
  }
  return 0;
}

async function auditEnd(admin: Admin, topic: string): Promise<Map<number, string>> {
  return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
}

/** Prints the workers' apply results for this revision that arrive within `waitMs`. */
async function printApplies(
  kafka: Kafka,
  admin: Admin,
  config: PipelineConfig,
  state: DesiredState,
  from: Map<number, string>,
  waitMs: number,
): Promise<string[]> {
  const topic = config.control.auditTopic;
  const groupId = `aimass-cli-watch-${process.pid}-${Date.now()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  const refusals: string[] = [];
  let seen = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        const rec = JSON.parse(message.value?.toString() ?? "{}") as AuditRecord;
        if (rec.type !== "apply" || rec.model !== state.model || rec.revision !== state.revision) return;
        seen++;
        if (!rec.ok) refusals.push(`worker ${rec.worker}: ${rec.error ?? "refused"}`);
        const serving = [
          `active ${rec.serving.active}`,
          rec.serving.canary && `canary ${rec.serving.canary}`,
          rec.serving.shadow && `shadow ${rec.serving.shadow}`,
        ]
          .filter(Boolean)
          .join(", ");
        const verdict = rec.ok ? "applied" : "REFUSED";
        out(
          `  worker ${rec.worker}: ${verdict} in ${rec.loadMs} ms, now ${serving}${rec.error ? ` (${rec.error})` : ""}`,
        );
      },
    });
    for (const [partition, offset] of from) consumer.seek({ topic, partition, offset });
    await new Promise((r) => setTimeout(r, waitMs));
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
  if (seen === 0) out("  no worker reported within the wait (are workers running?)");
  return refusals;
}
