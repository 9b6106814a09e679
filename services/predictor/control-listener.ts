// Follows the control topic (compacted; key = model, value = desired state) and applies
// each model's desired versions to this worker's ServedModels. At start it reads the topic
// to its end and applies only the latest state per model before the worker consumes events;
// afterwards changes apply as they arrive. Every apply result goes to the audit topic.
import type { Admin, Kafka, Producer } from "kafkajs";
import type { Logger } from "../common/logger.js";
import { errorMessage } from "../common/errors.js";
import { parseDesiredState, type AuditRecord, type DesiredState } from "../common/control/desired-state.js";
import type { ServedModels } from "./served-models.js";
import { followTopic, type Follower } from "../common/kafka/follow-topic.js";
import { exceedsGrace } from "../common/lifecycle.js";
import { TUNING } from "../common/tuning.js";

export interface ControlListenerOptions {
  kafka: Kafka;
  admin: Admin;
  topic: string;
  auditTopic: string;
  /** Where shadow predictions go; a shadow is not started while it does not exist. */
  shadowTopic: string;
  groupId: string;
  worker: string;
  served: ServedModels;
  logger: Logger;
  /** How long start() waits to read the topic to its end before applying what it has. */
  catchUpTimeoutMs: number;
}

export class ControlListener {
  private follower: Follower | undefined;
  private producer: Producer | undefined;
  private caughtUp = false;
  private readonly pending = new Map<string, DesiredState>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: ControlListenerOptions) {}

  /** Resolves once the latest desired state of every model is applied (or there is none). */
  async start(): Promise<void> {
    const { admin, topic, logger } = this.o;
    if (!(await admin.listTopics()).includes(topic)) {
      logger.warn(
        "control topic missing: live model changes are off (create it with `aimass topics create`)",
        { topic },
      );
      return;
    }
    this.producer = this.o.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    this.follower = await followTopic({
      kafka: this.o.kafka,
      admin,
      topic,
      groupId: this.o.groupId,
      fetchMaxWaitMs: TUNING.control.fetchMaxWaitMs,
      onRecord: (message) => {
        if (!message.value) return;
        try {
          const state = parseDesiredState(message.value);
          if (this.caughtUp) this.enqueue(state);
          else if ((this.pending.get(state.model)?.revision ?? 0) < state.revision)
            this.pending.set(state.model, state);
        } catch (err) {
          logger.warn("ignoring an invalid control record", {
            offset: message.offset,
            error: errorMessage(err),
          });
        }
      },
    });
    const timedOut = await exceedsGrace(this.follower.caughtUp, this.o.catchUpTimeoutMs);
    if (timedOut) logger.warn("control topic not read to its end in time; applying what was read", { topic });
    this.caughtUp = true;
    for (const state of this.pending.values()) this.enqueue(state);
    this.pending.clear();
    await this.chain;
  }

  private enqueue(state: DesiredState): void {
    this.chain = this.chain.then(() => this.applyOne(state)).catch(() => undefined);
  }

  private async applyOne(desired: DesiredState): Promise<void> {
    let state = desired;
    if (!this.o.served.models.includes(state.model)) return; // another pipeline's model
    // A shadow writes to its own topic inside every transaction: without that topic, refuse
    // the shadow part (the rest of the state applies) rather than stall the primary output.
    let refusedShadow: string | undefined;
    if (state.shadow && !(await this.o.admin.listTopics()).includes(this.o.shadowTopic)) {
      refusedShadow = `shadow topic ${this.o.shadowTopic} does not exist (create it with \`aimass topics create\`); shadow not started`;
      const { shadow: _skip, ...rest } = state;
      state = rest;
    }
    const applied = await this.o.served.apply(state);
    const result = refusedShadow ? { ...applied, ok: false, error: refusedShadow } : applied;
    if (result.replay) return; // re-delivered after this listener's own rejoin: already reported
    const record: AuditRecord = {
      type: "apply",
      worker: this.o.worker,
      model: state.model,
      revision: state.revision,
      ok: result.ok,
      serving: result.serving,
      ...(result.error ? { error: result.error } : {}),
      loadMs: Math.round(result.loadMs),
      at: Date.now(),
    };
    try {
      await this.producer?.send({
        topic: this.o.auditTopic,
        messages: [{ key: state.model, value: JSON.stringify(record) }],
      });
    } catch (err) {
      this.o.logger.warn("could not write the apply result to the audit topic", { error: errorMessage(err) });
    }
  }

  async stop(): Promise<void> {
    await this.follower?.stop();
    await this.chain;
    await this.producer?.disconnect().catch(() => undefined);
  }
}
